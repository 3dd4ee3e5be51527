// BatchNorm's training graph as planned (compiler/ops/batchnorm.ts): the
// normalisation's gradient rule is x's total derivative through the batch
// statistics, so the backward's per-channel sums (dweight, dbias, mean(g),
// mean(g * xhat)) are one reduction launch and the input gradient is one
// elementwise launch after it, with no per-channel kernels between. (Autodiff
// through the expanded statistics chained them: sum(dy * xc) -> dv -> dxc ->
// sum(dxc), five reduction launches; the variance written around a detached
// mean merged them but still took 10 launches in all.) Values are checked
// against PyTorch by the op's parity cases (test/ops/parity.test.ts) and the
// second derivative by test/ops/double.test.ts.
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
      // the backward's sums as one launch; the loss.
      const reductions = names.filter((n) => /^fused(x\d)?_sum/.test(n));
      expect(reductions, names.join(' ')).toHaveLength(4);
      expect(reductions.filter((n) => /^fusedx[34]_sum/.test(n)), names.join(' ')).toHaveLength(1);
      // Besides those: rstd, the forward output (with the activation and the
      // loss's product), and dx. The form before this rule took 10 launches.
      expect(names, names.join(' ')).toHaveLength(7);
    });
  }
});
