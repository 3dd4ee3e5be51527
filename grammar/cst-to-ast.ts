// CST -> AST. The CST may come from error recovery, so any child can be
// missing: a construct with a missing required part is dropped (its syntax
// error has already been reported) instead of throwing. The parser reads
// operators as flat lists; precedence is applied here. Expressions and
// statement chains deeper than MAX_NESTING are refused with a diagnostic, so
// no later phase that walks the AST recursively can run out of stack.
import type { CstElement, CstNode, IToken } from 'chevrotain';
import type * as A from './ast.ts';
import { Codes, error, type Diagnostic } from './diagnostics.ts';
import { MAX_NESTING, tooDeep } from './nesting.ts';

type Children = Record<string, CstElement[] | undefined>;

/** Thrown when a recovered node lacks a required part; caught per construct. */
class Incomplete extends Error {}

export function toAst(cst: CstNode, file: string, diagnostics: Diagnostic[]): A.GanFile {
  return new AstBuilder(file, diagnostics).file(cst);
}

/** Converts an `expr` CST node; undefined if recovery left it incomplete or it was refused (see diagnostics). */
export function exprToAst(cst: CstNode, file: string, diagnostics: Diagnostic[]): A.Expr | undefined {
  try {
    return new AstBuilder(file, diagnostics).expr(cst);
  } catch (e) {
    if (e instanceof Incomplete) return undefined;
    throw e;
  }
}

/** Binary operator levels, loosest first; `**` is folded before these (it binds tighter than prefix operators on its left). */
const LEVELS: string[][] = [['or'], ['and'], ['==', '!=', '<', '>', '<=', '>='], ['+', '-'], ['*', '/', 'div', '%']];
const CMP_LEVEL = 2;
const levelOf = (op: string): number => LEVELS.findIndex((ops) => ops.includes(op));

/** An operand as the parser read it: prefix operators, then a primary with its member reads. */
interface Operand {
  prefixes: IToken[];
  base: A.Expr;
}

/** Escapes a string literal may use (JSON's set). */
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

class AstBuilder {
  /** Depth of every expression node built so far (leaves are 1). */
  private readonly depth = new WeakMap<A.Expr, number>();
  /** Statement nesting: enclosing bodies plus `else if` links. */
  private stmtDepth = 0;

  constructor(
    private readonly fileName: string,
    private readonly diagnostics: Diagnostic[],
  ) {}

  // ---- helpers ----
  private kids(n: CstNode): Children {
    return n.children as Children;
  }
  private tok(n: CstNode, name: string, i = 0): IToken {
    const t = this.kids(n)[name]?.[i] as IToken | undefined;
    if (!t || t.isInsertedInRecovery || t.image === undefined) throw new Incomplete();
    return t;
  }
  private optTok(n: CstNode, name: string, i = 0): IToken | undefined {
    const t = this.kids(n)[name]?.[i] as IToken | undefined;
    return t && !t.isInsertedInRecovery ? t : undefined;
  }
  private node(n: CstNode, name: string, i = 0): CstNode {
    const c = this.kids(n)[name]?.[i] as CstNode | undefined;
    if (!c) throw new Incomplete();
    return c;
  }
  private nodes(n: CstNode, name: string): CstNode[] {
    return (this.kids(n)[name] ?? []) as CstNode[];
  }
  private toks(n: CstNode, name: string): IToken[] {
    return ((this.kids(n)[name] ?? []) as IToken[]).filter((t) => !t.isInsertedInRecovery);
  }
  private spanOfTok(t: IToken): A.Span {
    return { file: this.fileName, offset: t.startOffset, length: (t.endOffset ?? t.startOffset) - t.startOffset + 1 };
  }
  private spanOf(n: CstNode): A.Span {
    const loc = n.location;
    if (!loc || Number.isNaN(loc.startOffset)) throw new Incomplete();
    const end = loc.endOffset ?? loc.startOffset;
    return { file: this.fileName, offset: loc.startOffset, length: Math.max(1, (Number.isNaN(end) ? loc.startOffset : end) - loc.startOffset + 1) };
  }
  private join(a: A.Span, b: A.Span): A.Span {
    return { file: this.fileName, offset: a.offset, length: Math.max(a.length, b.offset + b.length - a.offset) };
  }
  /** Converts each element, dropping the incomplete ones. */
  private each<T>(items: CstNode[], f: (n: CstNode) => T | T[]): T[] {
    const out: T[] = [];
    for (const it of items) {
      try {
        const r = f(it);
        if (Array.isArray(r)) out.push(...r);
        else out.push(r);
      } catch (e) {
        if (!(e instanceof Incomplete)) throw e;
      }
    }
    return out;
  }
  /** Drops the current construct with a diagnostic (already a syntax error, so checking stops). */
  private refuse(d: Diagnostic): never {
    this.diagnostics.push(d);
    throw new Incomplete();
  }

