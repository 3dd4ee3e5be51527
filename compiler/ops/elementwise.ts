// Elementwise ops: unary maps, binary maps with NumPy broadcasting, constants
// (fill) and explicit broadcasting (expand). All are fusible: a chain of them
// becomes one kernel.
import type { Value } from '../ir/graph.ts';
import { broadcastShapes, broadcastsTo } from '../ir/shape.ts';
import { binaryRef, unaryRef } from './refutil.ts';
import { f32, shapeError, type Domain, type FnCtx, type GradCtx, type ParityCase, type PrimitiveOp } from './op.ts';

type Attrs = Record<string, unknown>;

interface UnarySpec<A = Attrs> {
  name: string;
  doc: string;
  /** WGSL f32 expression of `a` (the input value). */
  expr: (a: string, attrs: A) => string;
  /** WGSL statements computing the expression's operands from `a`, when it needs some. */
  prelude?: string;
  /** The same function in float64 JavaScript (reference semantics). */
  js: (a: number, attrs: A) => number;
  grad: (g: GradCtx<A>) => Value | null;
  /** False when no gradient flows through the op at all (see PrimitiveOp.differentiable). */
  differentiable?: boolean;
  parity: ParityCase[];
}

function unary<A = Attrs>(s: UnarySpec<A>): PrimitiveOp<A> {
  return {
    name: s.name,
    doc: s.doc,
    kind: 'fusible',
    arity: 1,
    shape: (ins) => [...ins[0]],
    fn: (c: FnCtx<A>) => {
      const y = s.expr('a', c.attrs);
      // An identity (detach) reads its input and returns it: the form fused
      // kernels elide (compiler/kernels/fused.ts), so it renders no function.
      if (y === 'a' && !s.prelude) return `return ${c.bcast(0)};`;
      return `let a = ${c.bcast(0)};\n  ${s.prelude ? `${s.prelude}\n  ` : ''}return ${y};`;
    },
    grad: (g) => [g.needs[0] ? s.grad(g) : null],
    ...(s.differentiable === false ? { differentiable: false } : {}),
    ref: (ins, c) => unaryRef((a) => s.js(a, c.attrs))(ins, c),
    parity: s.parity,
    flopsPerElement: 1,
  };
}

const S = [3, 5];
const S4 = [2, 3, 4, 5];
const p = (torch: string, domain?: Domain[], extra: Partial<ParityCase> = {}): ParityCase[] => [
  { inputs: [S], torch, domain, ...extra },
  { inputs: [S4], torch, domain, ...extra },
];

