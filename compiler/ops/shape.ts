// Data-movement ops: reshape, permute, concat, slice, zero pad, nearest upsample x2 and
// its adjoint (2x2 sum pooling). All are fusible index maps: output element i
// reads its inputs at computed indices, so they cost nothing when fused.
// tile (a vector batch spread over a plane) is the composite reshape + expand.
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/graph.ts';
import { fmtShape, numel, strides, type Shape } from '../ir/shape.ts';
import { shapeError, type CompositeOp, type PrimitiveOp } from './op.ts';
import { mapOut } from './refutil.ts';

/** outer / dim / inner split of a shape around `axis`. */
function around(shape: Shape, axis: number): { outer: number; dim: number; inner: number } {
  let outer = 1;
  let inner = 1;
  for (let d = 0; d < axis; d++) outer *= shape[d];
  for (let d = axis + 1; d < shape.length; d++) inner *= shape[d];
  return { outer, dim: shape[axis], inner };
}

export const reshapeOp: PrimitiveOp<{ shape: number[] }> = {
  name: 'reshape',
  doc: 'same elements, new shape (row-major)',
  kind: 'fusible',
  arity: 1,
  shape: (ins, a) => {
    if (numel(ins[0]) !== numel(a.shape)) throw shapeError('reshape', `cannot reshape to [${a.shape.join(',')}]`, ins);
    return [...a.shape];
  },
  fn: (c) => `return ${c.at(0, 'i')};`,
  ref: (ins) => Float64Array.from(ins[0]),
  grad: ({ b, gy, x }) => [b.reshape(gy, x[0].shape)],
  parity: [{ inputs: [[2, 12]], attrs: { shape: [2, 3, 2, 2] }, torch: 'x0.reshape(2, 3, 2, 2)' }],
  flopsPerElement: 0,
};

export const concatOp: PrimitiveOp<{ axis: number }> = {
  name: 'concat',
  doc: 'concatenation along an axis',
  kind: 'fusible',
  arity: -1,
  shape: (ins, { axis }) => {
    if (ins.length === 0) throw new Error('concat: no inputs');
    const out = [...ins[0]];
    out[axis] = 0;
    for (const s of ins) {
      if (s.length !== out.length || s.some((d, i) => i !== axis && d !== ins[0][i])) {
        throw shapeError('concat', `shapes differ outside axis ${axis}`, ins);
      }
      out[axis] += s[axis];
    }
    return out;
  },
  fn: (c) => {
    const { dim, inner } = around(c.out, c.attrs.axis);
    const z = c.size;
    const lines = [`let outer = ${z.div('i', dim * inner)};`, `let k = ${z.mod(z.div('i', inner), dim)};`, `let r = ${z.mod('i', inner)};`];
    let off = 0;
    c.ins.forEach((s, j) => {
      const dj = s[c.attrs.axis];
      const read = c.at(j, `${z.mul('outer', dj * inner)} + ${z.mul(`(k - ${z.u(off)})`, inner)} + r`);
      lines.push(j === c.ins.length - 1 ? `return ${read};` : `if (k < ${z.u(off + dj)}) { return ${read}; }`);
      off += dj;
    });
    return lines.join('\n  ');
  },
  ref: (ins, c) => {
    const { dim, inner } = around(c.out, c.attrs.axis);
    return mapOut(c.out, (i) => {
      const outer = Math.floor(i / (dim * inner));
      let k = Math.floor(i / inner) % dim;
      const r = i % inner;
      for (let j = 0; j < ins.length; j++) {
        const dj = c.ins[j][c.attrs.axis];
        if (k < dj) return ins[j][outer * dj * inner + k * inner + r];
        k -= dj;
      }
      throw new Error('unreachable');
    });
  },
  grad: ({ b, gy, x, attrs, needs }) => {
    let off = 0;
    return x.map((xi, j) => {
      const d = xi.shape[attrs.axis];
      const g = needs[j] ? b.slice(gy, attrs.axis, off, off + d) : null;
      off += d;
      return g;
    });
  },
  parity: [
    { name: 'ch', inputs: [[2, 3, 2, 2], [2, 1, 2, 2]], attrs: { axis: 1 }, torch: 'torch.cat([x0, x1], 1)' },
    { name: 'vec', inputs: [[2, 3], [2, 4], [2, 2]], attrs: { axis: 1 }, torch: 'torch.cat([x0, x1, x2], 1)' },
  ],
  flopsPerElement: 0,
};

