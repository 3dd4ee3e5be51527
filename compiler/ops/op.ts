// What an op is: everything about it in one record. An op file exports one
// (or a tight family of) OpDef, and registry.ts lists them all.
//
//  - shape: the output shape from the input shapes, or an Error naming both.
//  - lowering, one of:
//      fusible:   `fn` renders a WGSL function body computing the output at flat
//                 index `i` from its inputs; chains of fusible ops become one
//                 kernel (compiler/kernels/fused.ts);
//      reduce:    a reduction over axes declared by its identity and combine
//                 step (`reduce`), rendered by compiler/kernels/fused.ts as a
//                 serial loop or a workgroup tree with its fusible producers
//                 inlined;
//      kernel:    `lower` returns whole kernels (GEMM, conv, random numbers).
//  - grad: the vector-Jacobian product written with other IR ops (through the
//    builder), one entry per input, null where no gradient flows or none is
//    needed. Non-differentiable ops say so explicitly by returning nulls.
//  - parity: cases the test suite runs here and in PyTorch.
// Composite ops (BatchNorm, GLU, losses...) carry `expand`, which builds them
// from primitives through the builder (GraphBuilder.apply calls it), so
// autodiff and fusion only ever see primitives; they need no gradient or
// kernel, only parity cases.
import type { KernelSpec } from '../../runtime/format/kernel.ts';
import type { KernelTarget } from '../kernels/target.ts';
import type { Attrs, Node, Value } from '../ir/graph.ts';
import type { Shape } from '../ir/shape.ts';
import type { GraphBuilder } from '../ir/builder.ts';

export interface GradCtx<A = Attrs> {
  b: GraphBuilder;
  node: Node;
  x: readonly Value[];
  y: Value;
  gy: Value;
  attrs: A;
  /** needs[k]: the caller wants the gradient of input k (skip work otherwise). */
  needs: readonly boolean[];
}

export type GradRule<A = Attrs> = (g: GradCtx<A>) => (Value | null)[];

export interface FnCtx<A = Attrs> {
  out: Shape;
  ins: readonly Shape[];
  attrs: A;
  /** WGSL f32 expression: input k at flat index `idx` (an expression in input k's own index space). */
  at(k: number, idx: string): string;
  /** Input k read at the position of output index `i`, broadcasting as NumPy does. */
  bcast(k: number): string;
  /**
   * WGSL f32 expression of a constant the kernel reads at run time (from its
   * Sizes uniform) instead of baking it in: kernels that differ only in such
   * constants (a mean's 1/N, a loss weight) share one WGSL and one pipeline.
   */
  constant(value: number): string;
  /** Index arithmetic by a tensor size (see SizeArith): use it for every size an index formula divides, multiplies or offsets by. */
  size: SizeArith;
}

/**
 * Index arithmetic by sizes, rendered so that kernels differing only in sizes
 * can share one WGSL: a power-of-two divisor, modulus or factor becomes a
 * shift or mask by an amount read from the kernel's Sizes uniform, an offset
 * or bound is read from it outright; other divisors and factors stay literals
 * (the JIT turns a literal division into a multiply; a run-time one is slower).
 * Each method takes and returns WGSL u32 expressions.
 */
export interface SizeArith {
  div(e: string, n: number): string;
  mod(e: string, n: number): string;
  mul(e: string, n: number): string;
  /** `n` as a run-time u32 (an offset or a bound). */
  u(n: number): string;
}

export type KernelArg = number | 'out' | 'rng';

export interface LoweredKernel {
  spec: KernelSpec;
  /** One per spec binding: an input index, the output, or the step's RNG state. */
  args: KernelArg[];
}

export interface LowerCtx<A = Attrs> {
  node: Node;
  ins: readonly Shape[];
  out: Shape;
  attrs: A;
  /** Device features kernels may use (from the plan's limits). */
  target: KernelTarget;
  /** Ops with `batch.out === 'sum'`: add into the output instead of overwriting it (a later batch chunk). */
  accumulate?: boolean;
}

/**
 * kind 'kernel': how the op treats axis 0 (the batch), so the planner can split
 * a launch too big for one binding into batch chunks (compiler/plan/split.ts).
 * `inputs` carry the batch on axis 0; the output either carries it too, each
 * sample computed alone ('sample': lowered once per chunk with the chunk's
 * batch size), or is a sum over it ('sum': the first chunk writes, later chunks
 * are lowered with `accumulate` and add). Ops without it are never split.
 */
