// Exact resume: run k steps, save the runtime's and optimizers' state, restore
// it into a fresh Runtime (new buffers, other seeds), run on, and the result
// equals an uninterrupted run bit for bit: params, moments, BatchNorm running
// statistics, losses, and the noise drawn after the restore.
import { describe, expect, it } from 'vitest';
import { paramGrads } from '../../compiler/autodiff.ts';
import { GraphBuilder } from '../../compiler/ir/builder.ts';
import { batchNorm } from '../../compiler/ops/batchnorm.ts';
import { bce } from '../../compiler/ops/losses.ts';
import { linear } from '../../compiler/ops/matmul.ts';
import { compileProgram, layoutState } from '../../compiler/plan/index.ts';
import { Runtime } from '../../runtime/executor.ts';
import { Adam, SGD } from '../../runtime/optim.ts';
import type { SavedState, StateTensor } from '../../runtime/state.ts';
import { randn } from '../oracle/random.ts';

/** A tiny GAN: G = tanh(BN(linear(z))) with running statistics, D = linear; z is drawn on the GPU. */
function tinyGan() {
  const b = new GraphBuilder();
  const z = b.noise('z', 'randn', { shape: [4, 8] });
  const real = b.input('real', [4, 8]);
  const wg = b.param('g/fc/weight', [8, 8], { kind: 'normal', mean: 0, std: 0.3 }, 'G');
  const bn = { weight: b.param('g/bn/weight', [8], { kind: 'ones' }, 'G'), bias: b.param('g/bn/bias', [8], { kind: 'zeros' }, 'G') };
  const running = { runningMean: b.buffer('g/bn/running_mean', [8]), runningVar: b.buffer('g/bn/running_var', [8], { kind: 'ones' }) };
  const wd = b.param('d/fc/weight', [1, 8], { kind: 'normal', mean: 0, std: 0.3 }, 'D');
  const bd = b.param('d/fc/bias', [1], { kind: 'zeros' }, 'D');
  const fake = b.tanh(batchNorm(b, linear(b, z, wg), { ...bn, ...running, training: true, momentum: 0.3 }));
  const d = (x: typeof z) => linear(b, x, wd, bd);
  const lossD = b.add(bce(b, d(real), 0.9), bce(b, d(b.detach(fake)), 0));
  const lossG = bce(b, d(fake), 1);
  const layout = layoutState(b.graph);
  const dStep = compileProgram(b.graph, layout, { name: 'd_step', outputs: { lossD }, grads: paramGrads(b, lossD, ['D']), groups: ['D'] });
  const gStep = compileProgram(b.graph, layout, { name: 'g_step', outputs: { lossG, fake, z }, grads: paramGrads(b, lossG, ['G']), groups: ['G'] });
  return { layout, dStep, gStep };
}

const gan = tinyGan();

/** A runtime with both optimizers; the seeds only matter until a state is imported. */
async function session(noiseSeed: number, initSeed: number) {
  const rt = await Runtime.create(gan.layout, { seed: noiseSeed });
  rt.initState(initSeed);
  const optD = new Adam(rt, 'D', { lr: 0.05, betas: [0.9, 0.999], eps: 1e-6, weightDecay: 0.01 });
  const optG = new SGD(rt, 'G', { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3 });
  const d = await rt.load(gan.dStep, [optD]);
  const g = await rt.load(gan.gStep, [optG]);
  /** One GAN iteration (a D step on batch `i`, then a G step); returns every output. */
  const iterate = async (i: number) => {
    const outD = await rt.run(d, { real: randn([4, 8], 100 + i).data }, { optimizers: [optD] });
    const outG = await rt.run(g, {}, { optimizers: [optG] });
    return { ...outD, ...outG };
  };
  const save = async () => ({ rt: await rt.exportState(), d: await optD.exportState(), g: await optG.exportState() });
  const restore = (s: Awaited<ReturnType<typeof save>>) => {
    rt.importState(s.rt);
    optD.importState(s.d);
    optG.importState(s.g);
  };
  return { rt, optD, optG, iterate, save, restore };
}

/** What a checkpoint file gives back: fresh arrays (nothing aliased) and scalars through JSON. */
function throughFile(s: SavedState): SavedState {
  const tensors: Record<string, StateTensor> = {};
  for (const [name, t] of Object.entries(s.tensors)) tensors[name] = t.slice();
  return { tensors, scalars: JSON.parse(JSON.stringify(s.scalars)) };
}

function bytes(t: StateTensor): Buffer {
  return Buffer.from(t.buffer, t.byteOffset, t.byteLength);
}

