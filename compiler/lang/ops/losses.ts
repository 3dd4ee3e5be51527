// Loss functions: a scalar per batch (mean-reduced, like PyTorch's defaults),
// each lowered to the IR composite of the same name.
import type { Value as IrValue } from '../../ir/graph.ts';
import { bce } from '../../ops/losses.ts';
import { needSameShape, numArg, tensorArg, type ArgSpec, type CallOp, type LowerContext, type OpExample } from '../op.ts';

/** Two same-shaped tensors to a scalar loss. */
function pairLoss(name: string, summary: string, x: string, y: string, examples: OpExample[]): CallOp {
  const args: ArgSpec[] = [
    { name: x, type: 'tensor' },
    { name: y, type: 'tensor' },
  ];
  return {
    syntax: 'call',
    name,
    node: name,
    summary,
    args,
    check(ctx, a) {
      const [p, q] = [tensorArg(a, x), tensorArg(a, y)];
      needSameShape(ctx, `${name} needs ${x} and ${y} of equal shape`, p, q);
      return ctx.node([p, q], [], { attrs: { loss: true } });
    },
    lower: ({ b, x: v }: LowerContext): IrValue => b.apply(name, [v[0], v[1]]),
    ir: [name],
    examples,
  };
}

const bceOp: CallOp = {
  syntax: 'call',
  name: 'bce',
  node: 'bce',
  summary: 'binary cross-entropy with logits against a constant target',
  args: [
    { name: 'logits', type: 'tensor' },
    { name: 'target', type: 'num' },
  ],
  check(ctx, a) {
    return ctx.node([tensorArg(a, 'logits')], [], { attrs: { loss: true, target: numArg(a, 'target') } });
  },
  lower: ({ b, x, node }) => bce(b, x[0], node.attrs.target as number),
  ir: ['bce'],
  examples: [
    { name: 'target 1', args: { logits: 's', target: 1 }, torch: 'y = F.binary_cross_entropy_with_logits(s, torch.ones_like(s))' },
    { name: 'target 0.9', args: { logits: 'm', target: 0.9 }, torch: 'y = F.binary_cross_entropy_with_logits(m, torch.full_like(m, 0.9))' },
  ],
};

export const lossOps: CallOp[] = [
  pairLoss('kl_normal', 'KL(N(mu, exp(logvar)) || N(0, I)) as -0.5 * mean(1 + logvar - mu^2 - exp(logvar))', 'mu', 'logvar', [
    { args: { mu: 'a', logvar: 'b' }, torch: 'y = -0.5 * torch.mean(1 + b - a.pow(2) - b.exp())' },
  ]),
  bceOp,
  pairLoss('mse', 'mean squared error', 'x', 'y', [{ args: { x: 'm', y: 'n' }, torch: 'y = F.mse_loss(m, n)' }]),
  pairLoss('l1', 'mean absolute error', 'x', 'y', [{ args: { x: 'a', y: 'b' }, torch: 'y = F.l1_loss(a, b)' }]),
];
