// Evaluates expressions and statements of a .gan model symbolically: scalars
// are computed, tensors get static shapes and are recorded as graph nodes.
// Errors abort the current statement (DiagnosticError) and poison what it
// assigned, so evaluation continues and one mistake is reported once.
import type * as A from '../../grammar/ast.ts';
import { Codes, DiagnosticError, didYouMean, error, type Diagnostic } from '../../grammar/diagnostics.ts';
import { defaultOf, signature, typeName, typeOk, type CallOp, type CheckContext, type LangOp, type NodeExtra } from '../lang/op.ts';
import { callOp, callOpNames, noiseNames, noiseOp, operatorOp } from '../lang/registry.ts';
import { scalarFunctions, shapeFunctions } from './builtins.ts';
import { NetworkGraph } from './graph.ts';
import { Scope } from './scope.ts';
import { describe, poison, shapeStr, type Tensor, type Value } from './values.ts';

export type BodyKind = 'block' | 'stage' | 'condition' | 'discriminator' | 'encoder' | 'params';

/** The network being built: its graph and the current layer path. */
export class NetContext {
  private readonly path: string[] = [];
  private readonly counters = new Map<string, number>();
  readonly heads = new Map<string, { node: number; span: A.Span }>();
  /** Heads declared, including those whose expression failed (no "has no head" cascade). */
  readonly headsDeclared = new Set<string>();
  readonly losses = new Map<string, { node: number; span: A.Span }>();

  constructor(readonly graph: NetworkGraph) {}

  /** Next free name `base.i` under the current path. */
  fresh(base: string): string {
    const key = `${this.path.join('/')}|${base}`;
    const i = this.counters.get(key) ?? 0;
    this.counters.set(key, i + 1);
    return `${base}.${i}`;
  }

  push(seg: string): void {
    this.path.push(seg);
  }
  pop(): void {
    this.path.pop();
  }
  prefix(seg: string): string {
    return [...this.path, seg].join('/');
  }
}

/** Aborts a statement whose input already failed; its error was reported. */
class PoisonSignal {}

class ReturnSignal {
  constructor(readonly value: Value) {}
}

export interface EvalHost {
  blocks: Map<string, A.BlockDecl>;
  /** Called for every param read (for "unused param" warnings). */
  onParamRead?(name: string): void;
}

const MAX_BLOCK_DEPTH = 64;
/**
 * Guards against hostile input (the parser bounds each expression and body;
 * these bound what evaluation multiplies them into): nested expressions,
 * bodies, block calls and param reads all recurse through `expr`/`exec`,
 * and every statement and repeat iteration is a step.
 */
const MAX_EVAL_DEPTH = 500;
const MAX_EVAL_STEPS = 50_000;

export class Evaluator {
  readonly diagnostics: Diagnostic[] = [];
  /** Settings sections read bare names as symbols (`bce`, `adam(...)`). */
  symbolic = false;

  private depth = 0;
  private steps = 0;

  constructor(private readonly host: EvalHost) {}

  /** Enters one level of evaluation; past MAX_EVAL_DEPTH the innermost construct fails (its callers then see poison). */
  private enter(span: A.Span | undefined): void {
    if (this.depth >= MAX_EVAL_DEPTH) {
      this.fail(Codes.tooDeep, `evaluation nested too deeply: more than ${MAX_EVAL_DEPTH} levels of expressions, bodies, block calls and param reads`, span, `level ${MAX_EVAL_DEPTH + 1}`, 'a block that calls itself, or a very long chain of params defined by each other?');
    }
    this.depth++;
  }

  /** Counts a statement or a repeat iteration; past MAX_EVAL_STEPS, reports once and then stops evaluation quietly. */
  private step(span: A.Span): void {
    if (++this.steps <= MAX_EVAL_STEPS) return;
    if (this.steps === MAX_EVAL_STEPS + 1) {
      this.fail(Codes.tooLarge, `model too large to check: more than ${MAX_EVAL_STEPS.toLocaleString('en-US')} statements to evaluate`, span, undefined, 'a repeat count, or blocks calling blocks, far larger than intended?');
    }
    throw new PoisonSignal();
  }

  fail(code: string, message: string, span?: A.Span, label?: string, help?: string): never {
    throw new DiagnosticError(error(code, message, span, { label, help }));
  }

  report(e: unknown): void {
    if (e instanceof DiagnosticError) this.diagnostics.push(e.diagnostic);
    else if (!(e instanceof PoisonSignal)) throw e;
  }

