// One test per class of diagnostic: code, message and the exact position.
import { describe, expect, it } from 'vitest';
import { renderRich } from '../../grammar/diagnostics.ts';
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
