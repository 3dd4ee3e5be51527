// The arithmetic operators on tensors (and tensors with numbers): + - * /,
// with NumPy broadcasting of the per-sample shapes. Unary minus is `x * -1`.
// The broadcast rule is the IR op's own, applied as lowering applies it: the
// lower-rank operand gets size-1 axes after the batch axis.
import { shapeStr, type Tensor, type Value } from '../../check/values.ts';
import type { GraphBuilder } from '../../ir/builder.ts';
import type { Value as IrValue } from '../../ir/graph.ts';
import { primitive } from '../../ops/registry.ts';
import { irShape, type OpExample, type OperatorOp } from '../op.ts';

/** Per-sample shape padded with leading 1s to `rank`, batch of one in front. */
const batched = (s: number[], rank: number) => [1, ...Array<number>(rank - s.length).fill(1), ...s];

function alignRank(b: GraphBuilder, v: IrValue, rank: number): IrValue {
  if (v.shape.length === rank) return v;
  const [n, ...rest] = v.shape;
  return b.reshape(v, [n, ...Array(rank - v.shape.length).fill(1), ...rest]);
}

function operator(symbol: string, node: string, examples: OpExample[]): OperatorOp {
  return {
    syntax: 'operator',
    name: symbol,
    node,
    summary: `elementwise '${symbol}' with broadcasting (a number on either side)`,
    check(ctx, l: Value, r: Value) {
      const ls = l.t === 'tensor' ? l.shape : [];
      const rs = r.t === 'tensor' ? r.shape : [];
      const rank = Math.max(ls.length, rs.length);
      const out = irShape(ctx, node, () => primitive(node).shape([batched(ls, rank), batched(rs, rank)], {}), {
        message: `shapes ${shapeStr(ls)} and ${shapeStr(rs)} do not broadcast in '${node}'`,
        label: `${shapeStr(ls)} ${node} ${shapeStr(rs)}`,
        help: 'broadcasting aligns shapes from the right; sizes must match or be 1',
      });
      const inputs = [l, r].filter((v): v is Tensor => v.t === 'tensor');
      const attrs: Record<string, number> = {};
      if (l.t === 'num') attrs.left = l.v;
      if (r.t === 'num') attrs.right = r.v;
      return ctx.node(inputs, out, { attrs });
    },
    lower: ({ b, x, node: n, shape }) => {
      const a = n.attrs;
      let i = 0;
      const l: IrValue | number = 'left' in a ? (a.left as number) : alignRank(b, x[i++], shape.length);
      const r: IrValue | number = 'right' in a ? (a.right as number) : alignRank(b, x[i++], shape.length);
      const operand = (v: IrValue | number) => (typeof v === 'number' ? b.scalar(v) : v);
      return b.apply(node, [operand(l), operand(r)]);
    },
    ir: [node],
    examples,
  };
}

export const arithmeticOps: OperatorOp[] = [
  operator('+', 'add', [
    { name: 'same shape', args: { x: 'a', y: 'b' }, torch: 'y = a + b' },
    { name: 'vector over map', args: { x: 'm', y: 'a' }, ir: ['reshape', 'add'], torch: 'y = m + a[:, None, None, :]' },
  ]),
  operator('-', 'sub', [
    { name: 'number left', args: { x: 1, y: 'a' }, ir: ['fill', 'sub'], torch: 'y = 1 - a' },
    { name: 'maps', args: { x: 'm', y: 'n' }, torch: 'y = m - n' },
  ]),
  operator('*', 'mul', [
    { name: 'number right', args: { x: 'm', y: 0.5 }, ir: ['fill', 'mul'], torch: 'y = m * 0.5' },
    { name: 'vectors', args: { x: 'a', y: 'b' }, torch: 'y = a * b' },
  ]),
  operator('/', 'div', [{ name: 'by positive', args: { x: 'a', y: 'p' }, torch: 'y = a / p' }]),
];