  // ---- statements ----

  /** Runs a body that gives a result (an encoder's): the value of its `return` or trailing expression. */
  result(stmts: A.Stmt[], scope: Scope, net: NetContext, kind: BodyKind): Value | undefined {
    try {
      return this.exec(stmts, scope, net, kind);
    } catch (r) {
      if (!(r instanceof ReturnSignal)) throw r;
      return r.value;
    }
  }

  /** Runs statements; returns the value of a `return` or of a trailing expression. */
  exec(stmts: A.Stmt[], scope: Scope, net: NetContext | undefined, kind: BodyKind): Value | undefined {
    this.enter(stmts[0]?.span);
    try {
      return this.execBody(stmts, scope, net, kind);
    } finally {
      this.depth--;
    }
  }

  private execBody(stmts: A.Stmt[], scope: Scope, net: NetContext | undefined, kind: BodyKind): Value | undefined {
    let last: Value | undefined;
    for (const s of stmts) {
      last = undefined;
      try {
        last = this.stmt(s, scope, net, kind);
      } catch (e) {
        if (e instanceof ReturnSignal) throw e;
        this.report(e);
        if (s.kind === 'assign') for (const t of s.targets) scope.set(t.name, poison);
        // A failed result is poison, not "no result": the error is already reported.
        if (s.kind === 'expr' || s.kind === 'return') last = poison;
      }
    }
    return last;
  }

  private stmt(s: A.Stmt, scope: Scope, net: NetContext | undefined, kind: BodyKind): Value | undefined {
    this.step(s.span);
    switch (s.kind) {
      case 'assign': {
        const v = this.expr(s.value, scope, net);
        if (s.targets.length === 1) {
          scope.set(s.targets[0].name, v);
        } else {
          if (v.t === 'poison') {
            for (const t of s.targets) scope.set(t.name, poison);
            return undefined;
          }
          if (v.t !== 'tuple' || v.items.length !== s.targets.length) {
            this.fail(
              Codes.typeMismatch,
              `cannot unpack ${describe(v)} into ${s.targets.length} names`,
              s.value.span,
              `expected ${s.targets.length} values`,
              v.t === 'tensor' ? `split it first, e.g. '... |> split(${s.targets.length})'` : undefined,
            );
          }
          s.targets.forEach((t, i) => scope.set(t.name, v.items[i]));
        }
        return undefined;
      }
      case 'expr':
        return this.expr(s.value, scope, net);
      case 'repeat': {
        const n = this.intValue(s.count, scope, 'repeat count', 0);
        for (let i = 0; i < n; i++) {
          this.step(s.span);
          if (s.index) scope.set(s.index.name, { t: 'num', v: i });
          this.exec(s.body, scope, net, kind);
        }
        return undefined;
      }
      case 'if': {
        const c = this.expr(s.cond, scope, net);
        if (c.t === 'poison') return undefined;
        if (c.t !== 'bool') this.fail(Codes.typeMismatch, `an 'if' condition must be true or false, got ${describe(c)}`, s.cond.span, 'expected a boolean');
        const branch = c.v ? s.then : s.else;
        return branch ? this.exec(branch, scope, net, kind) : undefined;
      }
      case 'loss': {
        if (kind === 'params' || !net) this.fail(Codes.structure, `'loss' is not allowed here`, s.span);
        const v = this.expr(s.value, scope, net);
        if (v.t === 'poison') return undefined;
        if (v.t !== 'tensor' || v.shape.length !== 0) {
          this.fail(Codes.typeMismatch, `loss '${s.name}' must be a scalar loss (kl_normal, bce, mse, l1), got ${describe(v)}`, s.value.span, 'expected a scalar');
        }
        if (net.losses.has(s.name)) this.fail(Codes.duplicateName, `loss '${s.name}' is defined twice`, s.nameSpan);
        net.losses.set(s.name, { node: v.node, span: s.nameSpan });
        return undefined;
      }
      case 'head': {
        if (kind !== 'discriminator' || !net) {
          this.fail(Codes.structure, `'head' is only allowed directly in a discriminator`, s.span, undefined, 'return the logit from the block and declare the head in the discriminator');
        }
        net.headsDeclared.add(s.name);
        const v = this.expr(s.value, scope, net);
        if (v.t === 'poison') return undefined;
        const known = ['uncond', 'cond', 'align'];
        if (!known.includes(s.name)) {
          this.fail(Codes.structure, `unknown head '${s.name}'`, s.nameSpan, 'expected uncond, cond or align', didYouMean(s.name, known));
        }
        if (v.t !== 'tensor' || v.shape.reduce((a, b) => a * b, 1) !== 1) {
          this.fail(Codes.shapeMismatch, `head '${s.name}' must give one number per sample, got ${describe(v)}`, s.value.span, 'expected shape [1] or [1, 1, 1]', 'end the head with conv(1, k = 4, stride = 4) on a 4x4 map, or linear(1)');
        }
        if (net.heads.has(s.name)) this.fail(Codes.duplicateName, `head '${s.name}' is defined twice`, s.nameSpan);
        net.heads.set(s.name, { node: v.node, span: s.nameSpan });
        return undefined;
      }
      case 'return': {
        if (kind !== 'block' && kind !== 'encoder') this.fail(Codes.structure, `'return' is only allowed in a block or an encoder`, s.span);
        const vals = s.values.map((e) => this.expr(e, scope, net));
        throw new ReturnSignal(vals.length === 1 ? vals[0] : { t: 'tuple', items: vals });
      }
    }
  }

