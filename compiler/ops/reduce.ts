// Reductions over chosen axes. Each declares its algebra (identity and
// combine step); compiler/kernels/fused.ts renders any of them as a serial
// loop or a workgroup tree with its fusible producers inlined, so
// sum((x - m)^2) is one kernel. mean is the composite sum * 1/n.
import { shapeError, type CompositeOp, type GradRule, type ParityCase, type PrimitiveOp, type Reduction } from './op.ts';
import { numel, strides, type Shape } from '../ir/shape.ts';

export interface ReduceAttrs {
  axes: number[];
  keepdims: boolean;
}

export function keptShape(input: Shape, axes: readonly number[]): number[] {
  return input.map((d, i) => (axes.includes(i) ? 1 : d));
}

interface ReductionSpec {
  name: string;
  doc: string;
  reduce: Reduction;
  grad: GradRule<ReduceAttrs>;
  parity: ParityCase[];
}

function reduction(s: ReductionSpec): PrimitiveOp<ReduceAttrs> {
  return {
    name: s.name,
    doc: s.doc,
    kind: 'reduce',
    arity: 1,
    reduce: s.reduce,
    shape: (ins, { axes, keepdims }) => {
      for (const a of axes) if (a < 0 || a >= ins[0].length) throw shapeError(s.name, `axis ${a} out of range`, ins);
      return keepdims ? keptShape(ins[0], axes) : ins[0].filter((_, i) => !axes.includes(i));
    },
    ref: (ins, c) => {
      const x = c.ins[0];
      const kept = keptShape(x, c.attrs.axes);
      const xs = strides(x);
      const ks = strides(kept);
      const out = new Float64Array(numel(kept)).fill(s.reduce.identity);
      for (let i = 0; i < ins[0].length; i++) {
        let o = 0;
        for (let d = 0; d < x.length; d++) if (kept[d] > 1) o += (Math.floor(i / xs[d]) % x[d]) * ks[d];
        out[o] = s.reduce.js(out[o], ins[0][i]);
      }
      return out;
    },
    grad: s.grad,
    parity: s.parity,
    flopsPerElement: 1,
  };
}

export const sumOp = reduction({
  name: 'sum',
  doc: 'sum over axes (keepdims optional)',
  reduce: { identity: 0, combine: (a, b) => `${a} + ${b}`, js: (a, b) => a + b },
  grad: ({ b, gy, x, attrs }) => [b.expand(b.reshape(gy, keptShape(x[0].shape, attrs.axes)), x[0].shape)],
  parity: [
    { name: 'all', inputs: [[3, 5]], attrs: { axes: [0, 1], keepdims: false }, torch: 'x0.sum()' },
    { name: 'bn2d', inputs: [[2, 3, 4, 5]], attrs: { axes: [0, 2, 3], keepdims: true }, torch: 'x0.sum((0, 2, 3), keepdim=True)' },
    { name: 'inner', inputs: [[4, 70]], attrs: { axes: [1], keepdims: false }, torch: 'x0.sum(1)' },
    { name: 'big', inputs: [[2, 3, 16, 16]], attrs: { axes: [0, 2, 3], keepdims: false }, torch: 'x0.sum((0, 2, 3))' },
    // Shapes that select each form of the reduction kernel (compiler/kernels/fused.ts):
    // a tree whose inner (lane) loop is the batch run, longer than the map's;
    { name: 'lanes-on-batch', inputs: [[40, 3, 2, 2]], attrs: { axes: [0, 2, 3], keepdims: false }, torch: 'x0.sum((0, 2, 3))' },
    // three reduced runs (two in the outer loop) and two kept, a tree;
    { name: 'three-reduced-runs', inputs: [[2, 3, 4, 2, 5]], attrs: { axes: [0, 2, 4], keepdims: false }, torch: 'x0.sum((0, 2, 4))' },
    // three kept runs, serial;
    { name: 'three-kept-runs', inputs: [[3, 2, 4, 2, 5]], attrs: { axes: [1, 3], keepdims: true }, torch: 'x0.sum((1, 3), keepdim=True)' },
    // outputs enough to reduce each serially, more than one workgroup's worth
    // (forward only: its gradient is the expand the cases above check, and
    // finite differences over 164K inputs take minutes).
    { name: 'many-outputs', inputs: [[4100, 40]], attrs: { axes: [1], keepdims: false }, torch: 'x0.sum(1)', grad: [] },
  ],
});

/** The most negative finite f32: the identity of max (WGSL has no infinity literal). */
const F32_LOWEST = -3.4028234663852886e38;

export const maxOp = reduction({
  name: 'max',
  doc: 'maximum over axes (keepdims optional); the gradient goes to every element equal to the maximum (torch.amax)',
  reduce: { identity: F32_LOWEST, combine: (a, b) => `max(${a}, ${b})`, js: (a, b) => Math.max(a, b) },
  grad: ({ b, gy, x, y, attrs }) => {
    const kept = keptShape(x[0].shape, attrs.axes);
    const hit = b.apply('equal', [x[0], b.expand(b.reshape(y, kept), x[0].shape)]);
    return [b.mul(b.expand(b.reshape(gy, kept), x[0].shape), hit)];
  },
  parity: [
    { name: 'rows', inputs: [[4, 9]], attrs: { axes: [1], keepdims: true }, torch: 'x0.amax(1, keepdim=True)' },
    { name: 'bn2d', inputs: [[2, 3, 4, 5]], attrs: { axes: [0, 2, 3], keepdims: false }, torch: 'x0.amax((0, 2, 3))' },
    { name: 'tree', inputs: [[3, 300]], attrs: { axes: [1], keepdims: false }, torch: 'x0.amax(1)' },
  ],
});

export const meanOp: CompositeOp<ReduceAttrs> = {
  name: 'mean',
  kind: 'composite',
  doc: 'mean over axes (sum * 1/n)',
  arity: 1,
  expand: (b, [x], { axes, keepdims }) => b.mean(x, axes, keepdims),
  parity: [{ inputs: [[2, 3, 4, 4]], attrs: { axes: [2, 3], keepdims: false }, torch: 'x0.mean((2, 3))' }],
};

/** max_pool2d with a k x k window and stride k (VGG's 2x2): a max over the window axes of a reshape. */
export const maxPool2dOp: CompositeOp<{ k: number }> = {
  name: 'max_pool2d',
  kind: 'composite',
  doc: 'max pooling of NCHW over k x k windows with stride k (F.max_pool2d(x, k))',
  arity: 1,
  expand: (b, [x], { k }) => {
    if (x.shape.length !== 4) throw new Error(`max_pool2d: expects an NCHW tensor, got [${x.shape.join(', ')}]`);
    const [n, c, h, w] = x.shape;
    if (h % k || w % k) throw new Error(`max_pool2d: ${h}x${w} is not a multiple of the ${k}x${k} window`);
    const windows = b.reshape(x, [n, c, h / k, k, w / k, k]);
    return b.reshape(b.reduce('max', windows, [3, 5]), [n, c, h / k, w / k]);
  },
  parity: [
    { name: 'k2', inputs: [[2, 3, 6, 8]], attrs: { k: 2 }, torch: 'F.max_pool2d(x0, 2)' },
    { name: 'k3', inputs: [[1, 2, 6, 9]], attrs: { k: 3 }, torch: 'F.max_pool2d(x0, 3)' },
  ],
};

export const reduceOps = [sumOp, maxOp, meanOp, maxPool2dOp];