  /** A string literal's value; raw tabs are fine, unknown escapes are refused. */
  private str(t: IToken): string {
    const body = t.image.slice(1, -1);
    let out = '';
    for (let i = 0; i < body.length; i++) {
      const c = body[i];
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = body[i + 1];
      const hex = e === 'u' ? body.substr(i + 2, 4) : '';
      if (/^[0-9a-fA-F]{4}$/.test(hex)) {
        out += String.fromCharCode(parseInt(hex, 16));
        i += 5;
      } else if (e !== undefined && Object.hasOwn(ESCAPES, e)) {
        out += ESCAPES[e];
        i += 1;
      } else {
        const span = { file: this.fileName, offset: t.startOffset + 1 + i, length: e === undefined ? 1 : 2 };
        this.refuse(error(Codes.syntax, `unknown escape '\\${e ?? ''}' in a string`, span, { label: 'expected \\" \\\\ \\n \\t \\r or \\uXXXX' }));
      }
    }
    return out;
  }

  /** Records the depth of `e`, one more than its deepest child; refuses it past MAX_NESTING at `at`. */
  private nest<T extends A.Expr>(e: T, at: A.Span, children: A.Expr[]): T {
    let d = 0;
    for (const c of children) d = Math.max(d, this.depth.get(c) ?? 1);
    if (d + 1 > MAX_NESTING) this.refuse(tooDeep(at, 'expression'));
    this.depth.set(e, d + 1);
    return e;
  }

  // ---- file and declarations ----
  file(n: CstNode): A.GanFile {
    const out: A.GanFile = { file: this.fileName, decls: [] };
    const header = this.nodes(n, 'header')[0];
    if (header) {
      const id = this.optTok(header, 'Identifier');
      if (id) out.name = { name: id.image, span: this.spanOfTok(id) };
      const ext = this.optTok(header, 'StringLiteral');
      // A refused path (a bad escape) drops the extends, like any construct outside `each`.
      if (ext) this.each([header], () => (out.extends = { path: this.str(ext), span: this.spanOfTok(ext) }));
    }
    out.decls = this.each(this.nodes(n, 'topDecl'), (d) => this.topDecl(d));
    return out;
  }

  private topDecl(n: CstNode): A.TopDecl {
    const k = this.kids(n);
    if (k.importDecl) return this.importDecl(k.importDecl[0] as CstNode);
    if (k.paramDecl) return this.paramDecl(k.paramDecl[0] as CstNode);
    if (k.inputDecl) return this.inputDecl(k.inputDecl[0] as CstNode);
    if (k.noiseDecl) return this.noiseDecl(k.noiseDecl[0] as CstNode);
    if (k.blockDecl) return this.blockDecl(k.blockDecl[0] as CstNode);
    if (k.conditionDecl) return this.conditionDecl(k.conditionDecl[0] as CstNode);
    if (k.generatorDecl) return this.generatorDecl(k.generatorDecl[0] as CstNode);
    if (k.discriminatorDecl) return this.discriminatorDecl(k.discriminatorDecl[0] as CstNode);
    if (k.settingsDecl) return this.settingsDecl(k.settingsDecl[0] as CstNode);
    if (k.presetDecl) return this.presetDecl(k.presetDecl[0] as CstNode);
    if (k.encoderDecl) return this.encoderDecl(k.encoderDecl[0] as CstNode);
    if (k.weightsDecl) return this.weightsDecl(k.weightsDecl[0] as CstNode);
    throw new Incomplete();
  }

