// Size-generic kernels through the plan format and the executor: one conv
// kernel's WGSL serves two launches of different sizes in one plan, each
// dispatch step binding its own params (the words of the kernel's uniform
// binding), and both results match the op's float64 reference.
import { afterAll, describe, expect, it } from 'vitest';
import { conv2dForwardKernel, conv2dOutputSize, type Conv2dShape } from '../../compiler/kernels/conv.ts';
import { conv2dOp } from '../../compiler/ops/conv.ts';
import { Runtime } from '../../runtime/executor.ts';
import { parsePlan, serializePlan, type Plan } from '../../runtime/format/plan.ts';
import { dispatchPlan, EMPTY_LAYOUT } from '../helpers/dispatch-plan.ts';
import { expectClose } from '../oracle/compare.ts';
import { randn } from '../oracle/random.ts';

// Two shapes of one structure (3x3, stride 1, padding 1, windowed, 4-row tiles): batch, channels and maps differ.
const A: Conv2dShape = { batch: 2, inChannels: 3, outChannels: 8, height: 8, width: 16, kernel: 3, stride: 1, padding: 1 };
const B: Conv2dShape = { batch: 1, inChannels: 5, outChannels: 6, height: 12, width: 8, kernel: 3, stride: 1, padding: 1 };

const xShape = (s: Conv2dShape) => [s.batch, s.inChannels, s.height, s.width];
const wShape = (s: Conv2dShape) => [s.outChannels, s.inChannels, 3, 3];
const yShape = (s: Conv2dShape) => [s.batch, s.outChannels, ...conv2dOutputSize(s)];

/** A plan of two dispatches of one kernel: y_a = conv(x_a, w_a) and y_b = conv(x_b, w_b). */
function twoSizePlan(): Plan {
  return dispatchPlan('two_sizes', [
    { spec: conv2dForwardKernel(A), inputs: [['xa', xShape(A)], ['wa', wShape(A)]], output: ['ya', yShape(A)] },
    { spec: conv2dForwardKernel(B), inputs: [['xb', xShape(B)], ['wb', wShape(B)]], output: ['yb', yShape(B)] },
  ]);
}

let rt: Runtime | undefined;
afterAll(() => rt?.destroy());

describe('size-generic kernels', () => {
  it('two conv launches of different sizes share one WGSL and differ only in params, grid and FLOPs', () => {
    const ka = conv2dForwardKernel(A);
    const kb = conv2dForwardKernel(B);
    expect(kb.wgsl).toBe(ka.wgsl);
    expect(kb.name).toBe(ka.name);
    expect(ka.name).not.toMatch(/n2|c3|h8/);
    expect(ka.bindings.at(-1)).toEqual({ name: 'sizes', access: 'uniform' });
    expect(kb.params).not.toEqual(ka.params);
    expect(kb.workgroups).not.toEqual(ka.workgroups);
  });

  it('one plan runs both, each step with its own params, and matches the reference', async () => {
    const plan = parsePlan(serializePlan(twoSizePlan()));
    expect(plan.kernels.length).toBe(1);
    rt = await Runtime.create(EMPTY_LAYOUT);
    const prog = await rt.load(plan);
    const data = {
      xa: randn(xShape(A), 1).data,
      wa: randn(wShape(A), 2).data,
      xb: randn(xShape(B), 3).data,
      wb: randn(wShape(B), 4).data,
    };
    const out = await rt.run(prog, data);
    for (const [s, x, w, y] of [[A, data.xa, data.wa, out.ya], [B, data.xb, data.wb, out.yb]] as const) {
      const ref = conv2dOp.ref!([Float64Array.from(x), Float64Array.from(w)], { ins: [xShape(s), wShape(s)], out: yShape(s), attrs: { stride: 1, pad: 1 } });
      expect(y.length).toBe(ref.length);
      expectClose(y, ref, 1e-5, `conv ${JSON.stringify(xShape(s))}`);
    }
  });
});
