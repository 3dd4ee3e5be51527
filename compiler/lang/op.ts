// What a language op is: everything about one op of the .gan language in one
// record, defined once in its family module (compiler/lang/ops/*.ts) and
// listed in compiler/lang/registry.ts:
//
//  - syntax: how it is written: a call `conv(x, 64, k = 4)`, an operator
//    `a + b`, or a noise distribution `noise z: [100] ~ uniform`;
//  - signature (calls): positional and keyword arguments with types and
//    defaults;
//  - check: the checker rule. From bound arguments with static per-sample
//    shapes it computes the output shape, the parameters and buffers it
//    creates and its MACs, or fails with a located diagnostic. It records
//    checker-graph nodes whose op is the record's `node`. Shape rules shared
//    with the IR are called, not restated (irShape below);
//  - lower: the lowering of one recorded node to IR ops at a batch size;
//  - ir: the IR ops `lower` applies directly, so the op-coverage test can
//    hold the lowering to it;
//  - examples: small cases in .gan terms that the op-coverage test runs
//    through checker and lowering, and (those with `torch`) the keyword test
//    runs on the GPU against PyTorch.
//
// `node` is the IR op the node lowers to wherever one exists under that name
// (glu, batchnorm, detach, bce...). Where names differ it is for a reason
// the record states (conv records `conv2d` nodes: layer paths such as
// `g0/Up.0/conv2d.0/weight` name parameters and checkpoints).
import type { Span } from '../../grammar/ast.ts';
import { Codes } from '../../grammar/diagnostics.ts';
import type { BufferInfo, GraphNode, ParamInfo } from '../check/graph.ts';
import { shapeStr, type Tensor, type Value } from '../check/values.ts';
import type { GraphBuilder } from '../ir/builder.ts';
import type { Attrs, Value as IrValue } from '../ir/graph.ts';
import { ShapeError } from '../ops/op.ts';

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
  /** 'noise' for a random draw (a graph leaf the trainer may feed by name). */
  kind?: 'op' | 'noise';
}

/** What a checker rule needs from the checker while it applies. */
export interface CheckContext {
  span: Span;
  argSpan(name: string): Span;
  /** Records a node of the record's `node` op with its output shape. */
  node(inputs: Tensor[], shape: number[], extra?: NodeExtra): Tensor;
  fail(code: string, message: string, span?: Span, label?: string, help?: string): never;
}

/** What a lowering needs while it lowers one checker node. */
export interface LowerContext {
  b: GraphBuilder;
  node: GraphNode;
  /** IR values of the node's inputs (batch first). */
  x: IrValue[];
  /** The node's output shape with the batch in front. */
  shape: number[];
  /** BatchNorm: batch statistics (true) or running statistics (false). */
  training: boolean;
  /** In training mode, update running statistics. */
  updateStats: boolean;
  /** The node's parameter with this leaf name (`weight`, `bias`), if it has one. */
  param(leaf: string): IrValue | undefined;
  /** The node's state buffer with this leaf name, shared by every lowering into one builder. */
  buffer(leaf: string): IrValue;
  /** Named noise from a random IR op (name: the noise declaration, or the node's path). */
  noise(op: string, attrs: Attrs): IrValue;
}

/** Argument values of an example: harness input names for tensors, literals otherwise. */
export type ExampleArg = string | number | boolean;

/**
 * A small case of the op in .gan terms. The harness (test/compiler/op-cases.ts)
 * declares per-sample inputs a, b: [6] (normal), p: [6] (positive),
 * m, n: [4, 6, 6] (normal), s: [1] (normal), and renders the call with tensors
 * positionally, then `rest`, then the other arguments by keyword.
 */
export interface OpExample {
  name?: string;
  /** Calls: argument values by name. Operators: `x` and `y`. */
  args?: Record<string, ExampleArg>;
  /** Variadic calls: the extra positional arguments. */
  rest?: ExampleArg[];
  /** IR ops the lowering must apply directly (default: the record's `ir`). */
  ir?: string[];
  /**
   * Python computing `y` from the inputs and the node's parameters and buffers
   * (bound by leaf name: weight, bias, running_mean, running_var); compared on
   * the GPU, forward and gradients, after check -> lower. Omitted for random draws.
   */
  torch?: string;
}

interface LangOpBase {
  /** The checker node op it records: the IR op it lowers to, by the same name where one exists. */
  node: string;
  summary: string;
  lower(ctx: LowerContext): IrValue;
  /** Every IR op `lower` may apply directly (composites count as themselves). */
  ir: string[];
  examples: OpExample[];
}