  private importDecl(n: CstNode): A.ImportDecl {
    const s = this.tok(n, 'StringLiteral');
    return { kind: 'import', path: this.str(s), pathSpan: this.spanOfTok(s), span: this.spanOf(n) };
  }

  private paramDecl(n: CstNode): A.ParamDecl {
    const id = this.tok(n, 'Identifier');
    return { kind: 'param', name: id.image, nameSpan: this.spanOfTok(id), value: this.expr(this.node(n, 'expr')), span: this.spanOf(n) };
  }

  private inputDecl(n: CstNode): A.InputDecl {
    const id = this.tok(n, 'Identifier');
    return { kind: 'input', name: id.image, nameSpan: this.spanOfTok(id), shape: this.listItems(this.node(n, 'listExpr')), span: this.spanOf(n) };
  }

  private noiseDecl(n: CstNode): A.NoiseDecl {
    const id = this.tok(n, 'Identifier', 0);
    const dist = this.tok(n, 'Identifier', 1);
    return {
      kind: 'noise',
      name: id.image,
      nameSpan: this.spanOfTok(id),
      shape: this.listItems(this.node(n, 'listExpr')),
      dist: dist.image,
      distSpan: this.spanOfTok(dist),
      span: this.spanOf(n),
    };
  }

  private blockDecl(n: CstNode): A.BlockDecl {
    const id = this.tok(n, 'Identifier');
    const params = this.each(this.nodes(n, 'blockParam'), (p) => {
      const pid = this.tok(p, 'Identifier');
      const def = this.nodes(p, 'expr')[0];
      return { name: pid.image, span: this.spanOfTok(pid), default: def ? this.expr(def) : undefined };
    });
    return { kind: 'block', name: id.image, nameSpan: this.spanOfTok(id), params, body: this.body(this.node(n, 'body')), span: this.spanOf(n) };
  }

  private encoderDecl(n: CstNode): A.EncoderDecl {
    const id = this.tok(n, 'Identifier');
    const inputs = this.each(this.nodes(n, 'encoderInput'), (p) => {
      const pid = this.tok(p, 'Identifier');
      return { name: pid.image, span: this.spanOfTok(pid), shape: this.listItems(this.node(p, 'listExpr')) };
    });
    return { kind: 'encoder', name: id.image, nameSpan: this.spanOfTok(id), inputs, body: this.body(this.node(n, 'body')), span: this.spanOf(n) };
  }

  private weightsDecl(n: CstNode): A.WeightsDecl {
    const id = this.tok(n, 'Identifier');
    const rules = this.each(this.nodes(n, 'weightRule'), (r) => {
      const [from, to] = [this.tok(r, 'StringLiteral', 0), this.tok(r, 'StringLiteral', 1)];
      return { from: this.str(from), fromSpan: this.spanOfTok(from), to: this.str(to), toSpan: this.spanOfTok(to) };
    });
    return { kind: 'weights', name: id.image, nameSpan: this.spanOfTok(id), rules, span: this.spanOf(n) };
  }

  private conditionDecl(n: CstNode): A.ConditionDecl {
    const id = this.tok(n, 'Identifier');
    return { kind: 'condition', name: id.image, nameSpan: this.spanOfTok(id), body: this.body(this.node(n, 'body')), span: this.spanOf(n) };
  }

  private generatorDecl(n: CstNode): A.GeneratorDecl {
    return { kind: 'generator', stages: this.each(this.nodes(n, 'stageDecl'), (s) => this.stageDecl(s)), span: this.spanOf(n) };
  }

  private stageDecl(n: CstNode): A.StageDecl {
    const id = this.tok(n, 'Identifier', 0);
    const from = this.optTok(n, 'Identifier', 1);
    return {
      kind: 'stage',
      name: id.image,
      nameSpan: this.spanOfTok(id),
      resolution: this.expr(this.node(n, 'expr')),
      from: from ? { name: from.image, span: this.spanOfTok(from) } : undefined,
      body: this.body(this.node(n, 'body')),
      span: this.spanOf(n),
    };
  }

