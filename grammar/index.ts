// Front door of the grammar: text in, AST and syntax diagnostics out.
import type { IRecognitionException, IToken } from 'chevrotain';
import type { GanFile, Span } from './ast.ts';
import { exprToAst, toAst } from './cst-to-ast.ts';
import { Codes, error, type Diagnostic } from './diagnostics.ts';
import { parser } from './parser.ts';
import { GanLexer } from './tokens.ts';

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
  return `'${t.image}'`;
}

function spanOfToken(file: string, t: IToken, text: string): Span {
  if (t.tokenType.name === 'EOF' || Number.isNaN(t.startOffset)) {
    const end = text.replace(/\s+$/, '').length;
    return { file, offset: Math.max(0, end - 1), length: 1 };
  }
  return { file, offset: t.startOffset, length: (t.endOffset ?? t.startOffset) - t.startOffset + 1 };
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

function ruleContext(e: IRecognitionException): string {
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
    args: 'argument list',
  };
  for (let i = stack.length - 1; i >= 0; i--) if (names[stack[i]]) return ` in ${names[stack[i]]}`;
  return '';
}

export function parseSource(text: string, file: string): ParseResult {
  const diagnostics: Diagnostic[] = [];
  const lex = GanLexer.tokenize(text);
  for (const e of lex.errors) {
    diagnostics.push(
      error(Codes.unexpectedCharacter, `unexpected character '${text.substr(e.offset, e.length || 1)}'`, { file, offset: e.offset, length: e.length || 1 }, {
        label: 'not part of the .gan language',
      }),
    );
  }
  parser.input = lex.tokens;
  const cst = parser.file();
  for (const e of parser.errors) {
    const span = spanOfToken(file, e.token, text);
    const expected = expectedOf(e);
    diagnostics.push(
      error(Codes.syntax, `unexpected ${describeFound(e.token)}${ruleContext(e)}`, span, {
        label: `expected ${expected}`,
      }),
    );
  }
  return { ast: toAst(cst, file), diagnostics };
}

/** Parses a lone expression (a `--set` value, for instance). */
export function parseExpression(text: string, file: string): { expr?: import('./ast.ts').Expr; diagnostics: Diagnostic[] } {
  const lex = GanLexer.tokenize(text);
  const diagnostics: Diagnostic[] = lex.errors.map((e) =>
    error(Codes.unexpectedCharacter, `unexpected character '${text.substr(e.offset, e.length || 1)}'`, { file, offset: e.offset, length: e.length || 1 }),
  );
  parser.input = lex.tokens;
  const cst = parser.expr();
  for (const e of parser.errors) {
    diagnostics.push(error(Codes.syntax, `unexpected ${describeFound(e.token)}`, spanOfToken(file, e.token, text), { label: `expected ${expectedOf(e)}` }));
  }
  if (diagnostics.length) return { diagnostics };
  try {
    return { expr: exprToAst(cst, file), diagnostics };
  } catch {
    return { diagnostics: [error(Codes.syntax, 'incomplete expression', { file, offset: 0, length: Math.max(1, text.length) })] };
  }
}