export const unaryOps: PrimitiveOp<any>[] = [
  unary({
    name: 'neg',
    doc: '-x',
    expr: (a) => `-${a}`,
    js: (a) => -a,
    grad: ({ b, gy }) => b.neg(gy),
    parity: p('-x0'),
  }),
  unary({
    name: 'relu',
    doc: 'max(x, 0)',
    expr: (a) => `max(${a}, 0.0)`,
    js: (a) => Math.max(a, 0),
    grad: ({ b, gy, x }) => b.mul(gy, b.step(x[0])),
    parity: p('torch.relu(x0)', ['away0']),
  }),
  unary<{ slope: number }>({
    name: 'leaky_relu',
    doc: 'x if x > 0 else slope * x',
    expr: (a, { slope }) => `select(${f32(slope)} * ${a}, ${a}, ${a} > 0.0)`,
    js: (a, { slope }) => (a > 0 ? a : slope * a),
    // d/dx = slope + (1 - slope) * step(x)
    grad: ({ b, gy, x, attrs }) => b.mul(gy, b.add(b.mul(b.step(x[0]), 1 - attrs.slope), attrs.slope)),
    parity: p('F.leaky_relu(x0, 0.2)', ['away0'], { attrs: { slope: 0.2 } }),
  }),
  unary({
    name: 'tanh',
    doc: 'tanh(x)',
    // WGSL tanh on lavapipe loses accuracy for large |x|; this form is exact to f32 rounding.
    expr: (a) => `(1.0 - 2.0 / (exp(2.0 * clamp(${a}, -15.0, 15.0)) + 1.0))`,
    js: Math.tanh,
    grad: ({ b, gy, y }) => b.mul(gy, b.sub(1, b.mul(y, y))),
    parity: p('torch.tanh(x0)'),
  }),
  unary({
    name: 'sigmoid',
    doc: '1 / (1 + exp(-x))',
    expr: (a) => `(1.0 / (1.0 + exp(-${a})))`,
    js: (a) => 1 / (1 + Math.exp(-a)),
    grad: ({ b, gy, y }) => b.mul(gy, b.mul(y, b.sub(1, y))),
    parity: p('torch.sigmoid(x0)'),
  }),
  unary({
    name: 'softplus',
    doc: 'log(1 + exp(x)), computed stably',
    expr: (a) => `(max(${a}, 0.0) + log(1.0 + exp(-abs(${a}))))`,
    js: (a) => Math.max(a, 0) + Math.log1p(Math.exp(-Math.abs(a))),
    grad: ({ b, gy, x }) => b.mul(gy, b.sigmoid(x[0])),
    parity: p('F.softplus(x0)'),
  }),
  unary({
    name: 'exp',
    doc: 'e^x',
    expr: (a) => `exp(${a})`,
    js: Math.exp,
    grad: ({ b, gy, y }) => b.mul(gy, y),
    parity: p('torch.exp(x0)'),
  }),
  unary({
    name: 'log',
    doc: 'natural logarithm',
    expr: (a) => `log(${a})`,
    js: Math.log,
    grad: ({ b, gy, x }) => b.div(gy, x[0]),
    parity: p('torch.log(x0)', ['positive']),
  }),
  unary({
    name: 'sqrt',
    doc: 'square root',
    expr: (a) => `sqrt(${a})`,
    js: Math.sqrt,
    grad: ({ b, gy, y }) => b.div(gy, b.mul(y, 2)),
    parity: p('torch.sqrt(x0)', ['positive']),
  }),
  unary({
    name: 'abs',
    doc: '|x|',
    expr: (a) => `abs(${a})`,
    js: Math.abs,
    grad: ({ b, gy, x }) => b.mul(gy, b.sign(x[0])),
    parity: p('torch.abs(x0)', ['away0']),
  }),
  unary({
    name: 'erf',
    doc: 'the error function (GELU is built on it)',
    // WGSL has no erf: Numerical Recipes' Chebyshev fit of erfc (fractional
    // error < 1.2e-7), so erf is exact to about 1.2e-7 absolute.
    prelude: [
      'let t = 1.0 / (1.0 + 0.5 * abs(a));',
      'let c = t * exp(-a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));',
    ].join('\n  '),
    expr: (a) => `select(c - 1.0, 1.0 - c, ${a} >= 0.0)`,
    js: erf64,
    grad: ({ b, gy, x }) => b.mul(gy, b.mul(b.exp(b.neg(b.mul(x[0], x[0]))), 2 / Math.sqrt(Math.PI))),
    parity: p('torch.erf(x0)'),
  }),
  unary({
    name: 'step',
    doc: '1 where x > 0, else 0; piecewise constant, so no gradient flows',
    expr: (a) => `select(0.0, 1.0, ${a} > 0.0)`,
    js: (a) => (a > 0 ? 1 : 0),
    grad: () => null,
    differentiable: false,
    parity: p('(x0 > 0).float()', ['away0'], { grad: [] }),
  }),
  unary({
    name: 'sign',
    doc: 'sign(x); piecewise constant, so no gradient flows',
    expr: (a) => `sign(${a})`,
    js: Math.sign,
    grad: () => null,
    differentiable: false,
    parity: p('torch.sign(x0)', ['away0'], { grad: [] }),
  }),
  unary({
    name: 'detach',
    doc: 'identity forward; blocks the gradient (PyTorch detach)',
    expr: (a) => a,
    js: (a) => a,
    grad: () => null,
    differentiable: false,
    parity: p('x0.detach()', undefined, { grad: [] }),
  }),
];

/** erf in float64: its Maclaurin series near 0, a continued fraction for erfc beyond (|error| < 1e-14). */
export function erf64(x: number): number {
  const z = Math.abs(x);
  if (z < 2.5) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 80 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(z) = exp(-z^2)/sqrt(pi) * 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + ...)))), evaluated bottom-up.
  let f = z;
  for (let k = 60; k >= 1; k--) f = z + k / 2 / f;
  const erfc = Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

interface BinarySpec {
  name: string;
  doc: string;
  expr: (a: string, b: string) => string;
  js: (a: number, b: number) => number;
  grad: (g: GradCtx) => [Value | null, Value | null];
  torch: string;
  domain?: Domain[];
  /** False for a piecewise-constant op (see PrimitiveOp.differentiable). */
  differentiable?: boolean;
  /** Cases replacing the default three (same shapes, broadcast, rank) of random inputs. */
  parity?: ParityCase[];
}

function binary(s: BinarySpec): PrimitiveOp {
  return {
    name: s.name,
    doc: `${s.doc}, broadcasting like NumPy`,
    kind: 'fusible',
    arity: 2,
    shape: (ins) => {
      const out = broadcastShapes(ins[0], ins[1]);
      if (!out) throw shapeError(s.name, 'shapes do not broadcast', ins);
      return out;
    },
    fn: (c) => `let a = ${c.bcast(0)};\n  let b = ${c.bcast(1)};\n  return ${s.expr('a', 'b')};`,
    ref: binaryRef(s.js),
    grad: (g) => {
      const [ga, gb] = s.grad(g);
      return [
        g.needs[0] && ga ? g.b.sumTo(ga, g.x[0].shape) : null,
        g.needs[1] && gb ? g.b.sumTo(gb, g.x[1].shape) : null,
      ];
    },
    parity: s.parity ?? [
      { name: 'same', inputs: [[3, 5], [3, 5]], torch: s.torch, domain: s.domain },
      { name: 'bcast', inputs: [[2, 3, 4, 5], [1, 3, 1, 1]], torch: s.torch, domain: s.domain },
      { name: 'rank', inputs: [[4, 1], [2, 1, 5]], torch: s.torch, domain: s.domain },
    ],
    ...(s.differentiable === false ? { differentiable: false } : {}),
    flopsPerElement: 1,
  };
}