export const sliceOp: PrimitiveOp<{ axis: number; start: number; end: number }> = {
  name: 'slice',
  doc: 'elements start..end-1 along an axis',
  kind: 'fusible',
  arity: 1,
  shape: (ins, { axis, start, end }) => {
    const s = ins[0];
    if (!(axis >= 0 && axis < s.length && start >= 0 && end <= s[axis] && start < end)) {
      throw shapeError('slice', `bad range ${start}..${end} on axis ${axis}`, ins);
    }
    const out = [...s];
    out[axis] = end - start;
    return out;
  },
  fn: (c) => {
    const { dim, inner } = around(c.out, c.attrs.axis);
    const din = c.ins[0][c.attrs.axis];
    const z = c.size;
    return [
      `let outer = ${z.div('i', dim * inner)};`,
      `let k = ${z.mod(z.div('i', inner), dim)};`,
      `return ${c.at(0, `${z.mul('outer', din * inner)} + ${z.mul(`(k + ${z.u(c.attrs.start)})`, inner)} + ${z.mod('i', inner)}`)};`,
    ].join('\n  ');
  },
  ref: (ins, c) => {
    const { dim, inner } = around(c.out, c.attrs.axis);
    const din = c.ins[0][c.attrs.axis];
    return mapOut(c.out, (i) => ins[0][Math.floor(i / (dim * inner)) * din * inner + ((Math.floor(i / inner) % dim) + c.attrs.start) * inner + (i % inner)]);
  },
  grad: ({ b, gy, x, attrs }) => [b.pad(gy, attrs.axis, attrs.start, x[0].shape[attrs.axis] - attrs.end)],
  parity: [
    { inputs: [[2, 6, 2, 2]], attrs: { axis: 1, start: 1, end: 4 }, torch: 'x0[:, 1:4]' },
    { inputs: [[3, 8]], attrs: { axis: 1, start: 4, end: 8 }, torch: 'x0[:, 4:8]' },
  ],
  flopsPerElement: 0,
};

export const padOp: PrimitiveOp<{ axis: number; before: number; after: number }> = {
  name: 'pad',
  doc: 'zero padding along one axis (the adjoint of slice)',
  kind: 'fusible',
  arity: 1,
  shape: (ins, { axis, before, after }) => {
    const out = [...ins[0]];
    out[axis] += before + after;
    return out;
  },
  fn: (c) => {
    const { dim, inner } = around(c.out, c.attrs.axis);
    const din = c.ins[0][c.attrs.axis];
    const { before } = c.attrs;
    const z = c.size;
    return [
      `let outer = ${z.div('i', dim * inner)};`,
      `let k = ${z.mod(z.div('i', inner), dim)};`,
      `if (k < ${z.u(before)} || k >= ${z.u(before + din)}) { return 0.0; }`,
      `return ${c.at(0, `${z.mul('outer', din * inner)} + ${z.mul(`(k - ${z.u(before)})`, inner)} + ${z.mod('i', inner)}`)};`,
    ].join('\n  ');
  },
  ref: (ins, c) => {
    const { dim, inner } = around(c.out, c.attrs.axis);
    const din = c.ins[0][c.attrs.axis];
    return mapOut(c.out, (i) => {
      const k = (Math.floor(i / inner) % dim) - c.attrs.before;
      return k < 0 || k >= din ? 0 : ins[0][Math.floor(i / (dim * inner)) * din * inner + k * inner + (i % inner)];
    });
  },
  grad: ({ b, gy, x, attrs }) => [b.slice(gy, attrs.axis, attrs.before, attrs.before + x[0].shape[attrs.axis])],
  parity: [{ inputs: [[2, 3, 2]], attrs: { axis: 1, before: 1, after: 2 }, torch: 'F.pad(x0, (0, 0, 1, 2))' }],
  flopsPerElement: 0,
};

function nchw(op: string, ins: readonly Shape[]): void {
  if (ins[0].length !== 4) throw shapeError(op, 'expects an NCHW tensor', ins);
}

export const upsample2xOp: PrimitiveOp = {
  name: 'upsample2x',
  doc: 'nearest-neighbour upsampling x2 of NCHW',
  kind: 'fusible',
  arity: 1,
  shape: (ins) => {
    nchw('upsample2x', ins);
    const [n, c, h, w] = ins[0];
    return [n, c, 2 * h, 2 * w];
  },
  fn: (c) => {
    const [, , h, w] = c.ins[0];
    const z = c.size;
    return [
      `let x = ${z.mod('i', 2 * w)};`,
      `let y = ${z.mod(z.div('i', 2 * w), 2 * h)};`,
      `let nc = ${z.div('i', 4 * h * w)};`,
      `return ${c.at(0, `${z.mul('nc', h * w)} + ${z.mul('(y >> 1u)', w)} + (x >> 1u)`)};`,
    ].join('\n  ');
  },
  ref: (ins, c) => {
    const [, , h, w] = c.ins[0];
    return mapOut(c.out, (i) => {
      const x = i % (2 * w);
      const y = Math.floor(i / (2 * w)) % (2 * h);
      return ins[0][Math.floor(i / (4 * h * w)) * h * w + (y >> 1) * w + (x >> 1)];
    });
  },
  grad: ({ b, gy }) => [b.sumPool2x(gy)],
  parity: [{ inputs: [[2, 3, 3, 4]], torch: 'F.interpolate(x0, scale_factor=2, mode="nearest")' }],
  flopsPerElement: 0,
};

