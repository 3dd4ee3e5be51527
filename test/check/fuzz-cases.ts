// Structure-aware fuzz cases for the parser and checker, shared by the quick
// suite (test/check/fuzz.test.ts) and the long run (`npm run fuzz`,
// scripts/fuzz.ts). A case is a bundled model with one to three mutations
// that know the language: tokens deleted, duplicated, swapped or cut,
// nesting far past the limits, very long lines and inputs, odd numbers,
// unusual whitespace and hidden characters, and other encodings or binary
// bytes. Cases are numbered: case i of seed s is always the same input.
//
// The property: checking never throws (only diagnostics), every diagnostic
// has a code, a message and a span inside its source, and rendering it never
// throws and prints nothing unsafe (no control characters, no line beyond
// the window).
import { readFileSync } from 'node:fs';
import { checkFile, type CompileResult } from '../../compiler/index.ts';
import { renderSummary, toJsonSummary } from '../../compiler/check/summary.ts';
import type { Diagnostic } from '../../grammar/diagnostics.ts';
import { MAX_NESTING } from '../../grammar/nesting.ts';
import { MAX_SOURCE_BYTES } from '../../grammar/source-text.ts';
import { renderRich, renderShort } from '../../grammar/render.ts';
import { GanLexer } from '../../grammar/tokens.ts';

export const BASES = ['models/ms-clip-gan.gan', 'models/stackgan-v2.gan', 'models/dcgan.gan', 'models/variants/res3.gan', 'models/variants/ca-v1.gan', 'models/lib/stackgan-blocks.gan'];

/**
 * `quick` keeps every kind of mutation but caps the sizes (long lines, long
 * inputs) so a few hundred cases run in seconds; `full` goes up to the
 * limits (a MiB of source, thousands of params, evaluation budgets).
 */
export type FuzzProfile = 'quick' | 'full';

export interface FuzzCase {
  index: number;
  /** The bundled model the case starts from; it is checked under that path (its imports resolve). */
  base: string;
  /** What was done to it, in order. */
  mutations: string[];
  input: string | Uint8Array;
  /** Command-line overrides (`--set`), some of them hostile too. */
  set?: string[];
}

type Rng = () => number;

