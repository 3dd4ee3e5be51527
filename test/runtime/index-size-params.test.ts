// Size-generic index ops: slice, pad, concat, upsample2x and sum_pool2x take
// the power-of-two sizes of their index formulas (divisors, moduli, factors)
// as shifts and masks from the kernel's Sizes uniform, and their offsets and
// bounds from it outright (FnCtx.size), so launches that differ only in such
// sizes share one WGSL. A node that reads its input at its own index (a
// reshape) renders no function: kernels with or without one are the same
// WGSL. Every result matches a float64 reference written here.
import { afterAll, describe, expect, it } from 'vitest';
import { Graph } from '../../compiler/ir/graph.ts';
import { fusedKernel } from '../../compiler/kernels/fused.ts';
import type { KernelSpec } from '../../runtime/format/kernel.ts';
import { Runtime } from '../../runtime/executor.ts';
import { parsePlan, serializePlan } from '../../runtime/format/plan.ts';
import { dispatchPlan, EMPTY_LAYOUT, type Launch } from '../helpers/dispatch-plan.ts';
import { expectClose } from '../oracle/compare.ts';
import { randn } from '../oracle/random.ts';

type Shape = number[];
interface IndexCase {
  op: string;
  attrs: Record<string, unknown>;
  ins: Shape[];
  out: Shape;
  /** Float64 reference: output element i from the inputs (NCHW, row-major). */
  ref: (xs: Float32Array[], i: number) => number;
}

const at = (s: Shape, i: number) => {
  const [, C, H, W] = s;
  return { n: Math.floor(i / (C * H * W)), c: Math.floor(i / (H * W)) % C, y: Math.floor(i / W) % H, x: i % W };
};
const flat = (s: Shape, n: number, c: number, y: number, x: number) => ((n * s[1] + c) * s[2] + y) * s[3] + x;

function slice(x: Shape, start: number, end: number): IndexCase {
  const out = [x[0], end - start, x[2], x[3]];
  return { op: 'slice', attrs: { axis: 1, start, end }, ins: [x], out, ref: ([a], i) => { const p = at(out, i); return a[flat(x, p.n, p.c + start, p.y, p.x)]; } };
}
function pad(x: Shape, before: number, after: number): IndexCase {
  const out = [x[0], x[1] + before + after, x[2], x[3]];
  return {
    op: 'pad', attrs: { axis: 1, before, after }, ins: [x], out,
    ref: ([a], i) => { const p = at(out, i); const c = p.c - before; return c < 0 || c >= x[1] ? 0 : a[flat(x, p.n, c, p.y, p.x)]; },
  };
}
function concat(x0: Shape, c1: number): IndexCase {
  const x1 = [x0[0], c1, x0[2], x0[3]];
  const out = [x0[0], x0[1] + c1, x0[2], x0[3]];
  return {
    op: 'concat', attrs: { axis: 1 }, ins: [x0, x1], out,
    ref: ([a, b], i) => { const p = at(out, i); return p.c < x0[1] ? a[flat(x0, p.n, p.c, p.y, p.x)] : b[flat(x1, p.n, p.c - x0[1], p.y, p.x)]; },
  };
}
function upsample(x: Shape): IndexCase {
  const out = [x[0], x[1], 2 * x[2], 2 * x[3]];
  return { op: 'upsample2x', attrs: {}, ins: [x], out, ref: ([a], i) => { const p = at(out, i); return a[flat(x, p.n, p.c, p.y >> 1, p.x >> 1)]; } };
}
function sumPool(x: Shape): IndexCase {
  const out = [x[0], x[1], x[2] / 2, x[3] / 2];
  return {
    op: 'sum_pool2x', attrs: {}, ins: [x], out,
    ref: ([a], i) => {
      const p = at(out, i);
      let s = 0;
      for (const [dy, dx] of [[0, 0], [0, 1], [1, 0], [1, 1]]) s += a[flat(x, p.n, p.c, 2 * p.y + dy, 2 * p.x + dx)];
      return s;
    },
  };
}

