// Layers with parameters: linear, conv, batchnorm. Their parameter leaves
// (`weight`, `bias`) and buffers (`running_mean`, `running_var`) are named by
// the layer path, e.g. `g0/Up.0/conv2d.0/weight`.
import { Codes } from '../../../grammar/diagnostics.ts';
import { shapeStr } from '../../check/values.ts';
import { batchNorm } from '../../ops/batchnorm.ts';
import { conv2d, conv2dOp } from '../../ops/conv.ts';
import { linear } from '../../ops/matmul.ts';
import { atLeast, bool, boolArg, irShape, needRank, num, numArg, tensorArg, type CallOp, type NodeExtra } from '../op.ts';

const linearOp: CallOp = {
  syntax: 'call',
  name: 'linear',
  node: 'linear',
  summary: 'fully connected layer over the last dimension',
  args: [
    { name: 'x', type: 'tensor' },
    { name: 'out', type: 'int' },
    { name: 'bias', type: 'bool', default: bool(true) },
  ],
  check(ctx, a) {
    const x = tensorArg(a, 'x');
    if (x.shape.length < 1) ctx.fail(Codes.shapeMismatch, 'linear needs a tensor with at least one dimension', ctx.argSpan('x'));
    const inF = x.shape[x.shape.length - 1];
    const out = atLeast(ctx, a, 'out');
    const rows = x.shape.slice(0, -1).reduce((p, q) => p * q, 1);
    const params: NodeExtra['params'] = [{ leaf: 'weight', shape: [out, inF], init: 'orthogonal' }];
    if (boolArg(a, 'bias')) params.push({ leaf: 'bias', shape: [out], init: 'zeros' });
    return ctx.node([x], [...x.shape.slice(0, -1), out], { attrs: { in: inF, out, bias: boolArg(a, 'bias') }, params, macs: rows * inF * out });
  },
  // Over the last dimension of any per-sample shape: rows of [N * ..., in].
  lower: ({ b, x, shape, param }) => {
    const w = param('weight')!;
    return b.reshape(linear(b, b.reshape(x[0], [-1, w.shape[1]]), w, param('bias')), shape);
  },
  ir: ['linear'],
  examples: [
    { name: 'vector', args: { x: 'a', out: 5 }, torch: 'y = F.linear(a, weight, bias)' },
    { name: 'no bias', args: { x: 'a', out: 3, bias: false }, torch: 'y = F.linear(a, weight)' },
    { name: 'last dim of a map', args: { x: 'm', out: 2 }, ir: ['reshape', 'linear'], torch: 'y = F.linear(m, weight, bias)' },
  ],
};

const convOp: CallOp = {
  syntax: 'call',
  name: 'conv',
  // The IR op's name: layer paths (`conv2d.0`) name parameters and checkpoints.
  node: 'conv2d',
  summary: '2-d convolution; pad defaults to (k - stride) div 2 ("same" for stride 1); no bias by default',
  args: [
    { name: 'x', type: 'tensor' },
    { name: 'out', type: 'int' },
    { name: 'k', type: 'int', default: num(3) },
    { name: 'stride', type: 'int', default: num(1) },
    { name: 'pad', type: 'int', default: (a) => num(Math.max(0, Math.floor((numArg(a, 'k') - numArg(a, 'stride')) / 2))) },
    { name: 'bias', type: 'bool', default: bool(false) },
  ],
  check(ctx, a) {
    const x = tensorArg(a, 'x');
    needRank(ctx, x, [3], 'conv');
    const [c, h, w] = x.shape;
    const out = atLeast(ctx, a, 'out');
    const k = atLeast(ctx, a, 'k');
    const stride = atLeast(ctx, a, 'stride');
    const pad = atLeast(ctx, a, 'pad', 0);
    // The IR conv2d's own shape rule, on a batch of one.
    const [, ho, wo] = irShape(ctx, 'conv', () => conv2dOp.shape([[1, c, h, w], [out, c, k, k]], { stride, pad }), {
      label: `input ${shapeStr(x.shape)}`,
      help: 'use a smaller kernel or more padding',
    });
    const params: NodeExtra['params'] = [{ leaf: 'weight', shape: [out, c, k, k], init: 'orthogonal' }];
    if (boolArg(a, 'bias')) params.push({ leaf: 'bias', shape: [out], init: 'zeros' });
    return ctx.node([x], [out, ho, wo], { attrs: { in: c, out, k, stride, pad, bias: boolArg(a, 'bias') }, params, macs: ho * wo * out * c * k * k });
  },
  lower: ({ b, x, node, param }) => conv2d(b, x[0], param('weight')!, { stride: node.attrs.stride as number, pad: node.attrs.pad as number, bias: param('bias') }),
  ir: ['conv2d'],
  examples: [
    { name: 'k3', args: { x: 'm', out: 3 }, torch: 'y = F.conv2d(m, weight, padding=1)' },
    { name: 'k4 s2 p1 bias', args: { x: 'm', out: 2, k: 4, stride: 2, pad: 1, bias: true }, ir: ['conv2d_bias'], torch: 'y = F.conv2d(m, weight, bias, stride=2, padding=1)' },
    { name: 'k1 pad 2', args: { x: 'm', out: 2, k: 1, pad: 2 }, torch: 'y = F.conv2d(m, weight, padding=2)' },
  ],
};

const batchnormOp: CallOp = {
  syntax: 'call',
  name: 'batchnorm',
  node: 'batchnorm',
  summary: 'batch normalisation over channels (dim 0): 1-d for [C], 2-d for [C, H, W]',
  args: [
    { name: 'x', type: 'tensor' },
    { name: 'momentum', type: 'num', default: num(0.1) },
    { name: 'eps', type: 'num', default: num(1e-5) },
  ],
  check(ctx, a) {
    const x = tensorArg(a, 'x');
    needRank(ctx, x, [1, 3], 'batchnorm');
    const c = x.shape[0];
    return ctx.node([x], x.shape, {
      attrs: { channels: c, momentum: numArg(a, 'momentum'), eps: numArg(a, 'eps') },
      params: [
        { leaf: 'weight', shape: [c], init: 'bn_weight' },
        { leaf: 'bias', shape: [c], init: 'zeros' },
      ],
      buffers: [
        { leaf: 'running_mean', shape: [c], init: 'zeros' },
        { leaf: 'running_var', shape: [c], init: 'ones' },
      ],
    });
  },
  lower: ({ b, x, node, param, buffer, training, updateStats }) => {
    const runningMean = buffer('running_mean');
    const runningVar = buffer('running_var');
    // Training without updates (a forward pass repeated within one step) passes no running stats.
    const stats = training && !updateStats ? {} : { runningMean, runningVar };
    return batchNorm(b, x[0], { weight: param('weight'), bias: param('bias'), ...stats, training, momentum: node.attrs.momentum as number, eps: node.attrs.eps as number });
  },
  ir: ['batchnorm'],
  examples: [
    {
      name: '2d momentum 0.3 eps 1e-3',
      args: { x: 'm', momentum: 0.3, eps: 1e-3 },
      torch: 'y = F.batch_norm(m, running_mean, running_var, weight, bias, training=True, momentum=0.3, eps=1e-3)',
    },
    { name: '1d', args: { x: 'a' }, torch: 'y = F.batch_norm(a, running_mean, running_var, weight, bias, training=True)' },
  ],
};

export const nnOps = [linearOp, convOp, batchnormOp];