  // ---- expressions ----

  intValue(e: A.Expr, scope: Scope, what: string, min = 1): number {
    const v = this.expr(e, scope, undefined);
    if (v.t === 'poison') throw new PoisonSignal();
    if (v.t !== 'num' || !Number.isInteger(v.v)) this.fail(Codes.typeMismatch, `${what} must be an integer, got ${describe(v)}${v.t === 'num' ? ` (${v.v})` : ''}`, e.span, 'expected an integer');
    if (v.v < min) this.fail(Codes.badValue, `${what} must be at least ${min}, got ${v.v}`, e.span);
    return v.v;
  }

  expr(e: A.Expr, scope: Scope, net: NetContext | undefined): Value {
    this.enter(e.span);
    try {
      return this.evalExpr(e, scope, net);
    } finally {
      this.depth--;
    }
  }

  private evalExpr(e: A.Expr, scope: Scope, net: NetContext | undefined): Value {
    switch (e.kind) {
      case 'num':
        return { t: 'num', v: e.value };
      case 'str':
        return { t: 'str', v: e.value };
      case 'bool':
        return { t: 'bool', v: e.value };
      case 'name':
        return this.name(e, scope);
      case 'member':
        return this.member(e, scope, net);
      case 'tuple':
      case 'list':
        return { t: 'tuple', items: e.items.map((i) => this.expr(i, scope, net)) };
      case 'unary': {
        const v = this.expr(e.operand, scope, net);
        if (v.t === 'poison') return v;
        if (e.op === 'not') {
          if (v.t !== 'bool') this.fail(Codes.typeMismatch, `'not' needs true or false, got ${describe(v)}`, e.operand.span);
          return { t: 'bool', v: !v.v };
        }
        if (v.t === 'num') return { t: 'num', v: -v.v };
        if (v.t === 'tensor') return this.operator(net, e, '*', v, { t: 'num', v: -1 });
        return this.fail(Codes.typeMismatch, `cannot negate ${describe(v)}`, e.operand.span);
      }
      case 'binary':
        return this.binary(e, scope, net);
      case 'call':
        return this.call(e, scope, net);
    }
  }

  private name(e: Extract<A.Expr, { kind: 'name' }>, scope: Scope): Value {
    const v = scope.get(e.name);
    if (v) return v;
    if (this.symbolic) return { t: 'sym', name: e.name };
    if (callOp(e.name) || this.host.blocks.has(e.name)) {
      this.fail(Codes.typeMismatch, `'${e.name}' is an op, not a value`, e.span, 'expected a value', `call it: '${e.name}(...)', or pipe into it: 'x |> ${e.name}'`);
    }
    this.fail(Codes.undefinedName, `undefined name '${e.name}'`, e.span, 'not a param, input, noise or variable in scope', didYouMean(e.name, scope.allNames()));
  }

