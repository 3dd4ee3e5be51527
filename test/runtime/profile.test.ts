// Runtime.profile: one row per dispatch in plan order, from GPU timestamps
// where the adapter has them (each dispatch its own pass, one submit), or
// from the host clock with each dispatch submitted alone. A kernel doing 1024x
// the work of another must time longer on either clock, and GPU-timestamp
// rows must not carry the host's per-wait floor (a Dawn poll interval).
import { afterAll, describe, expect, it } from 'vitest';
import type { KernelSpec } from '../../runtime/format/kernel.ts';
import { gridFor } from '../../runtime/format/grid.ts';
import { Runtime } from '../../runtime/executor.ts';
import { dispatchPlan, EMPTY_LAYOUT } from '../helpers/dispatch-plan.ts';

/** y = x after `loops` rounds of a multiply-add per element. */
function spin(n: number, loops: number): KernelSpec {
  const g = gridFor(n);
  return {
    name: `spin_${loops}`,
    wgsl: `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(${g.size}) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = ${g.index('gid')};
  if (i >= ${n}u) { return; }
  var a = x[i];
  for (var k = 0u; k < ${loops}u; k++) { a = a * 0.999 + 0.5; }
  y[i] = a;
}`,
    bindings: [
      { name: 'x', access: 'read' },
      { name: 'y', access: 'read_write' },
    ],
    workgroups: g.workgroups,
    flops: 2 * n * loops,
  };
}

let rt: Runtime | undefined;
afterAll(() => rt?.destroy());

describe('Runtime.profile', () => {
  it('times each dispatch in plan order on the GPU clock and the host clock', async () => {
    const n = 4096;
    const plan = dispatchPlan('profile', [
      { spec: spin(n, 16), inputs: [['x', [n]]], output: ['light', [n]] },
      { spec: spin(n, 16384), inputs: [['x', [n]]], output: ['heavy', [n]] },
      { spec: spin(n, 16), inputs: [['x', [n]]], output: ['light2', [n]] },
    ]);
    rt = await Runtime.create(EMPTY_LAYOUT);
    const prog = await rt.load(plan);
    const feeds = { x: Float32Array.from({ length: n }, (_, i) => i / n) };
    await rt.run(prog, feeds); // first dispatches JIT-compile
    const hasTimestamps = rt.device.features.has('timestamp-query');
    for (const clock of ['gpu', 'wall'] as const) {
      const rows = await rt.profile(prog, feeds, { clock });
      expect(rows.map((r) => [r.name, r.step])).toEqual([
        ['spin_16', 0],
        ['spin_16384', 1],
        ['spin_16', 2],
      ]);
      for (const r of rows) expect(r.ms).toBeGreaterThanOrEqual(0);
      expect(rows[1].ms, `${clock}: ${rows.map((r) => r.ms.toFixed(3)).join(', ')}`).toBeGreaterThan(Math.max(rows[0].ms, rows[2].ms));
      expect(rows[1].flops).toBe(2 * n * 16384);
      if (clock === 'gpu' && hasTimestamps) expect(Math.min(rows[0].ms, rows[2].ms)).toBeLessThan(0.9);
    }
  });
});
