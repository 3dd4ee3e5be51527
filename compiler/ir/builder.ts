// GraphBuilder: the API the front end lowers a checked model through.
//
//   const b = new GraphBuilder();
//   const x = b.input('image', [8, 3, 64, 64]);
//   const w = b.param('d0/conv.0/weight', [64, 3, 4, 4], { kind: 'normal', mean: 0, std: 0.02 }, 'D0');
//   const h = b.apply('leaky_relu', [b.conv2d(x, w, { stride: 2, pad: 1 })], { slope: 0.2 });
//
// `apply` adds any op of the registry (compiler/ops): a primitive becomes a
// node, checked by its shape rule as it is built (errors name the op and the
// shapes); a composite (batchnorm, glu, the losses...) expands through its own
// record into primitives, so autodiff and fusion only see primitives. The
// methods below are shorthands for the primitives gradient rules and
// composites are written in; typed helpers for composites live with their
// records (e.g. batchNorm() in compiler/ops/batchnorm.ts).
import { Graph, type Attrs, type Init, type Value } from './graph.ts';
import { axis as normAxis, broadcastsTo, fmtShape, numel, sameShape, type Shape } from './shape.ts';
import { opDef } from '../ops/registry.ts';

/** Called for every `apply`, with the nesting depth of composite expansion (0: applied directly). */
export type ApplyTrace = (op: string, depth: number) => void;

export class GraphBuilder {
  readonly graph: Graph;
  /** Latest version of each state buffer (after assign). */
  private readonly versions = new Map<number, Value>();
  private rngStreams = 0;
  private readonly memo = new Map<string, Value>();

  constructor(graph: Graph = new Graph()) {
    this.graph = graph;
  }

  // ---- leaves -------------------------------------------------------------

  /** A parameter of an optimizer group; `frozen` for a pretrained network's (no gradient arena, never trained). */
  param(name: string, shape: Shape, init: Init = { kind: 'zeros' }, group = 'default', frozen = false): Value {
    return this.graph.newValue(shape, 'param', { name, init, group, ...(frozen ? { frozen } : {}) });
  }

  input(name: string, shape: Shape): Value {
    return this.graph.newValue(shape, 'input', { name });
  }

  /** BatchNorm running statistics and other state carried across steps. */
  buffer(name: string, shape: Shape, init: Init = { kind: 'zeros' }): Value {
    return this.graph.newValue(shape, 'buffer', { name, init });
  }

  /**
   * Named noise, drawn afresh every step by a random op (e.g. 'randn' with
   * attrs { shape }) from its own stream; feeds may override it by name.
   */
  noise(name: string, op: string, attrs: Attrs): Value {
    const def = this.randomOp(op);
    this.trace?.(op, this.depth);
    const a = { ...attrs, stream: this.rngStreams++ };
    return this.graph.addNode(op, [], a, def.shape([], a), 'noise', name);
  }

  /** Unnamed random values from a random op, on a stream of their own. */
  random(op: string, attrs: Attrs): Value {
    this.randomOp(op);
    return this.apply(op, [], { ...attrs, stream: this.rngStreams++ });
  }

  private randomOp(op: string) {
    const def = opDef(op);
    if (def.kind === 'composite' || !def.random) throw new Error(`'${op}' is not a random-number op`);
    return def;
  }

  /** The current value of a state buffer: the last one assigned in this graph, or the stored one. */
  read(buffer: Value): Value {
    if (buffer.kind !== 'buffer') throw new Error(`read: '${buffer.name}' is a ${buffer.kind}, not a buffer`);
    return this.versions.get(buffer.id) ?? buffer;
  }

  /** Writes `value` into a state buffer at the end of the step; later reads see it. */
  assign(buffer: Value, value: Value): void {
    if (buffer.kind !== 'buffer') throw new Error(`assign: '${buffer.name}' is a ${buffer.kind}, not a buffer`);
    if (!sameShape(buffer.shape, value.shape)) {
      throw new Error(`assign: '${buffer.name}' has shape ${fmtShape(buffer.shape)}, value has ${fmtShape(value.shape)}`);
    }
    this.versions.set(buffer.id, value);
    const ups = this.graph.updates;
    const i = ups.findIndex((u) => u.target === buffer);
    if (i >= 0) ups.splice(i, 1);
    ups.push({ target: buffer, value });
  }

  /** Names an intermediate for the IR listing (e.g. its source path 'g0/up.0/conv'); first name wins. */
  label<V extends Value>(v: V, name: string): V {
    if (v.kind === 'intermediate' && v.name === undefined) v.name = name;
    return v;
  }

  output(name: string, v: Value): Value {
    this.graph.outputs.set(name, v);
    return v;
  }

  // ---- generic ------------------------------------------------------------

  /** Observes every `apply` (the op-coverage test reads which IR ops a language op produced). */
  trace?: ApplyTrace;
  /** Nesting depth of composite expansion. */
  private depth = 0;

