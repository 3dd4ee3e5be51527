// conv2d (NCHW input, OIHW weight, PyTorch semantics, square stride/padding)
// and its two backward passes, all lowered to the implicit-GEMM kernels of
// kernels/conv.ts. The three form a closed family under differentiation:
//   y  = conv2d(x, w)          dx = bwd_data(dy, w)      dw = bwd_weight(x, dy)
//   dx = bwd_data(dy, w)       d dy = conv2d(g, w)       d w = bwd_weight(g, dy)
//   dw = bwd_weight(x, dy)     d x = bwd_data(dy, g)     d dy = conv2d(x, g)
// so double backward through a conv stays expressible. conv2d_bias is the
// composite conv2d + per-channel bias.
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/graph.ts';
import {
  backwardWeightSplits,
  bwdWeightSplitRows,
  conv2dBackwardDataKernel,
  conv2dBackwardWeightKernel,
  conv2dForwardKernel,
  conv2dOutputSize,
  type Conv2dShape,
} from '../kernels/conv.ts';
import { convOutSize, type Shape } from '../ir/shape.ts';
import { shapeError, type CompositeOp, type PrimitiveOp } from './op.ts';

export interface ConvAttrs {
  stride: number;
  pad: number;
}

function geometry(x: Shape, w: Shape, a: ConvAttrs): Conv2dShape {
  return { batch: x[0], inChannels: x[1], height: x[2], width: x[3], outChannels: w[0], kernel: [w[2], w[3]], stride: a.stride, padding: a.pad };
}

function outHW(op: string, x: Shape, w: Shape, a: ConvAttrs, ins: readonly Shape[]): [number, number] {
  const oh = convOutSize(x[2], w[2], a.stride, a.pad);
  const ow = convOutSize(x[3], w[3], a.stride, a.pad);
  if (oh < 1 || ow < 1) throw shapeError(op, `kernel ${w[2]}x${w[3]} with stride ${a.stride} and padding ${a.pad} leaves no output`, ins);
  return [oh, ow];
}

/** Visits every (x index, w index, y index) triple of a direct convolution. */
function eachTap(x: Shape, w: Shape, a: ConvAttrs, f: (xi: number, wi: number, yi: number) => void): void {
  const [N, Ci, H, W] = x;
  const [Co, , KH, KW] = w;
  const OH = convOutSize(H, KH, a.stride, a.pad);
  const OW = convOutSize(W, KW, a.stride, a.pad);
  for (let n = 0; n < N; n++)
    for (let co = 0; co < Co; co++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++)
          for (let ci = 0; ci < Ci; ci++)
            for (let kh = 0; kh < KH; kh++) {
              const ih = oh * a.stride + kh - a.pad;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < KW; kw++) {
                const iw = ow * a.stride + kw - a.pad;
                if (iw < 0 || iw >= W) continue;
                f(((n * Ci + ci) * H + ih) * W + iw, ((co * Ci + ci) * KH + kh) * KW + kw, ((n * Co + co) * OH + oh) * OW + ow);
              }
            }
}

const size = (s: Shape) => s.reduce((p, d) => p * d, 1);

export const conv2dOp: PrimitiveOp<ConvAttrs> = {
  name: 'conv2d',
  doc: 'y[N,Co,OH,OW] = conv2d(x[N,Ci,H,W], w[Co,Ci,KH,KW]), no bias (conv2d_bias adds one)',
  kind: 'kernel',
  arity: 2,
  shape: (ins, a) => {
    const [x, w] = ins;
    if (x.length !== 4 || w.length !== 4) throw shapeError('conv2d', 'expects NCHW input and OIHW weight', ins);
    if (x[1] !== w[1]) throw shapeError('conv2d', `input has ${x[1]} channels, weight expects ${w[1]}`, ins);
    const [oh, ow] = outHW('conv2d', x, w, a, ins);
    return [x[0], w[0], oh, ow];
  },
  lower: ({ ins, attrs, target }) => {
    const g = geometry(ins[0], ins[1], attrs);
    conv2dOutputSize(g);
    return [{ spec: conv2dForwardKernel(g, target), args: [0, 1, 'out'] }];
  },
  batch: { inputs: [0], out: 'sample' },
  ref: ([x, w], c) => {
    const y = new Float64Array(size(c.out));
    eachTap(c.ins[0], c.ins[1], c.attrs, (xi, wi, yi) => (y[yi] += x[xi] * w[wi]));
    return y;
  },
  grad: ({ b, gy, x, attrs, needs }) => [
    needs[0] ? b.apply('conv2d_bwd_data', [gy, x[1]], { ...attrs, height: x[0].shape[2], width: x[0].shape[3] }) : null,
    needs[1] ? weightGrad(b, x[0], gy, x[1].shape, attrs) : null,
  ],
  parity: [
    { name: 'k3s1p1', inputs: [[2, 3, 6, 6], [4, 3, 3, 3]], attrs: { stride: 1, pad: 1 }, torch: 'F.conv2d(x0, x1, stride=1, padding=1)' },
    { name: 'k4s2p1', inputs: [[2, 3, 8, 8], [4, 3, 4, 4]], attrs: { stride: 2, pad: 1 }, torch: 'F.conv2d(x0, x1, stride=2, padding=1)' },
    { name: 'k4s4', inputs: [[2, 5, 4, 4], [1, 5, 4, 4]], attrs: { stride: 4, pad: 0 }, torch: 'F.conv2d(x0, x1, stride=4)' },
    { name: 'k1', inputs: [[2, 4, 3, 5], [6, 4, 1, 1]], attrs: { stride: 1, pad: 0 }, torch: 'F.conv2d(x0, x1)' },
    // Few channels over big maps: the weight gradient is split-K (3 splits of 32 rows; 4 splits of 36 rows
    // with OW = 33, so every split starts on a multiple of 4 pixels), summed by a reduction. Only dw is
    // compared (dx is the cases above; finite differences over every x element would take minutes).
    { name: 'k3s1p1 split', inputs: [[2, 3, 48, 40], [4, 3, 3, 3]], attrs: { stride: 1, pad: 1 }, grad: [1], torch: 'F.conv2d(x0, x1, stride=1, padding=1)' },
    { name: 'k4s2p1 split', inputs: [[4, 2, 66, 66], [3, 2, 4, 4]], attrs: { stride: 2, pad: 1 }, grad: [1], torch: 'F.conv2d(x0, x1, stride=2, padding=1)' },
  ],
};

