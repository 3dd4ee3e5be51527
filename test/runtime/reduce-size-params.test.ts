// Size-generic reductions through the plan format and the executor: a fused
// sum's extents and strides live in its Sizes uniform, so sums of one
// structure (the same number of kept and reduced dims, the same loop shape)
// and different sizes share one WGSL in one plan, each dispatch step binding
// its own params, and every result matches the op's float64 reference.
import { afterAll, describe, expect, it } from 'vitest';
import { Graph } from '../../compiler/ir/graph.ts';
import { fusedKernel } from '../../compiler/kernels/fused.ts';
import { keptShape, sumOp } from '../../compiler/ops/reduce.ts';
import type { KernelSpec } from '../../runtime/format/kernel.ts';
import { Runtime } from '../../runtime/executor.ts';
import { parsePlan, serializePlan, type Plan } from '../../runtime/format/plan.ts';
import { dispatchPlan, EMPTY_LAYOUT } from '../helpers/dispatch-plan.ts';
import { expectClose } from '../oracle/compare.ts';
import { randn } from '../oracle/random.ts';


interface Case {
  name: string;
  x: number[];
  axes: number[];
}

// Two pairs: serial loops (8 and 18 reduced elements) and workgroup trees (64 and 50), all over axes 0 and 2 of 4-d inputs.
// Both strategies are branches of one WGSL.
const SERIAL: [Case, Case] = [
  { name: 'sa', x: [2, 3, 4, 5], axes: [0, 2] },
  { name: 'sb', x: [3, 4, 6, 2], axes: [0, 2] },
];
const TREE: [Case, Case] = [
  { name: 'ta', x: [4, 2, 16, 3], axes: [0, 2] },
  { name: 'tb', x: [5, 3, 10, 2], axes: [0, 2] },
];

function sumKernel(c: Case): KernelSpec {
  const g = new Graph();
  const x = g.newValue(c.x, 'input', { name: 'x' });
  const y = g.addNode('sum', [x], { axes: c.axes, keepdims: true }, keptShape(c.x, c.axes));
  const fk = fusedKernel([y.node!], () => false);
  expect(fk.leaves).toEqual([x]);
  return fk.spec;
}

/** One dispatch per case; a case whose WGSL is already in the plan reuses that kernel with its own grid, FLOPs and params. */
function plan(cases: Case[]): Plan {
  return dispatchPlan(
    'reduce_sizes',
    cases.map((c) => ({ spec: sumKernel(c), inputs: [[c.name, c.x]], output: [c.name, keptShape(c.x, c.axes)] })),
  );
}

let rt: Runtime | undefined;
afterAll(() => rt?.destroy());

describe('size-generic reductions', () => {
  it('sums of one structure and different sizes share one WGSL and differ only in params, grid and FLOPs', () => {
    for (const [a, b] of [SERIAL, TREE]) {
      const ka = sumKernel(a);
      const kb = sumKernel(b);
      expect(kb.wgsl).toBe(ka.wgsl);
      expect(kb.name).toBe(ka.name);
      expect(ka.name).not.toMatch(/\d/);
      expect(ka.wgsl).not.toMatch(/\bfn (base|roff)\b/);
      expect(ka.bindings.at(-1)).toEqual({ name: 'sizes', access: 'uniform' });
      expect(kb.params).not.toEqual(ka.params);
    }
    // The serial loop and the workgroup tree are two branches of one WGSL, picked by a word of the params.
    expect(sumKernel(TREE[0]).wgsl).toBe(sumKernel(SERIAL[0]).wgsl);
    const at = sumKernel(TREE[0]).wgsl.match(/struct Sizes \{([^}]*)\}/)![1].split(',').map((f) => f.trim().split(':')[0]).indexOf('SERIAL');
    expect(SERIAL.map((c) => sumKernel(c).params![at])).toEqual([1, 1]);
    expect(TREE.map((c) => sumKernel(c).params![at])).toEqual([0, 0]);
  });

  it('one plan runs all four, one kernel with each step its own params, and matches the reference', async () => {
    const cases = [...SERIAL, ...TREE];
    const p = parsePlan(serializePlan(plan(cases)));
    expect(p.kernels.length).toBe(1);
    rt = await Runtime.create(EMPTY_LAYOUT);
    const prog = await rt.load(p);
    const data = Object.fromEntries(cases.map((c, k) => [c.name, randn(c.x, k + 1).data]));
    const out = await rt.run(prog, data);
    for (const c of cases) {
      const kept = keptShape(c.x, c.axes);
      const ref = sumOp.ref!([Float64Array.from(data[c.name])], { ins: [c.x], out: kept, attrs: { axes: c.axes, keepdims: true } });
      expect(out[c.name].length).toBe(ref.length);
      expectClose(out[c.name], ref, 1e-5, `sum ${JSON.stringify(c.x)} over ${JSON.stringify(c.axes)}`);
    }
  });
});
