// The language's built-in ops: each with its argument signature, its shape
// rule, the parameters it creates and its cost. Blocks in .gan files are
// built from these. The compiler lowers each recorded node to tensor-IR ops.
import type { Span } from '../../grammar/ast.ts';
import { Codes } from '../../grammar/diagnostics.ts';
import type { BufferInfo, ParamInfo } from './graph.ts';
import { describe, shapeStr, type Tensor, type Value } from './values.ts';

export type ArgType = 'tensor' | 'int' | 'num' | 'bool' | 'str' | 'any';

export interface ArgSpec {
  name: string;
  type: ArgType;
  /** Omitted: required. A function computes a default from earlier args. */
  default?: Value | ((a: BoundArgs) => Value);
}

export type BoundArgs = Record<string, Value>;

export interface NodeExtra {
  attrs?: Record<string, number | boolean | string | number[]>;
  params?: { leaf: string; shape: number[]; init: ParamInfo['init'] }[];
  buffers?: { leaf: string; shape: number[]; init: BufferInfo['init'] }[];
  macs?: number;
}

/** What an op needs from the checker while it applies. */
export interface OpContext {
  span: Span;
  argSpan(name: string): Span;
  node(op: string, inputs: Tensor[], shape: number[], extra?: NodeExtra): Tensor;
  noise(like: number[]): Tensor;
  fail(code: string, message: string, span?: Span, label?: string, help?: string): never;
}

export interface Builtin {
  name: string;
  summary: string;
  args: ArgSpec[];
  /** Extra positional arguments (concat's tensors, reshape's dims). */
  rest?: ArgType;
  apply(ctx: OpContext, a: BoundArgs, rest: Value[]): Value;
}

const num = (v: number): Value => ({ t: 'num', v });
const bool = (v: boolean): Value => ({ t: 'bool', v });
const T = (a: BoundArgs, k: string) => a[k] as Tensor;
const I = (a: BoundArgs, k: string) => (a[k] as { v: number }).v;
const B = (a: BoundArgs, k: string) => (a[k] as { v: boolean }).v;

function needRank(ctx: OpContext, x: Tensor, ranks: number[], what: string, arg = 'x'): void {
  if (!ranks.includes(x.shape.length)) {
    const want = ranks.map((r) => (r === 1 ? '[C]' : r === 3 ? '[C, H, W]' : `rank ${r}`)).join(' or ');
    ctx.fail(Codes.shapeMismatch, `${what} expects a ${want} tensor, got ${shapeStr(x.shape)}`, ctx.argSpan(arg), `shape ${shapeStr(x.shape)}`);
  }
}

function positive(ctx: OpContext, a: BoundArgs, k: string, min = 1): number {
  const v = I(a, k);
  if (v < min) ctx.fail(Codes.badValue, `'${k}' must be at least ${min}, got ${v}`, ctx.argSpan(k));
  return v;
}

function unary(name: string, summary: string, extraArgs: ArgSpec[] = []): Builtin {
  return {
    name,
    summary,
    args: [{ name: 'x', type: 'tensor' }, ...extraArgs],
    apply(ctx, a) {
      const attrs: Record<string, number> = {};
      for (const e of extraArgs) attrs[e.name] = (a[e.name] as { v: number }).v;
      return ctx.node(name, [T(a, 'x')], T(a, 'x').shape, { attrs });
    },
  };
}

function needSameShape(ctx: OpContext, what: string, x: Tensor, y: Tensor): void {
  if (shapeStr(x.shape) !== shapeStr(y.shape)) {
    ctx.fail(Codes.shapeMismatch, `${what}, got ${shapeStr(x.shape)} and ${shapeStr(y.shape)}`, ctx.span, `${shapeStr(x.shape)} vs ${shapeStr(y.shape)}`);
  }
}

/** Two same-shaped tensors to a scalar loss (batch-reduced). */
function pairLoss(name: string, summary: string): Builtin {
  return {
    name,
    summary,
    args: [
      { name: 'x', type: 'tensor' },
      { name: 'y', type: 'tensor' },
    ],
    apply(ctx, a) {
      const x = T(a, 'x');
      const y = T(a, 'y');
      needSameShape(ctx, `${name} needs equal shapes`, x, y);
      return ctx.node(name, [x, y], [], { attrs: { loss: true } });
    },
  };
}

/** mean_hw / sum_hw: reduce a [C, H, W] map over H and W to [C]. */
function reduceHW(name: string, op: 'mean' | 'sum'): Builtin {
  return {
    name,
    summary: `${op} over height and width: [C, H, W] -> [C]`,
    args: [{ name: 'x', type: 'tensor' }],
    apply(ctx, a) {
      const x = T(a, 'x');
      needRank(ctx, x, [3], name);
      return ctx.node(op, [x], [x.shape[0]], { attrs: { axes: [1, 2] } });
    },
  };
}