  /**
   * Adds an op. A composite expands through its record. Identical primitive
   * applications (same op, inputs and attrs) are shared (hash-consing), so
   * e.g. two autodiff calls on the same loss reuse one backward graph instead
   * of computing it twice.
   */
  apply(op: string, inputs: readonly Value[], attrs: Attrs = {}): Value {
    const def = opDef(op);
    if (def.arity >= 0 && inputs.length !== def.arity) {
      throw new Error(`${op}: expects ${def.arity} inputs, got ${inputs.length}`);
    }
    this.trace?.(op, this.depth);
    if (def.kind === 'composite') {
      this.depth++;
      try {
        return def.expand(this, inputs, attrs);
      } finally {
        this.depth--;
      }
    }
    const same = op === 'mul' ? multipliedByOne(inputs) : undefined;
    if (same) return same;
    const key = `${op}|${inputs.map((v) => v.id).join(',')}|${JSON.stringify(attrs)}`;
    const hit = this.memo.get(key);
    if (hit) return hit;
    const shape = def.shape(inputs.map((v) => v.shape), attrs);
    const out = this.graph.addNode(op, inputs, attrs, shape);
    this.memo.set(key, out);
    return out;
  }

  /** A constant (broadcast scalar by default). */
  scalar(value: number, shape: Shape = []): Value {
    return this.apply('fill', [], { value, shape: [...shape] });
  }

  private operand(v: Value | number): Value {
    return typeof v === 'number' ? this.scalar(v) : v;
  }

  // ---- elementwise ----------------------------------------------------------

  add(a: Value | number, b: Value | number): Value {
    return this.apply('add', [this.operand(a), this.operand(b)]);
  }
  sub(a: Value | number, b: Value | number): Value {
    return this.apply('sub', [this.operand(a), this.operand(b)]);
  }
  mul(a: Value | number, b: Value | number): Value {
    return this.apply('mul', [this.operand(a), this.operand(b)]);
  }
  div(a: Value | number, b: Value | number): Value {
    return this.apply('div', [this.operand(a), this.operand(b)]);
  }
  maximum(a: Value | number, b: Value | number): Value {
    return this.apply('maximum', [this.operand(a), this.operand(b)]);
  }
  neg(x: Value): Value {
    return this.apply('neg', [x]);
  }
  relu(x: Value): Value {
    return this.apply('relu', [x]);
  }
  leakyRelu(x: Value, slope = 0.01): Value {
    return this.apply('leaky_relu', [x], { slope });
  }
  tanh(x: Value): Value {
    return this.apply('tanh', [x]);
  }
  sigmoid(x: Value): Value {
    return this.apply('sigmoid', [x]);
  }
  softplus(x: Value): Value {
    return this.apply('softplus', [x]);
  }
  exp(x: Value): Value {
    return this.apply('exp', [x]);
  }
  log(x: Value): Value {
    return this.apply('log', [x]);
  }
  sqrt(x: Value): Value {
    return this.apply('sqrt', [x]);
  }
  abs(x: Value): Value {
    return this.apply('abs', [x]);
  }
  /** 1 where x > 0, else 0 (no gradient). */
  step(x: Value): Value {
    return this.apply('step', [x]);
  }
  sign(x: Value): Value {
    return this.apply('sign', [x]);
  }
  /** Identity forward, no gradient backward (PyTorch's detach). */
  detach(x: Value): Value {
    return this.apply('detach', [x]);
  }

  // ---- shapes ---------------------------------------------------------------

