// G's frozen-encoder terms in the compiled g_step: CLIP guidance (the CLIP
// image tower on G's resized, normalised stage image, against the text) and
// the perceptual term (VGG16 features of fake and real images), each at a
// stage of models/ms-clip-gan.gan (tiny), with the encoders' `tiny` presets and
// random checkpoints under the published names (test/encoders/encoders_ref.py).
//  - values: each term against PyTorch on the step's own fake images;
//  - the gradient each term sends into G (with respect to the images, and the
//    text) against PyTorch's autograd;
//  - gradients: G's gradient with the terms minus without them is the
//    gradient of the weighted terms, checked against central differences
//    along a random direction in G's parameters;
//  - frozen: the encoders get no gradient arena, no optimizer, no place in
//    D's program or in checkpoints, and keep their weights.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CheckedModel } from '../../compiler/check/model.ts';
import { readCheckpoint } from '../../compiler/encoders/checkpoint.ts';
import { FrozenTermError, frozenTerms } from '../../compiler/encoders/frozen.ts';
import { grad } from '../../compiler/autodiff.ts';
import { frozenTermValue } from '../../compiler/encoders/terms.ts';
import { buildGanSteps, type GanSteps } from '../../compiler/gan-step.ts';
import { GraphBuilder } from '../../compiler/ir/builder.ts';
import { checkFile } from '../../compiler/index.ts';
import { compileProgram, DEFAULT_LIMITS, layoutState } from '../../compiler/plan/index.ts';
import { Runtime } from '../../runtime/executor.ts';
import { loadCheckpoint } from '../../runtime/train/checkpoint.ts';
import { generateShapes } from '../../runtime/train/data/index.ts';
import { relErr } from '../oracle/compare.ts';
import { randn, randu } from '../oracle/random.ts';
import { startTorch, torchAvailable } from '../oracle/torch.ts';

const PYTHON = process.env.GAN_TORCH_PYTHON ?? '/usr/bin/python3';
const REF_DIR = join(import.meta.dirname, '..', 'encoders');
const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'gan-frozen-'));
const BATCH = 4;

function checkpoint(config: Record<string, unknown>, tag: string): string {
  const cfg = join(dir, `${tag}.json`);
  writeFileSync(cfg, JSON.stringify(config));
  execFileSync(PYTHON, [join(REF_DIR, 'encoders_ref.py'), 'run', cfg, join(dir, tag)], { stdio: ['ignore', 'ignore', 'inherit'] });
  return join(dir, tag, 'weights.safetensors');
}

const CLIP_CFG = { net: 'clip_image', width: 16, layers: 2, heads: 2, patch: 4, res: 16, output_dim: 8, batch: 1, seed: 5 };
const VGG_CFG = { net: 'vgg16', channels: [4, 4, 8, 8, 16, 16, 16, 32, 32, 32], res: 16, batch: 1, seed: 6 };

function model(extra: string[]): CheckedModel {
  const r = checkFile('models/ms-clip-gan.gan', { preset: 'tiny', set: ['text_dim=8', 'clip_dim=8', 'res=16', ...extra] });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return r.model;
}