  private discriminatorDecl(n: CstNode): A.DiscriminatorDecl {
    const id = this.tok(n, 'Identifier');
    return {
      kind: 'discriminator',
      name: id.image,
      nameSpan: this.spanOfTok(id),
      resolution: this.expr(this.node(n, 'expr')),
      body: this.body(this.node(n, 'body')),
      span: this.spanOf(n),
    };
  }

  private settingsDecl(n: CstNode): A.SettingsDecl {
    const kind = this.optTok(n, 'Objective') ? 'objective' : 'train';
    const settings = this.each(this.nodes(n, 'setting'), (s) => {
      const ids = this.toks(s, 'Identifier');
      if (ids.length === 0) throw new Incomplete();
      const pathSpan = this.join(this.spanOfTok(ids[0]), this.spanOfTok(ids[ids.length - 1]));
      return { path: ids.map((t) => t.image), pathSpan, value: this.expr(this.node(s, 'expr')), span: this.spanOf(s) };
    });
    return { kind, settings, span: this.spanOf(n) };
  }

  private presetDecl(n: CstNode): A.PresetDecl {
    const id = this.tok(n, 'Identifier');
    return {
      kind: 'preset',
      name: id.image,
      nameSpan: this.spanOfTok(id),
      params: this.each(this.nodes(n, 'paramDecl'), (p) => this.paramDecl(p)),
      sections: this.each(this.nodes(n, 'settingsDecl'), (s) => this.settingsDecl(s)),
      span: this.spanOf(n),
    };
  }

  // ---- statements ----
  private body(n: CstNode): A.Stmt[] {
    this.stmtDepth++;
    try {
      if (this.stmtDepth > MAX_NESTING) this.refuse(tooDeep(this.spanOfTok(this.tok(n, 'LCurly')), 'statement'));
      return this.each(this.nodes(n, 'statement'), (s) => this.statement(s));
    } finally {
      this.stmtDepth--;
    }
  }

  private statement(n: CstNode): A.Stmt {
    const k = this.kids(n);
    const span = this.spanOf(n);
    if (k.assignStmt) {
      const a = k.assignStmt[0] as CstNode;
      const targets = this.toks(a, 'Identifier').map((t) => ({ name: t.image, span: this.spanOfTok(t) }));
      return { kind: 'assign', targets, value: this.expr(this.node(a, 'expr')), span };
    }
    if (k.exprStmt) return { kind: 'expr', value: this.expr(this.node(k.exprStmt[0] as CstNode, 'expr')), span };
    if (k.repeatStmt) {
      const r = k.repeatStmt[0] as CstNode;
      const idx = this.optTok(r, 'Identifier');
      return {
        kind: 'repeat',
        count: this.expr(this.node(r, 'expr')),
        index: idx ? { name: idx.image, span: this.spanOfTok(idx) } : undefined,
        body: this.body(this.node(r, 'body')),
        span,
      };
    }
    if (k.ifStmt) return this.ifStmt(k.ifStmt[0] as CstNode);
    if (k.lossStmt || k.headStmt) {
      const s = (k.lossStmt ?? k.headStmt)![0] as CstNode;
      const id = this.tok(s, 'Identifier');
      return { kind: k.lossStmt ? 'loss' : 'head', name: id.image, nameSpan: this.spanOfTok(id), value: this.expr(this.node(s, 'expr')), span };
    }
    if (k.returnStmt) {
      const r = k.returnStmt[0] as CstNode;
      return { kind: 'return', values: this.nodes(r, 'expr').map((e) => this.expr(e)), span };
    }
    throw new Incomplete();
  }

