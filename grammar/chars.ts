// Characters as a diagnostic shows them. Control characters, invisible and
// unusual space characters, bidirectional overrides and bytes that were not
// UTF-8 are printed as escapes, so a terminal neither hides nor obeys them.
//
// Bytes that are not UTF-8 reach us as lone surrogates U+DC80..U+DCFF (see
// source-text.ts, like Python's "surrogateescape"); they print as `\xHH`.

/** Code points that print as an escape: controls, format and private-use characters, surrogates, unassigned, every space but ' '. */
const HIDDEN = /^[\p{Cc}\p{Cf}\p{Z}\p{Cs}\p{Co}\p{Cn}]$/u;

/** The byte a lone surrogate stands for, when it stands for one. */
export function escapedByte(cp: number): number | undefined {
  return cp >= 0xdc80 && cp <= 0xdcff ? cp - 0xdc00 : undefined;
}

/** Whether `ch` (one code point) prints as an escape. A plain space and a tab do not. */
export function isHidden(ch: string): boolean {
  return ch !== ' ' && ch !== '\t' && HIDDEN.test(ch);
}

const hex = (n: number, width: number) => n.toString(16).toUpperCase().padStart(width, '0');

/** `\x1B`, `\xE9` (a byte that was not UTF-8) or `\u{200B}`. */
export function escapeChar(ch: string): string {
  const cp = ch.codePointAt(0)!;
  const byte = escapedByte(cp);
  if (byte !== undefined) return `\\x${hex(byte, 2)}`;
  if (cp < 0x100) return `\\x${hex(cp, 2)}`;
  return `\\u{${hex(cp, 4)}}`;
}

const NAMES: Record<number, string> = {
  0x00: 'NUL',
  0x09: 'tab',
  0x0b: 'vertical tab',
  0x0c: 'form feed',
  0x1b: 'escape',
  0x7f: 'delete',
  0xa0: 'no-break space',
  0xad: 'soft hyphen',
  0x2000: 'en quad',
  0x2002: 'en space',
  0x2003: 'em space',
  0x2009: 'thin space',
  0x200b: 'zero-width space',
  0x200c: 'zero-width non-joiner',
  0x200d: 'zero-width joiner',
  0x200e: 'left-to-right mark',
  0x200f: 'right-to-left mark',
  0x2028: 'line separator',
  0x2029: 'paragraph separator',
  0x202a: 'left-to-right embedding',
  0x202b: 'right-to-left embedding',
  0x202c: 'pop directional formatting',
  0x202d: 'left-to-right override',
  0x202e: 'right-to-left override',
  0x202f: 'narrow no-break space',
  0x2060: 'word joiner',
  0x2066: 'left-to-right isolate',
  0x2067: 'right-to-left isolate',
  0x2068: 'first strong isolate',
  0x2069: 'pop directional isolate',
  0x3000: 'ideographic space',
  0xfeff: 'byte-order mark',
  0xfffd: 'replacement character',
};

/** `'$'` for a visible character; `U+00A0 (no-break space)` or `byte 0xE9 (not UTF-8)` for the others. */
export function describeChar(ch: string): string {
  const cp = ch.codePointAt(0)!;
  const byte = escapedByte(cp);
  if (byte !== undefined) return `byte 0x${hex(byte, 2)} (not UTF-8)`;
  if (!isHidden(ch) && cp !== 0xfffd) return `'${ch}'`;
  const name = NAMES[cp];
  return `U+${hex(cp, 4)}${name ? ` (${name})` : ''}`;
}

/** Space-like characters a user most likely meant as a plain space. */
export function looksLikeSpace(ch: string): boolean {
  return /^[\p{Zs}\u200B\u2060\uFEFF]$/u.test(ch) && ch !== ' ';
}

/** `text` with hidden characters escaped and at most `max` characters kept (then `...`). */
export function escapeText(text: string, max = 40): string {
  let out = '';
  let n = 0;
  for (const ch of text) {
    if (n++ === max) return out + '...';
    out += isHidden(ch) ? escapeChar(ch) : ch;
  }
  return out;
}
