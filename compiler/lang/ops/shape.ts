// Shape ops: upsample, concat, split, reshape, flatten, tile. Shape rules the
// IR states (concat, reshape, upsample2x) are called on a batch of one.
import { Codes } from '../../../grammar/diagnostics.ts';
import { shapeStr, type Tensor, type Value } from '../../check/values.ts';
import { concatOp, reshapeOp, tile, upsample2xOp } from '../../ops/shape.ts';
import { atLeast, irShape, needRank, num, numArg, tensorArg, type CallOp, type CheckContext, type LowerContext } from '../op.ts';

const upsampleOp: CallOp = {
  syntax: 'call',
  name: 'upsample',
  node: 'upsample',
  summary: 'nearest-neighbour upsampling of [C, H, W] by a power of 2',
  args: [
    { name: 'x', type: 'tensor' },
    { name: 'factor', type: 'int', default: num(2) },
  ],
  check(ctx, a) {
    const x = tensorArg(a, 'x');
    needRank(ctx, x, [3], 'upsample');
    const f = atLeast(ctx, a, 'factor');
    // Lowered as x2 steps (the IR's upsample2x).
    if ((f & (f - 1)) !== 0) ctx.fail(Codes.badValue, `upsample factor must be a power of 2, got ${f}`, ctx.argSpan('factor'), 'expected 1, 2, 4, 8, ...');
    const shape = irShape(ctx, 'upsample', () => {
      let s: readonly number[] = [1, ...x.shape];
      for (let k = f; k > 1; k /= 2) s = upsample2xOp.shape([s], {});
      return s;
    });
    return ctx.node([x], shape, { attrs: { factor: f } });
  },
  lower: ({ b, x, node }) => {
    let v = x[0];
    for (let s = node.attrs.factor as number; s > 1; s /= 2) v = b.upsample2x(v);
    return v;
  },
  ir: ['upsample2x'],
  examples: [
    { name: 'x2', args: { x: 'm' }, torch: 'y = F.interpolate(m, scale_factor=2, mode="nearest")' },
    { name: 'x4', args: { x: 'm', factor: 4 }, torch: 'y = F.interpolate(m, scale_factor=4, mode="nearest")' },
  ],
};

const concatLangOp: CallOp = {
  syntax: 'call',
  name: 'concat',
  node: 'concat',
  summary: 'concatenate tensors along a dimension (default 0, channels)',
  args: [{ name: 'dim', type: 'int', default: num(0) }],
  rest: 'tensor',
  check(ctx, a, rest) {
    const ts = rest as Tensor[];
    if (ts.length < 2) ctx.fail(Codes.badArity, `concat needs at least 2 tensors, got ${ts.length}`, ctx.span);
    const d = numArg(a, 'dim');
    const first = ts[0].shape;
    if (d < 0 || d >= first.length) ctx.fail(Codes.badValue, `concat dim ${d} is out of range for ${shapeStr(first)}`, ctx.argSpan('dim'));
    const shapes = ts.map((t) => t.shape);
    const shape = irShape(ctx, 'concat', () => concatOp.shape(shapes.map((s) => [1, ...s]), { axis: d + 1 }), {
      message: `concat along dim ${d} needs the other dimensions to match: ${shapes.map(shapeStr).join(' vs ')}`,
      label: shapes.map(shapeStr).join(' ++ '),
      help: shapes.some((s) => s.length === 1) && shapes.some((s) => s.length === 3) ? 'use tile(v, h, w) to spread a vector over a feature map' : undefined,
    });
    return ctx.node(ts, shape, { attrs: { dim: d, sizes: ts.map((t) => t.shape[d]) } });
  },
  lower: ({ b, x, node }) => b.concat(x, (node.attrs.dim as number) + 1),
  ir: ['concat'],
  examples: [
    { name: 'channels', rest: ['m', 'n'], torch: 'y = torch.cat([m, n], 1)' },
    { name: 'dim 2', rest: ['m', 'n'], args: { dim: 2 }, torch: 'y = torch.cat([m, n], 3)' },
  ],
};