describe.skipIf(!torchAvailable())('frozen encoder terms in the G step', () => {
  const clipPath = checkpoint(CLIP_CFG, 'clip');
  const vggPath = checkpoint(VGG_CFG, 'vgg');
  const terms = [
    `objective.clip_guidance=clip(weight = 0.7, at = g2, checkpoint = "${clipPath}", encoder_preset = "tiny")`,
    `objective.perceptual=vgg(weight = 0.3, at = g1, checkpoint = "${vggPath}", encoder_preset = "tiny")`,
  ];
  const m = model(terms);
  const frozen = frozenTerms(m);
  // The two encoders in PyTorch with the same weights, and the pixel preparation written out.
  const PY_NETS = [
    'import sys',
    `sys.path.insert(0, ${JSON.stringify(REF_DIR)})`,
    'import encoders_ref as R',
    'def net(cfg, path):',
    '    m = R.build(cfg)',
    '    m.load_state_dict({k: v.float() for k, v in R.read_safetensors(path)[1].items()})',
    '    return m.eval()',
    `clip = net(${JSON.stringify(CLIP_CFG)}, ${JSON.stringify(clipPath)})`,
    `vgg = net(${JSON.stringify({ ...VGG_CFG, res: 32 })}, ${JSON.stringify(vggPath)})`,
    'def pix(img, size, mean, std):',
    '    x = (img + 1) / 2',
    '    if x.shape[-1] != size: x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)',
    '    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)',
    'CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)',
    'IN_MEAN, IN_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)',
  ].join('\n');
  const withTerms = buildGanSteps(m, BATCH, DEFAULT_LIMITS, frozen);
  const without = buildGanSteps(model([]), BATCH, DEFAULT_LIMITS, []);
  const values = new Map<string, Float32Array>();
  for (const f of frozen) for (const [p, v] of readCheckpoint(f.encoder, f.checkpoint)) values.set(`${f.encoder.name}/${p}`, v);
  const runtimes: Runtime[] = [];
  afterAll(async () => {
    runtimes.forEach((r) => r.destroy());
    (await startTorch()).close();
  });

  // One set of feeds for every run: unit-norm text, noise, a real image for the perceptual term.
  const feeds: Record<string, Float32Array> = {};
  withTerms.gStep.feeds.forEach((f, i) => {
    const n = f.shape.reduce((a, b) => a * b, 1);
    if (f.role.role === 'real_image') feeds[f.name] = randu(f.shape, 40 + i, -1, 1).data;
    else if (f.role.role === 'text') {
      const t = randn(f.shape, 40 + i).data;
      for (let r = 0; r < f.shape[0]; r++) {
        const row = t.subarray(r * f.shape[1], (r + 1) * f.shape[1]);
        const norm = Math.hypot(...row);
        row.forEach((v, k) => (row[k] = v / norm));
      }
      feeds[f.name] = t;
    } else feeds[f.name] = randn([n], 40 + i).data;
  });

  async function runtime(steps: GanSteps, frozenValues: Map<string, Float32Array>) {
    const rt = await Runtime.create(steps.layout);
    runtimes.push(rt);
    rt.initState(0);
    for (const [k, v] of frozenValues) rt.writeParam(k, v);
    return { rt, prog: await rt.load(steps.gStep.plan) };
  }

  it('the encoders are frozen: no gradient arena, no optimizer group, not in D or in checkpoints', async () => {
    expect(frozen.map((f) => [f.kind, f.at, f.encoder.name])).toEqual([
      ['clip', 'g2', 'clip_image'],
      ['perceptual', 'g1', 'vgg16'],
    ]);
    const l = withTerms.layout;
    expect(l.groups.clip_image.frozen).toBe(true);
    expect(Object.keys(l.buffers).filter((b) => b.startsWith('grad:clip_image') || b.startsWith('grad:vgg16'))).toEqual([]);
    // Their weights come from checkpoints: no orthogonal init (minutes on the host at CLIP's full size).
    expect(Object.values(l.params).filter((p) => l.groups[p.group].frozen && p.init.kind === 'orthogonal')).toEqual([]);
    expect(withTerms.groups).toEqual({ g: 'G', d: ['d0', 'd1', 'd2'] });
    expect(withTerms.gStep.plan.grads.some((p) => p.startsWith('clip_image/') || p.startsWith('vgg16/'))).toBe(false);
    expect(withTerms.unsupported).toEqual([]);
    expect(without.unsupported).toEqual([]);
    const { rt, prog } = await runtime(withTerms, values);
    await rt.run(prog, feeds);
    const name = 'clip_image/conv2d.0/weight';
    expect(await rt.readParam(name)).toEqual(values.get(name));
    const saved = await rt.exportState();
    expect(Object.keys(saved.tensors).some((k) => k.includes('clip_image/') || k.includes('vgg16/'))).toBe(false);
  });

  it('each term equals PyTorch on the step\'s own fake images', async () => {
    const { rt, prog } = await runtime(withTerms, values);
    const out = await rt.run(prog, feeds);
    const text = withTerms.gStep.feeds.find((f) => f.role.role === 'text')!;
    const real = withTerms.gStep.feeds.find((f) => f.role.role === 'real_image')!;
    const g2 = withTerms.gStep.outputs.find((o) => o.role.role === 'fake_image' && o.role.stage === 'g2')!;
    const g1 = withTerms.gStep.outputs.find((o) => o.role.role === 'fake_image' && o.role.stage === 'g1')!;
    const torch = await startTorch();
    const ref = await torch.run(
      [
        PY_NETS,
        'emb = clip(pix(g2, 16, CLIP_MEAN, CLIP_STD))',
        'clip_term = (1 - F.cosine_similarity(emb, text, 1)).mean()',
        'perc = ((vgg(pix(g1, 32, IN_MEAN, IN_STD)) - vgg(pix(real, 32, IN_MEAN, IN_STD))) ** 2).mean()',
        'out = {"clip": clip_term.reshape(1), "perceptual": perc.reshape(1)}',
      ].join('\n'),
      {
        g2: { shape: g2.shape, data: out[g2.name] },
        g1: { shape: g1.shape, data: out[g1.name] },
        text: { shape: text.shape, data: feeds[text.name] },
        real: { shape: real.shape, data: feeds[real.name] },
      },
    );
    expect(relErr(out['G.g2.clip'], ref.clip.data), `clip ${out['G.g2.clip'][0]} vs ${ref.clip.data[0]}`).toBeLessThan(1e-4);
    expect(relErr(out['G.g1.perceptual'], ref.perceptual.data), `perceptual ${out['G.g1.perceptual'][0]} vs ${ref.perceptual.data[0]}`).toBeLessThan(1e-4);
    // Both terms are live in errG with their weights.
    const w = Object.fromEntries(withTerms.gStep.outputs.filter((o) => o.weight !== undefined).map((o) => [o.name, o.weight]));
    expect([w['G.g2.clip'], w['G.g1.perceptual']]).toEqual([0.7, 0.3]);
  });

  it("each term's gradient with respect to the images (and the text) equals PyTorch's", async () => {
    const b = new GraphBuilder();
    const [clipTerm, vggTerm] = frozen;
    const fake64 = b.input('fake64', [BATCH, 3, 64, 64]);
    const fake32 = b.input('fake32', [BATCH, 3, 32, 32]);
    const real32 = b.input('real32', [BATCH, 3, 32, 32]);
    const text = b.input('text', [BATCH, 8]);
    const clipV = frozenTermValue(b, clipTerm, fake64, { text });
    const percV = frozenTermValue(b, vggTerm, fake32, { real: real32 });
    const [gClip, gText] = grad(b, clipV, [fake64, text]);
    const [gPerc, gReal] = grad(b, percV, [fake32, real32]);
    expect(gReal).toBeNull(); // the real side is detached
    const layout = layoutState(b.graph);
    const plan = compileProgram(b.graph, layout, { name: 'terms', outputs: { clip: clipV, perc: percV, gClip: gClip!, gText: gText!, gPerc: gPerc! } });
    const rt = await Runtime.create(layout);
    runtimes.push(rt);
    rt.initState(0);
    for (const [k, v] of values) rt.writeParam(k, v);
    const host = {
      fake64: { shape: [BATCH, 3, 64, 64], data: randu([BATCH, 3, 64, 64], 71, -1, 1).data },
      fake32: { shape: [BATCH, 3, 32, 32], data: randu([BATCH, 3, 32, 32], 72, -1, 1).data },
      real32: { shape: [BATCH, 3, 32, 32], data: randu([BATCH, 3, 32, 32], 73, -1, 1).data },
      text: { shape: [BATCH, 8], data: randn([BATCH, 8], 74).data },
    };
    const out = await rt.run(await rt.load(plan), Object.fromEntries(Object.entries(host).map(([k, v]) => [k, v.data])));
    const torch = await startTorch();
    const ref = await torch.run(
      [
        PY_NETS,
        'clip_term = (1 - F.cosine_similarity(clip(pix(fake64, 16, CLIP_MEAN, CLIP_STD)), text, 1)).mean()',
        'perc = ((vgg(pix(fake32, 32, IN_MEAN, IN_STD)) - vgg(pix(real32, 32, IN_MEAN, IN_STD)).detach()) ** 2).mean()',
        'clip_term.backward(); perc.backward()',
        'out = {"gClip": fake64.grad, "gText": text.grad, "gPerc": fake32.grad}',
      ].join('\n'),
      host,
      { grad: ['fake64', 'fake32', 'text'] },
    );
    for (const k of ['gClip', 'gText', 'gPerc']) {
      const e = relErr(out[k], ref[k].data);
      expect(e, `${k}: rel err ${e}`).toBeLessThan(1e-4);
    }
  });

  it("G's gradient through the frozen encoders matches central differences", async () => {
    const a = await runtime(withTerms, values);
    const b = await runtime(without, new Map());
    const gParams = withTerms.layout.groups.G.params;
    // The same initial G in both (same seed and G layout); D's params differ in neither.
    await a.rt.run(a.prog, feeds);
    await b.rt.run(b.prog, Object.fromEntries(without.gStep.feeds.map((f) => [f.name, feeds[f.name]])));
    const dir = gParams.map((p, i) => randn(withTerms.layout.params[p].shape, 900 + i).data);
    // A unit direction: a step of h moves the parameters by h in all.
    const norm = Math.sqrt(dir.reduce((s, d) => s + d.reduce((t, v) => t + v * v, 0), 0));
    for (const d of dir) d.forEach((v, k) => (d[k] = v / norm));
    let analytic = 0;
    for (const [i, p] of gParams.entries()) {
      const [ga, gb] = [await a.rt.readGrad(p), await b.rt.readGrad(p)];
      for (let k = 0; k < ga.length; k++) analytic += (ga[k] - gb[k]) * dir[i][k];
    }
    // The weighted terms at theta + s * dir.
    const base = await Promise.all(gParams.map((p) => a.rt.readParam(p)));
    const weighted = async (s: number) => {
      gParams.forEach((p, i) => a.rt.writeParam(p, base[i].map((v, k) => v + s * dir[i][k])));
      const out = await a.rt.run(a.prog, feeds);
      return 0.7 * out['G.g2.clip'][0] + 0.3 * out['G.g1.perceptual'][0];
    };
    // Small enough for BatchNorm over a batch of 4, large enough for float32's rounding of the terms.
    const h = 1e-2;
    const numeric = ((await weighted(h)) - (await weighted(-h))) / (2 * h);
    expect(Math.abs(analytic), 'the terms move G').toBeGreaterThan(1e-3);
    const err = Math.abs(numeric - analytic) / Math.abs(analytic);
    expect(err, `numeric ${numeric} vs analytic ${analytic}: rel err ${err}`).toBeLessThan(0.02);
  });
});