export interface CallOp extends LangOpBase {
  syntax: 'call';
  name: string;
  args: ArgSpec[];
  /** Extra positional arguments (concat's tensors, reshape's dims). */
  rest?: ArgType;
  check(ctx: CheckContext, a: BoundArgs, rest: Value[]): Value;
}

export interface OperatorOp extends LangOpBase {
  syntax: 'operator';
  /** The operator symbol, e.g. '+'. */
  name: string;
  check(ctx: CheckContext, left: Value, right: Value): Value;
}

export interface NoiseOp extends LangOpBase {
  syntax: 'noise';
  /** The distribution's name after `~`. */
  name: string;
  check(ctx: CheckContext, shape: number[]): Value;
}

export type LangOp = CallOp | OperatorOp | NoiseOp;

// ---- helpers for checker rules ----

export const num = (v: number): Value => ({ t: 'num', v });
export const bool = (v: boolean): Value => ({ t: 'bool', v });
export const tensorArg = (a: BoundArgs, k: string) => a[k] as Tensor;
export const numArg = (a: BoundArgs, k: string) => (a[k] as { v: number }).v;
export const boolArg = (a: BoundArgs, k: string) => (a[k] as { v: boolean }).v;

export function needRank(ctx: CheckContext, x: Tensor, ranks: number[], what: string, arg = 'x'): void {
  if (!ranks.includes(x.shape.length)) {
    const want = ranks.map((r) => (r === 1 ? '[C]' : r === 3 ? '[C, H, W]' : `rank ${r}`)).join(' or ');
    ctx.fail(Codes.shapeMismatch, `${what} expects a ${want} tensor, got ${shapeStr(x.shape)}`, ctx.argSpan(arg), `shape ${shapeStr(x.shape)}`);
  }
}

/** An integer argument of at least `min`. */
export function atLeast(ctx: CheckContext, a: BoundArgs, k: string, min = 1): number {
  const v = numArg(a, k);
  if (v < min) ctx.fail(Codes.badValue, `'${k}' must be at least ${min}, got ${v}`, ctx.argSpan(k));
  return v;
}

export function needSameShape(ctx: CheckContext, what: string, x: Tensor, y: Tensor): void {
  if (shapeStr(x.shape) !== shapeStr(y.shape)) {
    ctx.fail(Codes.shapeMismatch, `${what}, got ${shapeStr(x.shape)} and ${shapeStr(y.shape)}`, ctx.span, `${shapeStr(x.shape)} vs ${shapeStr(y.shape)}`);
  }
}

/**
 * Runs an IR shape rule on per-sample shapes with a batch of 1 in front and
 * returns the per-sample output shape. A refusal (ShapeError) becomes a
 * located shape-mismatch diagnostic at the call: `${what}: ${reason}` unless
 * a language-level message is given.
 */
export function irShape(ctx: CheckContext, what: string, rule: () => readonly number[], diag: { message?: string; label?: string; help?: string } = {}): number[] {
  try {
    return rule().slice(1);
  } catch (e) {
    if (!(e instanceof ShapeError)) throw e;
    const label = diag.label ?? e.shapes.map((s) => shapeStr(s.slice(1))).join(' vs ');
    return ctx.fail(Codes.shapeMismatch, diag.message ?? `${what}: ${e.reason}`, ctx.span, label, diag.help);
  }
}

// ---- signatures ----

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

function describeDefault(v: Value): string {
  return v.t === 'num' || v.t === 'bool' ? String(v.v) : v.t === 'str' ? JSON.stringify(v.v) : '...';
}

/** `conv(x, out, k = 3, stride = 1, pad = auto, bias = false)`, for diagnostics. */
export function signature(op: CallOp): string {
  const parts = op.args.map((a) => (a.default === undefined ? a.name : `${a.name} = ${typeof a.default === 'function' ? 'auto' : describeDefault(a.default)}`));
  if (op.rest) {
    const firstDefault = op.args.findIndex((a) => a.default !== undefined);
    parts.splice(firstDefault === -1 ? parts.length : firstDefault, 0, '...');
  }
  return `${op.name}(${parts.join(', ')})`;
}

/** The value an argument takes when it is not given, from the others bound so far. */
export function defaultOf(spec: ArgSpec, bound: BoundArgs): Value | undefined {
  return typeof spec.default === 'function' ? spec.default(bound) : spec.default;
}
