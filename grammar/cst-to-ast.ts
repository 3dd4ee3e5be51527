// CST -> AST. The CST may come from error recovery, so any child can be
// missing: a construct with a missing required part is dropped (its syntax
// error has already been reported) instead of throwing.
import type { CstElement, CstNode, IToken } from 'chevrotain';
import type * as A from './ast.ts';

type Children = Record<string, CstElement[] | undefined>;

/** Thrown when a recovered node lacks a required part; caught per construct. */
class Incomplete extends Error {}

export function toAst(cst: CstNode, file: string): A.GanFile {
  return new AstBuilder(file).file(cst);
}

/** Converts an `expr` CST node; throws if recovery left it incomplete. */
export function exprToAst(cst: CstNode, file: string): A.Expr {
  return new AstBuilder(file).expr(cst);
}

class AstBuilder {
  constructor(private readonly fileName: string) {}

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
  private str(t: IToken): string {
    return JSON.parse(t.image) as string;
  }

  // ---- file and declarations ----
  file(n: CstNode): A.GanFile {
    const out: A.GanFile = { file: this.fileName, decls: [] };
    const header = this.nodes(n, 'header')[0];
    if (header) {
      const id = this.optTok(header, 'Identifier');
      if (id) out.name = { name: id.image, span: this.spanOfTok(id) };
      const ext = this.optTok(header, 'StringLiteral');
      if (ext) out.extends = { path: this.str(ext), span: this.spanOfTok(ext) };
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
    return this.each(this.nodes(n, 'statement'), (s) => this.statement(s));
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

  private ifStmt(n: CstNode): A.Stmt {
    const bodies = this.nodes(n, 'body');
    const nested = this.nodes(n, 'ifStmt')[0];
    return {
      kind: 'if',
      cond: this.expr(this.node(n, 'expr')),
      then: this.body(this.node(n, 'body', 0)),
      else: nested ? [this.ifStmt(nested)] : bodies[1] ? this.body(bodies[1]) : undefined,
      span: this.spanOf(n),
    };
  }

  // ---- expressions ----
  expr(n: CstNode): A.Expr {
    let e = this.binary(this.node(n, 'orExpr'));
    for (const t of this.nodes(n, 'pipeTarget')) {
      const id = this.tok(t, 'Identifier');
      const argsNode = this.nodes(t, 'args')[0];
      const args = [{ value: e }, ...(argsNode ? this.args(argsNode) : [])];
      e = { kind: 'call', callee: id.image, calleeSpan: this.spanOfTok(id), args, piped: true, span: this.join(e.span, this.spanOf(t)) };
    }
    return e;
  }

  /** All binary levels share one shape: operand (op operand)*. */
  private binary(n: CstNode): A.Expr {
    const name = n.name;
    const next: Record<string, [string, string]> = {
      orExpr: ['andExpr', 'Or'],
      andExpr: ['cmpExpr', 'And'],
      cmpExpr: ['addExpr', 'CmpOp'],
      addExpr: ['mulExpr', 'AddOp'],
      mulExpr: ['unaryExpr', 'MulOp'],
    };
    if (name === 'unaryExpr') return this.unary(n);
    const [sub, opName] = next[name];
    const operands = this.nodes(n, sub);
    const ops = (this.kids(n)[opName] ?? []) as IToken[];
    if (operands.length === 0) throw new Incomplete();
    let e = this.binary(operands[0]);
    for (let i = 1; i < operands.length; i++) {
      const op = ops[i - 1];
      if (!op) throw new Incomplete();
      const right = this.binary(operands[i]);
      e = { kind: 'binary', op: op.image as A.BinaryOp, left: e, right, opSpan: this.spanOfTok(op), span: this.join(e.span, right.span) };
    }
    return e;
  }

  private unary(n: CstNode): A.Expr {
    const inner = this.nodes(n, 'unaryExpr')[0];
    if (inner) {
      const op = this.optTok(n, 'Minus') ?? this.tok(n, 'Not');
      const operand = this.unary(inner);
      if (op.image === '-' && operand.kind === 'num') return { kind: 'num', value: -operand.value, span: this.join(this.spanOfTok(op), operand.span) };
      return { kind: 'unary', op: op.image === '-' ? '-' : 'not', operand, span: this.join(this.spanOfTok(op), operand.span) };
    }
    const p = this.node(n, 'powExpr');
    const base = this.postfix(this.node(p, 'postfixExpr'));
    const expo = this.nodes(p, 'unaryExpr')[0];
    if (!expo) return base;
    const right = this.unary(expo);
    return { kind: 'binary', op: '**', left: base, right, opSpan: this.spanOfTok(this.tok(p, 'Pow')), span: this.join(base.span, right.span) };
  }

  private postfix(n: CstNode): A.Expr {
    let e = this.primary(this.node(n, 'primary'));
    for (const id of this.toks(n, 'Identifier')) {
      const nameSpan = this.spanOfTok(id);
      e = { kind: 'member', object: e, name: id.image, nameSpan, span: this.join(e.span, nameSpan) };
    }
    return e;
  }

  private primary(n: CstNode): A.Expr {
    const k = this.kids(n);
    const span = this.spanOf(n);
    if (k.NumberLiteral) return { kind: 'num', value: Number(this.tok(n, 'NumberLiteral').image), span };
    if (k.StringLiteral) return { kind: 'str', value: this.str(this.tok(n, 'StringLiteral')), span };
    if (k.True) return { kind: 'bool', value: true, span };
    if (k.False) return { kind: 'bool', value: false, span };
    if (k.listExpr) return { kind: 'list', items: this.listItems(k.listExpr[0] as CstNode), span };
    if (k.parenExpr) {
      const items = this.nodes(k.parenExpr[0] as CstNode, 'expr').map((e) => this.expr(e));
      if (items.length === 0) throw new Incomplete();
      return items.length === 1 ? items[0] : { kind: 'tuple', items, span };
    }
    if (k.callOrName) {
      const c = k.callOrName[0] as CstNode;
      const id = this.tok(c, 'Identifier');
      if (!this.kids(c).LParen) return { kind: 'name', name: id.image, span };
      const argsNode = this.nodes(c, 'args')[0];
      return { kind: 'call', callee: id.image, calleeSpan: this.spanOfTok(id), args: argsNode ? this.args(argsNode) : [], span };
    }
    throw new Incomplete();
  }

  private listItems(n: CstNode): A.Expr[] {
    return this.nodes(n, 'expr').map((e) => this.expr(e));
  }

  private args(n: CstNode): A.Arg[] {
    return this.nodes(n, 'arg').map((a) => {
      const id = this.optTok(a, 'Identifier');
      const value = this.expr(this.node(a, 'expr'));
      return id ? { name: id.image, nameSpan: this.spanOfTok(id), value } : { value };
    });
  }
}
