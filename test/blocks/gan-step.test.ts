// The GAN training step (compiler/gan-step.ts): every feed and output has a
// role; each loss term and each network's loss are recomputed in PyTorch from
// the logits the programs return, with the formulas of
// shared/reference/stackgan.md; one step with the model's own (typed) Adam
// settings moves each network; d_step and g_step fed the same noise see the
// same G forward.
import { describe, expect, it } from 'vitest';
import type { CheckedModel } from '../../compiler/check/model.ts';
import { buildGanSteps, sharedNoise, type GanSteps } from '../../compiler/gan-step.ts';
import { find, findAll, roleStr, type StepValue } from '../../runtime/format/step.ts';
import { Runtime } from '../../runtime/executor.ts';
import { createOptimizer } from '../../runtime/optim.ts';
import { checkText, errors, MINI } from '../helpers/gan.ts';
import { relErr } from '../oracle/compare.ts';
import { randn } from '../oracle/random.ts';
import type { HostTensor } from '../oracle/tensor.ts';
import { startTorch, torchAvailable } from '../oracle/torch.ts';

const BATCH = 2;

// MINI's discriminator with MS-CLIP-GAN's alignment head (image feature vs text).
const WITH_ALIGN = MINI.replace(
  '  head cond = concat(tile(mu, 8), f)',
  '  head align = cosine(f |> mean_hw |> linear(32), text)\n  head cond = concat(tile(mu, 8), f)',
);

// Written from the reference, not from our term list: each term, then errD and errG by the published formulas.
const TORCH = `
bce = lambda x, t: F.binary_cross_entropy_with_logits(x, torch.full_like(x, t))
d = {'cond_real': bce(rc, y), 'cond_wrong': bce(wc, 0.0), 'cond_fake': bce(fc, 0.0)}
g = {'cond_fake': bce(gc, 1.0)}
if u > 0:
    d.update(uncond_real=bce(ru, y), uncond_wrong=bce(wu, y), uncond_fake=bce(fu, 0.0))
    g['uncond_fake'] = bce(gu, 1.0)
    errD = d['cond_real'] + u * d['uncond_real'] + d['cond_wrong'] + u * d['uncond_wrong'] + d['cond_fake'] + u * d['uncond_fake']
else:
    errD = d['cond_real'] + 0.5 * (d['cond_wrong'] + d['cond_fake'])
errG = g['cond_fake'] + u * g.get('uncond_fake', 0.0) + klw * kl
if aw > 0:
    d['align_real'] = (1 - ra).mean()
    g['align_fake'] = (1 - ga).mean()
    errD = errD + aw * d['align_real']
    errG = errG + aw * g['align_fake']
out = {'errD': errD, 'errG': errG, 'G.kl': kl}
out.update({'d0.' + k: v for k, v in d.items()})
out.update({'G.' + k: v for k, v in g.items()})
`;

const roles = (vs: StepValue[]) => vs.map((v) => roleStr(v.role)).sort();

/** Text, noise and CA sample for one iteration, and real and wrong images: every d_step feed, by role. */
function iterationFeeds(steps: GanSteps, seed: number): Record<string, Float32Array> {
  const f = steps.dStep.feeds;
  const data = (v: StepValue, k: number) => randn(v.shape, seed + k).data;
  return {
    [find(f, { role: 'text' }).name]: data(find(f, { role: 'text' }), 1),
    [find(f, { role: 'noise', name: 'z' }).name]: data(find(f, { role: 'noise', name: 'z' }), 2),
    [find(f, { role: 'ca_noise' }).name]: data(find(f, { role: 'ca_noise' }), 3),
    [find(f, { role: 'real_image', stage: 'g0' }).name]: data(find(f, { role: 'real_image', stage: 'g0' }), 4).map(Math.tanh),
    [find(f, { role: 'wrong_image', stage: 'g0' }).name]: data(find(f, { role: 'wrong_image', stage: 'g0' }), 5).map(Math.tanh),
  };
}

/** The g_step feeds: the d_step feeds of the same roles. */
function gFeedsFrom(steps: GanSteps, dFeeds: Record<string, Float32Array>): Record<string, Float32Array> {
  return Object.fromEntries(steps.gStep.feeds.map((f) => [f.name, dFeeds[find(steps.dStep.feeds, f.role).name]]));
}

function build(text: string): { m: CheckedModel; steps: GanSteps } {
  const r = checkText(text);
  expect(errors(r)).toEqual([]);
  return { m: r.model!, steps: buildGanSteps(r.model!, BATCH) };
}