const builtinList: Builtin[] = [
  {
    name: 'linear',
    summary: 'fully connected layer over the last dimension',
    args: [
      { name: 'x', type: 'tensor' },
      { name: 'out', type: 'int' },
      { name: 'bias', type: 'bool', default: bool(true) },
    ],
    apply(ctx, a) {
      const x = T(a, 'x');
      if (x.shape.length < 1) ctx.fail(Codes.shapeMismatch, 'linear needs a tensor with at least one dimension', ctx.argSpan('x'));
      const inF = x.shape[x.shape.length - 1];
      const out = positive(ctx, a, 'out');
      const rows = x.shape.slice(0, -1).reduce((p, q) => p * q, 1);
      const params: NodeExtra['params'] = [{ leaf: 'weight', shape: [out, inF], init: 'orthogonal' }];
      if (B(a, 'bias')) params.push({ leaf: 'bias', shape: [out], init: 'zeros' });
      return ctx.node('linear', [x], [...x.shape.slice(0, -1), out], { attrs: { in: inF, out, bias: B(a, 'bias') }, params, macs: rows * inF * out });
    },
  },
  {
    name: 'conv',
    summary: '2-d convolution; pad defaults to (k - stride) div 2 ("same" for stride 1); no bias by default',
    args: [
      { name: 'x', type: 'tensor' },
      { name: 'out', type: 'int' },
      { name: 'k', type: 'int', default: num(3) },
      { name: 'stride', type: 'int', default: num(1) },
      { name: 'pad', type: 'int', default: (a) => num(Math.max(0, Math.floor(((a.k as { v: number }).v - (a.stride as { v: number }).v) / 2))) },
      { name: 'bias', type: 'bool', default: bool(false) },
    ],
    apply(ctx, a) {
      const x = T(a, 'x');
      needRank(ctx, x, [3], 'conv');
      const [c, h, w] = x.shape;
      const out = positive(ctx, a, 'out');
      const k = positive(ctx, a, 'k');
      const s = positive(ctx, a, 'stride');
      const p = positive(ctx, a, 'pad', 0);
      const ho = Math.floor((h + 2 * p - k) / s) + 1;
      const wo = Math.floor((w + 2 * p - k) / s) + 1;
      if (ho < 1 || wo < 1) {
        ctx.fail(Codes.shapeMismatch, `conv with k = ${k}, stride = ${s}, pad = ${p} does not fit a ${h}x${w} input`, ctx.span, `input ${shapeStr(x.shape)}`, 'use a smaller kernel or more padding');
      }
      const params: NodeExtra['params'] = [{ leaf: 'weight', shape: [out, c, k, k], init: 'orthogonal' }];
      if (B(a, 'bias')) params.push({ leaf: 'bias', shape: [out], init: 'zeros' });
      return ctx.node('conv2d', [x], [out, ho, wo], {
        attrs: { in: c, out, k, stride: s, pad: p, bias: B(a, 'bias') },
        params,
        macs: ho * wo * out * c * k * k,
      });
    },
  },
  {
    name: 'batchnorm',
    summary: 'batch normalisation over channels (dim 0): 1-d for [C], 2-d for [C, H, W]',
    args: [
      { name: 'x', type: 'tensor' },
      { name: 'momentum', type: 'num', default: num(0.1) },
      { name: 'eps', type: 'num', default: num(1e-5) },
    ],
    apply(ctx, a) {
      const x = T(a, 'x');
      needRank(ctx, x, [1, 3], 'batchnorm');
      const c = x.shape[0];
      return ctx.node('batchnorm', [x], x.shape, {
        attrs: { channels: c, momentum: I(a, 'momentum'), eps: I(a, 'eps') },
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
  },
  {
    name: 'glu',
    summary: 'gated linear unit over channels: first half * sigmoid(second half)',
    args: [{ name: 'x', type: 'tensor' }],
    apply(ctx, a) {
      const x = T(a, 'x');
      if (x.shape.length < 1 || x.shape[0] % 2 !== 0) {
        ctx.fail(Codes.notDivisible, `glu needs an even channel count, got ${x.shape[0] ?? 0} in ${shapeStr(x.shape)}`, ctx.argSpan('x'), `${x.shape[0] ?? 0} channels`, 'double the channels of the layer before glu');
      }
      return ctx.node('glu', [x], [x.shape[0] / 2, ...x.shape.slice(1)]);
    },
  },
  unary('relu', 'max(x, 0)'),
  unary('leaky_relu', 'x if x > 0 else slope * x', [{ name: 'slope', type: 'num', default: num(0.2) }]),
  unary('tanh', 'hyperbolic tangent'),
  unary('sigmoid', 'logistic sigmoid'),
  unary('softplus', 'log(1 + exp(x))'),
  unary('exp', 'e^x'),
  unary('log', 'natural logarithm'),
  unary('sqrt', 'square root'),
  unary('detach', 'stop gradients flowing through x'),
  {
    name: 'upsample',
    summary: 'nearest-neighbour upsampling of [C, H, W]',
    args: [
      { name: 'x', type: 'tensor' },
      { name: 'factor', type: 'int', default: num(2) },
    ],
    apply(ctx, a) {
      const x = T(a, 'x');
      needRank(ctx, x, [3], 'upsample');
      const f = positive(ctx, a, 'factor');
      return ctx.node('upsample', [x], [x.shape[0], x.shape[1] * f, x.shape[2] * f], { attrs: { factor: f } });
    },
  },
  {
    name: 'concat',
    summary: 'concatenate tensors along a dimension (default 0, channels)',
    args: [{ name: 'dim', type: 'int', default: num(0) }],
    rest: 'tensor',
    apply(ctx, a, rest) {
      const ts = rest as Tensor[];
      if (ts.length < 2) ctx.fail(Codes.badArity, `concat needs at least 2 tensors, got ${ts.length}`, ctx.span);
      const d = I(a, 'dim');
      const first = ts[0].shape;
      if (d < 0 || d >= first.length) ctx.fail(Codes.badValue, `concat dim ${d} is out of range for ${shapeStr(first)}`, ctx.argSpan('dim'));
      for (const t of ts.slice(1)) {
        const ok = t.shape.length === first.length && t.shape.every((n, i) => i === d || n === first[i]);
        if (!ok) {
          ctx.fail(
            Codes.shapeMismatch,
            `concat along dim ${d} needs the other dimensions to match: ${shapeStr(first)} vs ${shapeStr(t.shape)}`,
            ctx.span,
            ts.map((x) => shapeStr(x.shape)).join(' ++ '),
            first.length === 1 && t.shape.length === 3 ? "use tile(v, h, w) to spread a vector over a feature map" : undefined,
          );
        }
      }
      const shape = [...first];
      shape[d] = ts.reduce((s, t) => s + t.shape[d], 0);
      return ctx.node('concat', ts, shape, { attrs: { dim: d, sizes: ts.map((t) => t.shape[d]) } });
    },
  },
  {
    name: 'split',
    summary: 'split into n equal parts along a dimension (default 0); returns a tuple',
    args: [
      { name: 'x', type: 'tensor' },
      { name: 'n', type: 'int', default: num(2) },
      { name: 'dim', type: 'int', default: num(0) },
    ],
    apply(ctx, a) {
      const x = T(a, 'x');
      const n = positive(ctx, a, 'n');
      const d = I(a, 'dim');
      if (d < 0 || d >= x.shape.length) ctx.fail(Codes.badValue, `split dim ${d} is out of range for ${shapeStr(x.shape)}`, ctx.argSpan('dim'));
      if (x.shape[d] % n !== 0) {
        ctx.fail(Codes.notDivisible, `cannot split ${x.shape[d]} into ${n} equal parts (dim ${d} of ${shapeStr(x.shape)})`, ctx.span, `${x.shape[d]} is not divisible by ${n}`);
      }
      const part = x.shape[d] / n;
      const items: Value[] = [];
      for (let i = 0; i < n; i++) {
        const shape = [...x.shape];
        shape[d] = part;
        items.push(ctx.node('slice', [x], shape, { attrs: { dim: d, start: i * part, end: (i + 1) * part } }));
      }
      return { t: 'tuple', items };
    },
  },
  {
    name: 'reshape',
    summary: 'reshape to the given dimensions (one may be -1)',
    args: [{ name: 'x', type: 'tensor' }],
    rest: 'int',
    apply(ctx, a, rest) {
      const x = T(a, 'x');
      const dims = rest.map((r) => (r as { v: number }).v);
      const total = x.shape.reduce((p, q) => p * q, 1);
      const known = dims.filter((d) => d !== -1).reduce((p, q) => p * q, 1);
      const free = dims.filter((d) => d === -1).length;
      if (free > 1 || dims.some((d) => d === 0 || d < -1)) ctx.fail(Codes.badValue, `invalid reshape dimensions ${shapeStr(dims)}`, ctx.span);
      const shape = dims.map((d) => (d === -1 ? total / known : d));
      if (shape.reduce((p, q) => p * q, 1) !== total || !shape.every(Number.isInteger)) {
        ctx.fail(Codes.shapeMismatch, `cannot reshape ${shapeStr(x.shape)} (${total} elements) to ${shapeStr(dims)}`, ctx.span, `${total} elements`);
      }
      return ctx.node('reshape', [x], shape);
    },
  },
  {
    name: 'flatten',
    summary: 'flatten to one dimension',
    args: [{ name: 'x', type: 'tensor' }],
    apply(ctx, a) {
      const x = T(a, 'x');
      return ctx.node('reshape', [x], [x.shape.reduce((p, q) => p * q, 1)]);
    },
  },
  {
    name: 'tile',
    summary: 'spread a vector [C] over a feature map: [C, h, w]',
    args: [
      { name: 'x', type: 'tensor' },
      { name: 'h', type: 'int' },
      { name: 'w', type: 'int', default: (a) => a.h },
    ],
    apply(ctx, a) {
      const x = T(a, 'x');
      needRank(ctx, x, [1], 'tile');
      return ctx.node('tile', [x], [x.shape[0], positive(ctx, a, 'h'), positive(ctx, a, 'w')]);
    },
  },
  reduceHW('mean_hw', 'mean'),
  reduceHW('sum_hw', 'sum'),
  {
    name: 'cosine',
    summary: 'cosine similarity of two vectors, one number per sample',
    args: [
      { name: 'x', type: 'tensor' },
      { name: 'y', type: 'tensor' },
    ],
    apply(ctx, a) {
      const x = T(a, 'x');
      const y = T(a, 'y');
      if (x.shape.length !== 1) {
        ctx.fail(Codes.shapeMismatch, `cosine needs two vectors of equal length, got ${shapeStr(x.shape)} and ${shapeStr(y.shape)}`, ctx.span, `${shapeStr(x.shape)} vs ${shapeStr(y.shape)}`);
      }
      needSameShape(ctx, 'cosine needs two vectors of equal length', x, y);
      return ctx.node('cosine', [x, y], [1]);
    },
  },
  {
    name: 'randn_like',
    summary: 'standard normal noise of the same shape, drawn per step',
    args: [{ name: 'x', type: 'tensor' }],
    apply(ctx, a) {
      return ctx.noise(T(a, 'x').shape);
    },
  },
  {
    name: 'kl_normal',
    summary: 'KL(N(mu, exp(logvar)) || N(0, I)) as -0.5 * mean(1 + logvar - mu^2 - exp(logvar))',
    args: [
      { name: 'mu', type: 'tensor' },
      { name: 'logvar', type: 'tensor' },
    ],
    apply(ctx, a) {
      const mu = T(a, 'mu');
      const lv = T(a, 'logvar');
      needSameShape(ctx, 'kl_normal needs mu and logvar of equal shape', mu, lv);
      return ctx.node('kl_normal', [mu, lv], [], { attrs: { loss: true } });
    },
  },
  {
    name: 'bce',
    summary: 'binary cross-entropy with logits against a constant target',
    args: [
      { name: 'logits', type: 'tensor' },
      { name: 'target', type: 'num' },
    ],
    apply(ctx, a) {
      return ctx.node('bce_logits', [T(a, 'logits')], [], { attrs: { loss: true, target: I(a, 'target') } });
    },
  },
  pairLoss('mse', 'mean squared error'),
  pairLoss('l1', 'mean absolute error'),
];

export const builtins = new Map(builtinList.map((b) => [b.name, b]));

/** Compile-time functions on numbers, usable in params and shapes. */
export const scalarFunctions: Record<string, { arity: number[]; f: (...x: number[]) => number }> = {
  log2: { arity: [1], f: Math.log2 },
  floor: { arity: [1], f: Math.floor },
  ceil: { arity: [1], f: Math.ceil },
  round: { arity: [1], f: Math.round },
  abs: { arity: [1], f: Math.abs },
  min: { arity: [2], f: Math.min },
  max: { arity: [2], f: Math.max },
  int: { arity: [1], f: Math.trunc },
  sqrt: { arity: [1], f: Math.sqrt },
  exp: { arity: [1], f: Math.exp },
  log: { arity: [1], f: Math.log },
};

/** Shape introspection usable in blocks: `channels(x)`. */
export const shapeFunctions: Record<string, (shape: number[]) => number | undefined> = {
  channels: (s) => s[0],
  height: (s) => (s.length === 3 ? s[1] : undefined),
  width: (s) => (s.length === 3 ? s[2] : undefined),
  numel: (s) => s.reduce((a, b) => a * b, 1),
};

export function typeOk(t: ArgType, v: Value): boolean {
  switch (t) {
    case 'tensor':
      return v.t === 'tensor';
    case 'int':
      return v.t === 'num' && Number.isInteger(v.v);
    case 'num':
      return v.t === 'num';
    case 'bool':
      return v.t === 'bool';
    case 'str':
      return v.t === 'str';
    case 'any':
      return true;
  }
}

export function typeName(t: ArgType): string {
  return { tensor: 'a tensor', int: 'an integer', num: 'a number', bool: 'true or false', str: 'a string', any: 'a value' }[t];
}

export { describe };
