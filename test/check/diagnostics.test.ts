// One test per class of diagnostic: code, message and the exact position.
// Hostile and odd input (too-deep nesting, byte-order marks, binary files,
// hidden characters, long lines, absurd sizes) has fixture files in
// fixtures/hostile/ with their expected renderings next to them
// (`UPDATE_EXPECTED=1` rewrites those after a deliberate change).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkFile } from '../../compiler/index.ts';
import { toJsonSummary } from '../../compiler/check/summary.ts';
import { MAX_NESTING } from '../../grammar/nesting.ts';
import { parseSource } from '../../grammar/index.ts';
import { displayLine, renderRich, renderShort } from '../../grammar/render.ts';
import { checkFiles, checkText, errors, MINI, position } from '../helpers/gan.ts';

/** Replaces the first occurrence of `from` in MINI. */
function mini(from: string, to: string): string {
  if (!MINI.includes(from)) throw new Error(`fixture does not contain ${from}`);
  return MINI.replace(from, to);
}

function only(text: string, opts = {}) {
  const r = checkText(text, opts);
  const errs = errors(r);
  return { r, errs, first: errs[0], pos: errs[0] ? position(r, errs[0]) : undefined };
}

describe('diagnostics', () => {
  it('the fixture itself is valid', () => {
    expect(errors(checkText(MINI))).toEqual([]);
  });

  it('syntax errors: several per file, each with file:line:col and what was expected', () => {
    const { r, errs } = only('gan A\nparam a = \nparam b = (1 + 2\nblock B(x) { x |> }\n');
    expect(errs.length).toBeGreaterThanOrEqual(3);
    expect(errs.every((e) => e.code === 'GAN102')).toBe(true);
    const p = errs.map((e) => position(r, e));
    expect(p[0]).toMatchObject({ line: 3, col: 1 }); // `param` where an expression was expected
    expect(errs[0].label).toBe('expected an expression');
    expect(p.some((x) => x.line === 4)).toBe(true);
  });

  it('unexpected character', () => {
    const { first, pos } = only(mini('param ndf = 8', 'param ndf = 8 $'));
    expect(first.code).toBe('GAN101');
    expect(first.message).toBe("unexpected character '$'");
    expect(pos).toMatchObject({ line: 3, col: 15 });
  });

  it('undefined name, with did-you-mean', () => {
    const { first, pos } = only(mini('|> Up(ngf) |> Up(ngf)', '|> Up(ngff) |> Up(ngf)'));
    expect(first.code).toBe('GAN203');
    expect(first.message).toBe("undefined name 'ngff'");
    expect(first.help).toBe("did you mean 'ngf'?");
    expect(pos).toMatchObject({ line: 15, text: 'ngff' });
  });

  it('unknown op, with did-you-mean', () => {
    const { first, pos } = only(mini('|> batchnorm |> glu }', '|> batchnrom |> glu }'));
    expect(first.code).toBe('GAN205');
    expect(first.message).toBe("unknown op or block 'batchnrom'");
    expect(first.help).toBe("did you mean 'batchnorm'?");
    expect(pos).toMatchObject({ line: 6, text: 'batchnrom' });
  });

  it('wrong arity', () => {
    const { first, pos } = only(mini('|> Up(ngf) |> Up(ngf)', '|> Up(ngf, 3) |> Up(ngf)'));
    expect(first.code).toBe('GAN301');
    expect(first.message).toBe('block Up takes 2 argument(s), got 3 (the piped value counts as the first)');
    expect(pos).toMatchObject({ line: 15, text: '3' });
    const missing = only(mini('image = h |> conv(3, k = 3)', 'image = h |> conv(k = 3)'));
    expect(missing.first.message).toBe("conv is missing argument 'out'");
    expect(missing.first.label).toContain('expected conv(x, out, k = 3');
  });

  it('unknown keyword argument, with did-you-mean', () => {
    const { first, pos } = only(mini('image = h |> conv(3, k = 3)', 'image = h |> conv(3, kernel = 3)'));
    expect(first.code).toBe('GAN302');
    expect(first.message).toBe("conv has no argument 'kernel'");
    expect(pos).toMatchObject({ line: 16, text: 'kernel' });
  });

  it('shape mismatch shows both shapes and the expression', () => {
    const { first, pos } = only(mini('concat(tile(mu, 8), f)', 'concat(tile(mu, 4), f)'));
    expect(first.code).toBe('GAN304');
    expect(first.message).toBe('concat along dim 0 needs the other dimensions to match: [8, 4, 4] vs [8, 8, 8]');
    expect(first.label).toBe('[8, 4, 4] ++ [8, 8, 8]');
    expect(pos).toMatchObject({ line: 22, text: 'concat(tile(mu, 4), f)' });
    const add = only(mini('c_hat = mu + exp(0.5 * logvar)', 'c_hat = mu + exp(0.5 * tile(logvar, 2))'));
    expect(add.first.message).toBe("shapes [8, 2, 2] and [8] do not broadcast in 'mul'");
    expect(add.first.label).toBe('[8, 2, 2] mul [8]');
  });

  it('channel count not divisible for glu and split', () => {
    const glu = only(mini('linear(32) |> glu', 'linear(33) |> glu'));
    expect(glu.first.code).toBe('GAN305');
    expect(glu.first.message).toBe('glu needs an even channel count, got 33 in [33]');
    expect(glu.pos).toMatchObject({ line: 8 });
    const split = only(mini('|> glu |> split(2)', '|> glu |> split(3)'));
    expect(split.first.code).toBe('GAN305');
    expect(split.first.message).toBe('cannot split 16 into 3 equal parts (dim 0 of [16])');
  });

  it('cyclic extends and imports name the whole chain', () => {
    const ext = checkFiles({ 'a.gan': 'gan A extends "b.gan"\n', 'b.gan': 'gan B extends "a.gan"\n' }, 'a.gan');
    const e = errors(ext)[0];
    expect(e.code).toBe('GAN202');
    expect(e.message).toMatch(/^cyclic extends\/import: .*a\.gan -> .*b\.gan -> .*a\.gan$/);
    expect(position(ext, e)).toMatchObject({ line: 1, col: 15, text: '"a.gan"' });
    const imp = checkFiles({ 'a.gan': 'import "lib.gan"\n', 'lib.gan': 'import "a.gan"\nblock X(x) { x }\n' }, 'a.gan');
    expect(errors(imp)[0].code).toBe('GAN202');
  });

  it('a param defined in terms of itself', () => {
    const { first, pos } = only(mini('param ndf = 8', 'param ndf = 8 + a\nparam a = ndf * 2'));
    expect(first.code).toBe('GAN208');
    expect(first.message).toBe("param 'ndf' is defined in terms of itself");
    expect(first.notes).toEqual(['cycle: ndf -> a -> ndf']);
    expect(pos).toMatchObject({ line: 3, col: 13 });
  });

  it('missing file of an extends', () => {
    const r = checkFiles({ 'v.gan': 'gan V extends "nope.gan"\n' }, 'v.gan');
    const e = errors(r)[0];
    expect(e.code).toBe('GAN201');
    expect(e.message).toMatch(/^cannot read '.*nope\.gan': no such file$/);
    expect(position(r, e)).toMatchObject({ line: 1, col: 15 });
  });

  it('overriding a param that does not exist (command line and preset)', () => {
    const { r, first } = only(MINI, { set: ['ngff=4'] });
    expect(first.code).toBe('GAN206');
    expect(first.message).toBe("cannot set 'ngff': model 'Mini' has no such param");
    expect(first.help).toBe("did you mean 'ngf'?");
    expect(position(r, first)).toMatchObject({ line: 1, col: 1, text: 'ngff' });
    const preset = only(MINI + 'preset tiny { param nfg = 2 }\n', { preset: 'tiny' });
    expect(preset.first.code).toBe('GAN206');
    expect(preset.first.message).toBe("preset 'tiny' overrides param 'nfg', which does not exist");
  });

  it('unknown setting, bad setting value, unsupported loss', () => {
    const unk = only(MINI + 'train { bacth = 4 }\n');
    expect(unk.first.code).toBe('GAN402');
    expect(unk.first.help).toBe("did you mean 'batch'?");
    expect(unk.pos).toMatchObject({ line: 24, col: 9 });
    const bad = only(MINI + 'train { d = adam(lr = -1) }\n');
    expect(bad.first.code).toBe('GAN306');
    expect(bad.first.message).toBe('train.d adam(lr) must be in (0, inf), got -1');
    const hinge = only(MINI + 'objective { adversarial = hinge }\n');
    expect(hinge.first.code).toBe('GAN403');
    expect(hinge.first.message).toBe("adversarial loss 'hinge' is not supported yet");
  });

  it('a number beyond float64 (1e999 would read as Infinity) is refused where it is written, in the file or in --set', () => {
    const inFile = only(MINI + 'train { d = adam(lr = 1e999) }\n');
    expect(inFile.first.code).toBe('GAN306');
    expect(inFile.first.message).toBe('number 1e999 is too large (beyond float64\'s 1.7976931348623157e+308)');
    expect(inFile.pos).toMatchObject({ line: 24, col: 23, text: '1e999' });
    const set = only(MINI, { set: ['ngf=-2e400'] });
    expect(set.first.code).toBe('GAN306');
    expect(set.first.span).toMatchObject({ file: '--set ngf=-2e400', offset: 5, length: 5 });
  });

  it('a stage must produce an image of its resolution', () => {
    const { first, pos } = only(mini('stage g0 @ 16', 'stage g0 @ 32'));
    expect(first.code).toBe('GAN304');
    expect(first.message).toBe("stage 'g0' @ 32 must produce an image of shape [3, 32, 32], got a tensor of shape [3, 16, 16]");
    expect(pos).toMatchObject({ line: 13, text: 'g0' });
  });

  it('renders rustc-style with the source line and a caret under the span', () => {
    const r = checkText(mini('|> Up(ngf) |> Up(ngf)', '|> Up(ngff) |> Up(ngf)'));
    const text = renderRich(errors(r)[0], (f) => r.sources.get(f));
    const lines = text.split('\n');
    expect(lines[0]).toBe("error[GAN203]: undefined name 'ngff'");
    expect(lines[1]).toMatch(/--> .*model\.gan:15:\d+$/);
    const src = lines.find((l) => l.startsWith('15 |'))!;
    const caret = lines[lines.indexOf(src) + 1];
    expect(caret.indexOf('^^^^')).toBe(src.indexOf('ngff'));
    expect(text).toContain("= help: did you mean 'ngf'?");
  });

  it('reports independent semantic errors together', () => {
    const text = mini('|> Up(ngf) |> Up(ngf)', '|> Up(ngff) |> Up(ngf)').replace('linear(32) |> glu', 'linear(33) |> glu');
    const errs = errors(checkText(text));
    expect(errs.map((e) => e.code).sort()).toEqual(['GAN203', 'GAN305']);
  });
});

