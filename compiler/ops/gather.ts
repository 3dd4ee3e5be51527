// Index-driven reads, as transformers need them: a token-embedding lookup, the
// one-hot matrix its weight gradient is built from, and a per-sample row pick
// (CLIP's text tower reads the end-of-text token's feature) with its adjoint.
// Indices are f32 tensors holding integers (exact below 2^24); they carry no
// gradient. All are fusible index maps: a gather inlines into its consumer.
import { numel } from '../ir/shape.ts';
import { shapeError, type PrimitiveOp } from './op.ts';
import { mapOut } from './refutil.ts';

/** An index held in an f32 tensor, as a WGSL u32 clamped into [0, n) (PyTorch would raise; a shader cannot). */
const index = (f: string, n: number, z: { u(n: number): string }) => `min(u32(max(${f}, 0.0)), ${z.u(n - 1)})`;
const clampIndex = (v: number, n: number) => Math.min(Math.max(Math.trunc(v), 0), n - 1);

export const embeddingOp: PrimitiveOp = {
  name: 'embedding',
  doc: 'rows of a table by index: ids [...] and weight [V, D] give [..., D] (F.embedding)',
  kind: 'fusible',
  arity: 2,
  shape: ([ids, w]) => {
    if (w.length !== 2) throw shapeError('embedding', 'the table must be [V, D]', [ids, w]);
    return [...ids, w[1]];
  },
  fn: (c) => {
    const [V, D] = c.ins[1];
    const z = c.size;
    return [`let id = ${index(c.at(0, z.div('i', D)), V, z)};`, `return ${c.at(1, `${z.mul('id', D)} + ${z.mod('i', D)}`)};`].join('\n  ');
  },
  ref: ([ids, w], c) => {
    const [V, D] = c.ins[1];
    return mapOut(c.out, (i) => w[clampIndex(ids[Math.floor(i / D)], V) * D + (i % D)]);
  },
  // dW = onehot(ids)^T @ dY: each row of the table gets the sum of its tokens' gradients.
  grad: ({ b, gy, x, needs }) => {
    const [ids, w] = x;
    const [V, D] = w.shape;
    const n = numel(ids.shape);
    const dw = needs[1] ? b.matmul(b.apply('onehot', [b.reshape(ids, [n])], { classes: V }), b.reshape(gy, [n, D]), { transA: true }) : null;
    return [null, dw];
  },
  parity: [
    { name: 'tokens', inputs: [[2, 5], [7, 4]], domain: [{ ints: 7 }, 'normal'], grad: [1], torch: 'F.embedding(x0.long(), x1)' },
    { name: 'repeats', inputs: [[9], [3, 6]], domain: [{ ints: 3 }, 'normal'], grad: [1], torch: 'F.embedding(x0.long(), x1)' },
  ],
  flopsPerElement: 0,
};

export const onehotOp: PrimitiveOp<{ classes: number }> = {
  name: 'onehot',
  doc: 'ids [...] -> [..., classes], 1 at each id (F.one_hot); no gradient flows',
  kind: 'fusible',
  arity: 1,
  differentiable: false,
  shape: ([ids], { classes }) => [...ids, classes],
  fn: (c) => {
    const V = c.attrs.classes;
    const z = c.size;
    return `return select(0.0, 1.0, ${index(c.at(0, z.div('i', V)), V, z)} == ${z.mod('i', V)});`;
  },
  ref: ([ids], c) => mapOut(c.out, (i) => (clampIndex(ids[Math.floor(i / c.attrs.classes)], c.attrs.classes) === i % c.attrs.classes ? 1 : 0)),
  grad: () => [null],
  parity: [{ inputs: [[2, 4]], attrs: { classes: 5 }, domain: [{ ints: 5 }], grad: [], torch: 'F.one_hot(x0.long(), 5).float()' }],
  flopsPerElement: 0,
};

