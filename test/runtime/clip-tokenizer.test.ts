// The CLIP tokenizer against an independent Python implementation of OpenAI's
// simple_tokenizer.py (clip_tokenizer_ref.py, run by /usr/bin/python3 with the
// `regex` module), on a vocabulary that the Python script learns from a small
// caption corpus and writes in both published forms; then the error messages
// for malformed vocabulary files, which need no Python.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLIP_MAX_MERGES, ClipTokenizer, pythonHtmlUnescape } from '../../runtime/text/clip-tokenizer.ts';
import { loadClipTokenizer } from '../../runtime/text/vocab-files.ts';
import { BPE_CORPUS as CORPUS, tokenizerReference as reference, tokenizerReferenceAvailable as referenceAvailable } from '../helpers/clip-vocab.ts';

const dir = mkdtempSync(join(tmpdir(), 'gan-clip-tok-'));

/** Every string compared with Python, in both vocabulary forms. */
const LONG_TEXT = Array.from({ length: 60 }, (_, i) => `caption${i} of a photo`).join(', ');
const TEXTS = [
  // plain captions, seen and unseen in the corpus
  'a photo of a cat',
  'a red circle on a blue background',
  'two dogs playing in the snow',
  'an astronaut riding a horse on the moon',
  'a watercolour of a zebra crossing',
  // capitals
  'A Photo Of A CAT',
  'NASA LAUNCHES ROCKET',
  "McDonald's and an iPhone",
  // contractions; U+017F long s folds to 's' under IGNORECASE
  "it's a dog",
  "they'll go, we've been, you're here, I'm fine",
  "I'D LIKE THAT, DON'T",
  "rock'n'roll 'quoted' o'clock",
  "it'ſ a long s",
  // digits
  '2024',
  'a 3.5mm jack and 1,000,000 stars',
  'room ４２ and ½ cup, x² and Ⅻ',
  // punctuation runs
  'wow!!!',
  'wait...',
  'well -- maybe',
  '?!?! (yes) [no] {ok} #hashtag @user',
  'a/b\\c|d ~ `tick` "quotes"',
  // whitespace, including Python's own sets (U+0085 collapses, U+001C..U+001F only strip, U+FEFF neither)
  '\ttabbed\ttext\t',
  'line one\nline two\r\nline three',
  'many     spaces   between',
  '   leading and trailing   ',
  '\u00a0nbsp\u2003em space\u3000ideographic',
  'next\u0085line \u001cfile\u001d',
  '\u001f edges \u001c',
  '\ufeffbom at start and zero\u200bwidth',
  // HTML references (Python's html.unescape, twice)
  'fish &amp; chips',
  '&lt;b&gt;bold&lt;/b&gt;',
  'it&#39;s',
  'smile &#x263a;',
  '&amp;amp; double, &amp;lt;b&amp;gt; too',
  '&ampfoo &notin &notit; &copy2024 &AMP &nbsp;x',
  '&#1;control &#x80;euro &#xD800;surrogate &#0;nul &#xFFFE;',
  // accents, other scripts, case mapping
  'café',
  'naïve façade crème brûlée',
  'cafe\u0301 decomposed',
  'Ελληνικά ΟΔΟΣ',
  '日本語のテキスト',
  '한국어 문장',
  'مرحبا بالعالم',
  'İstanbul, STRASSE, Straße',
  // emoji, modifiers, joiners, flags, combining marks (U+0345 matches nothing in Python's pattern)
  'a dog 🐶 and a cat 🐱',
  '👍🏽 thumbs',
  '👨‍👩‍👧 family',
  '🇫🇷 flag',
  'e\u0301\u0302 stacked marks',
  'ypogegrammeni a\u0345b \u0313\u0345\u0314',
  // the special tokens inside text
  '<|startoftext|>hello<|endoftext|>',
  'a <|ENDOFTEXT|> inside',
  '<|ſtartoftext|> folded',
  // empty and blank
  '',
  '   ',
  // pairs that occur more than once in a word
  'hello hello hello',
  'banana bananas mississippi',
  'aaaa aaaaa aaaaaaa lollol',
  // truncated to 77
  LONG_TEXT,
];