  private member(e: Extract<A.Expr, { kind: 'member' }>, scope: Scope, net: NetContext | undefined): Value {
    const obj = this.expr(e.object, scope, net);
    if (obj.t === 'poison') return obj;
    if (obj.t === 'stage') {
      const stageScope = this.stageScopes.get(obj.name);
      const v = stageScope?.getOwn(e.name);
      if (!v) {
        this.fail(Codes.undefinedName, `stage '${obj.name}' has no variable '${e.name}'`, e.nameSpan, 'not assigned in that stage', didYouMean(e.name, stageScope?.names ?? []));
      }
      return v;
    }
    if (obj.t === 'call' && this.symbolic) {
      const v = obj.args[e.name];
      if (!v) this.fail(Codes.undefinedName, `'${obj.name}(...)' has no field '${e.name}'`, e.nameSpan, undefined, didYouMean(e.name, Object.keys(obj.args)));
      return v;
    }
    return this.fail(Codes.typeMismatch, `${describe(obj)} has no field '${e.name}'`, e.nameSpan, undefined, obj.t === 'tensor' ? `for its size use channels(x), height(x) or width(x)` : undefined);
  }

  /** Final scopes of evaluated stages, for `g0.h`. Filled by the model checker. */
  readonly stageScopes = new Map<string, { getOwn(name: string): Value | undefined; names: string[] }>();

  private binary(e: Extract<A.Expr, { kind: 'binary' }>, scope: Scope, net: NetContext | undefined): Value {
    const l = this.expr(e.left, scope, net);
    const r = this.expr(e.right, scope, net);
    if (l.t === 'poison' || r.t === 'poison') return poison;
    const op = e.op;
    if (op === 'and' || op === 'or') {
      if (l.t !== 'bool' || r.t !== 'bool') this.fail(Codes.typeMismatch, `'${op}' needs true or false on both sides, got ${describe(l)} and ${describe(r)}`, e.opSpan);
      return { t: 'bool', v: op === 'and' ? l.v && r.v : l.v || r.v };
    }
    if (op === '==' || op === '!=') {
      const same = (l.t === 'num' || l.t === 'bool' || l.t === 'str' || l.t === 'sym') && l.t === r.t && JSON.stringify(l) === JSON.stringify(r);
      return { t: 'bool', v: op === '==' ? same : !same };
    }
    if (l.t === 'num' && r.t === 'num') {
      const a = l.v;
      const b = r.v;
      if ((op === '/' || op === 'div' || op === '%') && b === 0) this.fail(Codes.badValue, 'division by zero', e.right.span);
      switch (op) {
        case '+': return { t: 'num', v: a + b };
        case '-': return { t: 'num', v: a - b };
        case '*': return { t: 'num', v: a * b };
        case '/': return { t: 'num', v: a / b };
        case 'div': return { t: 'num', v: Math.floor(a / b) };
        case '%': return { t: 'num', v: a - b * Math.floor(a / b) };
        case '**': return { t: 'num', v: a ** b };
        case '<': return { t: 'bool', v: a < b };
        case '>': return { t: 'bool', v: a > b };
        case '<=': return { t: 'bool', v: a <= b };
        case '>=': return { t: 'bool', v: a >= b };
      }
    }
    if (l.t === 'str' && r.t === 'str' && op === '+') return { t: 'str', v: l.v + r.v };
    if ((l.t === 'tensor' || r.t === 'tensor') && (l.t === 'tensor' || l.t === 'num') && (r.t === 'tensor' || r.t === 'num') && operatorOp(op)) {
      return this.operator(net, e, op, l, r);
    }
    return this.fail(Codes.typeMismatch, `cannot apply '${op}' to ${describe(l)} and ${describe(r)}`, e.opSpan, 'unsupported operand types');
  }

  /** A tensor operator (+ - * /): the language op's own rule (compiler/lang/ops/arithmetic.ts). */
  private operator(net: NetContext | undefined, e: A.Expr, symbol: string, l: Value, r: Value): Value {
    if (!net) this.fail(Codes.typeMismatch, 'tensors are not allowed here', e.span);
    const op = operatorOp(symbol)!;
    return op.check(this.opContext(net, op, e.span, {}), l, r);
  }