export const binaryOps: PrimitiveOp[] = [
  binary({
    name: 'add',
    doc: 'a + b',
    expr: (a, b) => `(${a} + ${b})`,
    js: (a, b) => a + b,
    grad: ({ gy }) => [gy, gy],
    torch: 'x0 + x1',
  }),
  binary({
    name: 'sub',
    doc: 'a - b',
    expr: (a, b) => `(${a} - ${b})`,
    js: (a, b) => a - b,
    grad: ({ b, gy, needs }) => [gy, needs[1] ? b.neg(gy) : null],
    torch: 'x0 - x1',
  }),
  binary({
    name: 'mul',
    doc: 'a * b',
    expr: (a, b) => `(${a} * ${b})`,
    js: (a, b) => a * b,
    grad: ({ b, gy, x, needs }) => [needs[0] ? b.mul(gy, x[1]) : null, needs[1] ? b.mul(gy, x[0]) : null],
    torch: 'x0 * x1',
  }),
  binary({
    name: 'div',
    doc: 'a / b',
    expr: (a, b) => `(${a} / ${b})`,
    js: (a, b) => a / b,
    grad: ({ b, gy, x, y, needs }) => [needs[0] ? b.div(gy, x[1]) : null, needs[1] ? b.neg(b.mul(gy, b.div(y, x[1]))) : null],
    torch: 'x0 / x1',
    domain: ['normal', 'away0'],
  }),
  binary({
    name: 'maximum',
    doc: 'max(a, b) (ties send the gradient to b)',
    expr: (a, b) => `max(${a}, ${b})`,
    js: Math.max,
    grad: ({ b, gy, x, needs }) => {
      const m = b.step(b.sub(x[0], x[1]));
      return [needs[0] ? b.mul(gy, m) : null, needs[1] ? b.mul(gy, b.sub(1, m)) : null];
    },
    torch: 'torch.maximum(x0, x1)',
  }),
  binary({
    name: 'equal',
    doc: '1 where a == b, else 0; piecewise constant, so no gradient flows (a max routes its gradient through it)',
    expr: (a, b) => `select(0.0, 1.0, ${a} == ${b})`,
    js: (a, b) => (a === b ? 1 : 0),
    grad: () => [null, null],
    differentiable: false,
    torch: '(x0 == x1).float()',
    // Random inputs are never equal: compare x with relu(x) (equal where x >= 0),
    // and a broadcast row max with its rows (one tie per row).
    parity: [
      { name: 'ties', inputs: [[3, 5]], torch: '(x0 == torch.relu(x0)).float()', grad: [], build: (b, [x]) => b.apply('equal', [x, b.relu(x)]) },
      {
        name: 'bcast-max',
        inputs: [[4, 6]],
        torch: '(x0 == x0.max(1, keepdim=True).values).float()',
        grad: [],
        build: (b, [x]) => b.apply('equal', [x, b.reduce('max', x, [1], true)]),
      },
    ],
  }),
];

export const fillOp: PrimitiveOp<{ value: number; shape: number[] }> = {
  name: 'fill',
  doc: 'a constant tensor (usually a broadcast scalar)',
  kind: 'fusible',
  arity: 0,
  shape: (_ins, a) => [...a.shape],
  fn: (c) => `return ${c.constant(c.attrs.value)};`,
  ref: (_ins, c) => new Float64Array(c.out.reduce((p, d) => p * d, 1)).fill(c.attrs.value),
  grad: () => [],
  parity: [{ inputs: [], attrs: { value: 1.5, shape: [2, 3] }, torch: 'torch.full((2, 3), 1.5)', grad: [] }],
  flopsPerElement: 0,
};

export const expandOp: PrimitiveOp<{ shape: number[] }> = {
  name: 'expand',
  doc: 'broadcast x to a larger shape',
  kind: 'fusible',
  arity: 1,
  shape: (ins, a) => {
    if (!broadcastsTo(ins[0], a.shape)) throw shapeError('expand', `cannot broadcast to [${a.shape.join(',')}]`, ins);
    return [...a.shape];
  },
  fn: (c) => `return ${c.bcast(0)};`,
  ref: unaryRef((a) => a),
  grad: ({ b, gy, x }) => [b.sumTo(gy, x[0].shape)],
  parity: [
    { inputs: [[3, 1]], attrs: { shape: [2, 3, 4] }, torch: 'x0.expand(2, 3, 4)' },
    { inputs: [[1, 4, 1, 1]], attrs: { shape: [2, 4, 3, 3] }, torch: 'x0.expand(2, 4, 3, 3)' },
  ],
  flopsPerElement: 0,
};
