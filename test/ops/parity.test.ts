// Every op of the registry, forward and gradient w.r.t. every input, against
// PyTorch on fresh seeded random inputs (one Python process for the file).
import { afterAll, describe, expect, it } from 'vitest';
import { allOps } from '../../compiler/ops/registry.ts';
import type { Value } from '../../compiler/ir/graph.ts';
import type { GraphBuilder } from '../../compiler/ir/builder.ts';
import { startTorch, torchAvailable } from '../oracle/torch.ts';
import { compareWithTorch, randomInput, runIr } from './harness.ts';

const FWD_TOL = 1e-5;
const GRAD_TOL = 1e-4;

const cases = allOps().flatMap((op) => op.parity.map((c, k) => ({ op, c, label: `${op.name}${c.name ? `/${c.name}` : op.parity.length > 1 ? `/${k}` : ''}` })));

describe.skipIf(!torchAvailable())('op parity with PyTorch', () => {
  afterAll(async () => (await startTorch()).close());

  it.each(cases.filter(({ op }) => op.kind === 'composite' || !op.random))('$label', async ({ op, c, label }) => {
    const torch = await startTorch();
    const seed = [...label].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) >>> 0, 7);
    const inputs = c.inputs.map((s, i) => randomInput(s, c.domain?.[i] ?? 'normal', seed + i));
    const build = c.build ?? ((b: GraphBuilder, xs: Value[]) => b.apply(op.name, xs, c.attrs ?? {}));
    const gradOf = c.grad ?? c.inputs.map((_, i) => i);
    const res = await compareWithTorch(torch, {
      inputs,
      build,
      torch: c.torch,
      gradOf,
      seed,
      fwdTol: c.tol?.fwd ?? FWD_TOL,
      gradTol: c.tol?.grad ?? GRAD_TOL,
    });
    if (process.env.PARITY_VERBOSE) console.log(label, res.map((r) => `${r.name}=${r.err.toExponential(1)}`).join(" "));
    for (const r of res) expect(r.err, `${label} ${r.name}: rel err ${r.err.toExponential(2)} > ${r.tol}`).toBeLessThan(r.tol);
  });

  it('randn: standard normal moments, deterministic per step, fresh across steps', async () => {
    const { out, rt, plan } = await runIr([], (b) => b.random('randn', { shape: [64, 129] }), []);
    const y = out.y;
    const n = y.length;
    const mean = y.reduce((s, v) => s + v, 0) / n;
    const variance = y.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
    const kurt = y.reduce((s, v) => s + (v - mean) ** 4, 0) / n / variance ** 2;
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(Math.abs(variance - 1)).toBeLessThan(0.06);
    expect(Math.abs(kurt - 3)).toBeLessThan(0.3);
    expect(Number.isFinite(Math.max(...y))).toBe(true);
    const prog = await rt.load(plan);
    const again = (await rt.run(prog)).y;
    expect(again).not.toEqual(y);
    rt.setSeed(0);
    expect((await rt.run(prog)).y).toEqual(y);
    rt.destroy();
  });
});
