// Image resizing as F.interpolate does it (align_corners=False, no antialias):
// a separable linear map, so `resize` is two matmuls with interpolation
// matrices (interp_matrix), and its gradient is the transposed products that
// autodiff already makes. CLIP guidance resizes G's images to the tower's 224.
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/graph.ts';
import { fmtShape } from '../ir/shape.ts';
import { f32, type CompositeOp, type PrimitiveOp } from './op.ts';
import { mapOut } from './refutil.ts';

export type ResizeMode = 'bilinear' | 'bicubic';

export interface InterpAttrs {
  from: number;
  to: number;
  mode: ResizeMode;
}

/** PyTorch's bicubic kernel constant. */
const A = -0.75;
const cubic1 = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
const cubic2 = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;

/** Interpolation weight of source pixel p for output o, in float64 (the reference). */
function weight(o: number, p: number, { from, to, mode }: InterpAttrs): number {
  const src = Math.fround(from / to) * (o + 0.5) - 0.5;
  if (mode === 'bilinear') {
    const s = Math.max(src, 0);
    const i0 = Math.floor(s);
    const l1 = s - i0;
    return (p === i0 ? 1 - l1 : 0) + (p === Math.min(i0 + 1, from - 1) ? l1 : 0);
  }
  const i0 = Math.floor(src);
  const t = src - i0;
  const w = [cubic2(t + 1), cubic1(t), cubic1(1 - t), cubic2(2 - t)];
  return w.reduce((acc, wk, k) => acc + (Math.min(Math.max(i0 - 1 + k, 0), from - 1) === p ? wk : 0), 0);
}

export const interpMatrixOp: PrimitiveOp<InterpAttrs> = {
  name: 'interp_matrix',
  doc: "[to, from] weights of 1-D resampling from `from` to `to` samples (F.interpolate's, align_corners=False)",
  kind: 'fusible',
  arity: 0,
  shape: (_ins, { from, to }) => [to, from],
  fn: (c) => {
    const { from, mode } = c.attrs;
    const last = `${from - 1}`;
    const lines = [
      `let o = f32(i / ${from}u);`,
      `let p = i32(i % ${from}u);`,
      `let src = ${f32(Math.fround(from / c.attrs.to))} * (o + 0.5) - 0.5;`,
    ];
    if (mode === 'bilinear') {
      lines.push(
        'let s = max(src, 0.0);',
        'let i0 = i32(floor(s));',
        'let l1 = s - floor(s);',
        `return select(0.0, 1.0 - l1, p == i0) + select(0.0, l1, p == min(i0 + 1, ${last}));`,
      );
    } else {
      const c1 = (x: string) => `((${f32(A + 2)} * ${x} - ${f32(A + 3)}) * ${x} * ${x} + 1.0)`;
      const c2 = (x: string) => `(((${f32(A)} * ${x} - ${f32(5 * A)}) * ${x} + ${f32(8 * A)}) * ${x} - ${f32(4 * A)})`;
      lines.push('let i0 = i32(floor(src));', 'let t = src - floor(src);');
      const w = [c2('(t + 1.0)'), c1('t'), c1('(1.0 - t)'), c2('(2.0 - t)')];
      lines.push(`return ${w.map((wk, k) => `select(0.0, ${wk}, clamp(i0 + ${k - 1}, 0, ${last}) == p)`).join('\n    + ')};`);
    }
    return lines.join('\n  ');
  },
  ref: (_ins, c) => mapOut(c.out, (i) => weight(Math.floor(i / c.attrs.from), i % c.attrs.from, c.attrs)),
  grad: () => [],
  parity: [
    { name: 'bilinear-down', inputs: [], attrs: { from: 9, to: 7, mode: 'bilinear' }, grad: [], torch: 'F.interpolate(torch.eye(9)[None, None], size=(7, 9), mode="bilinear", align_corners=False)[0, 0]' },
    { name: 'bilinear-up', inputs: [], attrs: { from: 4, to: 10, mode: 'bilinear' }, grad: [], torch: 'F.interpolate(torch.eye(4)[None, None], size=(10, 4), mode="bilinear", align_corners=False)[0, 0]' },
    { name: 'bicubic-down', inputs: [], attrs: { from: 16, to: 14, mode: 'bicubic' }, grad: [], torch: 'F.interpolate(torch.eye(16)[None, None], size=(14, 16), mode="bicubic", align_corners=False)[0, 0]' },
    { name: 'bicubic-up', inputs: [], attrs: { from: 5, to: 11, mode: 'bicubic' }, grad: [], torch: 'F.interpolate(torch.eye(5)[None, None], size=(11, 5), mode="bicubic", align_corners=False)[0, 0]' },
  ],
  flopsPerElement: 8,
};

export interface ResizeAttrs {
  h: number;
  w: number;
  mode: ResizeMode;
}

export const resizeOp: CompositeOp<ResizeAttrs> = {
  name: 'resize',
  kind: 'composite',
  doc: 'NCHW resized to h x w, bilinear or bicubic (F.interpolate, align_corners=False)',
  arity: 1,
  expand: (b, [x], { h, w, mode }) => {
    if (x.shape.length !== 4) throw new Error(`resize: expects an NCHW tensor, got ${fmtShape(x.shape)}`);
    const [N, C, H, W] = x.shape;
    const along = (t: Value, rows: number, from: number, to: number) =>
      b.matmul(b.reshape(t, [rows, from]), b.apply('interp_matrix', [], { from, to, mode }), { transB: true });
    // Width first, then height through a transpose of each plane.
    const byW = b.reshape(along(x, N * C * H, W, w), [N * C, H, w]);
    const byH = along(b.apply('permute', [byW], { perm: [0, 2, 1] }), N * C * w, H, h);
    return b.reshape(b.apply('permute', [b.reshape(byH, [N * C, w, h])], { perm: [0, 2, 1] }), [N, C, h, w]);
  },
  parity: [
    { name: 'bilinear', inputs: [[2, 3, 9, 8]], attrs: { h: 7, w: 6, mode: 'bilinear' }, torch: 'F.interpolate(x0, size=(7, 6), mode="bilinear", align_corners=False)' },
    { name: 'bicubic', inputs: [[1, 2, 8, 8]], attrs: { h: 7, w: 7, mode: 'bicubic' }, torch: 'F.interpolate(x0, size=(7, 7), mode="bicubic", align_corners=False)' },
  ],
};

/** NCHW resized to h x w (F.interpolate, align_corners=False). */
export function resize(b: GraphBuilder, x: Value, h: number, w: number, mode: ResizeMode): Value {
  return b.apply('resize', [x], { h, w, mode });
}

export const resizeOps = [interpMatrixOp, resizeOp];
