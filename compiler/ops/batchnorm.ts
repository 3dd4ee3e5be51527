// BatchNorm 1d ([N, C]) and 2d ([N, C, H, W]), PyTorch semantics: training mode
// normalises with the batch mean and biased variance and updates the running
// statistics with momentum (unbiased variance); eval mode uses the running
// statistics. A composite: the reductions become workgroup-tree kernels and
// the apply (x - mean) * rstd * weight + bias fuses with whatever activation
// follows.
//
// Inputs: x, then weight and bias when attrs.affine, then the running mean and
// variance buffers when attrs.stats (batchNorm() below assembles them).
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/graph.ts';
import { broadcastsTo, fmtShape } from '../ir/shape.ts';
import { shapeError, type CompositeOp, type PrimitiveOp } from './op.ts';
import { broadcastIndexer, mapOut } from './refutil.ts';

export interface BatchNormAttrs {
  training: boolean;
  momentum: number;
  eps: number;
  /** Inputs include weight and bias. */
  affine: boolean;
  /** Inputs include the running mean and variance buffers. */
  stats: boolean;
}

/** Batch mean and biased variance over `axes` (two passes: the variance of the centred values). */
function moments(b: GraphBuilder, x: Value, axes: number[]): { mean: Value; v: Value } {
  const mean = b.mean(x, axes, true);
  const xc = b.sub(x, mean);
  return { mean, v: b.mean(b.mul(xc, xc), axes, true) };
}

export interface NormalizeAttrs {
  /** The axes the statistics reduce over (the gradient rule's sums; the op itself is elementwise). */
  statsOver: number[];
}

/**
 * xhat = (x - mean) * rstd, where mean and rstd = 1/sqrt(var + eps) are x's
 * own batch statistics over `axes` (only batchnorm's training mode builds it,
 * from moments()). Its gradient rule is the total derivative through the
 * statistics, dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), and none for
 * mean and rstd, so autodiff never walks the statistics' graphs at first
 * order: the backward is one launch of per-channel sums and one elementwise
 * pass, and every BatchNorm's input gradient is one form of kernel. The rule
 * is built from differentiable ops on live values (rstd, xhat), so a second
 * derivative (a gradient penalty) is exact too (test/ops/double.test.ts).
 */
export const bnNormalizeOp: PrimitiveOp<NormalizeAttrs> = {
  name: 'bn_normalize',
  doc: "(x - mean) * rstd with x's own batch statistics (BatchNorm's training-mode normalisation); the gradient is x's total derivative",
  kind: 'fusible',
  arity: 3,
  shape: (ins) => {
    if (!broadcastsTo(ins[1], ins[0]) || !broadcastsTo(ins[2], ins[0])) throw shapeError('bn_normalize', 'mean and rstd must broadcast to x', ins);
    return [...ins[0]];
  },
  fn: (c) => `let x = ${c.bcast(0)};\n  let m = ${c.bcast(1)};\n  let r = ${c.bcast(2)};\n  return ((x - m) * r);`,
  ref: (ins, c) => {
    const [im, ir] = [broadcastIndexer(c.ins[1], c.out), broadcastIndexer(c.ins[2], c.out)];
    return mapOut(c.out, (i) => (ins[0][i] - ins[1][im(i)]) * ins[2][ir(i)]);
  },
  grad: ({ b, x, y, gy, attrs, needs }) => {
    if (!needs[0]) return [null, null, null];
    const axes = attrs.statsOver;
    const meanG = b.mean(gy, axes, true);
    const meanGY = b.mean(b.mul(gy, y), axes, true);
    return [b.mul(x[2], b.sub(b.sub(gy, meanG), b.mul(y, meanGY))), null, null];
  },
  parity: [
    {
      name: '2d',
      inputs: [[3, 4, 3, 3]],
      grad: [0],
      torch: 'F.batch_norm(x0, None, None, training=True, eps=1e-5)',
      build: (b, [x]) => normalized(b, x, [0, 2, 3], 1e-5).xhat,
    },
    {
      name: '1d',
      inputs: [[5, 6]],
      grad: [0],
      torch: 'F.batch_norm(x0, None, None, training=True, eps=1e-3)',
      build: (b, [x]) => normalized(b, x, [0], 1e-3).xhat,
    },
  ],
  flopsPerElement: 2,
};

/** x normalised by its batch statistics over `axes` (training mode), with the statistics. */
function normalized(b: GraphBuilder, x: Value, axes: number[], eps: number): { xhat: Value; mean: Value; v: Value } {
  const { mean, v } = moments(b, x, axes);
  const rstd = b.div(1, b.sqrt(b.add(v, eps)));
  return { xhat: b.apply('bn_normalize', [x, mean, rstd], { statsOver: axes }), mean, v };
}

