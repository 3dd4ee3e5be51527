// Loss functions, all reduced by the mean like PyTorch's defaults.
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/graph.ts';
import type { CompositeOp } from './op.ts';

/** BCE with logits against a real-valued target y: mean(softplus(x) - x * y) (= y*sp(-x) + (1-y)*sp(x)). */
export function bceWithLogits(b: GraphBuilder, x: Value, target: Value | number): Value {
  return b.mean(b.sub(b.softplus(x), b.mul(x, target)));
}

/** KL(N(mu, exp(logvar)) || N(0, I)) as -0.5 * mean(1 + logvar - mu^2 - exp(logvar)). */
export function klNormal(b: GraphBuilder, mu: Value, logvar: Value): Value {
  const t = b.sub(b.sub(b.add(logvar, 1), b.mul(mu, mu)), b.exp(logvar));
  return b.mul(b.mean(t), -0.5);
}

export function mseLoss(b: GraphBuilder, x: Value, y: Value): Value {
  const d = b.sub(x, y);
  return b.mean(b.mul(d, d));
}

export function l1Loss(b: GraphBuilder, x: Value, y: Value): Value {
  return b.mean(b.abs(b.sub(x, y)));
}

export const lossOps: CompositeOp[] = [
  {
    name: 'bce_with_logits',
    kind: 'composite',
    doc: 'binary cross-entropy on logits with a real target (label smoothing)',
    parity: [
      {
        name: 'tensor',
        inputs: [[4, 1], [4, 1]],
        domain: ['normal', 'unit'],
        torch: 'F.binary_cross_entropy_with_logits(x0, x1)',
        build: (b, [x, y]) => b.bceWithLogits(x, y),
      },
      {
        name: 'smooth',
        inputs: [[6]],
        torch: 'F.binary_cross_entropy_with_logits(x0, torch.full_like(x0, 0.9))',
        build: (b, [x]) => b.bceWithLogits(x, 0.9),
      },
    ],
  },
  {
    name: 'kl_normal',
    kind: 'composite',
    doc: 'KL of a diagonal normal against N(0, I), mean over elements',
    parity: [
      {
        inputs: [[4, 8], [4, 8]],
        torch: '-0.5 * torch.mean(1 + x1 - x0.pow(2) - x1.exp())',
        build: (b, [mu, lv]) => b.klNormal(mu, lv),
      },
    ],
  },
  {
    name: 'mse',
    kind: 'composite',
    doc: 'mean squared error',
    parity: [{ inputs: [[3, 5], [3, 5]], torch: 'F.mse_loss(x0, x1)', build: (b, [x, y]) => b.mse(x, y) }],
  },
  {
    name: 'l1',
    kind: 'composite',
    doc: 'mean absolute error',
    parity: [{ inputs: [[3, 5], [3, 5]], torch: 'F.l1_loss(x0, x1)', build: (b, [x, y]) => b.l1(x, y) }],
  },
];