/** Texts whose every id prefix is decoded, so that UTF-8 sequences are cut in the middle. */
const DECODE_PREFIXES = ['café', '日本語のテキスト', '👨‍👩‍👧 family', '\ufeffbom', 'Ελληνικά'];

interface ReferenceTokens {
  sot: number;
  eot: number;
  vocab_size: number;
  encode: number[][];
  tokens: number[][];
  eot_positions: number[];
  decode: string[];
  prefix_decodes: string[][];
}

function rows(ids: Int32Array, contextLength: number): number[][] {
  return Array.from({ length: ids.length / contextLength }, (_, r) => Array.from(ids.subarray(r * contextLength, (r + 1) * contextLength)));
}

const N_MERGES = 300;

/**
 * The learned merges in a shuffled rank order, with the first 20 repeated at
 * the end: ranks no trained vocabulary has (merges ranked before those that
 * make their parts), and repeated merges, which keep their last rank and id
 * (Python's dict).
 */
function shuffledMerges(text: string): string {
  const [header, ...merges] = text.trimEnd().split('\n');
  let seed = 7;
  for (let i = merges.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [merges[i], merges[j]] = [merges[j], merges[i]];
  }
  return [header, ...merges, ...merges.slice(0, 20)].join('\n') + '\n';
}

type Form = 'bpe merges' | 'vocab.json' | 'shuffled merges';

