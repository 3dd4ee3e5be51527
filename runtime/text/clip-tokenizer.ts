// OpenAI CLIP's byte-level BPE tokenizer (clip/simple_tokenizer.py and
// clip.tokenize), in plain TypeScript so that it runs in a browser as well as
// in Node: no `node:` imports here (the file loader is vocab-files.ts).
//
//   const tok = ClipTokenizer.fromBpeMerges(gunzippedText);
//   const { ids, eot } = tok.tokenize(['a red circle', 'a blue square']);   // ids: [2, 77]
//
// The pipeline, step for step as simple_tokenizer.py:
//   html.unescape twice, strip, collapse whitespace runs to one space, strip,
//   lower-case; split with CLIP's pre-tokenisation pattern; each piece to UTF-8
//   bytes, each byte to its printable stand-in (bytes_to_unicode); BPE over
//   those characters with '</w>' on the last, lowest-ranked pair first.
//
// Not applied: CLIP runs `ftfy.fix_text` before unescaping. ftfy (mojibake and
// encoding repair) has no JavaScript port; for text that is already clean it
// is the identity, so only broken input such as "cafÃ©" tokenizes differently.
//
// Where JavaScript's built-ins differ from Python's, this file spells out
// Python's behaviour (whitespace sets, html.unescape's dropped code points,
// the regex module's IGNORECASE on U+0345). What remains: Unicode versions
// (Node's ICU may know characters that Python 3.11 and its `regex` module do
// not yet, and then lower-cases or classifies them differently), and lone
// surrogates, which Python refuses to UTF-8 encode and TextEncoder replaces
// with U+FFFD.
import { decodeHTML } from 'entities';

export const START_OF_TEXT = '<|startoftext|>';
export const END_OF_TEXT = '<|endoftext|>';

/** Marks the last symbol of a word; kept in the vocabulary's tokens, a space when decoded. */
const END_OF_WORD = '</w>';

/** clip.tokenize's default, the text encoder's number of positions. */
export const CLIP_CONTEXT_LENGTH = 77;

/** simple_tokenizer.py reads `lines[1 : 49152-256-2+1]`: the header, then at most this many merges. */
export const CLIP_MAX_MERGES = 49152 - 256 - 2;

// --- byte <-> printable character (bytes_to_unicode) -------------------------

/**
 * CLIP's byte table, in its order: the printable Latin-1 bytes stand for
 * themselves, the others (controls, space, NBSP, soft hyphen) for U+0100 on,
 * so that no BPE symbol contains whitespace. The order is the vocabulary's.
 */
function bytesToUnicode(): Array<{ byte: number; char: string }> {
  const printable: number[] = [];
  const addRange = (from: number, to: number) => {
    for (let b = from; b <= to; b++) printable.push(b);
  };
  addRange(0x21, 0x7e); // '!'..'~'
  addRange(0xa1, 0xac); // '¡'..'¬'
  addRange(0xae, 0xff); // '®'..'ÿ'
  const table = printable.map((byte) => ({ byte, char: String.fromCharCode(byte) }));
  const isPrintable = new Set(printable);
  let next = 0;
  for (let byte = 0; byte < 256; byte++) {
    if (!isPrintable.has(byte)) table.push({ byte, char: String.fromCharCode(256 + next++) });
  }
  return table;
}

const BYTE_TABLE = bytesToUnicode();
/** byte -> its stand-in character. */
const BYTE_ENCODER: string[] = [];
/** stand-in character -> byte. */
const BYTE_DECODER = new Map<string, number>();
for (const { byte, char } of BYTE_TABLE) {
  BYTE_ENCODER[byte] = char;
  BYTE_DECODER.set(char, byte);
}

/** The first character of `token` outside CLIP's byte alphabet, if any ('</w>' is inside it). */
function foreignChar(token: string): string | undefined {
  for (const c of token) if (!BYTE_DECODER.has(c)) return c;
  return undefined;
}

function describeChar(c: string): string {
  return `${JSON.stringify(c)} (U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')})`;
}

// --- text clean-up (basic_clean, whitespace_clean) ---------------------------

/**
 * Python's str.isspace() set, what str.strip() removes. JavaScript's trim()
 * differs: it strips U+FEFF, and keeps U+0085 and U+001C..U+001F.
 */
const PY_ISSPACE = String.raw`\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000`;
/** Unicode White_Space, the `regex` module's \s (JavaScript's \s has U+FEFF, lacks U+0085). */
const PY_REGEX_SPACE = String.raw`\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000`;

const PY_STRIP = new RegExp(`^[${PY_ISSPACE}]+|[${PY_ISSPACE}]+$`, 'gu');
const WHITESPACE_RUN = new RegExp(`[${PY_REGEX_SPACE}]+`, 'gu');

