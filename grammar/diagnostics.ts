// Diagnostics are data: a code from the catalog, a one-sentence message, a
// primary span with a label saying what was expected, optional notes and a
// help line ("did you mean ..."). They are rendered only at the edge (CLI),
// by render.ts.
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
  tooDeep: 'GAN103',
  notText: 'GAN104',
  fileTooLarge: 'GAN105',
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
  tooLarge: 'GAN307',
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

/** Longest name that gets suggestions (edit distance is quadratic in the length). */
const MAX_SUGGESTED_LENGTH = 64;

export function closest(name: string, candidates: Iterable<string>): string | undefined {
  if (name.length > MAX_SUGGESTED_LENGTH) return undefined;
  const limit = Math.max(1, Math.floor(name.length / 3));
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    if (Math.abs(c.length - name.length) > limit) continue; // too far apart to be a typo
    const dist = editDistance(name, c);
    if (dist < bestD) {
      bestD = dist;
      best = c;
    }
  }
  return best !== undefined && bestD <= limit ? best : undefined;
}

export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  const c = closest(name, candidates);
  return c ? `did you mean '${c}'?` : undefined;
}