describe('GAN step signature', () => {
  it('every feed and output of both programs has a role and its shape', () => {
    const { steps } = build(WITH_ALIGN + 'objective { use_uncond_loss = true }\n');
    expect(roles(steps.dStep.feeds)).toEqual(['ca_noise', 'noise(name=z)', 'real_image(stage=g0)', 'text', 'wrong_image(stage=g0)']);
    expect(roles(steps.gStep.feeds)).toEqual(['ca_noise', 'noise(name=z)', 'text']);
    for (const p of [steps.dStep, steps.gStep]) {
      expect(p.feeds.map((f) => f.name).sort()).toEqual(Object.keys(p.plan.feeds).sort());
      expect(p.outputs.map((f) => f.name).sort()).toEqual(Object.keys(p.plan.outputs).sort());
      for (const v of [...p.feeds, ...p.outputs]) expect(v.shape, v.name).toEqual((p.plan.feeds[v.name] ?? p.plan.outputs[v.name]).shape);
    }
    expect(find(steps.dStep.feeds, { role: 'real_image', stage: 'g0' }).shape).toEqual([BATCH, 3, 16, 16]);
    const terms = (p: StepValue[], net: string) => findAll(p, { role: 'loss_term', net }).map((v) => `${v.role.role === 'loss_term' && v.role.term}*${v.weight}`);
    expect(terms(steps.dStep.outputs, 'd0')).toEqual(['cond_real*1', 'cond_wrong*1', 'cond_fake*1', 'uncond_real*1', 'uncond_wrong*1', 'uncond_fake*1', 'align_real*1']);
    expect(terms(steps.gStep.outputs, 'G')).toEqual(['cond_fake*1', 'uncond_fake*1', 'align_fake*1', 'kl*2']);
    expect(find(steps.gStep.outputs, { role: 'loss_term', net: 'G', term: 'cond_fake' }).role).toEqual({ role: 'loss_term', net: 'G', term: 'cond_fake', stage: 'g0' });
    expect(find(steps.dStep.outputs, { role: 'loss', net: 'd0' }).shape).toEqual([]);
    expect(find(steps.gStep.outputs, { role: 'fake_image', stage: 'g0' }).shape).toEqual([BATCH, 3, 16, 16]);
    expect(findAll(steps.dStep.outputs, { role: 'logit', net: 'd0' })).toHaveLength(9); // 3 passes x 3 heads
    expect(roles(sharedNoise(steps))).toEqual(['ca_noise', 'noise(name=z)']);
    expect(() => find(steps.dStep.feeds, { role: 'noise' as const, name: 'w' })).toThrow(/no value with role noise\(name=w\)/);
  });

  it('an unconditional discriminator has no wrong pass and no wrong-image feed', () => {
    const { steps } = build(MINI.replace(/  head cond = .*\n/, '') + 'objective { use_uncond_loss = true  uncond = 0.5 }\n');
    expect(roles(steps.dStep.feeds)).toEqual(['ca_noise', 'noise(name=z)', 'real_image(stage=g0)', 'text']);
    const terms = findAll(steps.dStep.outputs, { role: 'loss_term', net: 'd0' }).map((v) => [v.name, v.weight]);
    expect(terms).toEqual([['d0.uncond_real', 1], ['d0.uncond_fake', 1]]);
  });
});

