// Front door of the grammar: text in, AST and syntax diagnostics out.
import type { ILexingResult, IRecognitionException, IToken } from 'chevrotain';
import type { Expr, GanFile, Span } from './ast.ts';
import { describeChar, escapeText, isHidden, looksLikeSpace } from './chars.ts';
import { exprToAst, toAst } from './cst-to-ast.ts';
import { Codes, error, type Diagnostic } from './diagnostics.ts';
import { checkBrackets } from './nesting.ts';
import { parser } from './parser.ts';
import { GanLexer, UNEXPECTED_GROUP } from './tokens.ts';

/** Syntax diagnostics kept per file: past this, a garbled file only repeats itself. */
export const MAX_SYNTAX_DIAGNOSTICS = 50;

export interface ParseResult {
  ast: GanFile;
  diagnostics: Diagnostic[];
}

/** Human names for tokens in "expected ..." messages. */
const TOKEN_NAMES: Record<string, string> = {
  Identifier: 'a name',
  NumberLiteral: 'a number',
  StringLiteral: 'a string',
  LParen: "'('",
  RParen: "')'",
  LCurly: "'{'",
  RCurly: "'}'",
  LBracket: "'['",
  RBracket: "']'",
  Comma: "','",
  Colon: "':'",
  Equals: "'='",
  At: "'@'",
  Tilde: "'~'",
  Dot: "'.'",
  Pipe: "'|>'",
  EOF: 'end of file',
};

function tokenName(name: string): string {
  return TOKEN_NAMES[name] ?? `'${name.toLowerCase()}'`;
}

function describeFound(t: IToken): string {
  if (t.tokenType.name === 'EOF') return 'end of file';
  return `'${escapeText(t.image)}'`;
}

function spanOfToken(file: string, t: IToken, text: string): Span {
  if (t.tokenType.name === 'EOF' || Number.isNaN(t.startOffset)) {
    const end = text.trimEnd().length;
    return { file, offset: Math.max(0, end - 1), length: Math.min(1, text.length) };
  }
  return { file, offset: t.startOffset, length: (t.endOffset ?? t.startOffset) - t.startOffset + 1 };
}

/** The token just before `t` (tokens are in source order). */
function tokenBefore(tokens: IToken[], t: IToken): IToken | undefined {
  if (Number.isNaN(t.startOffset)) return tokens.at(-1);
  let lo = 0;
  let hi = tokens.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (tokens[mid].startOffset < t.startOffset) lo = mid + 1;
    else hi = mid;
  }
  return tokens[lo - 1];
}

/** A run of characters the lexer cannot read; invisible ones are named by code point. */
function unexpectedCharacters(text: string, offset: number, length: number, file: string): Diagnostic {
  const run = text.substr(offset, Math.max(1, length));
  const first = String.fromCodePoint(run.codePointAt(0) ?? 0xfffd);
  const span = { file, offset, length: run.length };
  const extra = { label: 'not part of the .gan language', help: looksLikeSpace(first) ? 'replace it with a plain space' : undefined };
  if (run.length === first.length) return error(Codes.unexpectedCharacter, `unexpected character ${describeChar(first)}`, span, extra);
  const chars = [...run];
  if (chars.length <= 20 && !chars.some(isHidden)) return error(Codes.unexpectedCharacter, `unexpected characters '${run}'`, span, extra);
  return error(Codes.unexpectedCharacter, `unexpected characters, starting with ${describeChar(first)} (${chars.length} in a row)`, span, extra);
}

/** Runs of characters no token starts with: the lexer's own errors and the `Unexpected` runs. */
function lexErrors(lex: ILexingResult, text: string, file: string): Diagnostic[] {
  const runs = (lex.groups[UNEXPECTED_GROUP] ?? []).map((t) => ({ offset: t.startOffset, length: t.image.length }));
  return [...lex.errors, ...runs].map((e) => unexpectedCharacters(text, e.offset, e.length, file));
}

/** Sorted by position; past MAX_SYNTAX_DIAGNOSTICS, the rest is counted in a note. */
function capped(diagnostics: Diagnostic[]): Diagnostic[] {
  const sorted = [...diagnostics].sort((a, b) => (a.span?.offset ?? 0) - (b.span?.offset ?? 0));
  if (sorted.length <= MAX_SYNTAX_DIAGNOSTICS) return sorted;
  const kept = sorted.slice(0, MAX_SYNTAX_DIAGNOSTICS);
  const last = kept[kept.length - 1];
  kept[kept.length - 1] = { ...last, notes: [...(last.notes ?? []), `${sorted.length - MAX_SYNTAX_DIAGNOSTICS} more syntax errors in this file are not shown`] };
  return kept;
}

