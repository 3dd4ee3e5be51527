// Ops for transformer and VGG-style encoders (the frozen CLIP towers and VGG16
// of models/encoders): layer norm, multi-head self-attention, GELU and CLIP's
// QuickGELU, softmax, token embeddings, learned tensors (class and positional
// embeddings), projections in CLIP's [in, out] layout, token selection,
// transposes, max pooling and image resizing. Parameter leaves carry the
// names PyTorch gives them (`in_proj_weight`, `weight`), so a checkpoint's
// names map onto layer paths one to one.
import { Codes } from '../../../grammar/diagnostics.ts';
import { shapeStr } from '../../check/values.ts';
import { embeddingOp as irEmbedding, takeRowsOp } from '../../ops/gather.ts';
import { permuteOp } from '../../ops/shape.ts';
import { attention } from '../../ops/transformer.ts';
import { resize, type ResizeMode } from '../../ops/resize.ts';
import { atLeast, bool, boolArg, irShape, needRank, num, numArg, tensorArg, type CallOp, type CheckContext } from '../op.ts';

/** A per-sample axis argument (negative counts from the end) as an index into the per-sample shape. */
function sampleAxis(ctx: CheckContext, rank: number, d: number, arg: string): number {
  const a = d < 0 ? d + rank : d;
  if (a < 0 || a >= rank) ctx.fail(Codes.badValue, `dim ${d} is out of range for a rank-${rank} tensor`, ctx.argSpan(arg));
  return a;
}

const layerNormOp: CallOp = {
  syntax: 'call',
  name: 'layernorm',
  node: 'layernorm',
  summary: 'layer normalisation over the last dimension, with a learned scale and shift (nn.LayerNorm)',
  args: [
    { name: 'x', type: 'tensor' },
    { name: 'eps', type: 'num', default: num(1e-5) },
  ],
  check(ctx, a) {
    const x = tensorArg(a, 'x');
    if (x.shape.length < 1) ctx.fail(Codes.shapeMismatch, 'layernorm needs a tensor with at least one dimension', ctx.argSpan('x'));
    const d = x.shape[x.shape.length - 1];
    return ctx.node([x], x.shape, {
      attrs: { eps: numArg(a, 'eps') },
      params: [
        { leaf: 'weight', shape: [d], init: 'ones' },
        { leaf: 'bias', shape: [d], init: 'zeros' },
      ],
    });
  },
  lower: ({ b, x, node, param }) => b.apply('layernorm', [x[0], param('weight')!, param('bias')!], { eps: node.attrs.eps as number }),
  ir: ['layernorm'],
  examples: [
    { name: 'tokens', args: { x: 't' }, torch: 'y = F.layer_norm(t, (8,), weight, bias, 1e-5)' },
    { name: 'eps 1e-3 vector', args: { x: 'a', eps: 1e-3 }, torch: 'y = F.layer_norm(a, (6,), weight, bias, 1e-3)' },
  ],
};

const attentionOp: CallOp = {
  syntax: 'call',
  name: 'attention',
  node: 'attention',
  summary: 'multi-head self-attention over tokens [T, E] (nn.MultiheadAttention); causal: each token sees only itself and earlier ones',
  args: [
    { name: 'x', type: 'tensor' },
    { name: 'heads', type: 'int' },
    { name: 'causal', type: 'bool', default: bool(false) },
  ],
  check(ctx, a) {
    const x = tensorArg(a, 'x');
    needRank(ctx, x, [2], 'attention');
    const [T, E] = x.shape;
    const heads = atLeast(ctx, a, 'heads');
    if (E % heads) ctx.fail(Codes.notDivisible, `attention: width ${E} is not divisible by ${heads} heads`, ctx.argSpan('heads'), `${heads} heads`, `use a head count that divides ${E}`);
    return ctx.node([x], x.shape, {
      attrs: { heads, causal: boolArg(a, 'causal') },
      params: [
        { leaf: 'in_proj_weight', shape: [3 * E, E], init: 'orthogonal' },
        { leaf: 'in_proj_bias', shape: [3 * E], init: 'zeros' },
        { leaf: 'out_proj_weight', shape: [E, E], init: 'orthogonal' },
        { leaf: 'out_proj_bias', shape: [E], init: 'zeros' },
      ],
      macs: 4 * T * E * E + 2 * T * T * E,
    });
  },
  lower: ({ b, x, node, param }) =>
    attention(
      b,
      x[0],
      { inWeight: param('in_proj_weight')!, inBias: param('in_proj_bias')!, outWeight: param('out_proj_weight')!, outBias: param('out_proj_bias')! },
      { heads: node.attrs.heads as number, causal: node.attrs.causal as boolean },
    ),
  ir: ['attention'],
  examples: [
    {
      name: 'two heads',
      args: { x: 't', heads: 2 },
      torch: 'xt = t.transpose(0, 1)\ny = F.multi_head_attention_forward(xt, xt, xt, 8, 2, in_proj_weight, in_proj_bias, None, None, False, 0.0, out_proj_weight, out_proj_bias, training=False, need_weights=False)[0].transpose(0, 1)',
    },
    {
      name: 'causal',
      args: { x: 't', heads: 4, causal: true },
      torch: 'xt = t.transpose(0, 1)\nmask = torch.full((5, 5), float("-inf")).triu(1)\ny = F.multi_head_attention_forward(xt, xt, xt, 8, 4, in_proj_weight, in_proj_bias, None, None, False, 0.0, out_proj_weight, out_proj_bias, training=False, need_weights=False, attn_mask=mask)[0].transpose(0, 1)',
    },
  ],
};

