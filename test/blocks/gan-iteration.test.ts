// One whole MS-CLIP-GAN training iteration (compiler/gan-step.ts: a D step
// over D0/D1/D2, then a G step, with Adam) against an independent PyTorch
// implementation written by hand in test/blocks/msclipgan_ref.py from the .gan
// source and shared/reference/stackgan.md (not generated from our graph).
//
// Model: models/ms-clip-gan.gan at its tiny preset (CA, stages g0/g1/g2 at
// 64/128/256, discriminators d0/d1/d2 with uncond, cond and align heads), and
// the uncond-loss variant with an uncond weight of 0.5 and real labels smoothed
// to 0.9 and StackGAN-v2's colour consistency at weight 50, and the D-text
// variant with the CA reading scaled text. Both sides start from the same weights and BatchNorm buffers
// (exchanged as a safetensors file, names mapped explicitly in the reference)
// and see the same text, noise z, CA sample, and real and wrong images per stage.
//
// Compared, with every program output looked up by its role
// (runtime/format/step.ts): every head of every D on real, wrong and fake
// in the D step and on fake in the G step; each D's errD and each of its terms
// with its weight; errG and each of its terms (per-stage cond / uncond
// adversarial, align, KL); the fake images; every parameter's gradient and its
// Adam-updated value; BatchNorm running statistics after the D steps and after
// the G step; and that the D step leaves G (params and statistics) alone and
// the G step leaves D's params alone.
//
// The reference runs in float64. Our kernels are float32 and the D's
// LeakyReLUs switch slope at 0: an activation within float32 rounding of 0 can
// land on the other side, and a float32 torch would flip different ones, so
// float32-vs-float32 differences would be noise on both sides. Against float64
// the whole error is ours.
//
// The reference runs once per model; the programs run twice from it: planned
// with the portable DEFAULT_LIMITS, and with the adapter's own limits
// (planLimits from the device: subgroup kernels where the device offers them).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { buildGanSteps, sharedNoise, type GanSteps, type StepProgram } from '../../compiler/gan-step.ts';
import { roleStr, type Role } from '../../runtime/format/step.ts';
import { checkFile } from '../../compiler/index.ts';
import type { CheckedModel } from '../../compiler/index.ts';
import { planLimits } from '../../compiler/plan/index.ts';
import { getDevice } from '../../runtime/device.ts';
import { Runtime } from '../../runtime/executor.ts';
import { createOptimizer } from '../../runtime/optim.ts';
import { errors } from '../helpers/gan.ts';
import { relErr } from '../oracle/compare.ts';
import { randn } from '../oracle/random.ts';
import type { HostTensor } from '../oracle/tensor.ts';
import { startTorch, torchAvailable } from '../oracle/torch.ts';
import { writeSafetensors } from '../../runtime/format/safetensors.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const BATCH = 4; // the tiny preset's batch; BatchNorm1d over 2 samples would make G0's gradients degenerate
const SEED = 11;
const CA_WEIGHT = 'G/ca/linear.0/weight';

/**
 * The tiny preset as the reference builds it, read from models/ms-clip-gan.gan
 * by hand (the test checks that the compiler resolved the same values).
 */
const TINY = {
  ngf: 4, ndf: 4, z_dim: 16, c_dim: 16, text_dim: 512, clip_dim: 512, r_num: 2, use_align: true,
  kl: 2.0, align: 1.0,
  g: { lr: 2e-4, betas: [0.5, 0.999] as [number, number], eps: 1e-8 },
  d: { lr: 2e-4, betas: [0.5, 0.999] as [number, number], eps: 1e-8 },
};

interface Case {
  label: string;
  file: string;
  set: string[];
  objective: { use_uncond_loss: boolean; uncond: number; real_label: number; colour?: number };
  /** Architecture switches beyond TINY, for the reference (params of the same name in the model). */
  arch?: { d_text_cond?: boolean; ca_text_scale?: number };
}