function expand(b: GraphBuilder, ins: readonly Value[], o: BatchNormAttrs): Value {
  const x = ins[0];
  let k = 1;
  const [weight, bias] = o.affine ? [ins[k++], ins[k++]] : [undefined, undefined];
  const [runningMean, runningVar] = o.stats ? [ins[k++], ins[k++]] : [undefined, undefined];
  if (k !== ins.length || ins.some((v) => v === undefined)) throw new Error(`batchnorm: expects ${k} inputs (affine ${o.affine}, stats ${o.stats}), got ${ins.length}`);
  const rank = x.shape.length;
  if (rank !== 2 && rank !== 4) throw new Error(`batchnorm: expects [N, C] or [N, C, H, W], got ${fmtShape(x.shape)}`);
  const c = x.shape[1];
  const axes = rank === 2 ? [0] : [0, 2, 3];
  const bshape = rank === 2 ? [1, c] : [1, c, 1, 1];
  const { eps, momentum } = o;
  const affine = (y: Value) => {
    if (weight) y = b.mul(y, b.reshape(weight, bshape));
    if (bias) y = b.add(y, b.reshape(bias, bshape));
    return y;
  };
  if (o.training) {
    const n = axes.reduce((p, a) => p * x.shape[a], 1);
    const { xhat, mean, v } = normalized(b, x, axes, eps);
    if (runningMean && runningVar) {
      if (n < 2) throw new Error(`batchnorm: training needs more than one value per channel, got ${fmtShape(x.shape)}`);
      const rm = b.read(runningMean);
      b.assign(runningMean, b.add(b.mul(rm, 1 - momentum), b.mul(b.reshape(b.detach(mean), [c]), momentum)));
      const rv = b.read(runningVar);
      // The unbiased variance's factor folded into the momentum: both updates
      // are then r * (1 - m) + s * k, one WGSL (one pipeline) for both.
      b.assign(runningVar, b.add(b.mul(rv, 1 - momentum), b.mul(b.reshape(b.detach(v), [c]), (momentum * n) / (n - 1))));
    }
    return affine(xhat);
  }
  if (!runningMean || !runningVar) throw new Error('batchnorm: eval mode needs the running mean and variance');
  const mean = b.reshape(b.read(runningMean), bshape);
  const rstd = b.div(1, b.sqrt(b.add(b.reshape(b.read(runningVar), bshape), eps)));
  return affine(b.mul(b.sub(x, mean), rstd));
}

export const batchNormOp: CompositeOp<BatchNormAttrs> = {
  name: 'batchnorm',
  kind: 'composite',
  doc: 'BatchNorm1d/2d: batch statistics and running-stat updates in training mode, running statistics in eval mode',
  arity: -1,
  expand,
  parity: [
    {
      name: '2d_train',
      inputs: [[3, 4, 3, 3], [4], [4]],
      attrs: { training: true, momentum: 0.1, eps: 1e-5, affine: true, stats: false },
      torch: 'F.batch_norm(x0, None, None, x1, x2, training=True, momentum=0.1, eps=1e-5)',
    },
    {
      name: '1d_train',
      inputs: [[5, 6], [6], [6]],
      attrs: { training: true, momentum: 0.1, eps: 1e-5, affine: true, stats: false },
      torch: 'F.batch_norm(x0, None, None, x1, x2, training=True)',
    },
    {
      name: '2d_eval',
      inputs: [[2, 3, 2, 2], [3], [3], [3], [3]],
      domain: ['normal', 'normal', 'normal', 'normal', 'positive'],
      grad: [0, 1, 2],
      torch: 'F.batch_norm(x0, x3, x4, x1, x2, training=False)',
      build: (b, [x, w, bias, rm, rv]) => {
        // Running stats are buffers in a model; in the parity case they are inputs copied through.
        const bm = b.buffer('rm', [3]);
        const bv = b.buffer('rv', [3]);
        b.assign(bm, rm);
        b.assign(bv, rv);
        return batchNorm(b, x, { weight: w, bias, runningMean: bm, runningVar: bv, training: false });
      },
    },
  ],
};

export interface BatchNormOptions {
  weight?: Value;
  bias?: Value;
  runningMean?: Value;
  runningVar?: Value;
  training: boolean;
  momentum?: number;
  eps?: number;
}

/** BatchNorm through its record; weight and bias come together, as do the running statistics. */
export function batchNorm(b: GraphBuilder, x: Value, o: BatchNormOptions): Value {
  const affine = o.weight !== undefined || o.bias !== undefined;
  const stats = o.runningMean !== undefined || o.runningVar !== undefined;
  if (affine && !(o.weight && o.bias)) throw new Error('batchnorm: give both weight and bias, or neither');
  if (stats && !(o.runningMean && o.runningVar)) throw new Error('batchnorm: give both running statistics, or neither');
  const ins = [x, ...(affine ? [o.weight!, o.bias!] : []), ...(stats ? [o.runningMean!, o.runningVar!] : [])];
  return b.apply('batchnorm', ins, { training: o.training, momentum: o.momentum ?? 0.1, eps: o.eps ?? 1e-5, affine, stats });
}
