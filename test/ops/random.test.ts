// Random draws on the GPU, judged by their statistics (they cannot match
// torch element by element): `noise z: [..] ~ uniform` through check -> lower
// -> run draws U(-1, 1), and the IR's rand_uniform draws U(low, high) for
// other ranges. Mean, variance, the half-open range and a flat histogram
// (chi-square over 20 bins), fresh numbers each step, the same ones for the
// same seed.
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../compiler/ir/builder.ts';
import type { Value } from '../../compiler/ir/graph.ts';
import { lowerNetwork } from '../../compiler/lower.ts';
import { compileProgram, layoutState } from '../../compiler/plan/index.ts';
import { Runtime } from '../../runtime/executor.ts';
import { checkText, errors } from '../helpers/gan.ts';

const BINS = 20;
/** 19 degrees of freedom: mean 19, sd 6.2; 60 is beyond p = 1e-6. */
const CHI2_MAX = 60;

function expectUniform(y: Float32Array, low: number, high: number): void {
  const n = y.length;
  const width = high - low;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of y) {
    sum += v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const mean = sum / n;
  let sq = 0;
  for (const v of y) sq += (v - mean) ** 2;
  const variance = sq / n;
  // Standard error of the mean: width / sqrt(12 n); allow 5 of them.
  expect(Math.abs(mean - (low + high) / 2), 'mean').toBeLessThan((5 * width) / Math.sqrt(12 * n));
  expect(Math.abs(variance / (width * width / 12) - 1), 'variance').toBeLessThan(0.03);
  expect(min, 'min').toBeGreaterThanOrEqual(low);
  expect(max, 'max').toBeLessThan(high);
  // The whole range is used: within a few expected gaps of each end.
  expect(min - low, 'min near low').toBeLessThan((20 * width) / n);
  expect(high - max, 'max near high').toBeLessThan((20 * width) / n);
  const counts = new Array<number>(BINS).fill(0);
  for (const v of y) counts[Math.min(BINS - 1, Math.floor(((v - low) / width) * BINS))]++;
  const expected = n / BINS;
  const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
  expect(chi2, `histogram ${counts.join(' ')}`).toBeLessThan(CHI2_MAX);
}

describe('random draws', () => {
  it('noise ~ uniform draws U(-1, 1) through the language (rand_uniform, not randn)', async () => {
    const r = checkText(`gan UniformNoise
input img: [3, 8, 8]
noise z: [4096] ~ uniform
generator { stage g @ 8 { image = img } }
discriminator d @ 8 { head uncond = image |> mean_hw |> linear(1) }
`);
    expect(errors(r)).toEqual([]);
    const g = r.model!.networks.find((n) => n.kind === 'generator')!;
    const lowered = lowerNetwork(g, { batch: 8, training: true });
    const z = lowered.values.get(g.inputs.z)!;
    expect(z.node?.op).toBe('rand_uniform');
    expect(z.node?.attrs).toMatchObject({ low: -1, high: 1 });
    const layout = layoutState(lowered.builder.graph);
    const plan = compileProgram(lowered.builder.graph, layout, { name: 'z', outputs: { z } });
    expect(plan.kernels.map((k) => k.name)).toEqual(['rand_uniform']);
    const rt = await Runtime.create(layout);
    rt.initState(0);
    const prog = await rt.load(plan);
    const first = (await rt.run(prog)).z;
    expectUniform(first, -1, 1);
    const second = (await rt.run(prog)).z;
    expect(second).not.toEqual(first);
    expectUniform(second, -1, 1);
    rt.setSeed(0);
    expect((await rt.run(prog)).z).toEqual(first);
    rt.destroy();
  });

  it('rand_uniform draws U(low, high) for other ranges, independent of a randn drawn beside it', async () => {
    const b = new GraphBuilder();
    const u: Value = b.random('rand_uniform', { shape: [64, 515], low: 2, high: 5 });
    const n: Value = b.random('randn', { shape: [64, 515] });
    const layout = layoutState(b.graph);
    const plan = compileProgram(b.graph, layout, { name: 'draws', outputs: { u, n } });
    const rt = await Runtime.create(layout);
    rt.initState(3);
    const out = await rt.run(await rt.load(plan));
    rt.destroy();
    expectUniform(out.u, 2, 5);
    // Different streams: no correlation between the uniform and the normal draw.
    const mu = out.u.reduce((s, v) => s + v, 0) / out.u.length;
    const mn = out.n.reduce((s, v) => s + v, 0) / out.n.length;
    let cov = 0;
    let vu = 0;
    let vn = 0;
    for (let i = 0; i < out.u.length; i++) {
      cov += (out.u[i] - mu) * (out.n[i] - mn);
      vu += (out.u[i] - mu) ** 2;
      vn += (out.n[i] - mn) ** 2;
    }
    expect(Math.abs(cov / Math.sqrt(vu * vn))).toBeLessThan(0.03);
  });

  it('two randn draws of different sizes share one WGSL (stream and length at run time) yet draw different numbers', async () => {
    const b = new GraphBuilder();
    const a: Value = b.random('randn', { shape: [8, 33] });
    const c: Value = b.random('randn', { shape: [8, 40] });
    const layout = layoutState(b.graph);
    const plan = compileProgram(b.graph, layout, { name: 'draws', outputs: { a, c } });
    expect(new Set(plan.kernels.map((k) => k.wgsl)).size).toBe(1);
    const rt = await Runtime.create(layout);
    rt.initState(5);
    const out = await rt.run(await rt.load(plan));
    rt.destroy();
    expect(out.a.length).toBe(8 * 33);
    expect(out.c.length).toBe(8 * 40);
    // Same counter, other stream: the first 264 numbers would be equal if the stream were lost.
    let same = 0;
    for (let i = 0; i < out.a.length; i++) if (out.a[i] === out.c[i]) same++;
    expect(same).toBe(0);
    for (const v of [out.a, out.c]) {
      const mean = v.reduce((s, x) => s + x, 0) / v.length;
      const sd = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
      expect(Math.abs(mean)).toBeLessThan(0.2);
      expect(Math.abs(sd - 1)).toBeLessThan(0.15);
    }
  });

  it('refuses an empty range', () => {
    expect(() => new GraphBuilder().random('rand_uniform', { shape: [4], low: 1, high: 1 })).toThrow(/low 1 must be below high 1/);
  });
});
