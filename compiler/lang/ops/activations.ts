// Elementwise activations and maps: each lowers to the IR op of its own name
// (glu to the composite, the others to primitives).
import { Codes } from '../../../grammar/diagnostics.ts';
import { shapeStr } from '../../check/values.ts';
import { glu } from '../../ops/composite.ts';
import { num, tensorArg, type ArgSpec, type CallOp, type OpExample } from '../op.ts';

/** x -> same shape, lowered to the IR op `name` with the extra args as attrs. */
function unary(name: string, summary: string, examples: OpExample[], extraArgs: ArgSpec[] = []): CallOp {
  return {
    syntax: 'call',
    name,
    node: name,
    summary,
    args: [{ name: 'x', type: 'tensor' }, ...extraArgs],
    check(ctx, a) {
      const attrs: Record<string, number> = {};
      for (const e of extraArgs) attrs[e.name] = (a[e.name] as { v: number }).v;
      return ctx.node([tensorArg(a, 'x')], tensorArg(a, 'x').shape, { attrs });
    },
    lower: ({ b, x, node }) => b.apply(name, [x[0]], node.attrs),
    ir: [name],
    examples,
  };
}

const gluOp: CallOp = {
  syntax: 'call',
  name: 'glu',
  node: 'glu',
  summary: 'gated linear unit over channels: first half * sigmoid(second half)',
  args: [{ name: 'x', type: 'tensor' }],
  check(ctx, a) {
    const x = tensorArg(a, 'x');
    if (x.shape.length < 1 || x.shape[0] % 2 !== 0) {
      ctx.fail(Codes.notDivisible, `glu needs an even channel count, got ${x.shape[0] ?? 0} in ${shapeStr(x.shape)}`, ctx.argSpan('x'), `${x.shape[0] ?? 0} channels`, 'double the channels of the layer before glu');
    }
    return ctx.node([x], [x.shape[0] / 2, ...x.shape.slice(1)]);
  },
  lower: ({ b, x }) => glu(b, x[0], 1),
  ir: ['glu'],
  examples: [
    { name: 'map', args: { x: 'm' }, torch: 'y = F.glu(m, 1)' },
    { name: 'vector', args: { x: 'a' }, torch: 'y = F.glu(a, 1)' },
  ],
};

export const activationOps: CallOp[] = [
  gluOp,
  unary('relu', 'max(x, 0)', [{ args: { x: 'm' }, torch: 'y = torch.relu(m)' }]),
  unary(
    'leaky_relu',
    'x if x > 0 else slope * x',
    [
      { name: 'default slope', args: { x: 'm' }, torch: 'y = F.leaky_relu(m, 0.2)' },
      { name: 'slope 0.01', args: { x: 'm', slope: 0.01 }, torch: 'y = F.leaky_relu(m, 0.01)' },
      { name: 'slope 0.3', args: { x: 'a', slope: 0.3 }, torch: 'y = F.leaky_relu(a, 0.3)' },
    ],
    [{ name: 'slope', type: 'num', default: num(0.2) }],
  ),
  unary('tanh', 'hyperbolic tangent', [{ args: { x: 'm' }, torch: 'y = torch.tanh(m)' }]),
  unary('sigmoid', 'logistic sigmoid', [{ args: { x: 'a' }, torch: 'y = torch.sigmoid(a)' }]),
  unary('softplus', 'log(1 + exp(x))', [{ args: { x: 'a' }, torch: 'y = F.softplus(a)' }]),
  unary('exp', 'e^x', [{ args: { x: 'a' }, torch: 'y = torch.exp(a)' }]),
  unary('log', 'natural logarithm', [{ args: { x: 'p' }, torch: 'y = torch.log(p)' }]),
  unary('sqrt', 'square root', [{ args: { x: 'p' }, torch: 'y = torch.sqrt(p)' }]),
  unary('gelu', 'x * Phi(x), the exact (erf) GELU', [{ args: { x: 't' }, torch: 'y = F.gelu(t)' }]),
  unary('quick_gelu', "x * sigmoid(1.702 x), OpenAI CLIP's QuickGELU", [{ args: { x: 't' }, torch: 'y = t * torch.sigmoid(1.702 * t)' }]),
  unary('detach', 'stop gradients flowing through x', [{ args: { x: 'a' }, torch: 'y = a.detach()' }]),
];