const CASES: Case[] = [
  { label: 'tiny preset (uncond loss off)', file: 'models/ms-clip-gan.gan', set: [], objective: { use_uncond_loss: false, uncond: 1, real_label: 1 } },
  {
    label: 'uncond-loss variant, uncond 0.5, real_label 0.9, colour consistency 50',
    file: 'models/variants/uncond-loss.gan',
    set: ['objective.uncond=0.5', 'train.real_label=0.9', 'objective.colour=50'],
    objective: { use_uncond_loss: true, uncond: 0.5, real_label: 0.9, colour: 50 },
  },
  {
    label: 'D-text-conditioning variant, CA reading text * sqrt(text_dim)',
    file: 'models/variants/d-text-cond.gan',
    set: ['ca_text_scale=sqrt(text_dim)'],
    objective: { use_uncond_loss: false, uncond: 1, real_label: 1 },
    arch: { d_text_cond: true, ca_text_scale: Math.sqrt(512) },
  },
];

const DS = ['d0', 'd1', 'd2'] as const;

const TORCH = `
import sys
sys.path.insert(0, here)
import importlib, msclipgan_ref
importlib.reload(msclipgan_ref)
out = msclipgan_ref.iteration(cfg, weights, inputs, float64=True)
# The same iteration in float32 only measures how well-conditioned each gradient is.
out32 = msclipgan_ref.iteration(cfg, weights, inputs, float64=False)
out.update({'f32/' + k: v for k, v in out32.items() if k.startswith('grad/')})
`;

function check(c: Case): CheckedModel {
  const r = checkFile(join(ROOT, c.file), { preset: 'tiny', set: c.set });
  expect(errors(r)).toEqual([]);
  const m = r.model!;
  // The reference is built from TINY: the compiler must have resolved the same model.
  for (const k of ['ngf', 'ndf', 'z_dim', 'c_dim', 'text_dim', 'clip_dim', 'r_num', 'use_align'] as const) expect(m.params[k], k).toBe(TINY[k]);
  expect(m.params.d_text_cond, 'd_text_cond').toBe(c.arch?.d_text_cond ?? false);
  expect(m.params.ca_text_scale, 'ca_text_scale').toBe(c.arch?.ca_text_scale ?? 1);
  const { objective: o, train: t } = m;
  expect({ kl: o.kl, align: o.align, use_uncond_loss: o.use_uncond_loss, uncond: o.uncond, real_label: t.real_label, colour: o.colour }).toEqual({
    kl: TINY.kl, align: TINY.align, colour: 0, ...c.objective,
  });
  for (const g of ['g', 'd'] as const) expect(t[g]).toMatchObject({ kind: 'adam', ...TINY[g] });
  return m;
}

/** The iteration's inputs: L2-normalised text, z, the CA sample, and real / wrong images per stage. */
function inputs(): Record<string, HostTensor> {
  const text = randn([BATCH, TINY.text_dim], SEED + 1);
  for (let b = 0; b < BATCH; b++) {
    const row = text.data.subarray(b * TINY.text_dim, (b + 1) * TINY.text_dim);
    const n = Math.hypot(...row);
    for (let i = 0; i < row.length; i++) row[i] /= n;
  }
  const out: Record<string, HostTensor> = {
    text,
    z: randn([BATCH, TINY.z_dim], SEED + 2),
    eps: randn([BATCH, TINY.c_dim], SEED + 3),
  };
  // A 256x256 image in [-1, 1] and its 2x2-average-pooled 128 and 64 versions,
  // as StackGAN-v2 feeds one image at every scale; "wrong" is another image.
  for (const [kind, seed] of [['real', SEED + 4], ['wrong', SEED + 5]] as const) {
    let img = randn([BATCH, 3, 256, 256], seed);
    img.data.set(img.data.map(Math.tanh));
    for (let s = 2; s >= 0; s--) {
      out[`${kind}.g${s}`] = img;
      if (s > 0) img = pool2(img);
    }
  }
  return out;
}