describe.skipIf(!torchAvailable())('gan train with CLIP guidance', () => {
  it('trains with the term in metrics.jsonl, records the checkpoint in the sidecar, and resumes', async () => {
    const clipPath = checkpoint({ ...CLIP_CFG, seed: 9 }, 'clip-cli');
    const data = join(dir, 'shapes');
    await generateShapes({ out: data, n: 8, size: 16, dim: 8, seed: 3 });
    const out = join(dir, 'run');
    const env = { ...process.env, NO_COLOR: '1', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp/xdg' };
    const model = ['models/ms-clip-gan.gan', '--preset', 'tiny', '--set', 'train.batch=2', '--set', 'res=16', '--set', 'text_dim=8', '--set', 'clip_dim=8',
      '--set', `objective.clip_guidance=clip(weight = 0.5, at = g2, checkpoint = "${clipPath}", encoder_preset = "tiny")`];
    const gan = (...args: string[]) => spawnSync(process.execPath, ['scripts/gan.js', ...args], { encoding: 'utf8', env, timeout: 300_000 });
    const train = (...extra: string[]) => gan('train', ...model, '--data', data, '--out', out, ...extra);
    const first = train('--steps', '2');
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^frozen: clip_image \(7,808 parameters\) from .*clip-cli\/weights\.safetensors: clip_guidance at g2, weight 0\.5$/m);
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.step)).toEqual([1, 2]);
    for (const l of lines) expect(l.losses['G.g2.clip']).toBeGreaterThan(0);
    const ck = loadCheckpoint(out);
    expect(ck.sidecar.settings).toMatchObject({ frozen: [{ term: 'clip_guidance', encoder: 'clip_image', checkpoint: clipPath }] });
    const resumed = train('--steps', '3', '--resume');
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(loadCheckpoint(out).sidecar.step).toBe(3);

    // A generated module carries these programs and names the CLIP checkpoint: its first steps give the same losses.
    mkdirSync(join(ROOT, 'out'), { recursive: true });
    const moduleDir = mkdtempSync(join(ROOT, 'out', 'test-frozen-module-'));
    try {
      const c = gan('compile', ...model, '--emit', 'ts', '--out', moduleDir);
      expect(c.status, c.stderr).toBe(0);
      expect(c.stdout).toContain(`training.json (frozen weights read from ${clipPath})`);
      const script = join(moduleDir, 'train2.ts');
      writeFileSync(
        script,
        `import M from ${JSON.stringify(join(moduleDir, 'index.ts'))};\nconst t = await M.trainer({ data: ${JSON.stringify(data)} });\n` +
          'console.log(JSON.stringify([(await t.trainStep()).losses, (await t.trainStep()).losses]));\nawait t.source.close();\nt.destroy();\n',
      );
      const r = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', env, cwd: ROOT, timeout: 300_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toEqual(lines.map((l) => l.losses));
    } finally {
      rmSync(moduleDir, { recursive: true, force: true });
    }
  }, 300_000);
});