function pyStrip(text: string): string {
  return text.replace(PY_STRIP, '');
}

/** Python's html._charref: numeric references, or up to 32 name characters and an optional ';'. */
const CHAR_REF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

/**
 * Python's `html.unescape`: HTML5 named references (legacy names without ';'
 * too, longest prefix first), numeric references with HTML5's replacements.
 * Each reference Python's pattern finds is decoded by the `entities` package,
 * which agrees with Python except that Python drops references to the code
 * points in its `_invalid_codepoints` (controls, non-characters), kept here
 * by `entities`; those are dropped before asking it.
 */
export function pythonHtmlUnescape(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(CHAR_REF, (ref: string, body: string) => (isDroppedNumericRef(body) ? '' : decodeHTML(ref)));
}

/** Python's _invalid_codepoints less the keys of _invalid_charrefs (U+0000, U+000D, U+0080..U+009F are replaced, not dropped). */
function isDroppedNumericRef(body: string): boolean {
  if (body[0] !== '#') return false;
  const hex = body[1] === 'x' || body[1] === 'X';
  const cp = hex ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
  return (
    (cp >= 0x1 && cp <= 0x8) ||
    cp === 0xb ||
    (cp >= 0xe && cp <= 0x1f) ||
    cp === 0x7f ||
    (cp >= 0xfdd0 && cp <= 0xfdef) ||
    (cp <= 0x10ffff && (cp & 0xfffe) === 0xfffe) // U+xFFFE and U+xFFFF of every plane
  );
}

/** whitespace_clean(basic_clean(text)).lower(), without ftfy (see the top of the file). */
function cleanText(text: string): string {
  const unescaped = pyStrip(pythonHtmlUnescape(pythonHtmlUnescape(text)));
  return pyStrip(unescaped.replace(WHITESPACE_RUN, ' ')).toLowerCase();
}

// --- pre-tokenisation ----------------------------------------------------------

/**
 * simple_tokenizer.py's pattern, compiled by the `regex` module with
 * IGNORECASE. JavaScript's 'iu' agrees with it on every code point but one:
 * U+0345 (combining ypogegrammeni, which case-folds to the letter iota)
 * matches `[\p{L}]` here and no alternative there, so Python skips it; see
 * preTokens. The \s of the last class is Python's.
 */
const PRE_TOKEN = new RegExp(
  String.raw`<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^${PY_REGEX_SPACE}\p{L}\p{N}]+`,
  'giu',
);

/** re.findall(pat, text) as Python computes it. */
function preTokens(cleanedText: string): string[] {
  // A space, like U+0345 in Python, matches no alternative and ends any run:
  // replacing one by the other keeps every match the same.
  return cleanedText.replace(/\u0345/g, ' ').match(PRE_TOKEN) ?? [];
}

// --- vocabulary files ------------------------------------------------------------

/** Which input a malformed-vocabulary error is about. */
export type ClipVocabSource = 'bpe merges' | 'vocab.json' | 'merges.txt';

/** A malformed vocabulary; `source` says which input, so that a loader can name its path. */
export class ClipVocabError extends Error {
  constructor(
    readonly source: ClipVocabSource,
    readonly detail: string,
  ) {
    super(`${source}: ${detail}`);
    this.name = 'ClipVocabError';
  }
}

/** "a b" -> its key in the rank table; no BPE symbol contains a space (0x20 is U+0120 here). */
function pairKey(first: string, second: string): string {
  return `${first} ${second}`;
}

/**
 * The merges of a merges file: a '#version' header line, then one "A B" per
 * line; like simple_tokenizer.py, at most CLIP_MAX_MERGES of them are read and
 * the rest of the file is ignored. A final newline is allowed.
 */
function parseMerges(text: string, source: ClipVocabSource): Array<[string, string]> {
  const lines = text.split(/\r?\n/);
  if (!lines[0].includes('#version')) {
    throw new ClipVocabError(
      source,
      `line 1: expected a '#version' header line (CLIP's file starts with "bpe_simple_vocab_16e6.txt#version: 0.2"), got ${JSON.stringify(lines[0].slice(0, 80))}`,
    );
  }
  const end = Math.min(lines.length, 1 + CLIP_MAX_MERGES);
  const lastIsFinalNewline = end === lines.length && lines[end - 1] === '' && end > 1;
  const merges: Array<[string, string]> = [];
  for (let i = 1; i < (lastIsFinalNewline ? end - 1 : end); i++) {
    const parts = lines[i].split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new ClipVocabError(
        source,
        `line ${i + 1}: expected a merge "A B" (two symbols separated by one space), got ${JSON.stringify(lines[i].slice(0, 80))}`,
      );
    }
    for (const symbol of parts) {
      const c = foreignChar(symbol);
      if (c !== undefined) {
        throw new ClipVocabError(source, `line ${i + 1}: symbol ${JSON.stringify(symbol)} has ${describeChar(c)}, outside CLIP's byte alphabet`);
      }
    }
    merges.push([parts[0], parts[1]]);
  }
  return merges;
}