function pool2(x: HostTensor): HostTensor {
  const [n, c, h, w] = x.shape;
  const y = new Float32Array((n * c * h * w) / 4);
  for (let p = 0; p < n * c; p++)
    for (let i = 0; i < h / 2; i++)
      for (let j = 0; j < w / 2; j++) {
        const a = p * h * w + 2 * i * w + 2 * j;
        y[(p * h * w) / 4 + i * (w / 2) + j] = 0.25 * (x.data[a] + x.data[a + 1] + x.data[a + w] + x.data[a + w + 1]);
      }
  return { shape: [n, c, h / 2, w / 2], data: y };
}

/** A program's feeds by role; d_step and g_step get the same text, z and CA sample (one G forward). */
function feedsFor(p: StepProgram, x: Record<string, HostTensor>): Record<string, Float32Array> {
  const data = (r: Role): HostTensor | undefined => {
    if (r.role === 'text') return x.text;
    if (r.role === 'noise' && r.name === 'z') return x.z;
    if (r.role === 'ca_noise') return x.eps;
    if (r.role === 'real_image' || r.role === 'wrong_image') return x[`${r.role === 'real_image' ? 'real' : 'wrong'}.${r.stage}`];
    return undefined;
  };
  return Object.fromEntries(
    p.feeds.map((f) => {
      const t = data(f.role);
      if (!t) throw new Error(`${p.plan.name}: no input for feed '${f.name}' (${roleStr(f.role)})`);
      return [f.name, t.data];
    }),
  );
}

