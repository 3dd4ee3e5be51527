// GLU and cosine similarity: composites over elementwise ops and reductions,
// expanded by their records (GraphBuilder.apply), so autodiff and fusion need
// nothing special for them. Other composites live with their family: linear
// (matmul.ts), conv2d_bias (conv.ts), tile (shape.ts), mean (reduce.ts),
// batchnorm, the losses.
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/graph.ts';
import { axis as normAxis, fmtShape } from '../ir/shape.ts';
import type { CompositeOp } from './op.ts';

export const gluOp: CompositeOp<{ axis: number }> = {
  name: 'glu',
  kind: 'composite',
  doc: 'first half * sigmoid(second half) along an axis',
  arity: 1,
  expand: (b, [x], { axis }) => {
    const a = normAxis(axis, x.shape.length);
    if (x.shape[a] % 2) throw new Error(`glu: axis ${a} of ${fmtShape(x.shape)} has odd size`);
    const [h, g] = b.split(x, a, 2);
    return b.mul(h, b.sigmoid(g));
  },
  parity: [
    { name: 'nchw', inputs: [[2, 6, 3, 3]], attrs: { axis: 1 }, torch: 'F.glu(x0, 1)' },
    { name: 'vec', inputs: [[3, 8]], attrs: { axis: 1 }, torch: 'F.glu(x0, 1)' },
  ],
};

/** PyTorch 1.13's formula: sum(a*b) / sqrt(max(sum(a*a) * sum(b*b), eps^2)). */
export const cosineOp: CompositeOp<{ axis: number; eps: number }> = {
  name: 'cosine',
  kind: 'composite',
  doc: 'cosine similarity along an axis (F.cosine_similarity)',
  arity: 2,
  expand: (b, [x, y], { axis, eps }) => {
    const a = normAxis(axis, x.shape.length);
    const dot = b.sum(b.mul(x, y), [a]);
    const nx = b.sum(b.mul(x, x), [a]);
    const ny = b.sum(b.mul(y, y), [a]);
    return b.div(dot, b.sqrt(b.maximum(b.mul(nx, ny), eps * eps)));
  },
  parity: [{ inputs: [[4, 6], [4, 6]], attrs: { axis: 1, eps: 1e-8 }, torch: 'F.cosine_similarity(x0, x1, 1)' }],
};

/** First half * sigmoid(second half) along `axis` (default 1, channels). */
export function glu(b: GraphBuilder, x: Value, axis = 1): Value {
  return b.apply('glu', [x], { axis });
}

export function cosine(b: GraphBuilder, x: Value, y: Value, axis = 1, eps = 1e-8): Value {
  return b.apply('cosine', [x, y], { axis, eps });
}

/** Per-channel (axis 1) normalisation by fixed statistics: (x - mean[c]) / std[c], as torchvision's Normalize and CLIP's preprocessing. */
export const normalizeChannelsOp: CompositeOp<{ mean: number[]; std: number[] }> = {
  name: 'normalize_channels',
  kind: 'composite',
  doc: '(x - mean[c]) / std[c] over axis 1 with fixed per-channel statistics (torchvision Normalize)',
  arity: 1,
  expand: (b, [x], { mean, std }) => {
    const c = x.shape[1];
    if (mean.length !== c || std.length !== c) throw new Error(`normalize_channels: ${c} channels, ${mean.length} means and ${std.length} deviations`);
    const perChannel = (v: readonly number[]) => b.concat(v.map((k) => b.scalar(k, [1, 1, ...x.shape.slice(2).map(() => 1)])), 1);
    return b.div(b.sub(x, perChannel(mean)), perChannel(std));
  },
  parity: [
    {
      name: 'clip',
      inputs: [[2, 3, 4, 5]],
      attrs: { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] },
      torch: '(x0 - torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)) / torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)',
    },
  ],
};

export const compositeOps = [gluOp, cosineOp, normalizeChannelsOp];