const softmaxOp: CallOp = {
  syntax: 'call',
  name: 'softmax',
  node: 'softmax',
  summary: 'softmax along a dimension (default the last)',
  args: [
    { name: 'x', type: 'tensor' },
    { name: 'dim', type: 'int', default: num(-1) },
  ],
  check(ctx, a) {
    const x = tensorArg(a, 'x');
    return ctx.node([x], x.shape, { attrs: { dim: sampleAxis(ctx, x.shape.length, numArg(a, 'dim'), 'dim') } });
  },
  lower: ({ b, x, node }) => b.apply('softmax', [x[0]], { axis: (node.attrs.dim as number) + 1 }),
  ir: ['softmax'],
  examples: [
    { name: 'last', args: { x: 't' }, torch: 'y = F.softmax(t, -1)' },
    { name: 'dim 0', args: { x: 'm', dim: 0 }, torch: 'y = F.softmax(m, 1)' },
  ],
};

const embeddingOp: CallOp = {
  syntax: 'call',
  name: 'embedding',
  node: 'embedding',
  summary: 'a learned vector per token id: ids [T] (integers in [0, vocab)) -> [T, dim] (nn.Embedding)',
  args: [
    { name: 'ids', type: 'tensor' },
    { name: 'vocab', type: 'int' },
    { name: 'dim', type: 'int' },
  ],
  check(ctx, a) {
    const ids = tensorArg(a, 'ids');
    const vocab = atLeast(ctx, a, 'vocab');
    const dim = atLeast(ctx, a, 'dim');
    const shape = irShape(ctx, 'embedding', () => irEmbedding.shape([[1, ...ids.shape], [vocab, dim]], {}));
    return ctx.node([ids], shape, { attrs: { vocab, dim }, params: [{ leaf: 'weight', shape: [vocab, dim], init: 'embedding' }] });
  },
  lower: ({ b, x, param }) => b.apply('embedding', [x[0], param('weight')!]),
  ir: ['embedding'],
  examples: [{ args: { ids: 'ids', vocab: 7, dim: 3 }, torch: 'y = F.embedding(ids.long(), weight)' }],
};

const learnedOp: CallOp = {
  syntax: 'call',
  name: 'learned',
  node: 'learned',
  summary: 'a learned tensor of the given dimensions, the same for every sample (a class or positional embedding)',
  args: [],
  rest: 'int',
  check(ctx, _a, rest) {
    const dims = rest.map((r) => (r as { v: number }).v);
    if (dims.length === 0 || dims.some((d) => d < 1)) ctx.fail(Codes.badValue, `learned needs positive dimensions, got (${dims.join(', ')})`, ctx.span, undefined, 'e.g. learned(77, 512)');
    return ctx.node([], dims, { params: [{ leaf: 'weight', shape: dims, init: 'embedding' }] });
  },
  lower: ({ b, shape, param }) => {
    const w = param('weight')!;
    return b.expand(b.reshape(w, [1, ...w.shape]), shape);
  },
  ir: ['reshape', 'expand'],
  examples: [{ rest: [3, 2], torch: 'y = weight[None].expand(4, 3, 2)' }],
};

