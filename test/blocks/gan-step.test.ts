// The GAN training step (compiler/gan-step.ts): the D and G losses are
// recomputed in PyTorch from the logits the programs return, with the
// formulas of shared/reference/stackgan.md, and one step with Adam runs.
import { describe, expect, it } from 'vitest';
import { buildGanSteps } from '../../compiler/gan-step.ts';
import { Runtime } from '../../runtime/executor.ts';
import { Adam } from '../../runtime/optim.ts';
import { checkText, errors, MINI } from '../helpers/gan.ts';
import { relErr } from '../oracle/compare.ts';
import { randn } from '../oracle/random.ts';
import { startTorch, torchAvailable } from '../oracle/torch.ts';

const BATCH = 2;

const TORCH = `
bce = lambda x, t: F.binary_cross_entropy_with_logits(x, torch.full_like(x, t))
if u > 0:
    errD = (bce(rc, y) + u * bce(ru, y) + bce(wc, 0.0) + u * bce(wu, y) + bce(fc, 0.0) + u * bce(fu, 0.0))
else:
    errD = bce(rc, y) + 0.5 * (bce(wc, 0.0) + bce(fc, 0.0))
errG = bce(gc, 1.0) + u * bce(gu, 1.0) + klw * kl
out = {'errD': errD, 'errG': errG}
`;

describe.skipIf(!torchAvailable())('GAN step (StackGAN-v2 losses)', () => {
  for (const [label, objective] of [
    ['uncond loss off, smoothed real labels', 'objective { use_uncond_loss = false  kl = 2.0 }\ntrain { real_label = 0.9 }\n'],
    ['uncond loss on', 'objective { use_uncond_loss = true  uncond = 0.5  kl = 1.0 }\n'],
  ] as const) {
    it(`errD and errG match the reference formulas (${label}); Adam moves both networks`, async () => {
      const r = checkText(MINI + objective);
      expect(errors(r)).toEqual([]);
      const m = r.model!;
      const steps = buildGanSteps(m, BATCH);
      expect(steps.groups).toEqual({ g: 'G', d: ['d0'] });
      const rt = await Runtime.create(steps.layout);
      rt.initState(3);
      const hyper = { lr: 2e-4, betas: [0.5, 0.999] as [number, number], eps: 1e-8 };
      const optD = new Adam(rt, 'd0', hyper);
      const optG = new Adam(rt, 'G', hyper);
      const dProg = await rt.load(steps.dStep, [optD]);
      const gProg = await rt.load(steps.gStep, [optG]);
      const feeds = {
        text: randn([BATCH, 32], 1).data,
        z: randn([BATCH, 16], 2).data,
        'ca/randn.0': randn([BATCH, 8], 3).data,
      };
      const images = { 'real.g0': randn([BATCH, 3, 16, 16], 4).data.map(Math.tanh), 'wrong.g0': randn([BATCH, 3, 16, 16], 5).data.map(Math.tanh) };
      const pD0 = await rt.readParam('d0/conv2d.0/weight');
      const pG0 = await rt.readParam('G/g0/linear.0/weight');
      const d = await rt.run(dProg, { ...feeds, ...images }, { optimizers: [optD] });
      // The D step computes no generator gradient and leaves G's params alone.
      expect(steps.dStep.grads.filter((k) => !k.startsWith('d0/'))).toEqual([]);
      expect(steps.gStep.grads.filter((k) => !k.startsWith('G/'))).toEqual([]);
      expect(await rt.readParam('G/g0/linear.0/weight')).toEqual(pG0);
      const pD1 = await rt.readParam('d0/conv2d.0/weight');
      const g = await rt.run(gProg, feeds, { optimizers: [optG] });
      expect(await rt.readParam('d0/conv2d.0/weight')).toEqual(pD1);
      const o = m.objective as { use_uncond_loss: boolean; uncond: number; kl: number };
      const t = (x: Float32Array) => ({ shape: [x.length], data: x });
      const ref = await (await startTorch()).run(
        TORCH,
        {
          rc: t(d['d0.real.cond']), ru: t(d['d0.real.uncond']),
          wc: t(d['d0.wrong.cond']), wu: t(d['d0.wrong.uncond']),
          fc: t(d['d0.fake.cond']), fu: t(d['d0.fake.uncond']),
          gc: t(g['d0.fake.cond']), gu: t(g['d0.fake.uncond']),
          kl: { shape: [], data: g.kl },
        },
        { vars: { u: o.use_uncond_loss ? o.uncond : 0, y: Number(m.train.real_label), klw: o.kl } },
      );
      expect(relErr(d['errD.d0'], ref.errD.data)).toBeLessThan(1e-5);
      expect(relErr(g.errG, ref.errG.data)).toBeLessThan(1e-5);
      // Each step moved its own network.
      const pG1 = await rt.readParam('G/g0/linear.0/weight');
      expect(relErr(pD1, pD0)).toBeGreaterThan(0);
      expect(relErr(pG1, pG0)).toBeGreaterThan(0);
      rt.destroy();
    });
  }
});
