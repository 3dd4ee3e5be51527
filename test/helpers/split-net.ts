// A small network for the batch-split tests (test/compiler/split.test.ts plans
// it, test/blocks/batch-split.test.ts runs it): conv -> BatchNorm ->
// leaky_relu -> conv with bias -> mean of y * gy, forward and backward, at
// batch 8. Per sample x is 4 KiB, the hidden activation 8 KiB, y 4 KiB, so
// with SPLIT_LIMITS (20 KiB per binding) every activation is split into 2-4
// batch chunks, the conv weight gradients and the bias gradient (a sum over
// the batch too small to be reduced in two steps) accumulate over chunks,
// and the params stay whole.
import { paramGrads } from '../../compiler/autodiff.ts';
import { GraphBuilder } from '../../compiler/ir/builder.ts';
import type { Value } from '../../compiler/ir/graph.ts';
import { batchNorm } from '../../compiler/ops/batchnorm.ts';
import { conv2d } from '../../compiler/ops/conv.ts';
import { DEFAULT_LIMITS, type PlanLimits, type ProgramSpec } from '../../compiler/plan/index.ts';

export const SPLIT_BATCH = 8;

/** DEFAULT_LIMITS with a binding limit of 20 KiB (offsets still 256-byte aligned). */
export const SPLIT_LIMITS: PlanLimits = { ...DEFAULT_LIMITS, maxStorageBufferBindingSize: 20 * 1024 };

export function splitNet(): { b: GraphBuilder; spec: ProgramSpec; params: Value[] } {
  const b = new GraphBuilder();
  const x = b.input('x', [SPLIT_BATCH, 4, 16, 16]);
  const gy = b.input('gy', [SPLIT_BATCH, 4, 16, 16]);
  const w1 = b.param('w1', [8, 4, 3, 3], { kind: 'normal', mean: 0, std: 0.2 }, 'N');
  const g = b.param('bn/weight', [8], { kind: 'ones' }, 'N');
  const beta = b.param('bn/bias', [8], { kind: 'zeros' }, 'N');
  const rm = b.buffer('bn/running_mean', [8]);
  const rv = b.buffer('bn/running_var', [8], { kind: 'ones' });
  const w2 = b.param('w2', [4, 8, 3, 3], { kind: 'normal', mean: 0, std: 0.2 }, 'N');
  const bias2 = b.param('b2', [4], { kind: 'zeros' }, 'N');
  const h = b.leakyRelu(batchNorm(b, conv2d(b, x, w1, { pad: 1 }), { weight: g, bias: beta, runningMean: rm, runningVar: rv, training: true }), 0.2);
  const y = conv2d(b, h, w2, { pad: 1, bias: bias2 });
  const loss = b.mean(b.mul(y, gy));
  const grads = paramGrads(b, loss, ['N']);
  return { b, spec: { name: 'split_net', outputs: { y, loss }, grads, groups: ['N'] }, params: b.graph.params };
}