  reshape(x: Value, shape: Shape): Value {
    const s = [...shape];
    const hole = s.indexOf(-1);
    if (hole >= 0) s[hole] = numel(x.shape) / numel(s.filter((d) => d !== -1));
    if (sameShape(s, x.shape)) return x;
    return this.apply('reshape', [x], { shape: s });
  }
  expand(x: Value, shape: Shape): Value {
    if (sameShape(x.shape, shape)) return x;
    // A broadcast of a broadcast is one broadcast of the original: one index
    // map in a fused kernel instead of two nested ones.
    const inner = x.node?.op === 'expand' ? x.node.inputs[0] : undefined;
    if (inner && broadcastsTo(inner.shape, shape)) return this.expand(inner, shape);
    return this.apply('expand', [x], { shape: [...shape] });
  }
  /** Sums `x` down to `shape` (the reverse of broadcasting). */
  sumTo(x: Value, shape: Shape): Value {
    if (sameShape(x.shape, shape)) return x;
    const lead = x.shape.length - shape.length;
    const axes: number[] = [];
    for (let d = 0; d < x.shape.length; d++) {
      const t = d < lead ? 1 : shape[d - lead];
      if (t === 1 && x.shape[d] !== 1) axes.push(d);
    }
    const s = axes.length ? this.sum(x, axes, true) : x;
    return this.reshape(s, shape);
  }
  concat(xs: readonly Value[], axis: number): Value {
    if (xs.length === 1) return xs[0];
    return this.apply('concat', xs, { axis: normAxis(axis, xs[0].shape.length) });
  }
  slice(x: Value, axis: number, start: number, end: number): Value {
    const a = normAxis(axis, x.shape.length);
    if (start === 0 && end === x.shape[a]) return x;
    return this.apply('slice', [x], { axis: a, start, end });
  }
  /** Splits along `axis` into pieces of the given sizes, or into `n` equal pieces. */
  split(x: Value, axis: number, sizes: number | readonly number[]): Value[] {
    const a = normAxis(axis, x.shape.length);
    const dim = x.shape[a];
    const parts = typeof sizes === 'number' ? new Array<number>(sizes).fill(dim / sizes) : [...sizes];
    if (parts.some((p) => !Number.isInteger(p)) || parts.reduce((s, p) => s + p, 0) !== dim) {
      throw new Error(`split: cannot split axis ${a} of ${fmtShape(x.shape)} into ${JSON.stringify(sizes)}`);
    }
    const out: Value[] = [];
    let at = 0;
    for (const p of parts) {
      out.push(this.slice(x, a, at, at + p));
      at += p;
    }
    return out;
  }
  /** Zero padding along one axis. */
  pad(x: Value, axis: number, before: number, after: number): Value {
    if (before === 0 && after === 0) return x;
    return this.apply('pad', [x], { axis: normAxis(axis, x.shape.length), before, after });
  }
  /** Nearest-neighbour upsampling x2 of an NCHW tensor. */
  upsample2x(x: Value): Value {
    return this.apply('upsample2x', [x]);
  }
  /** Sum of each 2x2 block of an NCHW tensor (the adjoint of upsample2x). */
  sumPool2x(x: Value): Value {
    return this.apply('sum_pool2x', [x]);
  }

  // ---- reductions -------------------------------------------------------------

  sum(x: Value, axes?: readonly number[], keepdims = false): Value {
    return this.reduce('sum', x, axes, keepdims);
  }
  /**
   * A reduction op (kind 'reduce') over `axes` (default all). A large reduction
   * to a handful of outputs would run on a handful of workgroups: it reduces
   * the other axes per batch entry first, then the batch.
   */
  reduce(op: string, x: Value, axes?: readonly number[], keepdims = false): Value {
    if (opDef(op).kind !== 'reduce') throw new Error(`'${op}' is not a reduction`);
    const ax = [...new Set((axes ?? x.shape.map((_, i) => i)).map((a) => normAxis(a, x.shape.length)))].sort((p, q) => p - q);
    if (ax.length === 0) return x;
    const outputs = numel(x.shape) / ax.reduce((p, a) => p * x.shape[a], 1);
    if (outputs < 64 && ax.length > 1 && ax[0] === 0 && x.shape[0] >= 4 && numel(x.shape) >= 1 << 16) {
      const inner = this.apply(op, [x], { axes: ax.slice(1), keepdims: true });
      const total = this.apply(op, [inner], { axes: [0], keepdims: true });
      return this.reshape(total, keepdims ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !ax.includes(i)));
    }
    return this.apply(op, [x], { axes: ax, keepdims });
  }
  mean(x: Value, axes?: readonly number[], keepdims = false): Value {
    const ax = (axes ?? x.shape.map((_, i) => i)).map((a) => normAxis(a, x.shape.length));
    const n = ax.reduce((p, a) => p * x.shape[a], 1);
    return this.mul(this.sum(x, ax, keepdims), 1 / n);
  }

  // ---- linear algebra ---------------------------------------------------------

  /** Matrix product op(a) @ op(b), op = optional transpose of the last two axes; 2-D or batched 3-D. */
  matmul(a: Value, b: Value, opts: { transA?: boolean; transB?: boolean } = {}): Value {
    return this.apply('matmul', [a, b], { transA: !!opts.transA, transB: !!opts.transB });
  }
  /** NCHW convolution with OIHW weights, PyTorch semantics, no bias (conv2d_bias adds one). */
  conv2d(x: Value, w: Value, opts: { stride?: number; pad?: number } = {}): Value {
    return this.apply('conv2d', [x, w], { stride: opts.stride ?? 1, pad: opts.pad ?? 0 });
  }
}

/**
 * x for x * 1 where x has the product's shape (text * ca_text_scale with the
 * scale 1, a loss weight of 1): the product would be a kernel of its own that
 * copies x.
 */
function multipliedByOne(inputs: readonly Value[]): Value | undefined {
  const isOne = (v: Value) => v.node?.op === 'fill' && v.node.attrs.value === 1;
  const [a, b] = inputs;
  if (isOne(b) && broadcastsTo(b.shape, a.shape)) return a;
  if (isOne(a) && broadcastsTo(a.shape, b.shape)) return b;
  return undefined;
}