const FIXTURES = 'test/check/fixtures/hostile';

/** Every diagnostic of `file` rendered as `gan check` prints it (without colour). */
function rendered(file: string, opts = {}): string {
  const r = checkFile(file, opts);
  return r.diagnostics.map((d) => renderRich(d, (f) => r.sources.get(f))).join('\n\n') + '\n';
}

describe('hostile input: fixtures and their expected renderings', () => {
  const fixtures = readdirSync(FIXTURES).filter((f) => !f.endsWith('.expected'));
  it('has the fixtures', () => expect(fixtures.length).toBeGreaterThanOrEqual(18));
  for (const f of fixtures) {
    it(f, () => {
      const file = join(FIXTURES, f);
      const text = rendered(file);
      if (process.env.UPDATE_EXPECTED) writeFileSync(`${file}.expected`, text);
      expect(text).toBe(readFileSync(`${file}.expected`, 'utf8'));
      // Rendered output is safe to print: no control characters but newlines, no line past the window.
      expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f\u200b\u202e\ufeff]/);
      for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(140);
    });
  }
});

describe('hostile input: nesting', () => {
  const parens = (n: number) => `gan P\nparam a = ${'('.repeat(n)}1${')'.repeat(n)}\n`;

  it(`accepts ${MAX_NESTING} nested brackets and refuses one more at the first bracket past the limit`, () => {
    expect(parseSource(parens(MAX_NESTING), 'p.gan').diagnostics).toEqual([]);
    const [d, ...rest] = parseSource(parens(MAX_NESTING + 1), 'p.gan').diagnostics;
    expect(rest).toEqual([]);
    expect(d.code).toBe('GAN103');
    expect(d.span).toEqual({ file: 'p.gan', offset: 'gan P\nparam a = '.length + MAX_NESTING, length: 1 });
  });

  it('a few thousand brackets of every kind: one diagnostic, no stack overflow', () => {
    for (const [open, close] of [['(', ')'], ['[', ']'], ['f(', ')'], ['1 |> f(k = ', ')']]) {
      const r = checkText(`gan P\nparam a = ${open.repeat(5000)}1${close.repeat(5000)}\n`);
      expect(errors(r).map((e) => e.code)).toEqual(['GAN103']);
    }
    const braces = checkText(`gan P\nblock B(x) {${' if true {'.repeat(5000)} x ${'}'.repeat(5000)}}\n`);
    expect(errors(braces).map((e) => e.code)).toEqual(['GAN103']);
  });

  it('long operator chains, prefix runs, member chains and else-if chains are refused, not overflowed', () => {
    const cases = [
      `param a = 1${' + 1'.repeat(5000)}`,
      `param a = 2${' ** 1'.repeat(5000)}`,
      `param a = ${'not '.repeat(5000)}true`,
      `param a = ${'- '.repeat(5000)}x`,
      `param a = x${'.y'.repeat(5000)}`,
      `param a = 1${' |> f'.repeat(5000)}`,
      `block B(x) { if true { x }${' else if true { x }'.repeat(5000)} }`,
    ];
    for (const c of cases) {
      const r = checkText(`gan P\n${c}\n`);
      expect(errors(r).map((e) => e.code), c.slice(0, 30)).toEqual(['GAN103']);
    }
  });

  it('prefix minus on a literal folds: a long run of them is no nesting at all', () => {
    expect(parseSource(`param a = ${'- '.repeat(300)}1`, 'p.gan').diagnostics).toEqual([]);
  });

  it('evaluation depth: a long chain of params read one from the next', () => {
    const chain = Array.from({ length: 400 }, (_, i) => `param a${i} = a${i + 1} + 1`).join('\n');
    const r = checkText(`${MINI}${chain}\nparam a400 = 0\n`);
    const deep = errors(r).filter((e) => e.code === 'GAN103');
    expect(deep.length).toBeGreaterThan(0);
    expect(deep[0].message).toMatch(/^evaluation nested too deeply: more than 500 levels/);
  });

  it('a huge repeat count is refused after a bounded amount of work', () => {
    const t = Date.now();
    const r = checkText(MINI.replace('|> Up(ngf) |> Up(ngf)', '|> Up(ngf) |> Up(ngf)\n    repeat 1000000000 { q = 1 }'));
    expect(errors(r).map((e) => e.code)).toContain('GAN307');
    expect(errors(r).find((e) => e.code === 'GAN307')!.message).toMatch(/^model too large to check/);
    expect(Date.now() - t).toBeLessThan(5000);
  });
});