export const sumPool2xOp: PrimitiveOp = {
  name: 'sum_pool2x',
  doc: 'sum of each 2x2 block of NCHW (the adjoint of upsample2x)',
  kind: 'fusible',
  arity: 1,
  shape: (ins) => {
    nchw('sum_pool2x', ins);
    const [n, c, h, w] = ins[0];
    if (h % 2 || w % 2) throw shapeError('sum_pool2x', 'H and W must be even', ins);
    return [n, c, h / 2, w / 2];
  },
  fn: (c) => {
    const [, , h, w] = c.ins[0];
    const z = c.size;
    const base = `${z.mul(z.div('i', (h / 2) * (w / 2)), h * w)} + ${z.mul(z.mod(z.div('i', w / 2), h / 2), 2 * w)} + (${z.mod('i', w / 2)} << 1u)`;
    const W = z.u(w);
    return [
      `let j = ${base};`,
      `return ${c.at(0, 'j')} + ${c.at(0, 'j + 1u')} + ${c.at(0, `j + ${W}`)} + ${c.at(0, `j + ${W} + 1u`)};`,
    ].join('\n  ');
  },
  ref: (ins, c) => {
    const [, , h, w] = c.ins[0];
    return mapOut(c.out, (i) => {
      const j = Math.floor(i / ((h / 2) * (w / 2))) * h * w + (Math.floor(i / (w / 2)) % (h / 2)) * 2 * w + (i % (w / 2)) * 2;
      return ins[0][j] + ins[0][j + 1] + ins[0][j + w] + ins[0][j + w + 1];
    });
  },
  grad: ({ b, gy }) => [b.upsample2x(gy)],
  parity: [{ inputs: [[2, 3, 4, 6]], torch: '4 * F.avg_pool2d(x0, 2)' }],
  flopsPerElement: 3,
};

export const tileOp: CompositeOp<{ h: number; w: number }> = {
  name: 'tile',
  kind: 'composite',
  doc: '[B, C] -> [B, C, H, W], each vector repeated over the plane',
  arity: 1,
  expand: (b, [v], { h, w }) => {
    if (v.shape.length !== 2) throw new Error(`tile: expects a [B, C] vector batch, got ${fmtShape(v.shape)}`);
    const [n, c] = v.shape;
    return b.expand(b.reshape(v, [n, c, 1, 1]), [n, c, h, w]);
  },
  parity: [{ inputs: [[2, 3]], attrs: { h: 4, w: 4 }, torch: 'x0[:, :, None, None].repeat(1, 1, 4, 4)' }],
};

/** [B, C] -> [B, C, H, W] (each vector repeated over the plane). */
export function tile(b: GraphBuilder, v: Value, h: number, w: number): Value {
  return b.apply('tile', [v], { h, w });
}

export const permuteOp: PrimitiveOp<{ perm: number[] }> = {
  name: 'permute',
  doc: 'axes reordered: output axis d is input axis perm[d] (torch.permute)',
  kind: 'fusible',
  arity: 1,
  shape: (ins, { perm }) => {
    const s = ins[0];
    if (perm.length !== s.length || [...perm].sort((a, b) => a - b).some((p, d) => p !== d)) {
      throw shapeError('permute', `[${perm.join(', ')}] is not a permutation of ${s.length} axes`, ins);
    }
    return perm.map((p) => s[p]);
  },
  fn: (c) => {
    const z = c.size;
    const os = strides(c.out);
    const is = strides(c.ins[0]);
    const terms = c.out.flatMap((d, k) => {
      if (d === 1) return [];
      const q = os[k] === 1 ? 'i' : z.div('i', os[k]);
      return [z.mul(`(${k === 0 ? q : z.mod(q, d)})`, is[c.attrs.perm[k]])];
    });
    return `return ${c.at(0, terms.length ? terms.join(' + ') : '0u')};`;
  },
  ref: (ins, c) => {
    const os = strides(c.out);
    const is = strides(c.ins[0]);
    return mapOut(c.out, (i) => ins[0][c.out.reduce((j, d, k) => j + (Math.floor(i / os[k]) % d) * is[c.attrs.perm[k]], 0)]);
  },
  grad: ({ b, gy, attrs }) => {
    const inverse: number[] = [];
    attrs.perm.forEach((p, d) => (inverse[p] = d));
    return [b.apply('permute', [gy], { perm: inverse })];
  },
  parity: [
    { name: 'heads', inputs: [[2, 5, 3, 4]], attrs: { perm: [0, 2, 1, 3] }, torch: 'x0.permute(0, 2, 1, 3)' },
    { name: 'qkv', inputs: [[2, 3, 3, 2, 4]], attrs: { perm: [2, 0, 3, 1, 4] }, torch: 'x0.permute(2, 0, 3, 1, 4)' },
    { name: 'transpose', inputs: [[6, 7]], attrs: { perm: [1, 0] }, torch: 'x0.t()' },
  ],
  flopsPerElement: 0,
};

export const shapeOps = [reshapeOp, permuteOp, concatOp, sliceOp, padOp, upsample2xOp, sumPool2xOp, tileOp];