/** Per op: two cases whose sizes differ only in powers of two and offsets (one WGSL), and one with other sizes. */
const FAMILIES: { name: string; shared: IndexCase[]; other: IndexCase }[] = [
  { name: 'slice', shared: [slice([2, 8, 4, 4], 4, 8), slice([3, 4, 8, 2], 1, 3)], other: slice([2, 6, 3, 3], 1, 4) },
  { name: 'pad', shared: [pad([2, 4, 4, 4], 4, 0), pad([1, 2, 2, 8], 1, 1)], other: pad([2, 3, 3, 3], 1, 2) },
  { name: 'concat', shared: [concat([2, 4, 4, 4], 4), concat([3, 8, 2, 2], 8)], other: concat([2, 3, 3, 3], 2) },
  { name: 'upsample2x', shared: [upsample([2, 4, 4, 4]), upsample([1, 8, 2, 8])], other: upsample([2, 3, 3, 5]) },
  { name: 'sum_pool2x', shared: [sumPool([2, 4, 8, 8]), sumPool([1, 2, 4, 16])], other: sumPool([2, 3, 6, 10]) },
];

/** tanh(op(inputs)): the index op inlined into an elementwise root; leaves are the op's inputs. */
function kernel(c: IndexCase, withReshape = false): KernelSpec {
  const g = new Graph();
  const xs = c.ins.map((s, k) => g.newValue(s, 'input', { name: `x${k}` }));
  const y = g.addNode(c.op, xs, c.attrs, c.out);
  const flatShape = [c.out[0], c.out.slice(1).reduce((p, d) => p * d, 1)];
  const yr = withReshape ? g.addNode('reshape', [y], { shape: flatShape }, flatShape) : y;
  const t = g.addNode('tanh', [yr], {}, yr.shape);
  const fk = fusedKernel([t.node!], (v) => v === y || v === yr);
  expect(fk.leaves).toEqual(xs);
  return fk.spec;
}

let rt: Runtime | undefined;
afterAll(() => rt?.destroy());

describe('size-generic index ops', () => {
  for (const f of FAMILIES) {
    it(`${f.name}: power-of-two sizes and offsets share one WGSL; other sizes keep literals`, () => {
      const [a, b] = f.shared.map((c) => kernel(c));
      expect(b.wgsl).toBe(a.wgsl);
      expect(b.params).not.toEqual(a.params);
      expect(kernel(f.other).wgsl).not.toBe(a.wgsl);
    });
  }

  it('a reshape between the op and its consumer renders no function of its own', () => {
    const c = FAMILIES[0].shared[0];
    expect(kernel(c, true).wgsl).toBe(kernel(c).wgsl);
  });

  it('one plan runs every case, each step with its own params, and matches the reference', async () => {
    const cases = FAMILIES.flatMap((f) => [...f.shared, f.other]);
    const data: Record<string, Float32Array> = {};
    const launches: Launch[] = cases.map((c, k) => {
      const inputs: [string, number[]][] = c.ins.map((s, j) => {
        data[`c${k}_${j}`] = randn(s, 100 * k + j + 1).data;
        return [`c${k}_${j}`, s];
      });
      return { spec: kernel(c), inputs, output: [`y${k}`, c.out] };
    });
    const p = parsePlan(serializePlan(dispatchPlan('index_sizes', launches)));
    expect(p.kernels.length).toBe(2 * FAMILIES.length);
    rt = await Runtime.create(EMPTY_LAYOUT);
    const out = await rt.run(await rt.load(p), data);
    cases.forEach((c, k) => {
      const xs = c.ins.map((_, j) => data[`c${k}_${j}`]);
      const n = c.out.reduce((p, d) => p * d, 1);
      const ref = Float64Array.from({ length: n }, (_, i) => Math.tanh(c.ref(xs, i)));
      expectClose(out[`y${k}`], ref, 1e-6, `${c.op} ${JSON.stringify(c.ins)} -> ${JSON.stringify(c.out)}`);
    });
  });
});
