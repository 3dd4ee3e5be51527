// What a transformer block is made of, for the frozen CLIP towers: layer norm,
// softmax, GELU (erf form) and CLIP's QuickGELU, the causal mask, and
// multi-head self-attention with nn.MultiheadAttention's parameters. All but the
// mask are composites over primitives, so autodiff and fusion see nothing new.
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/graph.ts';
import { axis as normAxis, fmtShape } from '../ir/shape.ts';
import { linear } from './matmul.ts';
import { f32, shapeError, type CompositeOp, type PrimitiveOp } from './op.ts';
import { mapOut } from './refutil.ts';

/** Stands for -inf in a masked score: exp of it minus any finite max is 0, and it stays finite in f32. */
export const MASKED = -1e30;

export const maskUpperOp: PrimitiveOp<{ value: number }> = {
  name: 'mask_upper',
  doc: 'over the last two axes [.., T, S], entries above the diagonal (col > row) set to `value` (a causal mask)',
  kind: 'fusible',
  arity: 1,
  shape: (ins) => {
    if (ins[0].length < 2) throw shapeError('mask_upper', 'expects at least 2 axes', ins);
    return [...ins[0]];
  },
  fn: (c) => {
    const [T, S] = c.out.slice(-2);
    const z = c.size;
    return `if (${z.mod('i', S)} > ${z.mod(z.div('i', S), T)}) { return ${f32(c.attrs.value)}; }\n  return ${c.at(0, 'i')};`;
  },
  ref: ([x], c) => {
    const [T, S] = c.out.slice(-2);
    return mapOut(c.out, (i) => (i % S > Math.floor(i / S) % T ? c.attrs.value : x[i]));
  },
  grad: ({ b, gy }) => [b.apply('mask_upper', [gy], { value: 0 })],
  parity: [
    { name: 'square', inputs: [[2, 4, 4]], attrs: { value: -5 }, torch: 'x0.masked_fill(torch.ones(4, 4, dtype=torch.bool).triu(1), -5.0)' },
    { name: 'wide', inputs: [[3, 5]], attrs: { value: 0 }, torch: 'x0.masked_fill(torch.ones(3, 5, dtype=torch.bool).triu(1), 0.0)' },
  ],
  flopsPerElement: 0,
};

export const layerNormOp: CompositeOp<{ eps: number }> = {
  name: 'layernorm',
  kind: 'composite',
  doc: 'LayerNorm over the last axis (biased variance, as nn.LayerNorm); inputs x and optionally weight and bias',
  arity: -1,
  expand: (b, ins, { eps }) => {
    const [x, w, bias] = ins;
    if (ins.length !== 1 && ins.length !== 3) throw new Error(`layernorm: expects x, or x, weight and bias; got ${ins.length} inputs`);
    const last = x.shape.length - 1;
    const d = b.sub(x, b.mean(x, [last], true));
    const y = b.div(d, b.sqrt(b.add(b.mean(b.mul(d, d), [last], true), eps)));
    return w ? b.add(b.mul(y, w), bias) : y;
  },
  parity: [
    { name: 'affine', inputs: [[2, 3, 8], [8], [8]], attrs: { eps: 1e-5 }, torch: 'F.layer_norm(x0, (8,), x1, x2, 1e-5)' },
    { name: 'plain', inputs: [[5, 12]], attrs: { eps: 1e-5 }, torch: 'F.layer_norm(x0, (12,), eps=1e-5)' },
  ],
};

export const softmaxOp: CompositeOp<{ axis: number }> = {
  name: 'softmax',
  kind: 'composite',
  doc: 'softmax along an axis, shifted by the (detached) maximum for range',
  arity: 1,
  expand: (b, [x], { axis }) => {
    const a = normAxis(axis, x.shape.length);
    const e = b.exp(b.sub(x, b.detach(b.reduce('max', x, [a], true))));
    return b.div(e, b.sum(e, [a], true));
  },
  parity: [
    { name: 'rows', inputs: [[3, 7]], attrs: { axis: 1 }, torch: 'F.softmax(x0, 1)' },
    { name: 'scores', inputs: [[2, 3, 5, 5]], attrs: { axis: -1 }, torch: 'F.softmax(x0, -1)' },
  ],
};