describe.skipIf(!referenceAvailable())('ClipTokenizer against the Python reference', () => {
  const paths = {
    gz: join(dir, 'bpe_simple_vocab.txt.gz'),
    vocab: join(dir, 'vocab.json'),
    merges: join(dir, 'merges.txt'),
    shuffled: join(dir, 'shuffled.txt.gz'),
  };
  const loaded = new Map<Form, { ts: ClipTokenizer; py: ReferenceTokens }>();
  const ts = (form: Form) => loaded.get(form)!.ts;
  const py = (form: Form) => loaded.get(form)!.py;
  let learnedMerges = 0;

  beforeAll(() => {
    learnedMerges = reference<{ merges: number }>({ op: 'train', corpus: CORPUS, merges: N_MERGES, out_dir: dir }).merges;
    writeFileSync(paths.shuffled, gzipSync(shuffledMerges(gunzipSync(readFileSync(paths.gz)).toString('utf8'))));
    const ask = (files: object) => reference<ReferenceTokens>({ op: 'tokenize', ...files, texts: TEXTS, context_length: 77, decode_prefixes: DECODE_PREFIXES });
    loaded.set('bpe merges', { ts: loadClipTokenizer(paths.gz), py: ask({ bpe_path: paths.gz }) });
    loaded.set('vocab.json', { ts: loadClipTokenizer(paths.vocab), py: ask({ vocab_path: paths.vocab, merges_path: paths.merges }) });
    loaded.set('shuffled merges', { ts: loadClipTokenizer(paths.shuffled), py: ask({ bpe_path: paths.shuffled }) });
  });

  it('learns 300 merges, some of them of non-ASCII bytes', () => {
    expect(learnedMerges).toBe(N_MERGES);
    const merges = gunzipSync(readFileSync(paths.gz)).toString('utf8').trimEnd().split('\n').slice(1);
    expect(merges).toHaveLength(N_MERGES);
    // Stand-ins of non-ASCII bytes, e.g. 'Ã' '©' for é's C3 A9.
    expect(merges.some((m) => /[\u0080-\u01ff]/.test(m))).toBe(true);
    const tok = ts('bpe merges');
    expect(tok.vocabSize).toBe(256 * 2 + N_MERGES + 2);
    // Most strings hit merged tokens (ids past the 512 byte tokens), so the ranks matter.
    const merged = TEXTS.filter((t) => tok.encode(t).some((id) => id >= 512 && id < tok.sot));
    expect(merged.length).toBeGreaterThan(TEXTS.length * 0.7);
  });

  for (const form of ['bpe merges', 'vocab.json', 'shuffled merges'] as const) {
    describe(`read from the ${form} form`, () => {
      it('has the ids of the special tokens and the vocabulary size', () => {
        const [tok, ref] = [ts(form), py(form)];
        expect({ sot: tok.sot, eot: tok.eot }).toEqual({ sot: ref.sot, eot: ref.eot });
        // Python's len(encoder) counts a repeated merge once; vocabSize is the largest id + 1.
        if (form !== 'shuffled merges') expect(tok.vocabSize).toBe(ref.vocab_size);
      });

      it(`encodes all ${TEXTS.length} strings as Python does`, () => {
        const [tok, ref] = [ts(form), py(form)];
        expect(TEXTS.map((text) => ({ text, ids: tok.encode(text) }))).toEqual(TEXTS.map((text, i) => ({ text, ids: ref.encode[i] })));
      });

      it('tokenizes as clip.tokenize(texts, 77, truncate=True), eot positions as its argmax', () => {
        const [tok, ref] = [ts(form), py(form)];
        const { ids, eot } = tok.tokenize(TEXTS);
        expect(ids).toHaveLength(TEXTS.length * 77);
        expect(rows(ids, 77)).toEqual(ref.tokens);
        expect(Array.from(eot)).toEqual(ref.eot_positions);
      });

      it('decodes as Python does, UTF-8 cut mid-character included', () => {
        const [tok, ref] = [ts(form), py(form)];
        expect(TEXTS.map((text) => tok.decode(tok.encode(text)))).toEqual(ref.decode);
        const prefixDecodes = DECODE_PREFIXES.map((text) => {
          const ids = tok.encode(text);
          return Array.from({ length: ids.length + 1 }, (_, k) => tok.decode(ids.slice(0, k)));
        });
        expect(prefixDecodes).toEqual(ref.prefix_decodes);
        expect(prefixDecodes.flat().some((s) => s.includes('\ufffd'))).toBe(true);
      });
    });
  }

  it('the shuffled ranks tokenize differently, so that they test something', () => {
    expect(TEXTS.filter((t) => JSON.stringify(ts('shuffled merges').encode(t)) !== JSON.stringify(ts('bpe merges').encode(t))).length).toBeGreaterThan(10);
  });

  it('encodes every code point of Python\'s Unicode database as Python does', () => {
    // Code points Python 3.11 calls unassigned are left out: Node's newer ICU may classify or lower-case them.
    const { code_points: codePoints } = reference<{ code_points: number[] }>({ op: 'assigned' });
    expect(codePoints.length).toBeGreaterThan(250_000);
    const texts: string[] = [];
    for (let i = 0; i < codePoints.length; i += 64) texts.push(String.fromCodePoint(...codePoints.slice(i, i + 64)));
    const ref = reference<ReferenceTokens>({ op: 'tokenize', bpe_path: paths.gz, texts, context_length: 77 });
    const tok = ts('bpe merges');
    const mismatched = texts.flatMap((text, i) => (JSON.stringify(tok.encode(text)) === JSON.stringify(ref.encode[i]) ? [] : [`U+${codePoints[i * 64].toString(16)}..`]));
    expect(mismatched).toEqual([]);
  });

  it('gives the same ids from both forms', () => {
    const [bpe, hf] = [ts('bpe merges'), ts('vocab.json')];
    expect(rows(hf.tokenize(TEXTS).ids, 77)).toEqual(rows(bpe.tokenize(TEXTS).ids, 77));
  });

  it('truncates a long text to 77 tokens, the last one eot', () => {
    const tok = ts('bpe merges');
    expect(tok.encode(LONG_TEXT).length).toBeGreaterThan(100);
    const { ids, eot } = tok.tokenize(LONG_TEXT);
    expect(ids).toHaveLength(77);
    expect(ids[0]).toBe(tok.sot);
    expect(ids[76]).toBe(tok.eot);
    expect(Array.from(ids.subarray(1, 76))).toEqual(tok.encode(LONG_TEXT).slice(0, 75));
    expect(eot[0]).toBe(76);
    // A short row: [sot, ids, eot, 0...]; a literal <|endoftext|> in the text comes first.
    const short = tok.tokenize(['a cat', 'x <|endoftext|> y'], 8);
    const catIds = tok.encode('a cat');
    expect(rows(short.ids, 8)[0]).toEqual([tok.sot, ...catIds, tok.eot, ...Array(8 - catIds.length - 2).fill(0)]);
    expect(Array.from(short.eot)).toEqual([catIds.length + 1, 2]);
  });

  it("unescapes HTML as Python's html.unescape, on fixed and generated references", () => {
    const fixed = ['&amp;', '&lt;b&gt;', '&#39;', '&#x263a;', '&amp;amp;', '&ampx', '&notin', '&notit;', '&#0;', '&#1;', '&#11;', '&#13;', '&#x7f;', '&#128;', '&#x81;', '&#xD800;', '&#x110000;', '&#99999999999999999999;', '&#x;', '&#;', '&', '&&amp;', '&AMP', '&Amp;', '&copy2024', '&NotEqualTilde;', '&acE;', '&#65', '&#x41g', '&#xFFFE;', '&#x10FFFF;', '&#xfdd0;', '&lt', '&CounterClockwiseContourIntegral;x', '&abcdefghijklmnopqrstuvwxyzabcdefghijklmn;'];
    const pieces = ['&', '#', 'x', 'X', '1', '3', '9', '0', 'a', 'amp', 'not', 'in', 'lt', 'gt', ';', ' ', 'copy', 'nbsp', 'f', 'F', 'D800', '128', '11', '127', 'fffe', '1114112', 'e', 'acute', 'AMP', 'quot', 'ne', '\t', '<', 'é'];
    let seed = 12345;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const generated = Array.from({ length: 4000 }, () => Array.from({ length: 1 + random(8) }, () => pieces[random(pieces.length)]).join(''));
    const texts = [...fixed, ...generated];
    const { unescaped } = reference<{ unescaped: string[] }>({ op: 'unescape', texts });
    expect(texts.map(pythonHtmlUnescape)).toEqual(unescaped);
  });
});

