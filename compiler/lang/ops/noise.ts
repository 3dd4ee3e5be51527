// Random draws, fresh every step: `randn_like(x)` and the distributions of a
// noise declaration `noise z: [100] ~ normal | uniform`. Each becomes a noise
// leaf of the IR (a feed the trainer may override by name: the declaration's
// name, or the layer path such as `ca/randn.0`).
//
// `uniform` draws U(-1, 1), the DCGAN convention for z (the grammar takes no
// arguments after `~`).
import { tensorArg, type CallOp, type LowerContext, type NoiseOp } from '../op.ts';

/** Standard normal numbers: the one lowering of a `randn` node, whoever recorded it. */
const drawNormal = ({ noise }: LowerContext) => noise('randn', {});

const UNIFORM_RANGE = { low: -1, high: 1 };

const normalOp: NoiseOp = {
  syntax: 'noise',
  name: 'normal',
  node: 'randn',
  summary: 'standard normal N(0, 1)',
  check: (ctx, shape) => ctx.node([], shape, { kind: 'noise' }),
  lower: drawNormal,
  ir: ['randn'],
  examples: [{}],
};

const uniformOp: NoiseOp = {
  syntax: 'noise',
  name: 'uniform',
  node: 'rand_uniform',
  summary: `uniform U(${UNIFORM_RANGE.low}, ${UNIFORM_RANGE.high})`,
  check: (ctx, shape) => ctx.node([], shape, { kind: 'noise', attrs: { ...UNIFORM_RANGE } }),
  lower: ({ noise, node }) => noise('rand_uniform', { low: node.attrs.low, high: node.attrs.high }),
  ir: ['rand_uniform'],
  examples: [{}],
};

const randnLikeOp: CallOp = {
  syntax: 'call',
  name: 'randn_like',
  // Layer path `randn.N`: the feed name of the draw.
  node: 'randn',
  summary: 'standard normal noise of the same shape, drawn per step',
  args: [{ name: 'x', type: 'tensor' }],
  check: (ctx, a) => ctx.node([], tensorArg(a, 'x').shape, { kind: 'noise' }),
  lower: drawNormal,
  ir: ['randn'],
  examples: [{ args: { x: 'm' } }],
};

export const noiseOps = [normalOp, uniformOp, randnLikeOp];