/** mulberry32: a small seeded PRNG, so every case reproduces from (seed, index). */
function rng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const int = (r: Rng, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[int(r, xs.length)];

const sources = new Map<string, string>();
const baseText = (f: string) => sources.get(f) ?? sources.set(f, readFileSync(f, 'utf8')).get(f)!;

interface Tok {
  start: number;
  end: number;
  type: string;
}

function tokens(text: string): Tok[] {
  return GanLexer.tokenize(text).tokens.map((t) => ({ start: t.startOffset, end: (t.endOffset ?? t.startOffset) + 1, type: t.tokenType.name }));
}

// ---------------------------------------------------------------------------
// Text mutations. Each returns the new text and a few words saying what it did.

type Mutation = (t: string, r: Rng, full: boolean) => [string, string];

const SNIPPETS = ['{', '}', '(', ')', '[', ']', '|>', '=', ',', '.', '@', '~', '0', '-1', 'x', 'image', 'repeat 3', 'head', 'loss', '"s"', 'glu', 'split(3)', 'div 0', '** 99', 'conv(', 'extends "model.gan"', 'import "nope.gan"', 'import "ms-clip-gan.gan"', 'stage', 'return', 'else', 'if', 'not', '<', 'and', '"\\q"'];
const NUMBERS = ['0', '-1', '-0', '0.5', '3.7', '1e9', '1e-300', '1e308', '1e999', '100000000', '2147483648', '1099511627776', '9007199254740993', '46341'];
const DEPTHS = [MAX_NESTING - 1, MAX_NESTING, MAX_NESTING + 1, 300, 600, 5000];
const ODD_SPACES = ['\t', '\u00a0', '\u2028', '\u2029', '\u200b', '\u3000', '\u000b', '\u000c', '\u0085', '\ufeff'];
const HIDDEN = ['\u0000', '\u0007', '\u001b[31m', '\u007f', '\u0085', '\u00ad', '\u200e', '\u202e', '\u2066', '\ufeff', '\ud800', '\udce9', '\ufffd', '\u{1f600}', '\u0301', '漢字'];

function atToken(text: string, r: Rng, f: (t: Tok, all: Tok[]) => [string, string]): [string, string] {
  const all = tokens(text);
  if (all.length === 0) return [text, 'no tokens'];
  return f(pick(r, all), all);
}

const mutations: Record<string, Mutation> = {
  deleteToken: (t, r) => atToken(t, r, (k) => [t.slice(0, k.start) + t.slice(k.end), `delete token at ${k.start}`]),
  duplicateToken: (t, r) => atToken(t, r, (k) => [t.slice(0, k.end) + ' ' + t.slice(k.start, k.end) + t.slice(k.end), `duplicate token at ${k.start}`]),
  swapTokens: (t, r) =>
    atToken(t, r, (a, all) => {
      const i = all.indexOf(a);
      const b = r() < 0.7 ? all[Math.min(all.length - 1, i + 1)] : pick(r, all);
      const [x, y] = a.start < b.start ? [a, b] : [b, a];
      if (x === y) return [t, 'swap a token with itself'];
      return [t.slice(0, x.start) + t.slice(y.start, y.end) + t.slice(x.end, y.start) + t.slice(x.start, x.end) + t.slice(y.end), `swap tokens at ${x.start} and ${y.start}`];
    }),
  truncate: (t, r) => atToken(t, r, (k) => (r() < 0.5 ? [t.slice(0, k.start), `cut before token at ${k.start}`] : [t.slice(0, k.end), `cut after token at ${k.start}`])),
  insertSnippet: (t, r) => atToken(t, r, (k) => [t.slice(0, k.start) + ' ' + pick(r, SNIPPETS) + ' ' + t.slice(k.start), `insert a snippet at ${k.start}`]),
  oddNumber: (t, r) => {
    const nums = tokens(t).filter((k) => k.type === 'NumberLiteral');
    if (!nums.length) return [t, 'no numbers'];
    const k = pick(r, nums);
    const v = pick(r, NUMBERS);
    return [t.slice(0, k.start) + v + t.slice(k.end), `number at ${k.start} -> ${v}`];
  },
  deepNesting: (t, r, full) => {
    const names = tokens(t).filter((k) => k.type === 'Identifier' || k.type === 'NumberLiteral');
    if (!names.length) return [t, 'no operands'];
    const k = pick(r, names);
    const n = pick(r, full ? DEPTHS : DEPTHS.slice(0, 5));
    const x = t.slice(k.start, k.end);
    const kinds: Record<string, () => string> = {
      parens: () => '('.repeat(n) + x + ')'.repeat(n),
      lists: () => '['.repeat(n) + x + ']'.repeat(n),
      calls: () => 'f('.repeat(n) + x + ')'.repeat(n),
      pipes: () => x + ' |> relu'.repeat(n),
      pipeCalls: () => x + ' |> g(k = '.repeat(n) + '1' + ')'.repeat(n),
      sums: () => x + ' + 1'.repeat(n),
      powers: () => x + ' ** 1'.repeat(n),
      negations: () => '- '.repeat(n) + x,
      nots: () => 'not '.repeat(n) + x,
      members: () => x + '.a'.repeat(n),
      ifs: () => `${'if true { '.repeat(n)}q = ${x}${' }'.repeat(n)}`,
      elseIfs: () => `if false { q = 0 }${' else if false { q = 0 }'.repeat(n)} else { q = ${x} }`,
      repeats: () => `${'repeat 1 { '.repeat(n)}q = ${x}${' }'.repeat(n)}`,
    };
    const kind = pick(r, Object.keys(kinds));
    return [t.slice(0, k.start) + kinds[kind]() + t.slice(k.end), `${kind} x${n} at ${k.start}`];
  },
  longLine: (t, r, full) => {
    const n = pick(r, full ? [200, 5_000, 100_000, 400_000, 2_000_000] : [200, 2_000, 20_000]);
    const lines = t.split('\n');
    const at = int(r, lines.length + 1);
    const kinds: Record<string, () => string> = {
      comment: () => '// ' + 'x'.repeat(n),
      name: () => `param ${'a'.repeat(n)} = 1`,
      use: () => `param q = ${'ngf'.repeat(Math.ceil(n / 3))} + 1`,
      sum: () => `param q = 1${' + 1'.repeat(Math.ceil(n / 4))}`,
      string: () => `param q = "${'s'.repeat(n)}"`,
      spaces: () => ' '.repeat(n) + '$',
      garbage: () => '€'.repeat(n),
    };
    const kind = pick(r, Object.keys(kinds));
    lines.splice(at, 0, kinds[kind]());
    return [lines.join('\n'), `${kind} line of ${n} at line ${at + 1}`];
  },
  longInput: (t, r, full) => {
    const n = full ? 10 : 1;
    const kinds: Record<string, () => string> = {
      repeated: () => t.repeat(2 + int(r, 3 * n)),
      manyParams: () => t + Array.from({ length: 800 * n }, (_, i) => `param p${i} = ${i}`).join('\n'),
      paramChain: () => t + Array.from({ length: 300 * n }, (_, i) => `param c${i} = c${i + 1} + 1`).join('\n') + `\nparam c${300 * n} = 0\n`,
      manyStatements: () => t.replace(/\{/, '{ ' + 'q = 1\n'.repeat(2000 * n)),
      hugeRepeat: () => t.replace(/repeat \w+/, 'repeat 1000000000'),
      hugeParam: () => t.replace(/param (\w+) = \d+/, (_m, name: string) => `param ${name} = ${pick(r, ['1000000000', '100000000', '2147483648', '1e15'])}`),
    };
    const kind = pick(r, Object.keys(kinds));
    return [kinds[kind](), kind];
  },
  oddWhitespace: (t, r) => {
    const kinds: Record<string, () => string> = {
      crlf: () => t.replace(/\n/g, '\r\n'),
      crOnly: () => t.replace(/\n/g, '\r'),
      mixedEnds: () => t.replace(/\n/g, () => pick(r, ['\n', '\r\n', '\r'])),
      tabs: () => t.replace(/ {2}/g, '\t'),
      oddSpace: () => {
        const s = pick(r, ODD_SPACES);
        return t.replace(/ /g, (m) => (r() < 0.02 ? s : m));
      },
      oddLineEnd: () => t.replace(/\n/g, (m) => (r() < 0.1 ? pick(r, ['\u2028', '\u0085', '\u000b']) : m)),
    };
    const kind = pick(r, Object.keys(kinds));
    return [kinds[kind](), kind];
  },
  hiddenChar: (t, r) => {
    const at = int(r, t.length + 1);
    const c = pick(r, HIDDEN);
    return [t.slice(0, at) + c + t.slice(at), `insert ${JSON.stringify(c)} at ${at}`];
  },
};

// ---------------------------------------------------------------------------
// Byte-level steps, applied last to some cases.

type ByteStep = (t: string, r: Rng) => [Uint8Array, string];
const utf8 = (t: string) => new Uint8Array(Buffer.from(t, 'utf8'));

const byteSteps: Record<string, ByteStep> = {
  bom: (t) => [Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), utf8(t)]), 'UTF-8 BOM'],
  bomTwice: (t) => [Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf]), utf8(t)]), 'two UTF-8 BOMs'],
  utf16le: (t) => [Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(t, 'utf16le')]), 'UTF-16 LE with BOM'],
  utf16leNoBom: (t) => [new Uint8Array(Buffer.from(t, 'utf16le')), 'UTF-16 LE without BOM'],
  utf16be: (t) => [Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(t, 'utf16le').swap16()]), 'UTF-16 BE with BOM'],
  latin1: (t) => [new Uint8Array(Buffer.from(t.replace(/\/\//, '// café'), 'latin1')), 'Latin-1'],
  randomBytes: (t, r) => {
    const b = utf8(t);
    const at = int(r, b.length + 1);
    const junk = Array.from({ length: 1 + int(r, 64) }, () => int(r, 256));
    return [Buffer.concat([b.subarray(0, at), Buffer.from(junk), b.subarray(at)]), `${junk.length} random bytes at ${at}`];
  },
  nul: (t, r) => {
    const b = utf8(t);
    const at = int(r, b.length + 1);
    return [Buffer.concat([b.subarray(0, at), Buffer.from([0]), b.subarray(at)]), `NUL at ${at}`];
  },
  cutUtf8: (t, r) => {
    const b = utf8(t.replace(/\n/, '\n// 漢字 €\n'));
    const multi = b.findIndex((x) => x >= 0xc0);
    const cut = multi >= 0 ? multi + 1 + int(r, 2) : b.length;
    return [b.subarray(0, cut), `cut inside a UTF-8 sequence at byte ${cut}`];
  },
  png: (_t, r) => [Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n\0\0\0\rIHDR', 'latin1'), Buffer.from(Array.from({ length: int(r, 2000) }, () => int(r, 256)))]), 'a PNG'],
  noise: (_t, r) => [new Uint8Array(Array.from({ length: int(r, 5000) }, () => int(r, 256))), 'random bytes only'],
  empty: () => [new Uint8Array(0), 'empty file'],
};

/** A `--set` override: a real param or setting with an odd value, or a malformed one. */
function oddSet(r: Rng, full: boolean): string {
  const n = pick(r, full ? DEPTHS : DEPTHS.slice(0, 5));
  const key = pick(r, ['ngf', 'ndf', 'r_num', 'z_dim', 'train.batch', 'train.d.lr', 'objective.kl', 'nope', '', 'ngf.x']);
  const value = pick(r, [
    () => pick(r, NUMBERS),
    () => '('.repeat(n) + '1' + ')'.repeat(n),
    () => '1' + ' + 1'.repeat(n),
    () => 'x'.repeat(n * 10),
    () => pick(r, HIDDEN) + '8',
    () => '',
    () => '8 9',
    () => '"s"',
    () => 'adam(lr = 1e-3)',
  ])();
  return r() < 0.1 ? value : `${key}=${value}`;
}

/** Largest input a case grows to: just past the source limit. */
const MAX_INPUT = MAX_SOURCE_BYTES + 4096;

/** Case `index` of `seed` (and profile): always the same. */
export function makeCase(seed: number, index: number, profile: FuzzProfile = 'full'): FuzzCase {
  const r = rng((seed * 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b));
  const base = pick(r, BASES);
  let text = baseText(base);
  const done: string[] = [];
  const names = Object.keys(mutations);
  for (let i = 1 + int(r, 3); i > 0; i--) {
    const name = pick(r, names);
    const [next, what] = mutations[name](text, r, profile === 'full');
    text = next;
    done.push(`${name}: ${what}`);
    // Past the source limit the checker refuses the file unread; growing it further (mutations compound) only costs memory.
    if (text.length > MAX_INPUT) {
      text = text.slice(0, MAX_INPUT);
      done.push(`cut to ${MAX_INPUT} characters`);
    }
  }
  const set = r() < 0.1 ? Array.from({ length: 1 + int(r, 2) }, () => oddSet(r, profile === 'full')) : undefined;
  if (set) done.push(`--set ${set.map((s) => JSON.stringify(s.slice(0, 40))).join(' ')}`);
  if (r() < 0.12) {
    const step = pick(r, Object.keys(byteSteps));
    const [bytes, what] = byteSteps[step](text, r);
    return { index, base, mutations: [...done, `bytes: ${what}`], input: bytes, set };
  }
  return { index, base, mutations: done, input: text, set };
}

/** Every token boundary (before and after each token) of every bundled model, in order. */
let boundaries: { base: string; at: number }[] | undefined;

function allBoundaries(): { base: string; at: number }[] {
  if (!boundaries) {
    boundaries = [];
    for (const base of BASES) {
      const cuts = new Set<number>();
      for (const t of tokens(baseText(base))) cuts.add(t.start).add(t.end);
      for (const at of [...cuts].sort((a, b) => a - b)) boundaries.push({ base, at });
    }
  }
  return boundaries;
}

/** How many truncation cases the sweep has. */
export function truncationCount(): number {
  return allBoundaries().length;
}

/** Truncation case `k` of the sweep: a bundled model cut at one of its token boundaries. */
export function truncationCase(k: number): FuzzCase {
  const { base, at } = allBoundaries()[k];
  return { index: k, base, mutations: [`cut at ${at} (a token boundary)`], input: baseText(base).slice(0, at) };
}

// ---------------------------------------------------------------------------
// The property.

/** Longest rendered line allowed: a capped file name (100) and message (200) with location and code (the short form). */
const MAX_RENDERED_LINE = 360;
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\x00-\x09\x0b-\x1f\x7f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Checks one case; returns what went wrong, or undefined. `seen` gets the check's result (for statistics). */
export function runCase(c: FuzzCase, seen?: (r: CompileResult) => void): string | undefined {
  let res: CompileResult;
  try {
    res = checkFile(c.base, { set: c.set }, c.input);
  } catch (e) {
    return `checker threw: ${(e as Error).stack ?? e}`;
  }
  seen?.(res);
  for (const d of res.diagnostics) {
    const bad = badDiagnostic(d, res.sources);
    if (bad) return `${bad}: ${JSON.stringify({ ...d, message: d.message.slice(0, 200) })}`;
    let text: string;
    try {
      text = renderRich(d, (f) => res.sources.get(f)) + '\n' + renderShort(d, (f) => res.sources.get(f));
    } catch (e) {
      return `rendering threw: ${(e as Error).stack ?? e}`;
    }
    if (UNSAFE.test(text)) return `rendering printed an unsafe character: ${JSON.stringify(text.slice(0, 400))}`;
    const long = text.split('\n').find((l) => l.length > MAX_RENDERED_LINE);
    if (long) return `rendering printed a line of ${long.length} characters: ${JSON.stringify(long.slice(0, 200))}...`;
  }
  const failed = res.diagnostics.some((d) => d.severity === 'error');
  if (!failed && !res.model) return 'no errors but no model';
  if (res.model) {
    try {
      renderSummary(res.model);
      const json = JSON.parse(JSON.stringify(toJsonSummary(res.model))) as { networks: { parameters: number; macs: number }[] };
      const inexact = json.networks.find((n) => !Number.isSafeInteger(n.parameters) || !Number.isSafeInteger(n.macs));
      if (inexact) return `an inexact count in the summary: ${JSON.stringify(inexact).slice(0, 200)}`;
    } catch (e) {
      return `the summary threw: ${(e as Error).stack ?? e}`;
    }
  }
  return undefined;
}

function badDiagnostic(d: Diagnostic, sources: Map<string, string>): string | undefined {
  if (!/^GAN\d{3}$/.test(d.code)) return 'bad code';
  if (d.severity !== 'error' && d.severity !== 'warning') return 'bad severity';
  if (!d.message) return 'empty message';
  if (!d.span) return undefined;
  const { offset, length } = d.span;
  if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0) return 'span with a bad offset or length';
  const src = sources.get(d.span.file);
  // A span into a file without text (binary, unreadable) names the whole file.
  if (src === undefined) return offset === 0 && length === 0 ? undefined : 'span into a file without source';
  if (offset + length > src.length) return `span past the end of its source (${offset}+${length} > ${src.length})`;
  return undefined;
}