export const geluOp: CompositeOp = {
  name: 'gelu',
  kind: 'composite',
  doc: 'x * Phi(x), the exact (erf) GELU of nn.GELU()',
  arity: 1,
  expand: (b, [x]) => b.mul(b.mul(x, 0.5), b.add(b.apply('erf', [b.mul(x, Math.SQRT1_2)]), 1)),
  parity: [{ inputs: [[4, 9]], torch: 'F.gelu(x0)' }],
};

export const quickGeluOp: CompositeOp = {
  name: 'quick_gelu',
  kind: 'composite',
  doc: "x * sigmoid(1.702 x), OpenAI CLIP's QuickGELU",
  arity: 1,
  expand: (b, [x]) => b.mul(x, b.sigmoid(b.mul(x, 1.702))),
  parity: [{ inputs: [[4, 9]], torch: 'x0 * torch.sigmoid(1.702 * x0)' }],
};

export interface AttentionAttrs {
  heads: number;
  /** Each token attends only to itself and earlier ones (CLIP's text tower). */
  causal: boolean;
}

/**
 * Multi-head self-attention over x [B, T, E] with nn.MultiheadAttention's
 * parameters: in_proj_weight [3E, E], in_proj_bias [3E], out_proj.weight
 * [E, E], out_proj.bias [E]. Heads are split by permutes around two batched
 * matmuls; q is scaled by 1/sqrt(E / heads) before q k^T, as PyTorch does.
 */
export const attentionOp: CompositeOp<AttentionAttrs> = {
  name: 'attention',
  kind: 'composite',
  doc: 'multi-head self-attention (nn.MultiheadAttention, batch first); inputs x, in_proj_weight, in_proj_bias, out_proj weight and bias',
  arity: 5,
  expand: (b, [x, wIn, bIn, wOut, bOut], { heads, causal }) => {
    if (x.shape.length !== 3) throw new Error(`attention: expects x [B, T, E], got ${fmtShape(x.shape)}`);
    const [B, T, E] = x.shape;
    if (E % heads) throw new Error(`attention: width ${E} is not divisible by ${heads} heads`);
    const dh = E / heads;
    const qkv = b.reshape(linear(b, b.reshape(x, [B * T, E]), wIn, bIn), [B, T, 3, heads, dh]);
    // [3, B, heads, T, dh]: q, k and v, each a stack of B * heads sequences.
    const split = b.apply('permute', [qkv], { perm: [2, 0, 3, 1, 4] });
    const [q, k, v] = b.split(split, 0, 3).map((t) => b.reshape(t, [B * heads, T, dh]));
    let scores = b.matmul(b.mul(q, 1 / Math.sqrt(dh)), k, { transB: true });
    if (causal) scores = b.apply('mask_upper', [scores], { value: MASKED });
    const weights = b.apply('softmax', [scores], { axis: 2 });
    const o = b.reshape(b.matmul(weights, v), [B, heads, T, dh]);
    const merged = b.reshape(b.apply('permute', [o], { perm: [0, 2, 1, 3] }), [B * T, E]);
    return b.reshape(linear(b, merged, wOut, bOut), [B, T, E]);
  },
  parity: [
    {
      name: 'bidirectional',
      inputs: [[2, 5, 8], [24, 8], [24], [8, 8], [8]],
      attrs: { heads: 2, causal: false },
      torch: 'xt = x0.transpose(0, 1)\ny = F.multi_head_attention_forward(xt, xt, xt, 8, 2, x1, x2, None, None, False, 0.0, x3, x4, training=False, need_weights=False)[0].transpose(0, 1)',
    },
    {
      name: 'causal',
      inputs: [[2, 4, 6], [18, 6], [18], [6, 6], [6]],
      attrs: { heads: 3, causal: true },
      torch:
        'xt = x0.transpose(0, 1)\nm = torch.full((4, 4), float("-inf")).triu(1)\ny = F.multi_head_attention_forward(xt, xt, xt, 6, 3, x1, x2, None, None, False, 0.0, x3, x4, training=False, need_weights=False, attn_mask=m)[0].transpose(0, 1)',
    },
  ],
};

/** Multi-head self-attention (see attentionOp). */
export function attention(b: GraphBuilder, x: Value, p: { inWeight: Value; inBias: Value; outWeight: Value; outBias: Value }, attrs: AttentionAttrs): Value {
  return b.apply('attention', [x, p.inWeight, p.inBias, p.outWeight, p.outBias], { ...attrs });
}

export const transformerOps = [maskUpperOp, layerNormOp, softmaxOp, geluOp, quickGeluOp, attentionOp];