  /**
   * `if a { } else if b { } else { }`: the parser reads the chain as a list
   * (conditions, bodies, then an optional final body); the AST nests it.
   */
  private ifStmt(n: CstNode): A.Stmt {
    const ifs = this.toks(n, 'If');
    const elses = this.toks(n, 'Else');
    const conds = this.nodes(n, 'expr');
    const bodies = this.nodes(n, 'body');
    const hasFinal = elses.length === ifs.length;
    if (ifs.length === 0 || conds.length !== ifs.length || bodies.length !== ifs.length + (hasFinal ? 1 : 0)) throw new Incomplete();
    // Link i sits inside i `else` branches, so its bodies are i levels deeper than the first one's.
    const firstTooDeep = MAX_NESTING - this.stmtDepth;
    if (firstTooDeep < ifs.length) this.refuse(tooDeep(this.spanOfTok(ifs[firstTooDeep]), 'statement'));
    const end = this.spanOf(n);
    // Innermost link first; each link spans from its `if` to the end of the chain.
    let rest: A.Stmt[] | undefined = hasFinal ? this.nestedBody(bodies[ifs.length], ifs.length - 1) : undefined;
    for (let i = ifs.length - 1; i >= 0; i--) {
      const at = this.spanOfTok(ifs[i]);
      const span = this.join(at, end);
      rest = [{ kind: 'if', cond: this.expr(conds[i]), then: this.nestedBody(bodies[i], i), else: rest, span }];
    }
    return rest![0];
  }

  /** A body inside the `links`-th `else if` of a chain: deeper by that many levels. */
  private nestedBody(n: CstNode, links: number): A.Stmt[] {
    this.stmtDepth += links;
    try {
      return this.body(n);
    } finally {
      this.stmtDepth -= links;
    }
  }

  // ---- expressions ----
  expr(n: CstNode): A.Expr {
    let e = this.operatorChain(n);
    for (const t of this.nodes(n, 'pipeTarget')) {
      const id = this.tok(t, 'Identifier');
      const args = [{ value: e }, ...this.callArguments(t)];
      const call: A.Expr = { kind: 'call', callee: id.image, calleeSpan: this.spanOfTok(id), args, piped: true, span: this.join(e.span, this.spanOf(t)) };
      e = this.nest(call, call.calleeSpan, args.map((a) => a.value));
    }
    return e;
  }

  /** `o0 op o1 op o2 ...` with precedence: `**` chains first (right to left), then the levels loosest first, each left-associative. */
  private operatorChain(n: CstNode): A.Expr {
    const operands = this.nodes(n, 'operand').map((o) => this.operand(o));
    const ops = this.toks(n, 'BinaryOp');
    if (operands.length === 0 || ops.length !== operands.length - 1) throw new Incomplete();
    const units: A.Expr[] = [];
    const unitOps: IToken[] = [];
    for (let i = 0; i < operands.length; ) {
      let j = i;
      while (j < ops.length && ops[j].image === '**') j++;
      // operands i..j joined by `**`: a ** (-b ** c) keeps each prefix outside its own power.
      let r = this.prefixed(operands[j]);
      for (let k = j - 1; k >= i; k--) {
        const base = operands[k].base;
        const pow: A.Expr = { kind: 'binary', op: '**', left: base, right: r, opSpan: this.spanOfTok(ops[k]), span: this.join(base.span, r.span) };
        r = this.prefixed({ prefixes: operands[k].prefixes, base: this.nest(pow, pow.opSpan, [base, r]) });
      }
      units.push(r);
      if (j < ops.length) unitOps.push(ops[j]);
      i = j + 1;
    }
    let next = 0;
    const level = (l: number): A.Expr => {
      if (l === LEVELS.length) return units[next++];
      let left = level(l + 1);
      let chained = false;
      while (next - 1 < unitOps.length && levelOf(unitOps[next - 1].image) === l) {
        const op = unitOps[next - 1];
        const opSpan = this.spanOfTok(op);
        if (l === CMP_LEVEL && chained) {
          this.refuse(error(Codes.syntax, `comparisons do not chain: '${op.image}' follows another comparison`, opSpan, { label: "expected 'and' or 'or' before it", help: "write 'a < b and b < c'" }));
        }
        chained = true;
        const right = level(l + 1);
        const bin: A.Expr = { kind: 'binary', op: op.image as A.BinaryOp, left, right, opSpan, span: this.join(left.span, right.span) };
        left = this.nest(bin, opSpan, [left, right]);
      }
      return left;
    };
    return level(0);
  }

