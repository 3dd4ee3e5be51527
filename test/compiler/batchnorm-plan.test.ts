// BatchNorm's training graph as planned (compiler/ops/batchnorm.ts): the
// backward's two per-channel sums, sum(dy) and sum(dy * xc), do not depend on
// each other, so they are one reduction launch, and the input gradient is one
// elementwise launch after it. (The naive expansion chained them: sum(dy *
// xc) -> dv -> dxc -> sum(dxc), five launches.) Values are checked against
// PyTorch by the op's parity cases (test/ops/parity.test.ts).
import { describe, expect, it } from 'vitest';
import { grad, paramGrads } from '../../compiler/autodiff.ts';
import { GraphBuilder } from '../../compiler/ir/builder.ts';
import { batchNorm } from '../../compiler/ops/batchnorm.ts';
import { compileProgram, DEFAULT_LIMITS, layoutState } from '../../compiler/plan/index.ts';

function bnPlan(shape: number[]) {
  const b = new GraphBuilder();
  const x = b.input('x', shape);
  const gy = b.input('gy', shape);
  const c = shape[1];
  const w = b.param('bn/weight', [c], { kind: 'ones' }, 'N');
  const beta = b.param('bn/bias', [c], { kind: 'zeros' }, 'N');
  const y = batchNorm(b, x, { weight: w, bias: beta, training: true });
  const loss = b.sum(b.mul(b.leakyRelu(y, 0.2), gy));
  const dx = grad(b, loss, [x])[0]!;
  const grads = paramGrads(b, loss, ['N']);
  const layout = layoutState(b.graph);
  return compileProgram(b.graph, layout, { name: 'bn', outputs: { y, dx }, grads, groups: ['N'] }, DEFAULT_LIMITS);
}

describe('BatchNorm training plan', () => {
  for (const shape of [
    [4, 8, 6, 6],
    [6, 5],
  ]) {
    it(`reduces its backward sums in one launch [${shape}]`, () => {
      const plan = bnPlan(shape);
      const names = plan.steps.flatMap((s) => (s.op === 'dispatch' ? [plan.kernels[s.kernel].name] : []));
      // Reductions: the forward's sum(x), then sum(xc^2) (centred two-pass);
      // the backward's sums (dweight, dbias, sum(dy), sum(dy * xc)) as one
      // launch; the loss. The chained expansion needed one more (sum(dxc)
      // after dv).
      const reductions = names.filter((n) => /^fused(x\d)?_sum/.test(n));
      expect(reductions, names.join(' ')).toHaveLength(4);
      expect(reductions.filter((n) => /^fusedx[34]_sum/.test(n)), names.join(' ')).toHaveLength(1);
    });
  }
});
