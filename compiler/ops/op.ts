// What an op is: everything about it in one record. An op file exports one
// (or a tight family of) OpDef, and registry.ts lists them all.
//
//  - shape: the output shape from the input shapes, or an Error naming both.
//  - lowering, one of:
//      fusible: `fn` renders a WGSL function body computing the output at flat
//               index `i` from its inputs; chains of fusible ops become one kernel
//               (compiler/kernels/fused.ts);
//      reduce:  `sum` over axes, rendered as a workgroup tree (kernels/reduce.ts)
//               with its fusible producers inlined;
//      kernel:  `lower` returns whole kernels (GEMM, conv, random numbers).
//  - grad: the vector-Jacobian product written with other IR ops (through the
//    builder), one entry per input, null where no gradient flows or none is
//    needed. Non-differentiable ops say so explicitly by returning nulls.
//  - parity: cases the test suite runs here and in PyTorch.
// Composite ops (BatchNorm, GLU, losses...) are built from primitives by the
// builder: they need no gradient or kernel, only parity cases.
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
}

export type Domain = 'normal' | 'positive' | 'unit' | 'away0';

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
  fn?: (ctx: FnCtx<A>) => string;
  lower?: (ctx: LowerCtx<A>) => LoweredKernel[];
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

export interface CompositeOp extends OpBase {
  kind: 'composite';
}

export type OpDef = PrimitiveOp<any> | CompositeOp;

export function shapeError(op: string, msg: string, ins: readonly Shape[]): Error {
  return new Error(`${op}: ${msg} (input shapes ${ins.map((s) => `[${s.join(',')}]`).join(', ')})`);
}

/** WGSL float literal. */
export function f32(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`non-finite constant ${x}`);
  const s = String(x);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}