/** Expected-token list from chevrotain's exception, phrased for people. */
function expectedOf(e: IRecognitionException): string {
  const m = /one of these possible Token sequences:\n([\s\S]*?)\nbut found/.exec(e.message);
  if (m) {
    const firsts = new Set<string>();
    for (const line of m[1].split('\n')) {
      const seq = /\[(.*)\]/.exec(line);
      if (seq) firsts.add(seq[1].split(',')[0].trim());
    }
    // A long list that includes names and numbers means "an expression".
    if (firsts.has('NumberLiteral') && firsts.has('Identifier') && firsts.size > 3) return 'an expression';
    return [...firsts].map(tokenName).join(', ');
  }
  const single = /Expecting token of type --> (\w+) <--/.exec(e.message) ?? /Expecting: (?:expecting at least one iteration which starts with one of these possible Token sequences::?\s*)?<\[(\w+)\]>/.exec(e.message);
  if (single) return tokenName(single[1]);
  return 'something else';
}

/**
 * ` in <construct>` for the innermost named rule. Call arguments are read
 * inside `callOrName` and `pipeTarget`; the latter is an argument list only
 * past its name (`afterPipe`: the error is at the name itself).
 */
function ruleContext(e: IRecognitionException, afterPipe = false): string {
  const stack = e.context?.ruleStack ?? [];
  const names: Record<string, string> = {
    paramDecl: 'param declaration',
    inputDecl: 'input declaration',
    noiseDecl: 'noise declaration',
    blockDecl: 'block',
    stageDecl: 'stage',
    discriminatorDecl: 'discriminator',
    settingsDecl: 'settings section',
    setting: 'setting',
    generatorDecl: 'generator',
    conditionDecl: 'condition',
    presetDecl: 'preset',
    encoderDecl: 'encoder',
    encoderInput: 'encoder input',
    weightsDecl: 'weights declaration',
    weightRule: 'weights rule',
    callOrName: 'argument list',
    pipeTarget: 'argument list',
  };
  for (let i = stack.length - 1; i >= 0; i--) {
    if (stack[i] === 'pipeTarget' && afterPipe && i === stack.length - 1) continue;
    if (names[stack[i]]) return ` in ${names[stack[i]]}`;
  }
  return '';
}

export function parseSource(text: string, file: string): ParseResult {
  const diagnostics: Diagnostic[] = [];
  const lex = GanLexer.tokenize(text);
  diagnostics.push(...lexErrors(lex, text, file));
  // Too-deep brackets would overflow the parser's stack: refuse before parsing.
  const deep = checkBrackets(lex.tokens, file);
  if (deep) return { ast: { file, decls: [] }, diagnostics: capped([...diagnostics, deep]) };
  parser.input = lex.tokens;
  const cst = parser.file();
  for (const e of parser.errors) {
    const span = spanOfToken(file, e.token, text);
    const expected = expectedOf(e);
    const afterPipe = tokenBefore(lex.tokens, e.token)?.tokenType.name === 'Pipe';
    diagnostics.push(
      error(Codes.syntax, `unexpected ${describeFound(e.token)}${ruleContext(e, afterPipe)}`, span, {
        label: `expected ${expected}`,
      }),
    );
  }
  const ast = toAst(cst, file, diagnostics);
  return { ast, diagnostics: capped(diagnostics) };
}

/** Parses a lone expression (a `--set` value, for instance). */
export function parseExpression(text: string, file: string): { expr?: Expr; diagnostics: Diagnostic[] } {
  const lex = GanLexer.tokenize(text);
  const diagnostics = lexErrors(lex, text, file);
  const deep = checkBrackets(lex.tokens, file);
  if (deep) return { diagnostics: capped([...diagnostics, deep]) };
  parser.input = lex.tokens;
  const cst = parser.expr();
  for (const e of parser.errors) {
    diagnostics.push(error(Codes.syntax, `unexpected ${describeFound(e.token)}`, spanOfToken(file, e.token, text), { label: `expected ${expectedOf(e)}` }));
  }
  if (diagnostics.length) return { diagnostics: capped(diagnostics) };
  const expr = exprToAst(cst, file, diagnostics);
  if (diagnostics.length) return { diagnostics: capped(diagnostics) };
  if (!expr) return { diagnostics: [error(Codes.syntax, 'incomplete expression', { file, offset: 0, length: text.length })] };
  return { expr, diagnostics };
}