// --- malformed vocabularies (no Python) ------------------------------------------

/** CLIP's bytes_to_unicode() characters in vocabulary order, written out again for the hand-made vocabularies. */
function byteChars(): string[] {
  const printable = [...Array(256).keys()].filter((b) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff));
  const others = [...Array(256).keys()].filter((b) => !printable.includes(b));
  return [...printable.map((b) => String.fromCharCode(b)), ...others.map((_, n) => String.fromCharCode(256 + n))];
}

const HAND_MERGES = ['h e', 'l l', 'he ll', 'hell o</w>', 'a a'];
const HAND_BPE = `"bpe_simple_vocab_16e6.txt#version: 0.2\n${HAND_MERGES.join('\n')}\n`;
const HAND_MERGES_TXT = `#version: 0.2\n${HAND_MERGES.join('\n')}\n`;

/** vocab.json for HAND_MERGES with the ids of the merges form. */
function handVocab(): Record<string, number> {
  const chars = byteChars();
  const tokens = [...chars, ...chars.map((c) => `${c}</w>`), ...HAND_MERGES.map((m) => m.replace(' ', '')), '<|startoftext|>', '<|endoftext|>'];
  return Object.fromEntries(tokens.map((t, id) => [t, id]));
}

describe('ClipTokenizer on a hand-made vocabulary', () => {
  it('merges by rank, each pair left to right without overlap', () => {
    const tok = ClipTokenizer.fromBpeMerges(HAND_BPE);
    const vocab = handVocab();
    expect(tok.encode('Hello, hello!')).toEqual([vocab['hello</w>'], vocab[',</w>'], vocab['hello</w>'], vocab['!</w>']]);
    // a,a,a,a</w> -> aa,a,a</w>: the pair (a a) twice, left to right; (a a</w>) has no rank.
    expect(tok.encode('aaaa')).toEqual([vocab.aa, vocab.a, vocab['a</w>']]);
    expect(tok.encode('aaa')).toEqual([vocab.aa, vocab['a</w>']]);
    expect(tok.vocabSize).toBe(512 + HAND_MERGES.length + 2);
    expect([tok.sot, tok.eot]).toEqual([vocab['<|startoftext|>'], vocab['<|endoftext|>']]);
    expect(tok.decode(tok.encode('hello  Hello'))).toBe('hello hello ');
    // Ranked before the merge that makes its part, 'aa a' shows a pass merging every (a a) at once:
    // a,a,a,a,a</w> -> aa,aa,a</w>; one at a time would give aa,a,... then aaa,a,a</w>.
    const inverted = ClipTokenizer.fromBpeMerges('#version: 0.2\naa a\na a\n');
    const [aa, aEnd] = [513, 256 + byteChars().indexOf('a')]; // 'aa a' makes id 512 ('aaa'), 'a a' id 513
    expect(inverted.encode('aaaaa')).toEqual([aa, aa, aEnd]);
    expect(ClipTokenizer.fromVocabJson(JSON.stringify(vocab), HAND_MERGES_TXT).encode('Hello, hello!')).toEqual(tok.encode('Hello, hello!'));
  });

  it('reads at most 49152-256-2 merges, as CLIP does, giving its 49408 ids', () => {
    const chars = byteChars();
    const many = Array.from({ length: CLIP_MAX_MERGES }, (_, i) => `${chars[i % 256]}${chars[(i >> 8) % 256]} ${chars[(i >> 16) % 256]}`);
    const tok = ClipTokenizer.fromBpeMerges(`header#version: 0.2\n${many.join('\n')}\nnot a merge line\nx\n`);
    expect(tok.vocabSize).toBe(49408);
    expect([tok.sot, tok.eot]).toEqual([49406, 49407]);
  });

  it('refuses a bad context length and unknown ids', () => {
    const tok = ClipTokenizer.fromBpeMerges(HAND_BPE);
    expect(() => tok.tokenize('a', 0)).toThrow(/contextLength must be a positive integer, got 0/);
    expect(() => tok.decode([1, 99999])).toThrow(/id 99999 is not in the vocabulary/);
  });
});