/** merge -> rank, the later line winning when a merge repeats (Python's dict(zip(merges, range(n)))). */
function rankMerges(merges: Array<[string, string]>): Map<string, number> {
  const ranks = new Map<string, number>();
  merges.forEach(([a, b], rank) => ranks.set(pairKey(a, b), rank));
  return ranks;
}

// --- the tokenizer -----------------------------------------------------------------

export interface ClipTokens {
  /** [n, contextLength] row-major: start-of-text, the text's tokens, end-of-text, zeros. */
  ids: Int32Array;
  /** [n] the position of each row's end-of-text token (its first one: CLIP's argmax, HF's first eos). */
  eot: Int32Array;
}

/** Bounds the per-instance BPE cache of a long-running page; simple_tokenizer.py's never shrinks. */
const MAX_CACHED_WORDS = 100_000;

export class ClipTokenizer {
  /** Id of '<|startoftext|>'. */
  readonly sot: number;
  /** Id of '<|endoftext|>'. */
  readonly eot: number;
  /** One more than the largest id: the size of an embedding table every id indexes (49408 for CLIP). */
  readonly vocabSize: number;

  private readonly decoder = new Map<number, string>();
  private readonly cache = new Map<string, readonly string[]>();
  private readonly utf8 = new TextEncoder();

  private constructor(
    private readonly encoder: Map<string, number>,
    private readonly ranks: Map<string, number>,
  ) {
    // As Python's {v: k for k, v in encoder.items()}: the later token wins a shared id.
    for (const [token, id] of encoder) this.decoder.set(id, token);
    this.sot = encoder.get(START_OF_TEXT)!;
    this.eot = encoder.get(END_OF_TEXT)!;
    let maxId = -1;
    for (const id of encoder.values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
  }

  /**
   * OpenAI's form: the text of `bpe_simple_vocab_16e6.txt` (gunzipped). The
   * vocabulary is implied by the merges: the 256 byte characters, the same
   * with '</w>', each merge joined, then '<|startoftext|>', '<|endoftext|>'.
   */
  static fromBpeMerges(text: string): ClipTokenizer {
    const merges = parseMerges(text, 'bpe merges');
    const byteChars = BYTE_TABLE.map((e) => e.char);
    const tokens = [...byteChars, ...byteChars.map((c) => c + END_OF_WORD), ...merges.map(([a, b]) => a + b), START_OF_TEXT, END_OF_TEXT];
    const encoder = new Map<string, number>();
    tokens.forEach((token, id) => encoder.set(token, id)); // a repeated token keeps its last id, as dict(zip(...))
    return new ClipTokenizer(encoder, rankMerges(merges));
  }

  /**
   * Hugging Face's form (CLIPTokenizer's vocab.json and merges.txt). Only the
   * files are Hugging Face's: the text goes through OpenAI's pipeline above
   * (HF's Python CLIPTokenizer does not html-unescape, and without ftfy splits
   * with BERT's BasicTokenizer); for clean text the ids are the same.
   */
  static fromVocabJson(vocabJson: string | Record<string, number>, mergesTxt: string): ClipTokenizer {
    const vocab = parseVocabJson(vocabJson);
    const merges = parseMerges(mergesTxt, 'merges.txt');
    merges.forEach(([a, b], i) => {
      if (!vocab.has(a + b)) {
        throw new ClipVocabError('merges.txt', `line ${i + 2}: the merge "${a} ${b}" makes ${JSON.stringify(a + b)}, which vocab.json lacks`);
      }
    });
    return new ClipTokenizer(vocab, rankMerges(merges));
  }

  /** The BPE token ids of `text`, without start and end tokens (SimpleTokenizer.encode). */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const piece of preTokens(cleanText(text))) {
      let word = '';
      for (const byte of this.utf8.encode(piece)) word += BYTE_ENCODER[byte];
      for (const symbol of this.bpe(word)) {
        const id = this.encoder.get(symbol);
        // Unreachable with a validated vocabulary: every byte and every merge has an id.
        if (id === undefined) throw new Error(`ClipTokenizer: no id for the BPE symbol ${JSON.stringify(symbol)}`);
        ids.push(id);
      }
    }
    return ids;
  }

  /**
   * clip.tokenize(texts, context_length, truncate=True): each row is
   * [sot, ...encode(text), eot], cut to `contextLength` with eot as the last
   * kept token, zero-padded.
   */
  tokenize(texts: string | readonly string[], contextLength = CLIP_CONTEXT_LENGTH): ClipTokens {
    if (!Number.isInteger(contextLength) || contextLength < 1) {
      throw new RangeError(`ClipTokenizer.tokenize: contextLength must be a positive integer, got ${contextLength}`);
    }
    const list = typeof texts === 'string' ? [texts] : texts;
    const ids = new Int32Array(list.length * contextLength);
    const eot = new Int32Array(list.length);
    list.forEach((text, row) => {
      const tokens = [this.sot, ...this.encode(text), this.eot];
      if (tokens.length > contextLength) {
        tokens.length = contextLength;
        tokens[contextLength - 1] = this.eot;
      }
      ids.set(tokens, row * contextLength);
      eot[row] = tokens.indexOf(this.eot);
    });
    return { ids, eot };
  }

  /** SimpleTokenizer.decode: the bytes of the tokens as UTF-8 (bad sequences become U+FFFD), '</w>' as a space. */
  decode(ids: Iterable<number>): string {
    let chars = '';
    for (const id of ids) {
      const token = this.decoder.get(id);
      if (token === undefined) throw new RangeError(`ClipTokenizer.decode: id ${id} is not in the vocabulary`);
      chars += token;
    }
    const bytes = Uint8Array.from(chars, (c) => BYTE_DECODER.get(c)!);
    // ignoreBOM: keep a leading U+FEFF as Python's 'utf-8' codec does.
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes).replaceAll(END_OF_WORD, ' ');
  }

  /**
   * SimpleTokenizer.bpe: starting from single characters ('</w>' on the last),
   * merge the adjacent pair of lowest rank, every occurrence of it left to
   * right without overlap ("a a" on a,a,a gives aa,a), until no pair has a rank.
   */
  private bpe(word: string): readonly string[] {
    if (word === START_OF_TEXT || word === END_OF_TEXT) return [word];
    const cached = this.cache.get(word);
    if (cached) return cached;
    const chars = [...word];
    let symbols = [...chars.slice(0, -1), chars[chars.length - 1] + END_OF_WORD];
    while (symbols.length > 1) {
      let bestRank = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.ranks.get(pairKey(symbols[i], symbols[i + 1]));
        if (rank !== undefined && rank < bestRank) [bestRank, first, second] = [rank, symbols[i], symbols[i + 1]];
      }
      if (bestRank === Infinity) break;
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; ) {
        if (symbols[i] === first && i + 1 < symbols.length && symbols[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(symbols[i]);
          i += 1;
        }
      }
      symbols = merged;
    }
    if (this.cache.size >= MAX_CACHED_WORDS) this.cache.clear();
    this.cache.set(word, symbols);
    return symbols;
  }
}