  private call(e: Extract<A.Expr, { kind: 'call' }>, scope: Scope, net: NetContext | undefined): Value {
    const args = e.args.map((a) => ({ name: a.name, nameSpan: a.nameSpan, span: a.value.span, value: this.expr(a.value, scope, net) }));
    if (args.some((a) => a.value.t === 'poison')) return poison;
    const block = this.host.blocks.get(e.callee);
    if (block) return this.callBlock(block, e, args, net);
    const first = args[0]?.value;
    const shapeFn = shapeFunctions[e.callee];
    if (shapeFn) {
      if (args.length !== 1 || first?.t !== 'tensor') this.fail(Codes.badArity, `${e.callee}(x) takes one tensor`, e.span);
      const v = shapeFn(first.shape);
      if (v === undefined) this.fail(Codes.shapeMismatch, `${e.callee} needs a [C, H, W] tensor, got ${shapeStr(first.shape)}`, args[0].span);
      return { t: 'num', v };
    }
    const scalarFn = scalarFunctions[e.callee];
    if (scalarFn && args.every((a) => a.value.t === 'num' && !a.name)) {
      if (!scalarFn.arity.includes(args.length)) this.fail(Codes.badArity, `${e.callee} takes ${scalarFn.arity.join(' or ')} argument(s), got ${args.length}`, e.span);
      return { t: 'num', v: scalarFn.f(...args.map((a) => (a.value as { v: number }).v)) };
    }
    const op = callOp(e.callee);
    if (op) {
      if (!net) this.fail(Codes.typeMismatch, `op '${e.callee}' makes tensors, which are not allowed here`, e.span, 'expected a compile-time value');
      return this.callOp(op, e, args, net);
    }
    if (this.symbolic) {
      const kw: Record<string, Value> = {};
      for (const a of args) {
        if (!a.name) this.fail(Codes.typeMismatch, `arguments of '${e.callee}(...)' in a settings section must be named`, a.span, `expected name = value`);
        kw[a.name] = a.value;
      }
      return { t: 'call', name: e.callee, args: kw, span: e.span };
    }
    const known = [...callOpNames(), ...this.host.blocks.keys(), ...Object.keys(scalarFunctions), ...Object.keys(shapeFunctions)];
    this.fail(Codes.unknownOp, `unknown op or block '${e.callee}'`, e.calleeSpan, 'not a built-in op or a block of this model', didYouMean(e.callee, known));
  }

  /** Binds a call's arguments to the op's signature (types, defaults) and applies its checker rule. */
  private callOp(op: CallOp, e: Extract<A.Expr, { kind: 'call' }>, args: BoundArg[], net: NetContext): Value {
    const bound: Record<string, Value> = {};
    const spans: Record<string, A.Span> = {};
    const rest: Value[] = [];
    // Variadic ops take their tensors positionally and the rest by keyword.
    const positionalSpecs = op.rest ? op.args.filter((a) => a.type === 'tensor') : op.args;
    let pos = 0;
    for (const a of args) {
      if (a.name) {
        const spec = op.args.find((s) => s.name === a.name);
        if (!spec) {
          this.fail(Codes.unknownKeyword, `${op.name} has no argument '${a.name}'`, a.nameSpan ?? a.span, `expected ${signature(op)}`, didYouMean(a.name, op.args.map((s) => s.name)));
        }
        if (a.name in bound) this.fail(Codes.badArity, `argument '${a.name}' of ${op.name} is given twice`, a.nameSpan ?? a.span);
        bound[a.name] = a.value;
        spans[a.name] = a.span;
      } else if (pos < positionalSpecs.length) {
        const spec = positionalSpecs[pos++];
        bound[spec.name] = a.value;
        spans[spec.name] = a.span;
      } else if (op.rest) {
        rest.push(a.value);
        if (!typeOk(op.rest, a.value)) this.fail(Codes.typeMismatch, `arguments of ${op.name} must be ${typeName(op.rest)}, got ${describe(a.value)}`, a.span);
      } else {
        this.fail(Codes.badArity, `${op.name} takes at most ${positionalSpecs.length} positional argument(s), got ${args.filter((x) => !x.name).length}`, a.span, `expected ${signature(op)}`);
      }
    }
    for (const spec of op.args) {
      if (!(spec.name in bound)) {
        const value = defaultOf(spec, bound);
        if (value === undefined) this.fail(Codes.badArity, `${op.name} is missing argument '${spec.name}'`, e.span, `expected ${signature(op)}`);
        bound[spec.name] = value;
        spans[spec.name] = e.span;
      } else if (!typeOk(spec.type, bound[spec.name])) {
        const v = bound[spec.name];
        this.fail(Codes.typeMismatch, `argument '${spec.name}' of ${op.name} must be ${typeName(spec.type)}, got ${describe(v)}${v.t === 'num' ? ` (${v.v})` : ''}`, spans[spec.name], `expected ${typeName(spec.type)}`);
      }
    }
    return op.check(this.opContext(net, op, e.span, spans), bound, rest);
  }

  private blockDepth = 0;