const projOp: CallOp = {
  syntax: 'call',
  name: 'proj',
  node: 'proj',
  summary: "x @ W with W [in, out] and no bias, CLIP's `proj` and `text_projection` layout (linear stores [out, in])",
  args: [
    { name: 'x', type: 'tensor' },
    { name: 'out', type: 'int' },
  ],
  check(ctx, a) {
    const x = tensorArg(a, 'x');
    if (x.shape.length < 1) ctx.fail(Codes.shapeMismatch, 'proj needs a tensor with at least one dimension', ctx.argSpan('x'));
    const inF = x.shape[x.shape.length - 1];
    const out = atLeast(ctx, a, 'out');
    const rows = x.shape.slice(0, -1).reduce((p, q) => p * q, 1);
    return ctx.node([x], [...x.shape.slice(0, -1), out], { params: [{ leaf: 'weight', shape: [inF, out], init: 'orthogonal' }], macs: rows * inF * out });
  },
  lower: ({ b, x, shape, param }) => {
    const w = param('weight')!;
    return b.reshape(b.matmul(b.reshape(x[0], [-1, w.shape[0]]), w), shape);
  },
  ir: ['reshape', 'matmul'],
  examples: [
    { name: 'vector', args: { x: 'a', out: 4 }, ir: ['matmul'], torch: 'y = a @ weight' },
    { name: 'tokens', args: { x: 't', out: 3 }, torch: 'y = t @ weight' },
  ],
};

const selectOp: CallOp = {
  syntax: 'call',
  name: 'select',
  node: 'select',
  summary: 'one slice along a dimension, which is dropped: [T, E] -> [E] for select(x, 0) (torch.select)',
  args: [
    { name: 'x', type: 'tensor' },
    { name: 'index', type: 'int' },
    { name: 'dim', type: 'int', default: num(0) },
  ],
  check(ctx, a) {
    const x = tensorArg(a, 'x');
    if (x.shape.length < 2) ctx.fail(Codes.shapeMismatch, `select needs a tensor of rank 2 or more, got ${shapeStr(x.shape)}`, ctx.argSpan('x'));
    const d = sampleAxis(ctx, x.shape.length, numArg(a, 'dim'), 'dim');
    const i = numArg(a, 'index');
    if (i < 0 || i >= x.shape[d]) ctx.fail(Codes.badValue, `select index ${i} is out of range for dim ${d} of ${shapeStr(x.shape)}`, ctx.argSpan('index'));
    return ctx.node([x], x.shape.filter((_, k) => k !== d), { attrs: { dim: d, index: i } });
  },
  lower: ({ b, x, node, shape }) => {
    const d = (node.attrs.dim as number) + 1;
    const i = node.attrs.index as number;
    return b.reshape(b.slice(x[0], d, i, i + 1), shape);
  },
  ir: ['slice', 'reshape'],
  examples: [
    { name: 'first token', args: { x: 't', index: 0 }, torch: 'y = t[:, 0]' },
    { name: 'row 2 of each channel', args: { x: 'm', index: 2, dim: 1 }, torch: 'y = m[:, :, 2]' },
  ],
};

const pickOp: CallOp = {
  syntax: 'call',
  name: 'pick',
  node: 'pick',
  summary: "the row of x [T, ...] at a per-sample position idx [1] (CLIP's end-of-text token): x[idx]",
  args: [
    { name: 'x', type: 'tensor' },
    { name: 'idx', type: 'tensor' },
  ],
  check(ctx, a) {
    const x = tensorArg(a, 'x');
    const idx = tensorArg(a, 'idx');
    if (x.shape.length < 2) ctx.fail(Codes.shapeMismatch, `pick needs x of rank 2 or more, got ${shapeStr(x.shape)}`, ctx.argSpan('x'));
    if (idx.shape.length !== 1 || idx.shape[0] !== 1) ctx.fail(Codes.shapeMismatch, `pick needs one position per sample, idx: [1], got ${shapeStr(idx.shape)}`, ctx.argSpan('idx'));
    // take_rows on a batch of one: x [1, T, ...] and idx [1].
    return ctx.node([x, idx], irShape(ctx, 'pick', () => takeRowsOp.shape([[1, ...x.shape], [1]], {})));
  },
  lower: ({ b, x }) => b.apply('take_rows', [x[0], b.reshape(x[1], [x[1].shape[0]])]),
  ir: ['reshape', 'take_rows'],
  examples: [{ args: { x: 't', idx: 'pos' }, torch: 'y = t[torch.arange(4), pos[:, 0].long()]' }],
};

