// Loss functions, all reduced by the mean like PyTorch's defaults. Composites:
// each record expands into elementwise ops and a mean.
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/graph.ts';
import type { CompositeOp } from './op.ts';

/** Two same-shaped tensors to a scalar: mean(elementwise(x, y)). */
function pairLoss(name: string, doc: string, torch: string, elementwise: (b: GraphBuilder, d: Value) => Value): CompositeOp {
  return {
    name,
    kind: 'composite',
    doc,
    arity: 2,
    expand: (b, [x, y]) => b.mean(elementwise(b, b.sub(x, y))),
    parity: [{ inputs: [[3, 5], [3, 5]], torch }],
  };
}

export const lossOps: CompositeOp<any>[] = [
  {
    name: 'bce',
    kind: 'composite',
    doc: 'binary cross-entropy on logits, mean(softplus(x) - x * y) (= y*sp(-x) + (1-y)*sp(x)), against a tensor y (input 1) or a constant attrs.target (label smoothing)',
    arity: -1,
    expand: (b, ins, attrs: { target?: number }) => {
      const [x, y] = ins;
      const target = ins.length === 2 && attrs.target === undefined ? y : attrs.target;
      if (target === undefined || ins.length > 2) throw new Error('bce: give the target as a second input or as attrs.target, not both');
      return b.mean(b.sub(b.softplus(x), b.mul(x, target)));
    },
    parity: [
      { name: 'tensor', inputs: [[4, 1], [4, 1]], domain: ['normal', 'unit'], torch: 'F.binary_cross_entropy_with_logits(x0, x1)' },
      { name: 'smooth', inputs: [[6]], attrs: { target: 0.9 }, torch: 'F.binary_cross_entropy_with_logits(x0, torch.full_like(x0, 0.9))' },
    ],
  },
  {
    name: 'kl_normal',
    kind: 'composite',
    doc: 'KL(N(mu, exp(logvar)) || N(0, I)) as -0.5 * mean(1 + logvar - mu^2 - exp(logvar)); inputs mu, logvar',
    arity: 2,
    expand: (b, [mu, logvar]) => {
      const t = b.sub(b.sub(b.add(logvar, 1), b.mul(mu, mu)), b.exp(logvar));
      return b.mul(b.mean(t), -0.5);
    },
    parity: [{ inputs: [[4, 8], [4, 8]], torch: '-0.5 * torch.mean(1 + x1 - x0.pow(2) - x1.exp())' }],
  },
  pairLoss('mse', 'mean squared error', 'F.mse_loss(x0, x1)', (b, d) => b.mul(d, d)),
  pairLoss('l1', 'mean absolute error', 'F.l1_loss(x0, x1)', (b, d) => b.abs(d)),
];

/** BCE with logits against a tensor or a constant target. */
export function bce(b: GraphBuilder, x: Value, target: Value | number): Value {
  return typeof target === 'number' ? b.apply('bce', [x], { target }) : b.apply('bce', [x, target]);
}

export function klNormal(b: GraphBuilder, mu: Value, logvar: Value): Value {
  return b.apply('kl_normal', [mu, logvar]);
}

export function mse(b: GraphBuilder, x: Value, y: Value): Value {
  return b.apply('mse', [x, y]);
}

export function l1(b: GraphBuilder, x: Value, y: Value): Value {
  return b.apply('l1', [x, y]);
}