describe('hostile input: encodings and odd whitespace', () => {
  it('a UTF-8 byte-order mark changes nothing: same model, same columns', () => {
    const plain = checkFile('models/dcgan.gan');
    const bytes = readFileSync('models/dcgan.gan');
    const withBom = checkFile('models/dcgan.gan', {}, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]));
    expect(withBom.diagnostics).toEqual([]);
    expect(toJsonSummary(withBom.model!)).toEqual(toJsonSummary(plain.model!));
    const asText = checkText('\ufeffgan A $\n');
    expect(position(asText, errors(asText)[0])).toMatchObject({ line: 1, col: 7, text: '$' });
  });

  it('CRLF, CR-only and tab-indented copies of a model check the same', () => {
    const text = readFileSync('models/dcgan.gan', 'utf8');
    const base = toJsonSummary(checkFile('models/dcgan.gan', {}, text).model!);
    for (const variant of [text.replace(/\n/g, '\r\n'), text.replace(/\n/g, '\r'), text.replace(/^ +/gm, (m) => '\t'.repeat(m.length))]) {
      const r = checkFile('models/dcgan.gan', {}, variant);
      expect(errors(r)).toEqual([]);
      expect(toJsonSummary(r.model!)).toEqual(base);
    }
  });

  it('a line comment ends at a lone CR', () => {
    expect(errors(checkText('// comment\rgan A\rparam a = 1 +\r'))[0]).toMatchObject({ code: 'GAN102' });
  });

  it('a bad escape in the extends path of the header: a diagnostic, not a throw', () => {
    const r = checkText('gan A extends "\\q.gan"\n');
    expect(errors(r).map((e) => e.code)).toEqual(['GAN102']);
  });

  it('an empty --set gets a span inside its (empty) text', () => {
    const r = checkText(MINI, { set: [''] });
    expect(errors(r)[0]).toMatchObject({ code: 'GAN306', span: { file: '--set ', offset: 0, length: 0 } });
    expect(renderRich(errors(r)[0], (f) => r.sources.get(f))).toContain('--> --set :1:1');
  });

  it('file-level diagnostics render with the file name alone', () => {
    const r = checkFile(join(FIXTURES, 'image.png'));
    expect(renderShort(r.diagnostics[0], (f) => r.sources.get(f))).toBe(`${FIXTURES}/image.png: error GAN104: '${FIXTURES}/image.png' looks like a binary file, not .gan text`);
  });
});