  private callBlock(block: A.BlockDecl, e: Extract<A.Expr, { kind: 'call' }>, args: BoundArg[], net: NetContext | undefined): Value {
    if (!net) this.fail(Codes.typeMismatch, `block '${block.name}' makes tensors, which are not allowed here`, e.span);
    const sig = `${block.name}(${block.params.map((p) => p.name).join(', ')})`;
    const scope = new Scope(this.globals);
    const given = new Set<string>();
    let pos = 0;
    for (const a of args) {
      let name: string;
      if (a.name) {
        if (!block.params.some((p) => p.name === a.name)) {
          this.fail(Codes.unknownKeyword, `block ${block.name} has no parameter '${a.name}'`, a.nameSpan ?? a.span, `expected ${sig}`, didYouMean(a.name, block.params.map((p) => p.name)));
        }
        name = a.name;
      } else {
        if (pos >= block.params.length) {
          this.fail(Codes.badArity, `block ${block.name} takes ${block.params.length} argument(s), got ${args.length}${e.piped ? ' (the piped value counts as the first)' : ''}`, a.span, `expected ${sig}`);
        }
        name = block.params[pos++].name;
      }
      if (given.has(name)) this.fail(Codes.badArity, `argument '${name}' of block ${block.name} is given twice`, a.span);
      given.add(name);
      scope.set(name, a.value);
    }
    for (const p of block.params) {
      if (given.has(p.name)) continue;
      if (!p.default) this.fail(Codes.badArity, `block ${block.name} is missing argument '${p.name}'`, e.span, `expected ${sig}`);
      scope.set(p.name, this.expr(p.default, scope, net));
    }
    if (this.blockDepth >= MAX_BLOCK_DEPTH) this.fail(Codes.structure, `block '${block.name}' calls itself too deeply (recursion is not supported)`, e.span);
    net.push(net.fresh(block.name));
    this.blockDepth++;
    try {
      let result: Value | undefined;
      try {
        result = this.exec(block.body, scope, net, 'block');
      } catch (r) {
        if (!(r instanceof ReturnSignal)) throw r;
        result = r.value;
      }
      if (!result) {
        this.fail(Codes.structure, `block '${block.name}' gives no result`, block.nameSpan, undefined, "end it with an expression or a 'return'");
      }
      return result;
    } finally {
      this.blockDepth--;
      net.pop();
    }
  }

  /** The scope blocks see: params, inputs and the network's globals. Set per network. */
  globals: Scope = new Scope();

  /**
   * A noise declaration `noise z: [..] ~ dist`: a noise node named `z`, drawn
   * by the distribution's language op.
   */
  declareNoise(net: NetContext, d: A.NoiseDecl, shape: number[]): Tensor {
    const op = noiseOp(d.dist);
    if (!op) {
      const known = noiseNames();
      this.fail(Codes.badValue, `unknown noise distribution '${d.dist}'`, d.distSpan, `expected ${known.join(' or ')}`, didYouMean(d.dist, known));
    }
    return op.check(this.opContext(net, op, d.span, {}, d.name), shape) as Tensor;
  }

  /**
   * What a language op's checker rule sees: spans for diagnostics, and
   * node(), which records a node of the op's `node` kind at the next free layer
   * path (`conv2d.0`, `conv2d.1`, ... under the current block), or at `path`.
   */
  opContext(net: NetContext, op: LangOp, span: A.Span, spans: Record<string, A.Span>, path?: string): CheckContext {
    const graph = net.graph;
    return {
      span,
      argSpan: (name) => spans[name] ?? span,
      fail: (code, message, s, label, help) => this.fail(code, message, s ?? span, label, help),
      node: (inputs: Tensor[], shape: number[], extra: NodeExtra = {}): Tensor => {
        const at = path ?? net.prefix(net.fresh(op.node));
        const n = graph.add({
          kind: extra.kind ?? 'op',
          op: op.node,
          inputs: inputs.map((t) => t.node),
          attrs: extra.attrs ?? {},
          shape,
          path: at,
          params: (extra.params ?? []).map((p) => ({ name: `${at}/${p.leaf}`, shape: p.shape, init: p.init })),
          buffers: (extra.buffers ?? []).map((b) => ({ name: `${at}/${b.leaf}`, shape: b.shape, init: b.init })),
          macs: extra.macs ?? 0,
        }, span);
        return { t: 'tensor', shape, node: n.id, net: graph.name };
      },
    };
  }
}

interface BoundArg {
  name?: string;
  nameSpan?: A.Span;
  span: A.Span;
  value: Value;
}