export interface BatchAxis {
  inputs: number[];
  out: 'sample' | 'sum';
}

/** Value range of a random parity input; `{ ints: n }`: integers in [0, n) (indices). */
export type Domain = 'normal' | 'positive' | 'unit' | 'away0' | { ints: number };

export interface ParityCase {
  name?: string;
  /** Shapes of the random inputs x0, x1, ... */
  inputs: number[][];
  attrs?: Attrs;
  /** Python expression over x0.. giving y (torch, F in scope), or statements assigning y. */
  torch: string;
  /** Value range per input (default normal). */
  domain?: Domain[];
  /** Inputs whose gradient is compared (default: all). */
  grad?: number[];
  /** Loosened tolerances must say why. */
  tol?: { fwd?: number; grad?: number; why: string };
  /** How to build the op under test; default b.apply(op, xs, attrs). */
  build?: (b: GraphBuilder, xs: Value[]) => Value;
}

/** A reduction's algebra: out = combine(...combine(combine(identity, x0), x1)..., xn). */
export interface Reduction {
  /** The identity element (0 for a sum). */
  identity: number;
  /** WGSL f32 expression combining two partial results. */
  combine: (a: string, b: string) => string;
  /** The same step in float64 JavaScript (reference semantics). */
  js: (a: number, b: number) => number;
}

interface OpBase {
  name: string;
  doc: string;
  parity: ParityCase[];
}

export interface PrimitiveOp<A = Attrs> extends OpBase {
  kind: 'fusible' | 'reduce' | 'kernel';
  /** Number of inputs, or -1 for variadic. */
  arity: number;
  shape(ins: readonly Shape[], attrs: A): number[];
  grad: GradRule<A>;
  /**
   * False for ops whose output carries no gradient to its inputs (detach,
   * step, sign): autodiff stops there instead of asking the rule.
   */
  differentiable?: boolean;
  /**
   * A random-number op: the builder gives each use its own `stream` attr and
   * the kernel reads the step's seed from the 'rng' binding (GraphBuilder.random).
   */
  random?: boolean;
  fn?: (ctx: FnCtx<A>) => string;
  /** kind 'reduce': identity and combine step (attrs: axes, keepdims). */
  reduce?: Reduction;
  lower?: (ctx: LowerCtx<A>) => LoweredKernel[];
  /** kind 'kernel': whether and how a launch may be split along the batch (BatchAxis). */
  batch?: BatchAxis;
  /** Floating-point work per output element, for reports. */
  flopsPerElement?: number;
  /**
   * Plain float64 CPU semantics (compiler/ir/reference.ts): a second, independent
   * definition used to check gradient rules by finite differences.
   */
  ref?: (ins: readonly Float64Array[], ctx: RefCtx<A>) => Float64Array;
}

export interface RefCtx<A = Attrs> {
  out: Shape;
  ins: readonly Shape[];
  attrs: A;
}

export interface CompositeOp<A = Attrs> extends OpBase {
  kind: 'composite';
  /** Number of inputs, or -1 for variadic. */
  arity: number;
  /** Builds the op from other ops through the builder; returns its output. */
  expand(b: GraphBuilder, inputs: readonly Value[], attrs: A): Value;
}

export type OpDef = PrimitiveOp<any> | CompositeOp<any>;

/**
 * A shape rule refused its inputs. Structured so the checker can turn the
 * same rule's refusal into a located diagnostic (compiler/lang/ops) while the
 * IR prints it as one line naming the op and every input shape.
 */
export class ShapeError extends Error {
  constructor(
    readonly op: string,
    /** What is wrong, without the shapes (e.g. 'input has 3 channels, weight expects 2'). */
    readonly reason: string,
    readonly shapes: readonly Shape[],
  ) {
    super(`${op}: ${reason} (input shapes ${shapes.map((s) => `[${s.join(',')}]`).join(', ')})`);
    this.name = 'ShapeError';
  }
}

export function shapeError(op: string, msg: string, ins: readonly Shape[]): ShapeError {
  return new ShapeError(op, msg, ins);
}

/** WGSL float literal. */
export function f32(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`non-finite constant ${x}`);
  const s = String(x);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}