describe('hostile input: the source line under the caret', () => {
  it('short lines are shown as they are', () => {
    expect(displayLine('param a = 1', 6, 7)).toEqual({ text: 'param a = 1', caretCol: 6, caretWidth: 1 });
  });

  it('escapes keep the carets under the escaped character', () => {
    const d = displayLine('a\u00a0b\x00c', 3, 4);
    expect(d.text).toBe('a\\xA0b\\x00c');
    expect(d.text.slice(d.caretCol, d.caretCol + d.caretWidth)).toBe('\\x00');
  });

  it('wide characters count two columns', () => {
    const d = displayLine('// 漢字 x', 6, 7);
    expect(d.caretCol).toBe(8);
  });

  it('long lines are windowed around the span, within the width, carets on the span', () => {
    const line = 'a'.repeat(1000) + 'TARGET' + 'b'.repeat(100_000);
    const d = displayLine(line, 1000, 1006);
    expect(d.text.length).toBeLessThanOrEqual(120);
    expect(d.text.startsWith('...') && d.text.endsWith('...')).toBe(true);
    expect(d.text.slice(d.caretCol, d.caretCol + d.caretWidth)).toBe('TARGET');
  });

  it('a span wider than the window is cut with the line', () => {
    const line = 'x = ' + 'y'.repeat(500);
    const d = displayLine(line, 4, 504);
    expect(d.text.length).toBeLessThanOrEqual(120);
    expect(d.caretCol + d.caretWidth).toBeLessThanOrEqual(d.text.length);
  });

  it('a caret at the end of a long line stays on screen', () => {
    const line = 'z'.repeat(300);
    const d = displayLine(line, 300, 300);
    expect(d.caretCol).toBeLessThanOrEqual(120);
    expect(d.caretWidth).toBe(1);
  });
});