describe('frozen terms fail before compiling', () => {
  it('a missing checkpoint names the setting, the path and how to turn the term off', () => {
    const m = model(['objective.clip_guidance=clip(weight = 1, at = g2, checkpoint = "no/such.safetensors", encoder_preset = "tiny")']);
    expect(() => frozenTerms(m)).toThrow(FrozenTermError);
    expect(() => frozenTerms(m)).toThrow(/objective\.clip_guidance needs the CLIP image tower's weights, and 'no\/such\.safetensors' does not exist .*--set objective\.clip_guidance=off/);
  });

  it('a CLIP embedding as wide as the text input, or an error naming both', () => {
    const path = join(dir, 'exists.safetensors');
    writeFileSync(path, '');
    const m = checkFile('models/ms-clip-gan.gan', { preset: 'tiny', set: [`objective.clip_guidance=clip(weight = 1, at = g2, checkpoint = "${path}", encoder_preset = "tiny")`] }).model!;
    expect(() => frozenTerms(m)).toThrow(/compares the CLIP image embedding \[8\] .* with the model's text input \[512\]/);
  });

  it('off, weight 0, and a number for perceptual', () => {
    expect(frozenTerms(model(['objective.clip_guidance=off']))).toEqual([]);
    expect(frozenTerms(model(['objective.clip_guidance=clip(weight = 0, at = g2, checkpoint = "none")']))).toEqual([]);
    const r = checkFile('models/ms-clip-gan.gan', { preset: 'tiny', set: ['objective.perceptual=1'] });
    expect(r.model).toBeUndefined();
    expect(r.diagnostics.map((d) => d.message).join('\n')).toMatch(/perceptual .*needs the frozen VGG16 encoder: write vgg\(weight = 1, at = <stage>/);
  });
});

