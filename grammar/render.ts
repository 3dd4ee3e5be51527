// Rendering diagnostics, the only place they become text: one line for
// tools, or rustc-style with the source line and carets for people. The
// source line is shown safely: hidden characters escaped (chars.ts), long
// lines cut to a window around the span, carets under the right characters.
import { escapeChar, isHidden } from './chars.ts';
import type { Diagnostic } from './diagnostics.ts';

export type SourceLookup = (file: string) => string | undefined;

/** Widest source line shown, in terminal columns, ellipses included. */
export const MAX_LINE_WIDTH = 120;

// ---------------------------------------------------------------------------
// Lines: `\n`, `\r\n` and a lone `\r` each end a line.

/** Offsets where lines start, for the last few texts seen (rendering asks many times about one text). */
const lineStartCache = new Map<string, number[]>();

function lineStarts(text: string): number[] {
  let starts = lineStartCache.get(text);
  if (starts) return starts;
  starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || (c === 13 && text.charCodeAt(i + 1) !== 10)) starts.push(i + 1);
  }
  if (lineStartCache.size >= 8) lineStartCache.delete(lineStartCache.keys().next().value!);
  lineStartCache.set(text, starts);
  return starts;
}

/** 1-based line and column (in UTF-16 code units) of `offset`, and where its line starts. */
export function lineCol(text: string, offset: number): { line: number; col: number; lineStart: number } {
  const starts = lineStarts(text);
  const at = Math.max(0, Math.min(offset, text.length));
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= at) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, col: at - starts[lo] + 1, lineStart: starts[lo] };
}

/** End of the line that starts at `lineStart` (before its `\n` or `\r`). */
function lineEndOf(text: string, lineStart: number): number {
  for (let i = lineStart; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 13) return i;
  }
  return text.length;
}

// ---------------------------------------------------------------------------
// One source line as displayed.

/** Terminal columns of a printable code point: 0 for combining marks, 2 for wide East Asian characters and emoji. */
function columns(cp: number): number {
  if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x1ab0 && cp <= 0x1aff) || (cp >= 0x1dc0 && cp <= 0x1dff) || (cp >= 0x20d0 && cp <= 0x20ff) || (cp >= 0xfe20 && cp <= 0xfe2f)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

interface Piece {
  /** Source offsets (within the line) this piece shows. */
  from: number;
  to: number;
  text: string;
  /** Display column where it starts, and its width. */
  col: number;
  width: number;
}

export interface DisplayLine {
  text: string;
  /** Display column (0-based) of the first caret, and how many carets. */
  caretCol: number;
  caretWidth: number;
}

const ELLIPSIS = '...';

/**
 * `line` as shown under a diagnostic whose span covers `[start, end)` of it
 * (offsets within the line; an empty span gets one caret). Hidden characters
 * become escapes, a tab one space; a line wider than `maxWidth` is cut to a
 * window around the span with `...` at the cut ends.
 */
