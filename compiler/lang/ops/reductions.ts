// Reductions of a sample: mean_hw and sum_hw over a feature map's plane, and
// cosine similarity of two vectors.
import { needRank, needSameShape, tensorArg, type CallOp } from '../op.ts';
import { cosine } from '../../ops/composite.ts';
import { Codes } from '../../../grammar/diagnostics.ts';
import { shapeStr } from '../../check/values.ts';

/** mean_hw / sum_hw: [C, H, W] -> [C], recorded as the IR reduction of the same name. */
function reduceHW(name: string, op: 'mean' | 'sum'): CallOp {
  return {
    syntax: 'call',
    name,
    node: op,
    summary: `${op} over height and width: [C, H, W] -> [C]`,
    args: [{ name: 'x', type: 'tensor' }],
    check(ctx, a) {
      const x = tensorArg(a, 'x');
      needRank(ctx, x, [3], name);
      return ctx.node([x], [x.shape[0]], { attrs: { axes: [1, 2] } });
    },
    lower: ({ b, x, node }) => b.apply(op, [x[0]], { axes: (node.attrs.axes as number[]).map((d) => d + 1), keepdims: false }),
    ir: [op],
    examples: [{ args: { x: 'm' }, torch: `y = m.${op}((2, 3))` }],
  };
}

const cosineOp: CallOp = {
  syntax: 'call',
  name: 'cosine',
  node: 'cosine',
  summary: 'cosine similarity of two vectors, one number per sample',
  args: [
    { name: 'x', type: 'tensor' },
    { name: 'y', type: 'tensor' },
  ],
  check(ctx, a) {
    const x = tensorArg(a, 'x');
    const y = tensorArg(a, 'y');
    if (x.shape.length !== 1) {
      ctx.fail(Codes.shapeMismatch, `cosine needs two vectors of equal length, got ${shapeStr(x.shape)} and ${shapeStr(y.shape)}`, ctx.span, `${shapeStr(x.shape)} vs ${shapeStr(y.shape)}`);
    }
    needSameShape(ctx, 'cosine needs two vectors of equal length', x, y);
    return ctx.node([x, y], [1]);
  },
  lower: ({ b, x, shape }) => b.reshape(cosine(b, x[0], x[1], 1), shape),
  ir: ['cosine', 'reshape'],
  examples: [{ args: { x: 'a', y: 'b' }, torch: 'y = F.cosine_similarity(a, b, 1)[:, None]' }],
};

export const reductionOps = [reduceHW('mean_hw', 'mean'), reduceHW('sum_hw', 'sum'), cosineOp];
