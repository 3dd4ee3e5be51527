// Diagnostics are data: a code from the catalog, a one-sentence message, a
// primary span with a label saying what was expected, optional notes and a
// help line ("did you mean ..."). They are rendered only at the edge (CLI).
import type { Span } from './ast.ts';

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  code: string;
  severity: Severity;
  message: string;
  span?: Span;
  /** Shown under the caret: what was expected there. */
  label?: string;
  notes?: string[];
  help?: string;
}

/**
 * The catalog. Codes are banded per phase: 1xx lexing/parsing, 2xx names and
 * files, 3xx types/shapes, 4xx model structure and settings, 9xx internal.
 */
export const Codes = {
  unexpectedCharacter: 'GAN101',
  syntax: 'GAN102',
  fileNotFound: 'GAN201',
  cyclicInclude: 'GAN202',
  undefinedName: 'GAN203',
  duplicateName: 'GAN204',
  unknownOp: 'GAN205',
  unknownParamOverride: 'GAN206',
  unusedParam: 'GAN207',
  cyclicParam: 'GAN208',
  badArity: 'GAN301',
  unknownKeyword: 'GAN302',
  typeMismatch: 'GAN303',
  shapeMismatch: 'GAN304',
  notDivisible: 'GAN305',
  badValue: 'GAN306',
  structure: 'GAN401',
  unknownSetting: 'GAN402',
  notSupported: 'GAN403',
  internal: 'GAN901',
} as const;

export function error(code: string, message: string, span?: Span, extra: Partial<Diagnostic> = {}): Diagnostic {
  return { code, severity: 'error', message, span, ...extra };
}

export function warning(code: string, message: string, span?: Span, extra: Partial<Diagnostic> = {}): Diagnostic {
  return { code, severity: 'warning', message, span, ...extra };
}

/** Raised inside a phase to abort the current construct with a diagnostic. */
export class DiagnosticError extends Error {
  constructor(readonly diagnostic: Diagnostic) {
    super(diagnostic.message);
  }
}

// ---------------------------------------------------------------------------
// "Did you mean": the closest candidate by edit distance, if close enough.

/** Optimal-string-alignment distance: a swap of neighbours counts as one edit. */
export function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  const d: number[][] = Array.from({ length: x.length + 1 }, (_, i) => Array.from({ length: y.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[x.length][y.length];
}

export function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dist = editDistance(name, c);
    if (dist < bestD) {
      bestD = dist;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(name.length / 3)) ? best : undefined;
}

export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  const c = closest(name, candidates);
  return c ? `did you mean '${c}'?` : undefined;
}

// ---------------------------------------------------------------------------
// Rendering. Sources are looked up by file name.

export type SourceLookup = (file: string) => string | undefined;

export function lineCol(text: string, offset: number): { line: number; col: number; lineStart: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, col: offset - lineStart + 1, lineStart };
}

/** `file:line:col: error GAN304: message` — one line, for tools. */
export function renderShort(d: Diagnostic, sources: SourceLookup): string {
  const text = d.span ? sources(d.span.file) : undefined;
  const loc = d.span ? (text !== undefined ? `${d.span.file}:${lineCol(text, d.span.offset).line}:${lineCol(text, d.span.offset).col}` : d.span.file) : 'gan';
  return `${loc}: ${d.severity} ${d.code}: ${d.message}`;
}

/** rustc-style: location, source line, carets under the span, label, notes, help. */
export function renderRich(d: Diagnostic, sources: SourceLookup, color = false): string {
  const paint = (code: string, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const sev = d.severity === 'error' ? paint('1;31', 'error') : paint('1;33', 'warning');
  const out = [`${sev}${paint('1', `[${d.code}]: ${d.message}`)}`];
  const text = d.span ? sources(d.span.file) : undefined;
  if (d.span && text !== undefined) {
    const { line, col, lineStart } = lineCol(text, d.span.offset);
    let lineEnd = text.indexOf('\n', lineStart);
    if (lineEnd < 0) lineEnd = text.length;
    const src = text.slice(lineStart, lineEnd).replace(/\t/g, ' ');
    const gutter = ' '.repeat(String(line).length);
    const width = Math.max(1, Math.min(d.span.length, lineEnd - d.span.offset));
    out.push(`${gutter}${paint('34', '-->')} ${d.span.file}:${line}:${col}`);
    out.push(`${gutter} ${paint('34', '|')}`);
    out.push(`${paint('34', `${line} |`)} ${src}`);
    out.push(`${gutter} ${paint('34', '|')} ${' '.repeat(col - 1)}${paint(d.severity === 'error' ? '31' : '33', '^'.repeat(width))}${d.label ? ' ' + d.label : ''}`);
  } else if (d.span) {
    out.push(` --> ${d.span.file}`);
  }
  for (const n of d.notes ?? []) out.push(`  = note: ${n}`);
  if (d.help) out.push(`  = help: ${d.help}`);
  return out.join('\n');
}
