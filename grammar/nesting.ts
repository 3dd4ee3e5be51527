// How deep a .gan file may nest, and the bracket check that runs before the
// parser. Every recursive phase (parser, cst-to-ast, the checker) recurses
// once per level, so an absurd depth (a few thousand parentheses) would
// overflow the stack. The limit is far above any real model; past it the
// file gets one located diagnostic instead of a crash.
import type { IToken } from 'chevrotain';
import type { Span } from './ast.ts';
import { Codes, error, type Diagnostic } from './diagnostics.ts';

/** Most levels of brackets, of expression nesting and of statement nesting. */
export const MAX_NESTING = 128;

export type NestingKind = 'bracket' | 'expression' | 'statement';

const WHAT: Record<NestingKind, { message: string; note: string }> = {
  bracket: { message: 'brackets nested too deeply', note: "every '(', '[' and '{' that is still open counts" },
  expression: { message: 'expression nested too deeply', note: "every operator, call, '|>' stage and '.name' counts" },
  statement: { message: 'statements nested too deeply', note: "every enclosing body and every 'else if' counts" },
};

/** The diagnostic for the first token (or node) past the limit. */
export function tooDeep(at: Span, kind: NestingKind): Diagnostic {
  return error(Codes.tooDeep, `${WHAT[kind].message}: more than ${MAX_NESTING} levels`, at, {
    label: `level ${MAX_NESTING + 1} starts here`,
    notes: [WHAT[kind].note],
    help: "give inner parts names ('h = ...') or move them into a block",
  });
}

/** Closing bracket -> the opening one it matches. */
const MATCH: Record<string, string> = { RParen: 'LParen', RBracket: 'LBracket', RCurly: 'LCurly' };
const OPEN = new Set(Object.values(MATCH));

/**
 * The first opening bracket past MAX_NESTING, if any. Brackets are the only
 * way the parser recurses (operators, `else if` and `|>` are loops), so
 * checking them first makes the parser safe. A closer that does not match
 * the innermost open bracket closes nothing here: the parser may recover
 * without leaving that rule, so this count never undercounts its depth.
 */
export function checkBrackets(tokens: IToken[], file: string): Diagnostic | undefined {
  const open: string[] = [];
  for (const t of tokens) {
    const name = t.tokenType.name;
    if (OPEN.has(name)) {
      open.push(name);
      if (open.length > MAX_NESTING) return tooDeep({ file, offset: t.startOffset, length: 1 }, 'bracket');
    } else if (MATCH[name] !== undefined && open.at(-1) === MATCH[name]) {
      open.pop();
    }
  }
  return undefined;
}