describe('malformed vocabulary text', () => {
  it.each([
    ['no header', 'h e\nl l\n', /^bpe merges: line 1: expected a '#version' header line .*got "h e"/],
    ['one symbol', '#version: 0.2\nh e\nhello\n', /^bpe merges: line 3: expected a merge "A B" \(two symbols separated by one space\), got "hello"/],
    ['three symbols', '#version: 0.2\nh e l\n', /^bpe merges: line 2: expected a merge "A B".*got "h e l"/],
    ['two spaces', '#version: 0.2\nh  e\n', /^bpe merges: line 2: expected a merge "A B"/],
    ['an empty line inside', '#version: 0.2\nh e\n\nl l\n', /^bpe merges: line 3: expected a merge "A B".*got ""/],
    ['a tab', '#version: 0.2\nh\te l\n', /^bpe merges: line 2: symbol "h\\te" has "\\t" \(U\+0009\), outside CLIP's byte alphabet/],
  ])('bpe merges: %s', (_, text, message) => {
    expect(() => ClipTokenizer.fromBpeMerges(text)).toThrow(message);
  });

  const vocab = handVocab();
  const without = (token: string) => Object.fromEntries(Object.entries(vocab).filter(([t]) => t !== token));
  it.each([
    ['invalid JSON', '{"a": 1,', HAND_MERGES_TXT, /^vocab.json: invalid JSON \(/],
    ['an array', '[1, 2]', HAND_MERGES_TXT, /^vocab.json: expected an object of token -> id, got an array/],
    ['no <|endoftext|>', without('<|endoftext|>'), HAND_MERGES_TXT, /^vocab.json: no <\|endoftext\|> token/],
    ['no <|startoftext|>', without('<|startoftext|>'), HAND_MERGES_TXT, /^vocab.json: no <\|startoftext\|> token/],
    ['a missing byte token', without('Ā</w>'), HAND_MERGES_TXT, /^vocab.json: no id for the byte token "Ā<\/w>"/],
    ['a negative id', { ...vocab, x: -1 }, HAND_MERGES_TXT, /^vocab.json: the id of "x" must be a non-negative integer, got -1/],
    ['a shared id', { ...vocab, hellox: vocab.hell }, HAND_MERGES_TXT, /^vocab.json: "hell" and "hellox" share the id \d+/],
    ['a space in a token', { ...vocab, 'a b': 9999 }, HAND_MERGES_TXT, /^vocab.json: the token "a b" has " " \(U\+0020\), outside CLIP's byte alphabet/],
    ['a merge missing from the vocabulary', without('hello</w>'), HAND_MERGES_TXT, /^merges.txt: line 5: the merge "hell o<\/w>" makes "hello<\/w>", which vocab.json lacks/],
    ['merges without a header', vocab, HAND_MERGES.join('\n'), /^merges.txt: line 1: expected a '#version' header line/],
  ])('vocab.json + merges.txt: %s', (_, vocabJson, mergesTxt, message) => {
    expect(() => ClipTokenizer.fromVocabJson(vocabJson as string | Record<string, number>, mergesTxt)).toThrow(message);
  });
});

describe('loadClipTokenizer', () => {
  const files = join(dir, 'hand');
  mkdirSync(files, { recursive: true });
  const at = (name: string, content: string | Buffer) => {
    writeFileSync(join(files, name), content);
    return join(files, name);
  };
  const hello = ClipTokenizer.fromBpeMerges(HAND_BPE).encode('hello hello');

  it('reads the merges form gzipped or not, by content rather than name, and the vocab.json form', () => {
    expect(loadClipTokenizer(at('bpe.txt.gz', gzipSync(HAND_BPE))).encode('hello hello')).toEqual(hello);
    expect(loadClipTokenizer(at('bpe.txt', HAND_BPE)).encode('hello hello')).toEqual(hello);
    expect(loadClipTokenizer(at('gzipped-named.txt', gzipSync(HAND_BPE))).encode('hello hello')).toEqual(hello);
    const vocabPath = at('vocab.json', JSON.stringify(handVocab()));
    at('merges.txt', HAND_MERGES_TXT);
    expect(loadClipTokenizer(vocabPath).encode('hello hello')).toEqual(hello);
    expect(loadClipTokenizer(vocabPath, at('other-merges.txt', HAND_MERGES_TXT)).encode('hello hello')).toEqual(hello);
  });

  it('names the path in every error', () => {
    const missing = join(files, 'nope.txt.gz');
    expect(() => loadClipTokenizer(missing)).toThrow(`${missing}: no such file`);
    const badGzip = at('bad.txt.gz', Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]));
    expect(() => loadClipTokenizer(badGzip)).toThrow(`${badGzip}: starts like gzip but does not gunzip`);
    const badJson = at('broken-vocab.json', '{"a": ');
    expect(() => loadClipTokenizer(badJson)).toThrow(`${badJson}: invalid JSON`);
    const badLine = at('bad-line.txt.gz', gzipSync('#version: 0.2\nh e\nhel lo x\n'));
    expect(() => loadClipTokenizer(badLine)).toThrow(`${badLine}: bpe merges: line 3: expected a merge "A B"`);
    const noEot = at('no-eot.json', JSON.stringify({ ...handVocab(), '<|endoftext|>': undefined }));
    expect(() => loadClipTokenizer(noEot)).toThrow(`${noEot}: vocab.json: no <|endoftext|> token`);
    const badMerges = at('bad-merges.txt', '#version: 0.2\nh e\nq q\n');
    const goodVocab = join(files, 'vocab.json');
    expect(() => loadClipTokenizer(goodVocab, badMerges)).toThrow(`${badMerges}: merges.txt: line 3: the merge "q q" makes "qq", which vocab.json lacks`);
    const lonelyDir = join(files, 'lonely');
    mkdirSync(lonelyDir, { recursive: true });
    const lonelyVocab = join(lonelyDir, 'vocab.json');
    writeFileSync(lonelyVocab, JSON.stringify(handVocab()));
    expect(() => loadClipTokenizer(lonelyVocab)).toThrow(`${join(lonelyDir, 'merges.txt')}: no such file`);
  });
});
