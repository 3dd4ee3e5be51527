// Elementwise kernels write EW_PER_INVOCATION elements per invocation, a
// grid's width apart (compiler/kernels/fused.ts): every element is written
// with its own value, including the tail of a size that is not a multiple of the
// invocations, and a launch too big for one grid dimension (over 65535
// workgroups, folded into y by runtime/format/grid.ts).
import { afterAll, describe, expect, it } from 'vitest';
import { Graph } from '../../compiler/ir/graph.ts';
import { EW_PER_INVOCATION, fusedKernel } from '../../compiler/kernels/fused.ts';
import { MAX_WORKGROUPS_PER_DIM, WG } from '../../runtime/format/grid.ts';
import { Runtime } from '../../runtime/executor.ts';
import { dispatchPlan, EMPTY_LAYOUT, type Launch } from '../helpers/dispatch-plan.ts';

let rt: Runtime | undefined;
afterAll(() => rt?.destroy());

describe('elementwise grid', () => {
  it('writes every element: small sizes, a ragged tail, and a grid folded into y', async () => {
    const big = MAX_WORKGROUPS_PER_DIM * WG * EW_PER_INVOCATION + 4099;
    const sizes = [1, 7, WG * EW_PER_INVOCATION + 1, 100_003, big];
    const data: Record<string, Float32Array> = {};
    const launches: Launch[] = sizes.map((n, k) => {
      const g = new Graph();
      const x = g.newValue([n], 'input', { name: 'x' });
      const y = g.addNode('neg', [x], {}, [n]);
      // Each element (nearly) its own index, exact in float32: a lost or misplaced write shows.
      data[`x${k}`] = Float32Array.from({ length: n }, (_, i) => (i % 8_388_593) + 1);
      return { spec: fusedKernel([y.node!], () => false).spec, inputs: [[`x${k}`, [n]]], output: [`y${k}`, [n]] };
    });
    const plan = dispatchPlan('ew_grid', launches);
    const bigStep = plan.steps.filter((s) => s.op === 'dispatch').at(-1)!;
    expect(bigStep.op === 'dispatch' && (bigStep.workgroups ?? plan.kernels[bigStep.kernel].workgroups)[1]).toBe(2);
    rt = await Runtime.create(EMPTY_LAYOUT);
    const out = await rt.run(await rt.load(plan), data);
    sizes.forEach((n, k) => {
      const y = out[`y${k}`];
      expect(y.length).toBe(n);
      let bad = -1;
      for (let i = 0; i < n && bad < 0; i++) if (y[i] !== -((i % 8_388_593) + 1)) bad = i;
      expect(bad, `size ${n}: first wrong element`).toBe(-1);
    });
  }, 60_000);
});
