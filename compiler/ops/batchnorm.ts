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
import { fmtShape } from '../ir/shape.ts';
import type { CompositeOp } from './op.ts';

export interface BatchNormAttrs {
  training: boolean;
  momentum: number;
  eps: number;
  /** Inputs include weight and bias. */
  affine: boolean;
  /** Inputs include the running mean and variance buffers. */
  stats: boolean;
}

/**
 * Batch mean and biased variance over `axes`, as
 * v = mean((x - c)^2) - (mean - c)^2 with c = detach(mean): an identity for
 * any constant c, so v and all its derivatives are the variance's (a gradient
 * penalty differentiates it twice), and the second term is exactly 0 in value.
 * What it buys: autodiff no longer routes mean's gradient through the
 * variance's sum of centred values (identically 0), so the backward's sum(dy)
 * and sum(dy * xc) do not wait for each other and share one reduction launch.
 */
function moments(b: GraphBuilder, x: Value, axes: number[]): { mean: Value; v: Value } {
  const mean = b.mean(x, axes, true);
  const c = b.detach(mean);
  const xc = b.sub(x, c);
  const off = b.sub(mean, c);
  return { mean, v: b.sub(b.mean(b.mul(xc, xc), axes, true), b.mul(off, off)) };
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
    const { mean, v } = moments(b, x, axes);
    const xc = b.sub(x, mean);
    const rstd = b.div(1, b.sqrt(b.add(v, eps)));
    if (runningMean && runningVar) {
      if (n < 2) throw new Error(`batchnorm: training needs more than one value per channel, got ${fmtShape(x.shape)}`);
      const rm = b.read(runningMean);
      b.assign(runningMean, b.add(b.mul(rm, 1 - momentum), b.mul(b.reshape(b.detach(mean), [c]), momentum)));
      const rv = b.read(runningVar);
      const unbiased = b.mul(b.reshape(b.detach(v), [c]), n / (n - 1));
      b.assign(runningVar, b.add(b.mul(rv, 1 - momentum), b.mul(unbiased, momentum)));
    }
    return affine(b.mul(xc, rstd));
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