export function displayLine(line: string, start: number, end: number, maxWidth = MAX_LINE_WIDTH): DisplayLine {
  // Only a stretch around the span can be shown; do not walk a megabyte-long line.
  const reach = maxWidth * 4;
  let from = Math.max(0, start - reach);
  let to = Math.min(line.length, Math.max(end, start) + reach);
  if (from > 0 && isLowSurrogate(line.charCodeAt(from))) from++;
  if (to < line.length && isLowSurrogate(line.charCodeAt(to))) to++;
  const cutLeft = from > 0;
  const cutRight = to < line.length;

  const pieces: Piece[] = [];
  let col = 0;
  for (let i = from; i < to; ) {
    const cp = line.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    const next = i + ch.length;
    const text = ch === '\t' ? ' ' : isHidden(ch) ? escapeChar(ch) : ch;
    const width = ch === '\t' || isHidden(ch) ? text.length : columns(cp);
    pieces.push({ from: i, to: next, text, col, width });
    col += width;
    i = next;
  }
  const total = col;

  // Carets from the piece holding `start` to the end of the piece holding `end - 1`.
  const colAt = (offset: number) => pieces.find((p) => offset < p.to)?.col ?? total;
  const caretStart = colAt(start);
  const last = end > start ? (end > to ? undefined : pieces.find((p) => end - 1 < p.to)) : undefined;
  const caretStop = Math.max(caretStart + 1, end > to ? total : last ? last.col + last.width : 0);

  if (!cutLeft && !cutRight && total <= maxWidth) {
    return { text: pieces.map((p) => p.text).join(''), caretCol: caretStart, caretWidth: caretStop - caretStart };
  }
  // A window of `room` columns (an ellipsis fits at each end) starting a little before the span.
  const room = maxWidth - 2 * ELLIPSIS.length;
  const winStart = Math.max(0, Math.min(caretStart - 20, total - room));
  const shown = pieces.filter((p) => p.col >= winStart && p.col + p.width <= winStart + room);
  const first = shown.length ? shown[0].col : winStart;
  const stop = shown.length ? shown[shown.length - 1].col + shown[shown.length - 1].width : winStart;
  const left = cutLeft || first > 0 ? ELLIPSIS : '';
  const right = cutRight || stop < total ? ELLIPSIS : '';
  return {
    text: left + shown.map((p) => p.text).join('') + right,
    caretCol: left.length + Math.max(0, caretStart - first),
    caretWidth: Math.max(1, Math.min(caretStop, stop) - Math.max(caretStart, first)),
  };
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

// ---------------------------------------------------------------------------

/** `file:line:col: error GAN304: message` — one line, for tools. */
export function renderShort(d: Diagnostic, sources: SourceLookup): string {
  const text = d.span ? sources(d.span.file) : undefined;
  let loc = 'gan';
  if (d.span) {
    const { line, col } = text !== undefined ? lineCol(text, d.span.offset) : { line: 0, col: 0 };
    loc = text !== undefined ? `${fileName(d.span.file)}:${line}:${col}` : fileName(d.span.file);
  }
  return `${loc}: ${d.severity} ${d.code}: ${oneLine(d.message)}`;
}

/** rustc-style: location, source line, carets under the span, label, notes, help. */
export function renderRich(d: Diagnostic, sources: SourceLookup, color = false): string {
  const paint = (code: string, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const sev = d.severity === 'error' ? paint('1;31', 'error') : paint('1;33', 'warning');
  const out = [`${sev}${paint('1', `[${d.code}]: ${oneLine(d.message)}`)}`];
  const text = d.span ? sources(d.span.file) : undefined;
  if (d.span && text !== undefined) {
    const { line, col, lineStart } = lineCol(text, d.span.offset);
    const lineEnd = lineEndOf(text, lineStart);
    const start = Math.min(d.span.offset, lineEnd) - lineStart;
    const end = Math.min(d.span.offset + d.span.length, lineEnd) - lineStart;
    const shown = displayLine(text.slice(lineStart, lineEnd), start, end);
    const gutter = ' '.repeat(String(line).length);
    out.push(`${gutter}${paint('34', '-->')} ${fileName(d.span.file)}:${line}:${col}`);
    out.push(`${gutter} ${paint('34', '|')}`);
    out.push(`${paint('34', `${line} |`)} ${shown.text}`);
    const label = d.label ? ' ' + oneLine(d.label) : '';
    out.push(`${gutter} ${paint('34', '|')} ${' '.repeat(shown.caretCol)}${paint(d.severity === 'error' ? '31' : '33', '^'.repeat(shown.caretWidth))}${label}`);
  } else if (d.span) {
    out.push(` --> ${fileName(d.span.file)}`);
  }
  for (const n of d.notes ?? []) out.push(`  = note: ${oneLine(n)}`);
  if (d.help) out.push(`  = help: ${oneLine(d.help)}`);
  return out.join('\n');
}

/** Longest message, label, note or help shown (a message may quote a name the user made absurdly long). */
export const MAX_MESSAGE_LENGTH = 200;

/** A file name as shown: escaped and cut like a message (a `--set` value is shown as its own "file"). */
function fileName(name: string): string {
  return oneLine(name, 100);
}

/** Message text on one line, hidden characters escaped, at most `max` characters. */
function oneLine(s: string, max = MAX_MESSAGE_LENGTH): string {
  let out = '';
  let n = 0;
  for (const ch of s) {
    if (n++ === max) return out + '...';
    out += ch === '\t' ? ' ' : isHidden(ch) ? escapeChar(ch) : ch;
  }
  return out;
}