  /** Prefix operators, then the primary and its `.name` reads (which bind tighter). */
  private operand(n: CstNode): Operand {
    const prefixes = [...this.toks(n, 'Minus'), ...this.toks(n, 'Not')].sort((a, b) => a.startOffset - b.startOffset);
    let e = this.primary(n);
    for (const id of this.toks(n, 'Identifier')) {
      const nameSpan = this.spanOfTok(id);
      e = this.nest({ kind: 'member', object: e, name: id.image, nameSpan, span: this.join(e.span, nameSpan) }, nameSpan, [e]);
    }
    return { prefixes, base: e };
  }

  /** Applies prefix operators, innermost (rightmost) first; `-` on a number literal folds into the literal. */
  private prefixed(o: Operand): A.Expr {
    let e = o.base;
    for (let i = o.prefixes.length - 1; i >= 0; i--) {
      const op = o.prefixes[i];
      const span = this.join(this.spanOfTok(op), e.span);
      if (op.image === '-' && e.kind === 'num') e = { kind: 'num', value: -e.value, span };
      else e = this.nest({ kind: 'unary', op: op.image === '-' ? '-' : 'not', operand: e, span }, this.spanOfTok(op), [e]);
    }
    return e;
  }

  private primary(n: CstNode): A.Expr {
    const k = this.kids(n);
    if (k.NumberLiteral) {
      const t = this.tok(n, 'NumberLiteral');
      const value = Number(t.image);
      // 1e999 would become Infinity: a width or a rate that prints as Infinity and serialises as null.
      if (!Number.isFinite(value)) {
        this.refuse(error(Codes.badValue, `number ${t.image} is too large (beyond float64's ${Number.MAX_VALUE})`, this.spanOfTok(t), { help: 'write a finite number' }));
      }
      return { kind: 'num', value, span: this.spanOfTok(t) };
    }
    if (k.StringLiteral) {
      const t = this.tok(n, 'StringLiteral');
      return { kind: 'str', value: this.str(t), span: this.spanOfTok(t) };
    }
    if (k.True) return { kind: 'bool', value: true, span: this.spanOfTok(this.tok(n, 'True')) };
    if (k.False) return { kind: 'bool', value: false, span: this.spanOfTok(this.tok(n, 'False')) };
    if (k.listExpr) {
      const l = k.listExpr[0] as CstNode;
      const items = this.listItems(l);
      return this.nest({ kind: 'list', items, span: this.spanOf(l) }, this.spanOf(l), items);
    }
    if (k.parenExpr) {
      const p = k.parenExpr[0] as CstNode;
      const items = this.nodes(p, 'expr').map((e) => this.expr(e));
      if (items.length === 0) throw new Incomplete();
      return items.length === 1 ? items[0] : this.nest({ kind: 'tuple', items, span: this.spanOf(p) }, this.spanOf(p), items);
    }
    if (k.callOrName) {
      const c = k.callOrName[0] as CstNode;
      const id = this.tok(c, 'Identifier');
      const span = this.spanOf(c);
      if (!this.kids(c).LParen) return { kind: 'name', name: id.image, span };
      const args = this.callArguments(c);
      return this.nest({ kind: 'call', callee: id.image, calleeSpan: this.spanOfTok(id), args, span }, this.spanOfTok(id), args.map((a) => a.value));
    }
    throw new Incomplete();
  }

  private listItems(n: CstNode): A.Expr[] {
    return this.nodes(n, 'expr').map((e) => this.expr(e));
  }

  /** Arguments of a call node (`callOrName`, `pipeTarget`): each expression with the `name =` before it, if any. */
  private callArguments(n: CstNode): A.Arg[] {
    // Identifier[0] is the callee; the others are keyword names, in source order like the expressions.
    const names = ((this.kids(n).Identifier ?? []) as IToken[]).slice(1).filter((t) => !t.isInsertedInRecovery);
    let k = 0;
    return this.nodes(n, 'expr').map((e) => {
      const value = this.expr(e);
      const id = k < names.length && names[k].startOffset < value.span.offset ? names[k++] : undefined;
      return id ? { name: id.image, nameSpan: this.spanOfTok(id), value } : { value };
    });
  }
}
