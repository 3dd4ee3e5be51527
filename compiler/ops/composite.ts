// Composite ops: defined by how the builder expands them into primitives, so
// autodiff and fusion need nothing special for them. Each keeps its parity
// cases here, next to its definition.
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/graph.ts';
import { axis as normAxis, fmtShape } from '../ir/shape.ts';
import type { CompositeOp } from './op.ts';

export function linear(b: GraphBuilder, x: Value, w: Value, bias?: Value): Value {
  if (x.shape.length !== 2 || w.shape.length !== 2 || x.shape[1] !== w.shape[1]) {
    throw new Error(`linear: input ${fmtShape(x.shape)} does not match weight ${fmtShape(w.shape)} ([out, in])`);
  }
  const y = b.matmul(x, w, { transB: true });
  return bias ? b.add(y, bias) : y;
}

export function glu(b: GraphBuilder, x: Value, axis = 1): Value {
  const a = normAxis(axis, x.shape.length);
  if (x.shape[a] % 2) throw new Error(`glu: axis ${a} of ${fmtShape(x.shape)} has odd size`);
  const [h, g] = b.split(x, a, 2);
  return b.mul(h, b.sigmoid(g));
}

export function tileHW(b: GraphBuilder, v: Value, h: number, w: number): Value {
  if (v.shape.length !== 2) throw new Error(`tile: expects a [B, C] vector batch, got ${fmtShape(v.shape)}`);
  const [n, c] = v.shape;
  return b.expand(b.reshape(v, [n, c, 1, 1]), [n, c, h, w]);
}

/** PyTorch 1.13's formula: sum(a*b) / sqrt(max(sum(a*a) * sum(b*b), eps^2)). */
export function cosineSimilarity(b: GraphBuilder, x: Value, y: Value, axis = 1, eps = 1e-8): Value {
  const a = normAxis(axis, x.shape.length);
  const dot = b.sum(b.mul(x, y), [a]);
  const nx = b.sum(b.mul(x, x), [a]);
  const ny = b.sum(b.mul(y, y), [a]);
  return b.div(dot, b.sqrt(b.maximum(b.mul(nx, ny), eps * eps)));
}

export const compositeOps: CompositeOp[] = [
  {
    name: 'linear',
    kind: 'composite',
    doc: 'x @ w^T + bias, w in [out, in] (nn.Linear)',
    parity: [
      { name: 'bias', inputs: [[4, 6], [5, 6], [5]], torch: 'F.linear(x0, x1, x2)', build: (b, [x, w, bias]) => b.linear(x, w, bias) },
      { name: 'nobias', inputs: [[3, 7], [2, 7]], torch: 'F.linear(x0, x1)', build: (b, [x, w]) => b.linear(x, w) },
    ],
  },
  {
    name: 'conv2d_bias',
    kind: 'composite',
    doc: 'conv2d followed by a per-channel bias',
    parity: [
      {
        inputs: [[2, 3, 6, 6], [4, 3, 3, 3], [4]],
        torch: 'F.conv2d(x0, x1, x2, stride=1, padding=1)',
        build: (b, [x, w, bias]) => b.conv2d(x, w, { stride: 1, pad: 1, bias }),
      },
    ],
  },
  {
    name: 'glu',
    kind: 'composite',
    doc: 'first half * sigmoid(second half) over channels',
    parity: [
      { name: 'nchw', inputs: [[2, 6, 3, 3]], torch: 'F.glu(x0, 1)', build: (b, [x]) => b.glu(x) },
      { name: 'vec', inputs: [[3, 8]], torch: 'F.glu(x0, 1)', build: (b, [x]) => b.glu(x) },
    ],
  },
  {
    name: 'tile_hw',
    kind: 'composite',
    doc: '[B, C] -> [B, C, H, W]',
    parity: [{ inputs: [[2, 3]], torch: 'x0[:, :, None, None].repeat(1, 1, 4, 4)', build: (b, [x]) => b.tileHW(x, 4, 4) }],
  },
  {
    name: 'mean',
    kind: 'composite',
    doc: 'mean over axes (sum * 1/n)',
    parity: [{ inputs: [[2, 3, 4, 4]], torch: 'x0.mean((2, 3))', build: (b, [x]) => b.mean(x, [2, 3]) }],
  },
  {
    name: 'split',
    kind: 'composite',
    doc: 'split into pieces (slices); here the second of three',
    parity: [{ inputs: [[2, 9]], torch: 'torch.split(x0, [2, 3, 4], 1)[1]', build: (b, [x]) => b.split(x, 1, [2, 3, 4])[1] }],
  },
  {
    name: 'cosine_similarity',
    kind: 'composite',
    doc: 'cosine similarity along an axis',
    parity: [{ inputs: [[4, 6], [4, 6]], torch: 'F.cosine_similarity(x0, x1, 1)', build: (b, [x, y]) => b.cosineSimilarity(x, y) }],
  },
];