/** vocab.json: an object of token -> distinct non-negative integer id, with both special tokens and every byte token. */
function parseVocabJson(vocabJson: string | Record<string, number>): Map<string, number> {
  let parsed: unknown = vocabJson;
  if (typeof vocabJson === 'string') {
    try {
      parsed = JSON.parse(vocabJson);
    } catch (e) {
      throw new ClipVocabError('vocab.json', `invalid JSON (${(e as Error).message})`);
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ClipVocabError('vocab.json', `expected an object of token -> id, got ${Array.isArray(parsed) ? 'an array' : typeof parsed}`);
  }
  const vocab = new Map<string, number>();
  const tokenOfId = new Map<number, string>();
  for (const [token, id] of Object.entries(parsed)) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
      throw new ClipVocabError('vocab.json', `the id of ${JSON.stringify(token)} must be a non-negative integer, got ${JSON.stringify(id)}`);
    }
    const other = tokenOfId.get(id);
    if (other !== undefined) throw new ClipVocabError('vocab.json', `${JSON.stringify(other)} and ${JSON.stringify(token)} share the id ${id}`);
    const c = foreignChar(token);
    if (c !== undefined) throw new ClipVocabError('vocab.json', `the token ${JSON.stringify(token)} has ${describeChar(c)}, outside CLIP's byte alphabet`);
    vocab.set(token, id);
    tokenOfId.set(id, token);
  }
  for (const special of [START_OF_TEXT, END_OF_TEXT]) {
    if (!vocab.has(special)) throw new ClipVocabError('vocab.json', `no ${special} token (a CLIP vocabulary has '<|startoftext|>' and '<|endoftext|>')`);
  }
  for (const { char } of BYTE_TABLE) {
    for (const token of [char, char + END_OF_WORD]) {
      if (!vocab.has(token)) throw new ClipVocabError('vocab.json', `no id for the byte token ${JSON.stringify(token)} (every byte, alone and with '</w>', needs one)`);
    }
  }
  return vocab;
}