/** Bit-for-bit equality of two named tensor sets; lists the names that differ. */
function expectIdentical(what: string, a: Record<string, StateTensor>, b: Record<string, StateTensor>): void {
  expect(Object.keys(a).sort(), what).toEqual(Object.keys(b).sort());
  const differing = Object.keys(a).filter((k) => a[k].constructor !== b[k].constructor || !bytes(a[k]).equals(bytes(b[k])));
  expect(differing, `${what}: differing tensors`).toEqual([]);
}

describe('exact resume', () => {
  const k = 3;
  const more = 3;

  it('save after k steps, restore into a fresh runtime: the next steps equal an uninterrupted run bit for bit', async () => {
    const whole = await session(5, 1);
    const expected: Record<string, Float32Array>[] = [];
    for (let i = 0; i < k + more; i++) {
      const out = await whole.iterate(i);
      if (i >= k) expected.push(out);
    }
    const wholeEnd = await whole.save();

    const first = await session(5, 1);
    for (let i = 0; i < k; i++) await first.iterate(i);
    const saved = await first.save();
    first.rt.destroy();
    expect(saved.d.scalars).toEqual({ kind: 'adam', group: 'D', steps: k });
    expect(saved.g.scalars).toEqual({ kind: 'sgd', group: 'G', steps: k });
    expect(Array.from(saved.rt.tensors.rng)).toEqual([5, 2 * k]); // seed, next step: one draw per program run
    expect(Object.keys(saved.d.tensors).sort()).toEqual(['exp_avg:d/fc/bias', 'exp_avg:d/fc/weight', 'exp_avg_sq:d/fc/bias', 'exp_avg_sq:d/fc/weight']);
    expect(Object.keys(saved.g.tensors).sort()).toEqual(['momentum_buffer:g/bn/bias', 'momentum_buffer:g/bn/weight', 'momentum_buffer:g/fc/weight']);

    // Other seeds: everything the continuation sees must come from the import.
    const resumed = await session(99, 42);
    resumed.restore({ rt: throughFile(saved.rt), d: throughFile(saved.d), g: throughFile(saved.g) });
    for (let i = k; i < k + more; i++) {
      const out = await resumed.iterate(i);
      expectIdentical(`outputs of iteration ${i} (noise z included)`, out, expected[i - k]);
    }
    const resumedEnd = await resumed.save();
    expectIdentical('runtime state', resumedEnd.rt.tensors, wholeEnd.rt.tensors);
    expectIdentical('Adam state', resumedEnd.d.tensors, wholeEnd.d.tensors);
    expectIdentical('SGD state', resumedEnd.g.tensors, wholeEnd.g.tensors);
    expect(resumedEnd.d.scalars.steps).toBe(k + more);

    // The run really moved: moments non-zero, running statistics off their init.
    expect(resumedEnd.d.tensors['exp_avg_sq:d/fc/weight'].some((x) => x > 0)).toBe(true);
    expect(resumedEnd.g.tensors['momentum_buffer:g/fc/weight'].some((x) => x !== 0)).toBe(true);
    expect(resumedEnd.rt.tensors['state:g/bn/running_mean'].some((x) => x !== 0)).toBe(true);
    whole.rt.destroy();
    resumed.rt.destroy();
  });

  it('refuses a state of another model or another optimizer, naming what does not fit', async () => {
    const s = await session(1, 1);
    const rtState = await s.rt.exportState();
    const { ['param:g/fc/weight']: _dropped, ...rest } = rtState.tensors;
    expect(() => s.rt.importState({ ...rtState, tensors: rest })).toThrow(/lacks 'param:g\/fc\/weight'/);
    expect(() => s.rt.importState({ ...rtState, tensors: { ...rtState.tensors, 'param:nope': new Float32Array(1) } })).toThrow(/unknown tensors 'param:nope'/);
    expect(() => s.rt.importState({ ...rtState, tensors: { ...rtState.tensors, 'param:d/fc/bias': new Float32Array(2) } })).toThrow(/'param:d\/fc\/bias' must be f32\[1\], got f32\[2\]/);
    expect(() => s.rt.importState({ ...rtState, tensors: { ...rtState.tensors, rng: new Float32Array(2) } })).toThrow(/'rng' must be u32\[2\]/);
    const adamState = await s.optD.exportState();
    expect(() => s.optG.importState(adamState)).toThrow(/sgd\(G\)\.importState: saved state has kind = "adam", expected "sgd"/);
    const other = new Adam(s.rt, 'G', { lr: 0.1 });
    expect(() => other.importState(adamState)).toThrow(/lacks 'exp_avg:g\/fc\/weight'/);
    expect(() => s.optD.importState({ ...adamState, scalars: { ...adamState.scalars, steps: -1 } })).toThrow(/steps must be a whole number/);
    other.destroy();
    s.rt.destroy();
  });
});
