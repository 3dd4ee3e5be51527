// BatchNorm 1d ([N, C]) and 2d ([N, C, H, W]), PyTorch semantics: training mode
// normalises with the batch mean and biased variance and updates the running
// statistics with momentum (unbiased variance); eval mode uses the running
// statistics. Built from primitives: the reductions become workgroup-tree
// kernels and the apply (x - mean) * rstd * weight + bias fuses with whatever
// activation follows.
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/graph.ts';
import { fmtShape } from '../ir/shape.ts';
import type { CompositeOp } from './op.ts';

export interface BatchNormOptions {
  weight?: Value;
  bias?: Value;
  runningMean?: Value;
  runningVar?: Value;
  training: boolean;
  momentum?: number;
  eps?: number;
}

export function batchNorm(b: GraphBuilder, x: Value, o: BatchNormOptions): Value {
  const rank = x.shape.length;
  if (rank !== 2 && rank !== 4) throw new Error(`batchnorm: expects [N, C] or [N, C, H, W], got ${fmtShape(x.shape)}`);
  const c = x.shape[1];
  const axes = rank === 2 ? [0] : [0, 2, 3];
  const bshape = rank === 2 ? [1, c] : [1, c, 1, 1];
  const eps = o.eps ?? 1e-5;
  const momentum = o.momentum ?? 0.1;
  let mean: Value;
  let rstd: Value;
  if (o.training) {
    const n = axes.reduce((p, a) => p * x.shape[a], 1);
    mean = b.mean(x, axes, true);
    const xc = b.sub(x, mean);
    const v = b.mean(b.mul(xc, xc), axes, true);
    rstd = b.div(1, b.sqrt(b.add(v, eps)));
    if (o.runningMean) {
      const rm = b.read(o.runningMean);
      b.assign(o.runningMean, b.add(b.mul(rm, 1 - momentum), b.mul(b.reshape(b.stopGradient(mean), [c]), momentum)));
    }
    if (o.runningVar) {
      if (n < 2) throw new Error(`batchnorm: training needs more than one value per channel, got ${fmtShape(x.shape)}`);
      const rv = b.read(o.runningVar);
      const unbiased = b.mul(b.reshape(b.stopGradient(v), [c]), n / (n - 1));
      b.assign(o.runningVar, b.add(b.mul(rv, 1 - momentum), b.mul(unbiased, momentum)));
    }
    let y = b.mul(xc, rstd);
    if (o.weight) y = b.mul(y, b.reshape(o.weight, bshape));
    if (o.bias) y = b.add(y, b.reshape(o.bias, bshape));
    return y;
  }
  if (!o.runningMean || !o.runningVar) throw new Error('batchnorm: eval mode needs runningMean and runningVar');
  mean = b.reshape(b.read(o.runningMean), bshape);
  rstd = b.div(1, b.sqrt(b.add(b.reshape(b.read(o.runningVar), bshape), eps)));
  let y = b.mul(b.sub(x, mean), rstd);
  if (o.weight) y = b.mul(y, b.reshape(o.weight, bshape));
  if (o.bias) y = b.add(y, b.reshape(o.bias, bshape));
  return y;
}

export const batchNormOps: CompositeOp[] = [
  {
    name: 'batchnorm2d_train',
    kind: 'composite',
    doc: 'BatchNorm2d, training mode (batch statistics)',
    parity: [
      {
        inputs: [[3, 4, 3, 3], [4], [4]],
        torch: 'F.batch_norm(x0, None, None, x1, x2, training=True, momentum=0.1, eps=1e-5)',
        build: (b, [x, w, bias]) => b.batchNorm(x, { weight: w, bias, training: true }),
      },
    ],
  },
  {
    name: 'batchnorm1d_train',
    kind: 'composite',
    doc: 'BatchNorm1d, training mode',
    parity: [
      {
        inputs: [[5, 6], [6], [6]],
        torch: 'F.batch_norm(x0, None, None, x1, x2, training=True)',
        build: (b, [x, w, bias]) => b.batchNorm(x, { weight: w, bias, training: true }),
      },
    ],
  },
  {
    name: 'batchnorm2d_eval',
    kind: 'composite',
    doc: 'BatchNorm2d, eval mode (running statistics; here inputs x3, x4 as running mean / var)',
    parity: [
      {
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
          return b.batchNorm(x, { weight: w, bias, runningMean: bm, runningVar: bv, training: false });
        },
      },
    ],
  },
];