/** Elements per row of x [B, T, ...rest]: prod(rest). */
const rowSize = (x: readonly number[]) => x.slice(2).reduce((p, d) => p * d, 1);

export const takeRowsOp: PrimitiveOp = {
  name: 'take_rows',
  doc: 'one row per sample: x [B, T, ...] and idx [B] give x[b, idx[b]] as [B, ...] (x[arange(B), idx])',
  kind: 'fusible',
  arity: 2,
  shape: ([x, idx]) => {
    if (x.length < 2 || idx.length !== 1 || idx[0] !== x[0]) throw shapeError('take_rows', 'expects x [B, T, ...] and idx [B]', [x, idx]);
    return [x[0], ...x.slice(2)];
  },
  fn: (c) => {
    const x = c.ins[0];
    const inner = rowSize(x);
    const z = c.size;
    return [
      `let s = ${z.div('i', inner)};`,
      `let t = ${index(c.at(1, 's'), x[1], z)};`,
      `return ${c.at(0, `${z.mul('s', x[1] * inner)} + ${z.mul('t', inner)} + ${z.mod('i', inner)}`)};`,
    ].join('\n  ');
  },
  ref: ([x, idx], c) => {
    const [, T] = c.ins[0];
    const inner = rowSize(c.ins[0]);
    return mapOut(c.out, (i) => {
      const s = Math.floor(i / inner);
      return x[s * T * inner + clampIndex(idx[s], T) * inner + (i % inner)];
    });
  },
  grad: ({ b, gy, x, needs }) => [needs[0] ? b.apply('put_rows', [gy, x[1]], { rows: x[0].shape[1] }) : null, null],
  parity: [
    { name: 'eot', inputs: [[3, 6, 4], [3]], domain: ['normal', { ints: 6 }], grad: [0], torch: 'x0[torch.arange(3), x1.long()]' },
    { name: 'maps', inputs: [[2, 3, 2, 2], [2]], domain: ['normal', { ints: 3 }], grad: [0], torch: 'x0[torch.arange(2), x1.long()]' },
  ],
  flopsPerElement: 0,
};

export const putRowsOp: PrimitiveOp<{ rows: number }> = {
  name: 'put_rows',
  doc: 'the adjoint of take_rows: g [B, ...] placed at row idx[b] of zeros [B, rows, ...]',
  kind: 'fusible',
  arity: 2,
  shape: ([g, idx], { rows }) => {
    if (g.length < 1 || idx.length !== 1 || idx[0] !== g[0]) throw shapeError('put_rows', 'expects g [B, ...] and idx [B]', [g, idx]);
    return [g[0], rows, ...g.slice(1)];
  },
  fn: (c) => {
    const T = c.attrs.rows;
    const inner = rowSize(c.out);
    const z = c.size;
    return [
      `let s = ${z.div('i', T * inner)};`,
      `if (${z.mod(z.div('i', inner), T)} != ${index(c.at(1, 's'), T, z)}) { return 0.0; }`,
      `return ${c.at(0, `${z.mul('s', inner)} + ${z.mod('i', inner)}`)};`,
    ].join('\n  ');
  },
  ref: ([g, idx], c) => {
    const T = c.attrs.rows;
    const inner = rowSize(c.out);
    return mapOut(c.out, (i) => {
      const s = Math.floor(i / (T * inner));
      return Math.floor(i / inner) % T === clampIndex(idx[s], T) ? g[s * inner + (i % inner)] : 0;
    });
  },
  grad: ({ b, gy, x, needs }) => [needs[0] ? b.apply('take_rows', [gy, x[1]]) : null, null],
  parity: [
    { inputs: [[3, 4], [3]], attrs: { rows: 5 }, domain: ['normal', { ints: 5 }], grad: [0], torch: 'y = torch.zeros(3, 5, 4).index_put((torch.arange(3), x1.long()), x0)' },
  ],
  flopsPerElement: 0,
};

export const gatherOps = [embeddingOp, onehotOp, takeRowsOp, putRowsOp];
