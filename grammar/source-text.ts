// From a file's bytes to the text the lexer reads. A .gan file is UTF-8; a
// UTF-8 byte-order mark at the start (as some editors write) is dropped, so
// offsets, lines and columns count from the first real character. Anything
// else gets one clear diagnostic instead of a page of "unexpected character":
// a binary file, UTF-16, bytes that are not UTF-8, a file far too large.
import { isUtf8 } from 'node:buffer';
import type { Span } from './ast.ts';
import { Codes, error, type Diagnostic } from './diagnostics.ts';

/** Largest source accepted: real models are a few KiB (a MiB parses in a few seconds). */
export const MAX_SOURCE_BYTES = 2 ** 20;

export interface SourceText {
  /** The text to parse; with diagnostics, the text to show them in (or undefined when there is nothing sensible to show). */
  text?: string;
  /** Non-empty when the input must not be parsed. */
  diagnostics: Diagnostic[];
}

/** A span that names the file alone (there is no text to point into). */
const wholeFile = (file: string): Span => ({ file, offset: 0, length: 0 });

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** Decodes `input` (bytes from disk, or text already in memory) for parsing. */
export function sourceText(input: string | Uint8Array, file: string): SourceText {
  if (typeof input === 'string') return checkText(input.charCodeAt(0) === 0xfeff ? input.slice(1) : input, file);
  if (input.length > MAX_SOURCE_BYTES) return tooLarge(input.length, file);
  const utf16 = utf16Kind(input);
  if (utf16) {
    return refuse(error(Codes.notText, `'${file}' is ${utf16} text; .gan files are UTF-8`, wholeFile(file), { help: 'save it as UTF-8 (in most editors: "Save with encoding")' }));
  }
  let bytes = input;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
  if (isUtf8(bytes)) return checkText(new TextDecoder('utf-8').decode(bytes), file);
  const why = binaryReason(bytes);
  if (why) return binary(file, why);
  // Mostly text with a few stray bytes (e.g. Latin-1): point at the first one.
  const text = decodeEscaped(bytes);
  const at = text.search(/[\uDC80-\uDCFF]/);
  const byte = text.charCodeAt(at) - 0xdc00;
  return {
    text,
    diagnostics: [
      error(Codes.notText, `byte 0x${byte.toString(16).toUpperCase().padStart(2, '0')} is not UTF-8`, { file, offset: at, length: 1 }, {
        label: 'not valid UTF-8',
        help: 'save the file as UTF-8 (it may be in Latin-1 or Windows-1252)',
      }),
    ],
  };
}

function checkText(text: string, file: string): SourceText {
  if (text.length > MAX_SOURCE_BYTES) return tooLarge(text.length, file);
  const nul = text.indexOf('\0');
  if (nul >= 0) return binary(file, `it contains a NUL byte at offset ${nul}`);
  return { text, diagnostics: [] };
}

function refuse(d: Diagnostic): SourceText {
  return { diagnostics: [d] };
}

function tooLarge(size: number, file: string): SourceText {
  return refuse(fileTooLarge(size, file));
}

/** For a file of `size` bytes past MAX_SOURCE_BYTES (the loader checks before reading it). */
export function fileTooLarge(size: number, file: string): Diagnostic {
  return error(Codes.fileTooLarge, `'${file}' is too large for a .gan model (${mib(size)}; at most ${mib(MAX_SOURCE_BYTES)})`, wholeFile(file));
}

function binary(file: string, why: string): SourceText {
  return refuse(error(Codes.notText, `'${file}' looks like a binary file, not .gan text`, wholeFile(file), { notes: [why] }));
}

/** 'UTF-16 LE' / 'UTF-16 BE' by the byte-order mark, or by NULs in every other byte (ASCII text saved as UTF-16). */
function utf16Kind(b: Uint8Array): string | undefined {
  if (b[0] === 0xff && b[1] === 0xfe) return 'UTF-16 LE';
  if (b[0] === 0xfe && b[1] === 0xff) return 'UTF-16 BE';
  const n = Math.min(b.length, 4096) & ~1;
  if (n < 4) return undefined;
  let evenNul = 0;
  let oddNul = 0;
  for (let i = 0; i < n; i += 2) {
    if (b[i] === 0) evenNul++;
    if (b[i + 1] === 0) oddNul++;
  }
  const pairs = n / 2;
  if (oddNul > 0.9 * pairs && evenNul < 0.1 * pairs) return 'UTF-16 LE';
  if (evenNul > 0.9 * pairs && oddNul < 0.1 * pairs) return 'UTF-16 BE';
  return undefined;
}

/** Why `b` looks binary: a NUL byte, or more than 10% of the first 8 KiB neither text nor UTF-8. */
function binaryReason(b: Uint8Array): string | undefined {
  const nul = b.indexOf(0);
  if (nul >= 0) return `it contains a NUL byte at offset ${nul}`;
  const head = b.subarray(0, 8192);
  const text = decodeEscaped(head);
  let odd = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c >= 0xdc80 && c <= 0xdcff) || (c < 0x20 && c !== 9 && c !== 10 && c !== 13 && c !== 12)) odd++;
  }
  return odd > 0.1 * text.length ? 'most of its first bytes are neither text nor UTF-8' : undefined;
}

/**
 * UTF-8 decoding that keeps every byte: a byte that is not part of a valid
 * sequence becomes the lone surrogate U+DC00 + byte (Python's
 * "surrogateescape"), which diagnostics print as `\xHH`.
 */
export function decodeEscaped(b: Uint8Array): string {
  const out: string[] = [];
  const decoder = new TextDecoder('utf-8');
  let runStart = 0;
  let i = 0;
  while (i < b.length) {
    const n = validSequenceLength(b, i);
    if (n > 0) {
      i += n;
      continue;
    }
    if (runStart < i) out.push(decoder.decode(b.subarray(runStart, i)));
    out.push(String.fromCharCode(0xdc00 + b[i]));
    i++;
    runStart = i;
  }
  if (runStart < b.length) out.push(decoder.decode(b.subarray(runStart)));
  return out.join('');
}

/** Length of the valid UTF-8 sequence at `i` (no overlongs, surrogates or code points past U+10FFFF), or 0. */
function validSequenceLength(b: Uint8Array, i: number): number {
  const c = b[i];
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k] >= lo && b[i + k] <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c >= 0xe1 && c <= 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}