const splitOp: CallOp = {
  syntax: 'call',
  name: 'split',
  // One IR slice per part.
  node: 'slice',
  summary: 'split into n equal parts along a dimension (default 0); returns a tuple',
  args: [
    { name: 'x', type: 'tensor' },
    { name: 'n', type: 'int', default: num(2) },
    { name: 'dim', type: 'int', default: num(0) },
  ],
  check(ctx, a) {
    const x = tensorArg(a, 'x');
    const n = atLeast(ctx, a, 'n');
    const d = numArg(a, 'dim');
    if (d < 0 || d >= x.shape.length) ctx.fail(Codes.badValue, `split dim ${d} is out of range for ${shapeStr(x.shape)}`, ctx.argSpan('dim'));
    if (x.shape[d] % n !== 0) {
      ctx.fail(Codes.notDivisible, `cannot split ${x.shape[d]} into ${n} equal parts (dim ${d} of ${shapeStr(x.shape)})`, ctx.span, `${x.shape[d]} is not divisible by ${n}`);
    }
    const part = x.shape[d] / n;
    const items: Value[] = [];
    for (let i = 0; i < n; i++) {
      const shape = [...x.shape];
      shape[d] = part;
      items.push(ctx.node([x], shape, { attrs: { dim: d, start: i * part, end: (i + 1) * part } }));
    }
    return { t: 'tuple', items };
  },
  lower: ({ b, x, node }) => b.slice(x[0], (node.attrs.dim as number) + 1, node.attrs.start as number, node.attrs.end as number),
  ir: ['slice'],
  examples: [
    { name: 'halves', args: { x: 'a' }, torch: 'y = torch.chunk(a, 2, 1)' },
    { name: 'three along dim 1', args: { x: 'm', n: 3, dim: 1 }, torch: 'y = torch.chunk(m, 3, 2)' },
  ],
};

/** reshape and flatten: the same node, a reshape to the recorded per-sample shape. */
const lowerReshape = ({ b, x, shape }: LowerContext) => b.reshape(x[0], shape);

function reshapeTo(ctx: CheckContext, x: Tensor, dims: number[]): number[] {
  const total = x.shape.reduce((p, q) => p * q, 1);
  const known = dims.filter((d) => d !== -1).reduce((p, q) => p * q, 1);
  const free = dims.filter((d) => d === -1).length;
  if (free > 1 || dims.some((d) => d === 0 || d < -1)) ctx.fail(Codes.badValue, `invalid reshape dimensions ${shapeStr(dims)}`, ctx.span);
  const shape = dims.map((d) => (d === -1 ? total / known : d));
  if (!shape.every(Number.isInteger)) ctx.fail(Codes.shapeMismatch, `cannot reshape ${shapeStr(x.shape)} (${total} elements) to ${shapeStr(dims)}`, ctx.span, `${total} elements`);
  return irShape(ctx, 'reshape', () => reshapeOp.shape([[1, ...x.shape]], { shape: [1, ...shape] }), {
    message: `cannot reshape ${shapeStr(x.shape)} (${total} elements) to ${shapeStr(dims)}`,
    label: `${total} elements`,
  });
}

const reshapeLangOp: CallOp = {
  syntax: 'call',
  name: 'reshape',
  node: 'reshape',
  summary: 'reshape to the given dimensions (one may be -1)',
  args: [{ name: 'x', type: 'tensor' }],
  rest: 'int',
  check(ctx, a, rest) {
    const x = tensorArg(a, 'x');
    return ctx.node([x], reshapeTo(ctx, x, rest.map((r) => (r as { v: number }).v)));
  },
  lower: lowerReshape,
  ir: ['reshape'],
  examples: [
    { name: 'to a map', args: { x: 'a' }, rest: [3, 2, 1], torch: 'y = a.reshape(-1, 3, 2, 1)' },
    { name: 'free dim', args: { x: 'm' }, rest: [-1, 8], torch: 'y = m.reshape(m.shape[0], -1, 8)' },
  ],
};

const flattenOp: CallOp = {
  syntax: 'call',
  name: 'flatten',
  node: 'reshape',
  summary: 'flatten to one dimension',
  args: [{ name: 'x', type: 'tensor' }],
  check(ctx, a) {
    const x = tensorArg(a, 'x');
    return ctx.node([x], reshapeTo(ctx, x, [-1]));
  },
  lower: lowerReshape,
  ir: ['reshape'],
  examples: [{ args: { x: 'm' }, torch: 'y = m.flatten(1)' }],
};

const tileLangOp: CallOp = {
  syntax: 'call',
  name: 'tile',
  node: 'tile',
  summary: 'spread a vector [C] over a feature map: [C, h, w]',
  args: [
    { name: 'x', type: 'tensor' },
    { name: 'h', type: 'int' },
    { name: 'w', type: 'int', default: (a) => a.h },
  ],
  check(ctx, a) {
    const x = tensorArg(a, 'x');
    needRank(ctx, x, [1], 'tile');
    return ctx.node([x], [x.shape[0], atLeast(ctx, a, 'h'), atLeast(ctx, a, 'w')]);
  },
  lower: ({ b, x, shape }) => tile(b, x[0], shape[2], shape[3]),
  ir: ['tile'],
  examples: [
    { name: 'square', args: { x: 'a', h: 3 }, torch: 'y = a[:, :, None, None].repeat(1, 1, 3, 3)' },
    { name: 'h 2 w 5', args: { x: 'a', h: 2, w: 5 }, torch: 'y = a[:, :, None, None].repeat(1, 1, 2, 5)' },
  ],
};

export const shapeOps = [upsampleOp, concatLangOp, splitOp, reshapeLangOp, flattenOp, tileLangOp];