describe.skipIf(!torchAvailable())('GAN step (StackGAN-v2 losses)', () => {
  for (const [label, text] of [
    ['uncond loss off, smoothed real labels', MINI + 'objective { use_uncond_loss = false  kl = 2.0 }\ntrain { real_label = 0.9 }\n'],
    ['uncond loss on', MINI + 'objective { use_uncond_loss = true  uncond = 0.5  kl = 1.0 }\n'],
    ['align head, uncond loss on', WITH_ALIGN + 'objective { use_uncond_loss = true  align = 0.5 }\ntrain { d = adam(lr = 1e-3, betas = (0.9, 0.99)) }\n'],
  ] as const) {
    it(`every loss term and errD, errG match the reference formulas (${label}); Adam moves both networks`, async () => {
      const { m, steps } = build(text);
      expect(steps.groups).toEqual({ g: 'G', d: ['d0'] });
      const rt = await Runtime.create(steps.layout);
      rt.initState(3);
      const optD = createOptimizer(rt, 'd0', m.train.d);
      const optG = createOptimizer(rt, 'G', m.train.g);
      const dProg = await rt.load(steps.dStep.plan, [optD]);
      const gProg = await rt.load(steps.gStep.plan, [optG]);
      const feeds = iterationFeeds(steps, 0);
      const pD0 = await rt.readParam('d0/conv2d.0/weight');
      const pG0 = await rt.readParam('G/g0/linear.0/weight');
      const d = await rt.run(dProg, feeds, { optimizers: [optD] });
      // The D step computes no generator gradient and leaves G's params alone.
      expect(steps.dStep.plan.grads.filter((k) => !k.startsWith('d0/'))).toEqual([]);
      expect(steps.gStep.plan.grads.filter((k) => !k.startsWith('G/'))).toEqual([]);
      expect(await rt.readParam('G/g0/linear.0/weight')).toEqual(pG0);
      const pD1 = await rt.readParam('d0/conv2d.0/weight');
      const g = await rt.run(gProg, gFeedsFrom(steps, feeds), { optimizers: [optG] });
      expect(await rt.readParam('d0/conv2d.0/weight')).toEqual(pD1);

      const o = m.objective;
      const hasAlign = 'align' in m.networks.find((n) => n.name === 'd0')!.heads;
      const logit = (out: Record<string, Float32Array>, p: StepValue[], pass: 'real' | 'wrong' | 'fake', head: string): HostTensor => {
        const v = find(p, { role: 'logit', net: 'd0', pass, head });
        return { shape: [out[v.name].length], data: out[v.name] };
      };
      const [D, G] = [steps.dStep.outputs, steps.gStep.outputs];
      const ins: Record<string, HostTensor> = {
        rc: logit(d, D, 'real', 'cond'), ru: logit(d, D, 'real', 'uncond'),
        wc: logit(d, D, 'wrong', 'cond'), wu: logit(d, D, 'wrong', 'uncond'),
        fc: logit(d, D, 'fake', 'cond'), fu: logit(d, D, 'fake', 'uncond'),
        gc: logit(g, G, 'fake', 'cond'), gu: logit(g, G, 'fake', 'uncond'),
        kl: { shape: [], data: g[find(G, { role: 'loss_term', net: 'G', term: 'kl' }).name] },
        ...(hasAlign ? { ra: logit(d, D, 'real', 'align'), ga: logit(g, G, 'fake', 'align') } : {}),
      };
      const vars = { u: o.use_uncond_loss ? o.uncond : 0, y: m.train.real_label, klw: o.kl, aw: hasAlign ? o.align : 0 };
      const ref = await (await startTorch()).run(TORCH, ins, { vars });
      expect(relErr(d[find(D, { role: 'loss', net: 'd0' }).name], ref.errD.data)).toBeLessThan(1e-5);
      expect(relErr(g[find(G, { role: 'loss', net: 'G' }).name], ref.errG.data)).toBeLessThan(1e-5);
      // Every term output is the reference's term, and the torch side has no term we left out.
      const ours = [
        ...findAll(D, { role: 'loss_term' }).map((v) => [`d0.${v.role.role === 'loss_term' && v.role.term}`, d[v.name]] as const),
        ...findAll(G, { role: 'loss_term' }).map((v) => [`G.${v.role.role === 'loss_term' && v.role.term}`, g[v.name]] as const),
      ];
      expect(ours.map(([k]) => k).sort()).toEqual(Object.keys(ref).filter((k) => k.includes('.')).sort());
      for (const [k, v] of ours) expect(relErr(v, ref[k].data), k).toBeLessThan(1e-5);
      // Each step moved its own network.
      const pG1 = await rt.readParam('G/g0/linear.0/weight');
      expect(relErr(pD1, pD0)).toBeGreaterThan(0);
      expect(relErr(pG1, pG0)).toBeGreaterThan(0);
      rt.destroy();
    });
  }
});

describe('shared noise between d_step and g_step', () => {
  it('fed the same z and CA sample, both programs produce the same fake images; other noise, other images', async () => {
    const { m, steps } = build(MINI);
    const rt = await Runtime.create(steps.layout);
    rt.initState(5);
    const optD = createOptimizer(rt, 'd0', m.train.d);
    const dProg = await rt.load(steps.dStep.plan, [optD]);
    const gProg = await rt.load(steps.gStep.plan);
    const feeds = iterationFeeds(steps, 10);
    const image = (p: StepValue[]) => find(p, { role: 'fake_image', stage: 'g0' }).name;
    const dImg = (await rt.run(dProg, feeds, { optimizers: [optD], read: [image(steps.dStep.outputs)] }))[image(steps.dStep.outputs)];
    // The shared noise by role: each g_step noise feed takes the d_step feed's data.
    const gFeeds: Record<string, Float32Array> = { [find(steps.gStep.feeds, { role: 'text' }).name]: feeds[find(steps.dStep.feeds, { role: 'text' }).name] };
    for (const n of sharedNoise(steps)) gFeeds[n.name] = feeds[n.name];
    const gImage = async (f: Record<string, Float32Array>) => (await rt.run(gProg, f, { read: [image(steps.gStep.outputs)] }))[image(steps.gStep.outputs)];
    // Left to the device (not fed), the CA sample differs and so do the images.
    const ca = find(steps.gStep.feeds, { role: 'ca_noise' }).name;
    const gDrawn = await gImage(Object.fromEntries(Object.entries(gFeeds).filter(([k]) => k !== ca)));
    const gImg = await gImage(gFeeds);
    expect(dImg.length).toBe(BATCH * 3 * 16 * 16);
    expect(Math.max(...dImg.map(Math.abs))).toBeGreaterThan(0);
    // Equal up to float32 rounding (measured 1.5e-6): the two plans fuse G's ops differently, as the
    // images have other consumers in each; other noise moves them by orders of magnitude more.
    expect(relErr(gImg, dImg)).toBeLessThan(1e-5);
    expect(relErr(gDrawn, dImg)).toBeGreaterThan(1e-3);
    rt.destroy();
  });
});
