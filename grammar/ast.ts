// The abstract syntax tree of a .gan file. Every node carries its span so
// later phases can point at the source. Nodes from recovered (broken) input
// may have missing parts; those are marked optional here.
export interface Span {
  file: string;
  offset: number;
  length: number;
}

export type Expr =
  | { kind: 'num'; value: number; span: Span }
  | { kind: 'str'; value: string; span: Span }
  | { kind: 'bool'; value: boolean; span: Span }
  | { kind: 'name'; name: string; span: Span }
  | { kind: 'member'; object: Expr; name: string; nameSpan: Span; span: Span }
  | { kind: 'call'; callee: string; calleeSpan: Span; args: Arg[]; piped?: boolean; span: Span }
  | { kind: 'binary'; op: BinaryOp; left: Expr; right: Expr; opSpan: Span; span: Span }
  | { kind: 'unary'; op: '-' | 'not'; operand: Expr; span: Span }
  | { kind: 'tuple'; items: Expr[]; span: Span }
  | { kind: 'list'; items: Expr[]; span: Span };

export type BinaryOp = '+' | '-' | '*' | '/' | 'div' | '%' | '**' | '==' | '!=' | '<' | '>' | '<=' | '>=' | 'and' | 'or';

/** A call argument, positional or keyword (`k = 3`). */
export interface Arg {
  name?: string;
  nameSpan?: Span;
  value: Expr;
}

export type Stmt =
  | { kind: 'assign'; targets: { name: string; span: Span }[]; value: Expr; span: Span }
  | { kind: 'expr'; value: Expr; span: Span }
  | { kind: 'repeat'; count: Expr; index?: { name: string; span: Span }; body: Stmt[]; span: Span }
  | { kind: 'if'; cond: Expr; then: Stmt[]; else?: Stmt[]; span: Span }
  | { kind: 'loss'; name: string; nameSpan: Span; value: Expr; span: Span }
  | { kind: 'head'; name: string; nameSpan: Span; value: Expr; span: Span }
  | { kind: 'return'; values: Expr[]; span: Span };

export interface ParamDecl { kind: 'param'; name: string; nameSpan: Span; value: Expr; span: Span }
export interface InputDecl { kind: 'input'; name: string; nameSpan: Span; shape: Expr[]; span: Span }
export interface NoiseDecl { kind: 'noise'; name: string; nameSpan: Span; shape: Expr[]; dist: string; distSpan: Span; span: Span }
export interface BlockDecl {
  kind: 'block';
  name: string;
  nameSpan: Span;
  params: { name: string; span: Span; default?: Expr }[];
  body: Stmt[];
  span: Span;
}
export interface ConditionDecl { kind: 'condition'; name: string; nameSpan: Span; body: Stmt[]; span: Span }
export interface StageDecl {
  kind: 'stage';
  name: string;
  nameSpan: Span;
  resolution: Expr;
  from?: { name: string; span: Span };
  body: Stmt[];
  span: Span;
}
export interface GeneratorDecl { kind: 'generator'; stages: StageDecl[]; span: Span }
export interface DiscriminatorDecl { kind: 'discriminator'; name: string; nameSpan: Span; resolution: Expr; body: Stmt[]; span: Span }
/** `key = value` inside objective/train/preset sections; keys may be dotted (`d.lr`). */
export interface Setting { path: string[]; pathSpan: Span; value: Expr; span: Span }
export interface SettingsDecl { kind: 'objective' | 'train'; settings: Setting[]; span: Span }
export interface PresetDecl { kind: 'preset'; name: string; nameSpan: Span; params: ParamDecl[]; sections: SettingsDecl[]; span: Span }
/** A network used frozen (a pretrained encoder): typed per-sample inputs, a body, its `return` the result. */
export interface EncoderDecl {
  kind: 'encoder';
  name: string;
  nameSpan: Span;
  inputs: { name: string; span: Span; shape: Expr[] }[];
  body: Stmt[];
  span: Span;
}
/** One `"checkpoint.name" = "layer/path"` rule; a pair ending in `.` and `/` maps a whole prefix. */
export interface WeightRule { from: string; fromSpan: Span; to: string; toSpan: Span }
export interface WeightsDecl { kind: 'weights'; name: string; nameSpan: Span; rules: WeightRule[]; span: Span }
export interface ImportDecl { kind: 'import'; path: string; pathSpan: Span; span: Span }

export type TopDecl =
  | ParamDecl
  | InputDecl
  | NoiseDecl
  | BlockDecl
  | ConditionDecl
  | GeneratorDecl
  | DiscriminatorDecl
  | SettingsDecl
  | PresetDecl
  | EncoderDecl
  | WeightsDecl
  | ImportDecl;

export interface GanFile {
  file: string;
  name?: { name: string; span: Span };
  extends?: { path: string; span: Span };
  decls: TopDecl[];
}