export const conv2dBwdDataOp: PrimitiveOp<ConvAttrs & { height: number; width: number }> = {
  name: 'conv2d_bwd_data',
  doc: 'dx[N,Ci,H,W] from dy[N,Co,OH,OW] and w (transposed convolution)',
  kind: 'kernel',
  arity: 2,
  shape: (ins, a) => {
    const [dy, w] = ins;
    if (dy.length !== 4 || w.length !== 4 || dy[1] !== w[0]) throw shapeError('conv2d_bwd_data', 'dy channels must match weight outputs', ins);
    const x = [dy[0], w[1], a.height, a.width];
    const [oh, ow] = outHW('conv2d_bwd_data', x, w, a, ins);
    if (oh !== dy[2] || ow !== dy[3]) throw shapeError('conv2d_bwd_data', `dy must be ${oh}x${ow} for a ${a.height}x${a.width} input`, ins);
    return x;
  },
  lower: ({ ins, out, attrs, target }) => [{ spec: conv2dBackwardDataKernel(geometry(out, ins[1], attrs), target), args: [0, 1, 'out'] }],
  batch: { inputs: [0], out: 'sample' },
  ref: ([dy, w], c) => {
    const dx = new Float64Array(size(c.out));
    eachTap(c.out, c.ins[1], c.attrs, (xi, wi, yi) => (dx[xi] += dy[yi] * w[wi]));
    return dx;
  },
  grad: ({ b, gy, x, attrs, needs }) => [
    needs[0] ? b.apply('conv2d', [gy, x[1]], { stride: attrs.stride, pad: attrs.pad }) : null,
    needs[1] ? b.apply('conv2d_bwd_weight', [gy, x[0]], { stride: attrs.stride, pad: attrs.pad, kh: x[1].shape[2], kw: x[1].shape[3] }) : null,
  ],
  parity: [
    {
      name: 'k4s2p1',
      inputs: [[2, 4, 4, 4], [4, 3, 4, 4]],
      attrs: { stride: 2, pad: 1, height: 8, width: 8 },
      torch: 'torch.nn.grad.conv2d_input((2, 3, 8, 8), x1, x0, stride=2, padding=1)',
    },
    {
      name: 'k3s1p1',
      inputs: [[2, 4, 6, 6], [4, 3, 3, 3]],
      attrs: { stride: 1, pad: 1, height: 6, width: 6 },
      torch: 'torch.nn.grad.conv2d_input((2, 3, 6, 6), x1, x0, stride=1, padding=1)',
    },
  ],
};

/**
 * dw of a conv: split-K (partials summed by a reduction) where the kernel
 * alone would leave most of the device idle (kernels/conv.ts, backwardWeightSplits).
 */
function weightGrad(b: GraphBuilder, x: Value, dy: Value, w: Shape, a: ConvAttrs): Value {
  const splits = backwardWeightSplits(geometry(x.shape, w, a));
  const attrs = { stride: a.stride, pad: a.pad, kh: w[2], kw: w[3] };
  if (splits === 1) return b.apply('conv2d_bwd_weight', [x, dy], attrs);
  return b.sum(b.apply('conv2d_bwd_weight', [x, dy], { ...attrs, splits }), [0]);
}

export interface BwdWeightAttrs extends ConvAttrs {
  kh: number;
  kw: number;
  /** Split-K: the output is [splits, Co, Ci, KH, KW], partials over consecutive dy rows (n, oh); absent or 1 for dw itself. */
  splits?: number;
}