const transposeOp: CallOp = {
  syntax: 'call',
  name: 'transpose',
  node: 'transpose',
  summary: 'swap the last two dimensions: [C, N] -> [N, C]',
  args: [{ name: 'x', type: 'tensor' }],
  check(ctx, a) {
    const x = tensorArg(a, 'x');
    if (x.shape.length < 2) ctx.fail(Codes.shapeMismatch, `transpose needs a tensor of rank 2 or more, got ${shapeStr(x.shape)}`, ctx.argSpan('x'));
    return ctx.node([x], irShape(ctx, 'transpose', () => permuteOp.shape([[1, ...x.shape]], { perm: swapLastTwo(x.shape.length + 1) })));
  },
  lower: ({ b, x }) => b.apply('permute', [x[0]], { perm: swapLastTwo(x[0].shape.length) }),
  ir: ['permute'],
  examples: [
    { name: 'tokens', args: { x: 't' }, torch: 'y = t.transpose(1, 2)' },
    { name: 'map', args: { x: 'm' }, torch: 'y = m.transpose(2, 3)' },
  ],
};

/** The permutation of `rank` axes that swaps the last two. */
function swapLastTwo(rank: number): number[] {
  const perm = [...Array(rank).keys()];
  [perm[rank - 2], perm[rank - 1]] = [rank - 1, rank - 2];
  return perm;
}

const maxPoolOp: CallOp = {
  syntax: 'call',
  name: 'max_pool',
  node: 'max_pool',
  summary: 'max over k x k windows with stride k of [C, H, W] (F.max_pool2d(x, k))',
  args: [
    { name: 'x', type: 'tensor' },
    { name: 'k', type: 'int', default: num(2) },
  ],
  check(ctx, a) {
    const x = tensorArg(a, 'x');
    needRank(ctx, x, [3], 'max_pool');
    const k = atLeast(ctx, a, 'k');
    const [c, h, w] = x.shape;
    if (h % k || w % k) ctx.fail(Codes.notDivisible, `max_pool: ${h}x${w} is not a multiple of the ${k}x${k} window`, ctx.argSpan('x'), `shape ${shapeStr(x.shape)}`);
    return ctx.node([x], [c, h / k, w / k], { attrs: { k } });
  },
  lower: ({ b, x, node }) => b.apply('max_pool2d', [x[0]], { k: node.attrs.k as number }),
  ir: ['max_pool2d'],
  examples: [
    { name: '2x2', args: { x: 'm' }, torch: 'y = F.max_pool2d(m, 2)' },
    { name: '3x3', args: { x: 'm', k: 3 }, torch: 'y = F.max_pool2d(m, 3)' },
  ],
};

const resizeOp: CallOp = {
  syntax: 'call',
  name: 'resize',
  node: 'resize',
  summary: 'resample [C, H, W] to [C, size, size] (F.interpolate, align_corners=False; mode "bilinear" or "bicubic")',
  args: [
    { name: 'x', type: 'tensor' },
    { name: 'size', type: 'int' },
    { name: 'mode', type: 'str', default: { t: 'str', v: 'bicubic' } },
  ],
  check(ctx, a) {
    const x = tensorArg(a, 'x');
    needRank(ctx, x, [3], 'resize');
    const size = atLeast(ctx, a, 'size');
    const mode = (a.mode as { v: string }).v;
    if (mode !== 'bilinear' && mode !== 'bicubic') ctx.fail(Codes.badValue, `resize mode must be "bilinear" or "bicubic", got "${mode}"`, ctx.argSpan('mode'));
    return ctx.node([x], [x.shape[0], size, size], { attrs: { mode }, macs: x.shape[0] * size * (x.shape[1] * x.shape[2] + x.shape[1] * size) });
  },
  lower: ({ b, x, node, shape }) => resize(b, x[0], shape[2], shape[3], node.attrs.mode as ResizeMode),
  ir: ['resize'],
  examples: [
    { name: 'bicubic down', args: { x: 'm', size: 5 }, torch: 'y = F.interpolate(m, size=(5, 5), mode="bicubic", align_corners=False)' },
    { name: 'bilinear up', args: { x: 'm', size: 9, mode: '"bilinear"' }, torch: 'y = F.interpolate(m, size=(9, 9), mode="bilinear", align_corners=False)' },
  ],
};

export const transformerOps = [layerNormOp, attentionOp, softmaxOp, embeddingOp, learnedOp, projOp, selectOp, pickOp, transposeOp, maxPoolOp, resizeOp];