/** The reference's name for an output of ours, by its role. */
function refName(step: 'd' | 'g', r: Role): string | undefined {
  if (r.role === 'logit') return `${step === 'g' ? 'g.' : ''}${r.net}.${r.pass}.${r.head}`;
  if (r.role === 'loss_term') return `term/${r.net}/${r.stage ? `${r.stage}/` : ''}${r.term}`;
  if (r.role === 'loss') return `loss/${r.net}`;
  if (r.role === 'fake_image') return `image/${r.stage}`;
  return undefined;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Collects every comparison, so one run reports all mismatches (and the worst errors) at once. */
class Report {
  readonly failures: string[] = [];
  readonly worst = new Map<string, { err: number; tol: number; label: string }>();
  timing = '';

  /** relErr (max-abs based, see compare.ts) of `got` against the reference, under `tol`. */
  close(kind: string, label: string, got: ArrayLike<number>, want: HostTensor | undefined, tol: number): void {
    if (!want) return void this.failures.push(`${label}: no reference value`);
    if (got.length !== want.data.length) return void this.failures.push(`${label}: ${got.length} values, reference has ${want.data.length}`);
    const scale = maxAbs(want.data);
    // A reference of zeros (a head in no loss) must be matched exactly, not by a ratio.
    const err = scale === 0 ? maxAbs(got) : relErr(got, want.data);
    this.note(kind, label, err, tol);
    if (!(err < tol)) this.failures.push(`${label}: ${scale === 0 ? 'max abs' : 'rel'} err ${err.toExponential(2)} >= ${tol}`);
  }

  /** Max absolute difference under `tol`. */
  abs(kind: string, label: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number): void {
    let d = got.length === want.length ? 0 : Infinity;
    for (let i = 0; i < got.length && d !== Infinity; i++) d = Math.max(d, Math.abs(got[i] - want[i]) || (Number.isNaN(got[i]) ? Infinity : 0));
    this.note(kind, label, d, tol);
    if (!(d < tol)) this.failures.push(`${label}: max abs err ${d.toExponential(2)} >= ${tol}`);
  }

  /**
   * Parameters after Adam's first step, p - lr * g / (|g| + eps) (torch.optim.Adam
   * at t = 1: the bias corrections make m_hat = g, v_hat = g^2). Near g = 0 the
   * step is steep in g (a float32 gradient element within noise of 0 can even
   * take the other sign and land 2 lr away), so each element may differ from
   * the reference by what the two gradients' steps differ by, plus float32
   * rounding of p (1e-6); everywhere else the step must match.
   */
  adam(kind: string, label: string, got: ArrayLike<number>, p0: ArrayLike<number>, g: ArrayLike<number>, want: ArrayLike<number>, gRef: ArrayLike<number>, lr: number, eps: number): void {
    const step = (x: number) => (lr * x) / (Math.abs(x) + eps);
    let excess = got.length === want.length ? 0 : Infinity;
    let moved = 0;
    for (let i = 0; i < got.length && excess !== Infinity; i++) {
      const d = Math.abs(got[i] - want[i]) - Math.abs(step(g[i]) - step(gRef[i]));
      excess = Number.isNaN(d) ? Infinity : Math.max(excess, d);
      moved = Math.max(moved, Math.abs(want[i] - p0[i]));
    }
    this.note(kind, label, excess, 1e-6);
    if (!(excess < 1e-6)) this.failures.push(`${label}: differs from the reference update by ${excess.toExponential(2)} more than the gradients explain`);
    // A parameter with a gradient must have moved (a skipped optimizer would not).
    if (maxAbs(gRef) > 0 && !(moved > 0.5 * lr)) this.failures.push(`${label}: the reference moved it by only ${moved.toExponential(2)}`);
  }

  /** Keeps, per kind, the comparison closest to its tolerance. */
  private note(kind: string, label: string, err: number, tol: number): void {
    const w = this.worst.get(kind);
    if (!w || !(err / tol <= w.err / w.tol)) this.worst.set(kind, { err, tol, label });
  }

  summary(): string {
    return [...this.worst].map(([k, w]) => `${k} ${w.err.toExponential(2)} of ${w.tol.toExponential(1)} (${w.label})`).join('; ');
  }
}

type Snapshot = Record<string, Float32Array>;

async function readAll(rt: Runtime, what: 'param' | 'grad' | 'state', names: string[]): Promise<Snapshot> {
  const out: Snapshot = {};
  for (const k of names) out[k] = await (what === 'param' ? rt.readParam(k) : what === 'grad' ? rt.readGrad(k) : rt.readState(k));
  return out;
}

/** Runs the D step then the G step from `weights` with the given plan limits, and compares with the reference. */
async function runAndCompare(m: CheckedModel, steps: GanSteps, weights: Record<string, HostTensor>, x: Record<string, HostTensor>, ref: Record<string, HostTensor>): Promise<Report> {
  expect(steps.groups).toEqual({ g: 'G', d: [...DS] });
  const rt = await Runtime.create(steps.layout);
  const params = Object.keys(steps.layout.params);
  const states = Object.keys(steps.layout.state);
  for (const k of params) rt.writeParam(k, weights[k].data);
  for (const k of states) rt.writeState(k, weights[k].data);
  const optD = steps.groups.d.map((d) => createOptimizer(rt, d, m.train.d));
  const optG = createOptimizer(rt, steps.groups.g, m.train.g);
  const ms = { load: 0, run: 0, read: 0 };
  let t = performance.now();
  const lap = (k: keyof typeof ms) => {
    const now = performance.now();
    ms[k] += now - t;
    t = now;
  };
  // No warm-up dispatch: each program runs once here, so it would only add a run.
  const dProg = await rt.load(steps.dStep.plan, optD, { warm: false });
  const gProg = await rt.load(steps.gStep.plan, [optG], { warm: false });
  // The noise both programs take (z and the CA sample) is what they are fed alike.
  expect(sharedNoise(steps).map((f) => roleStr(f.role)).sort()).toEqual(['ca_noise', 'noise(name=z)']);
  lap('load');

  const dOut = await rt.run(dProg, feedsFor(steps.dStep, x), { optimizers: optD });
  lap('run');
  const isD = (k: string) => !k.startsWith('G/');
  const dParams = params.filter(isD);
  const gParams = params.filter((k) => !isD(k));
  const afterD = {
    grad: await readAll(rt, 'grad', dParams),
    param: await readAll(rt, 'param', params),
    state: await readAll(rt, 'state', states),
  };
  // Hand the G step the reference's updated D (float32-rounded). Adam's first
  // step moves each weight by about lr * sign(g), so a D gradient element within
  // float32 noise of 0 can take the other sign and move 2 lr away; carried into
  // the G step, such a weight shifts G's gradients by ~1e-3 relative (seen on
  // d2/Down.0 in the uncond variant). The D update itself is checked below.
  for (const k of dParams) rt.writeParam(k, ref[`param/${k}`].data);
  lap('read');
  const gOut = await rt.run(gProg, feedsFor(steps.gStep, x), { optimizers: [optG] });
  lap('run');
  const end = {
    grad: await readAll(rt, 'grad', gParams),
    param: await readAll(rt, 'param', params),
    state: await readAll(rt, 'state', states),
  };
  lap('read');
  rt.destroy();

  const r = new Report();
  r.timing = `load ${(ms.load / 1000).toFixed(1)} s, D + G steps ${(ms.run / 1000).toFixed(1)} s, state read-back ${(ms.read / 1000).toFixed(1)} s`;
  // Forward values, by role: each D head on each pass, each loss term and its
  // weight, each network's loss, the fake images (float32 through up to ~25
  // layers vs float64).
  const FWD = 1e-4;
  // KL = -0.5 mean(1 + logvar - mu^2 - exp(logvar)) sums O(1) addends to a small
  // number: float32 rounding of the addends (~1e-7 each) is its error, a large
  // relative error on a small KL. So it is compared absolutely.
  const KL_ABS = 1e-6;
  for (const [step, prog, out, mine] of [['d', steps.dStep, dOut, /^(d\d\.|term\/d|loss\/d)/], ['g', steps.gStep, gOut, /^(g\.|term\/G|loss\/G)/]] as const) {
    const compared: string[] = [];
    for (const v of prog.outputs) {
      const k = refName(step, v.role);
      if (!k) continue;
      const label = `${step === 'd' ? 'D' : 'G'} step ${roleStr(v.role)}`;
      const kind = v.role.role === 'logit' ? 'heads' : v.role.role === 'loss_term' ? 'terms' : v.role.role === 'loss' ? 'losses' : 'images';
      if (v.role.role === 'loss_term' && v.role.term === 'kl') r.abs(kind, label, out[v.name], ref[k].data, KL_ABS);
      else r.close(kind, label, out[v.name], ref[k], FWD);
      if (v.role.role === 'loss_term') r.close('weights', `${label} weight`, [v.weight ?? NaN], ref[k.replace(/^term/, 'weight')], 1e-7);
      if (v.role.role !== 'fake_image') compared.push(k);
    }
    // Nothing the reference computes for this step is missing from ours, and nothing extra.
    expect(compared.sort(), `${step} step outputs`).toEqual(Object.keys(ref).filter((k) => mine.test(k)).sort());
  }

  // Gradients of every parameter (D's from its D step, G's from the G step),
  // within 1e-3, or 4x PyTorch's own float32 error on that tensor where that is
  // more: a few gradients are ill-conditioned sums (the BN biases of G2's
  // residual blocks reduce 4 x 256 x 256 terms that largely cancel; float32
  // torch itself is 6e-4 off on one of them, measured).
  for (const k of params) {
    const tol = Math.max(1e-3, 4 * relErr(ref[`f32/grad/${k}`].data, ref[`grad/${k}`].data));
    r.close('grads', `grad/${k}`, (isD(k) ? afterD.grad : end.grad)[k], ref[`grad/${k}`], tol);
  }
  // Adam-updated values: D's after the D step, G's after the G step.
  for (const k of params) {
    const [got, g, opt] = isD(k) ? [afterD.param[k], afterD.grad[k], TINY.d] : [end.param[k], end.grad[k], TINY.g];
    r.adam('Adam updates', `param/${k}`, got, weights[k].data, g, ref[`param/${k}`].data, ref[`grad/${k}`].data, opt.lr, opt.eps);
  }
  // The D step runs G without moving G's params or statistics (the iteration's
  // one G forward that moves them is the G step's); the G step leaves D's params alone.
  for (const k of states.filter((s) => !isD(s))) r.abs('untouched', `D step left ${k}`, afterD.state[k], weights[k].data, 1e-30);
  for (const k of gParams) r.abs('untouched', `D step left ${k}`, afterD.param[k], weights[k].data, 1e-30);
  for (const k of dParams) r.abs('untouched', `G step left ${k}`, end.param[k], ref[`param/${k}`].data, 1e-30);
  // Running statistics: smooth in the inputs, so plain float32 rounding.
  for (const k of states.filter(isD)) r.close('BN stats', `after D steps: ${k}`, afterD.state[k], ref[`state_after_d/${k}`], 1e-4);
  for (const k of states) r.close('BN stats', `end: ${k}`, end.state[k], ref[`state/${k}`], 1e-4);
  return r;
}

describe.skipIf(!torchAvailable())('one MS-CLIP-GAN iteration (D0/D1/D2 steps, G step, Adam) vs an independent PyTorch reference', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gan-iteration-'));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [ci, c] of CASES.entries()) {
    // Shared by the two plans of this case: the weights, inputs and the one torch run.
    let prepared: Promise<{ m: CheckedModel; portable: GanSteps; weights: Record<string, HostTensor>; x: Record<string, HostTensor>; ref: Promise<Record<string, HostTensor>> }> | undefined;
    const prepare = () =>
      (prepared ??= (async () => {
        const m = check(c);
        const steps = buildGanSteps(m, BATCH); // planned with DEFAULT_LIMITS
        const rt = await Runtime.create(steps.layout);
        rt.initState(SEED + ci);
        const weights: Record<string, HostTensor> = {};
        for (const [k, p] of Object.entries(steps.layout.params)) weights[k] = { shape: p.shape, data: await rt.readParam(k) };
        for (const [k, s] of Object.entries(steps.layout.state)) weights[k] = { shape: s.shape, data: await rt.readState(k) };
        rt.destroy();
        // The CA's weights scaled up so that mu and logvar are O(0.3), as after
        // some training, instead of O(0.04) at initialisation: there KL is ~1e-3
        // and its term would move errG and the CA's gradient too little for
        // its weight to be checked by more than the weight output. (With the
        // text scaled up by ca_text_scale, the weights are scaled down by as much.)
        const caBoost = 8 / (c.arch?.ca_text_scale ?? 1);
        for (const [i, v] of weights[CA_WEIGHT].data.entries()) weights[CA_WEIGHT].data[i] = v * caBoost;
        const x = inputs();
        const wPath = join(dir, `weights-${ci}.safetensors`);
        const xPath = join(dir, `inputs-${ci}.safetensors`);
        writeSafetensors(wPath, weights);
        writeSafetensors(xPath, x);
        const cfg = { ...TINY, ...c.objective, ...c.arch };
        // Runs in the Python child while the device plans and runs.
        const t0 = performance.now();
        const ref = (await startTorch()).run(TORCH, {}, { vars: { here: HERE, cfg, weights: wPath, inputs: xPath } }).then((out) => {
          console.log(`[iteration] ${c.label}: float64 torch reference ${((performance.now() - t0) / 1000).toFixed(1)} s`);
          return out;
        });
        return { m, portable: steps, weights, x, ref };
      })());

    for (const plan of ['portable plan (DEFAULT_LIMITS)', "adapter's own limits"] as const) {
      it(`${c.label}, ${plan}: every loss, term, gradient, Adam update and BN statistic matches`, async () => {
        const t0 = performance.now();
        const { m, portable, weights, x, ref } = await prepare();
        const { info } = await getDevice();
        const limits = planLimits(info.limits, info.features);
        const steps = plan.startsWith('portable') ? portable : buildGanSteps(m, BATCH, limits);
        const r = await runAndCompare(m, steps, weights, x, await ref);
        const subgroups = plan.startsWith('portable') ? '' : limits.subgroups ? ' (subgroups on)' : ' (no subgroups offered)';
        console.log(`[iteration] ${c.label}, ${plan}${subgroups}: ${((performance.now() - t0) / 1000).toFixed(1)} s (${r.timing}); worst: ${r.summary()}`);
        expect(r.failures).toEqual([]);
      }, 1_200_000);
    }
  }
});