export const conv2dBwdWeightOp: PrimitiveOp<BwdWeightAttrs> = {
  name: 'conv2d_bwd_weight',
  doc: 'dw[Co,Ci,KH,KW] from x[N,Ci,H,W] and dy[N,Co,OH,OW] (with splits S: [S,Co,Ci,KH,KW] partials over dy rows, summing to dw)',
  kind: 'kernel',
  arity: 2,
  shape: (ins, a) => {
    const [x, dy] = ins;
    if (x.length !== 4 || dy.length !== 4 || x[0] !== dy[0]) throw shapeError('conv2d_bwd_weight', 'x and dy must be NCHW with the same batch', ins);
    const w = [dy[1], x[1], a.kh, a.kw];
    const [oh, ow] = outHW('conv2d_bwd_weight', x, w, a, ins);
    if (oh !== dy[2] || ow !== dy[3]) throw shapeError('conv2d_bwd_weight', `dy must be ${oh}x${ow}`, ins);
    const splits = a.splits ?? 1;
    if (!Number.isInteger(splits) || splits < 1 || splits > x[0] * oh) throw shapeError('conv2d_bwd_weight', `splits must be an integer from 1 to ${x[0] * oh} (dy rows), got ${splits}`, ins);
    return splits > 1 ? [splits, ...w] : w;
  },
  lower: ({ ins, out, attrs, accumulate }) => [
    { spec: conv2dBackwardWeightKernel(geometry(ins[0], out.slice(-4), attrs), { accumulate, splits: attrs.splits }), args: [0, 1, 'out'] },
  ],
  batch: { inputs: [0, 1], out: 'sum' },
  ref: ([x, dy], c) => {
    const dw = new Float64Array(size(c.out));
    const w = c.out.slice(-4);
    const splits = c.attrs.splits ?? 1;
    const [N, , H, W] = c.ins[0];
    const [OH, OW] = [convOutSize(H, w[2], c.attrs.stride, c.attrs.pad), convOutSize(W, w[3], c.attrs.stride, c.attrs.pad)];
    const rows = bwdWeightSplitRows(N, OH, OW, splits);
    const perImage = w[0] * OH * OW;
    eachTap(c.ins[0], w, c.attrs, (xi, wi, yi) => {
      // yi = ((n * Co + co) * OH + oh) * OW + ow: its dy row is n * OH + oh.
      const row = Math.floor(yi / perImage) * OH + Math.floor((yi % (OH * OW)) / OW);
      dw[Math.floor(row / rows) * size(w) + wi] += x[xi] * dy[yi];
    });
    return dw;
  },
  grad: ({ b, gy, x, attrs, needs }) => {
    // Only conv2d's own gradient makes partials, and nothing differentiates that gradient again.
    if ((attrs.splits ?? 1) > 1) throw new Error('conv2d_bwd_weight with splits has no gradient rule: differentiate the unsplit op');
    return [
      needs[0] ? b.apply('conv2d_bwd_data', [x[1], gy], { stride: attrs.stride, pad: attrs.pad, height: x[0].shape[2], width: x[0].shape[3] }) : null,
      needs[1] ? b.apply('conv2d', [x[0], gy], { stride: attrs.stride, pad: attrs.pad }) : null,
    ];
  },
  parity: [
    {
      name: 'k4s2p1',
      inputs: [[2, 3, 8, 8], [2, 4, 4, 4]],
      attrs: { stride: 2, pad: 1, kh: 4, kw: 4 },
      torch: 'torch.nn.grad.conv2d_weight(x0, (4, 3, 4, 4), x1, stride=2, padding=1)',
    },
    {
      name: 'k3s1p1',
      inputs: [[2, 3, 6, 6], [2, 4, 6, 6]],
      attrs: { stride: 1, pad: 1, kh: 3, kw: 3 },
      torch: 'torch.nn.grad.conv2d_weight(x0, (4, 3, 3, 3), x1, stride=1, padding=1)',
    },
  ],
};

export const conv2dBiasOp: CompositeOp<ConvAttrs> = {
  name: 'conv2d_bias',
  kind: 'composite',
  doc: 'conv2d followed by a per-channel bias; inputs x, w, bias[Co]',
  arity: 3,
  expand: (b, [x, w, bias], a) => {
    const y = b.conv2d(x, w, a);
    return b.add(y, b.reshape(bias, [1, y.shape[1], 1, 1]));
  },
  parity: [{ inputs: [[2, 3, 6, 6], [4, 3, 3, 3], [4]], attrs: { stride: 1, pad: 1 }, torch: 'F.conv2d(x0, x1, x2, stride=1, padding=1)' }],
};

/** NCHW convolution with OIHW weights and an optional bias [Co], PyTorch semantics. */
export function conv2d(b: GraphBuilder, x: Value, w: Value, opts: { stride?: number; pad?: number; bias?: Value } = {}): Value {
  const a = { stride: opts.stride ?? 1, pad: opts.pad ?? 0 };
  return opts.bias ? b.apply('conv2d_bias', [x, w, opts.bias], a) : b.conv2d(x, w, a);
}

export const convOps = [conv2dOp, conv2dBwdDataOp, conv2dBwdWeightOp, conv2dBiasOp];