describe('hostile input: absurd sizes', () => {
  it('ngf = 100000000 on the reference model: a located GAN307, no inexact count', () => {
    const r = checkFile('models/ms-clip-gan.gan', { set: ['ngf=100000000'] });
    expect(r.model).toBeUndefined();
    const e = errors(r);
    expect(e.map((d) => d.code)).toEqual(['GAN307']);
    expect(e[0].message).toBe("the output of 'linear' is too large: [51200000000] has 51,200,000,000 elements per sample");
    // Located at g0's first linear (the line is looked up, so edits elsewhere in the model do not move it).
    const g0Linear = readFileSync('models/ms-clip-gan.gan', 'utf8').split('\n').findIndex((l) => l.includes('|> linear(ngf * 16')) + 1;
    expect(g0Linear).toBeGreaterThan(0);
    expect(position(r, e[0]).line).toBe(g0Linear);
  });

  it('large but legal widths: every count an exact integer, and --json valid', () => {
    const r = checkFile('models/ms-clip-gan.gan', { set: ['ngf=700'] });
    expect(errors(r)).toEqual([]);
    const json = JSON.parse(JSON.stringify(toJsonSummary(r.model!)));
    for (const n of json.networks) {
      expect(Number.isSafeInteger(n.parameters) && Number.isSafeInteger(n.macs)).toBe(true);
      const sum = (k: 'parameters' | 'macs') => n.layers.reduce((a: bigint, l: Record<string, number>) => a + BigInt(l[k]), 0n);
      expect(sum('parameters')).toBe(BigInt(n.parameters));
      expect(sum('macs')).toBe(BigInt(n.macs));
    }
    expect(json.networks[0].parameters).toBeGreaterThan(1e9);
  });

  it('a declared input or a resolution too large to index', () => {
    const input = checkText(MINI.replace('input text: [32]', 'input text: [65536, 65536]'));
    expect(errors(input)[0]).toMatchObject({ code: 'GAN307', message: "input 'text' is too large: [65536, 65536] has 4,294,967,296 elements per sample" });
    expect(position(input, errors(input)[0]).text).toBe('65536, 65536');
    const res = checkText(MINI.replace('discriminator d0 @ 16', 'discriminator d0 @ 100000'));
    expect(errors(res).map((e) => e.code)).toContain('GAN307');
  });
});

