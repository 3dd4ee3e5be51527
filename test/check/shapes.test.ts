// Shape inference and language semantics on small models.
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkFile } from '../../compiler/index.ts';
import type { CheckedModel } from '../../compiler/check/model.ts';
import { checkFiles, checkText, errors, MINI } from '../helpers/gan.ts';

function model(text: string, opts = {}): CheckedModel {
  const r = checkText(text, opts);
  expect(errors(r)).toEqual([]);
  return r.model!;
}

function shapes(m: CheckedModel, net: string): Record<string, number[]> {
  const n = m.networks.find((x) => x.name === net)!;
  return Object.fromEntries(n.graph.nodes.map((x) => [x.path, x.shape]));
}

describe('shape inference', () => {
  it('follows conv arithmetic, upsampling, glu, concat, tile and reshape', () => {
    const s = shapes(model(MINI), 'G');
    expect(s['ca/linear.0']).toEqual([32]);
    expect(s['ca/glu.0']).toEqual([16]);
    expect(s['ca/slice.1']).toEqual([8]);
    expect(s['g0/concat.0']).toEqual([24]);
    expect(s['g0/reshape.0']).toEqual([16, 4, 4]);
    expect(s['g0/Up.0/upsample.0']).toEqual([16, 8, 8]);
    expect(s['g0/Up.0/conv2d.0']).toEqual([16, 8, 8]);
    expect(s['g0/Up.1/glu.0']).toEqual([8, 16, 16]);
    expect(s['g0/conv2d.0']).toEqual([3, 16, 16]);
    const d = shapes(model(MINI), 'd0');
    expect(d['conv2d.0']).toEqual([8, 8, 8]); // k4 s2 p1 halves
    expect(d['tile.0']).toEqual([8, 8, 8]);
    expect(d['conv2d.2']).toEqual([1, 1, 1]);
  });

  it('conv padding defaults to (k - stride) div 2 and can be set', () => {
    const base = MINI.replace('image = h |> conv(3, k = 3) |> tanh', 'image = h |> conv(3, k = 5, pad = 0) |> upsample(2) |> conv(3, k = 1) |> conv(3, k = 7, stride = 2, pad = 4) |> flatten |> linear(3 * 16 * 16) |> reshape(3, 16, 16) |> tanh');
    const s = shapes(model(base), 'G');
    expect(s['g0/conv2d.0']).toEqual([3, 12, 12]); // 16 - 5 + 1
    expect(s['g0/conv2d.1']).toEqual([3, 24, 24]); // k1: pad 0
    expect(s['g0/conv2d.2']).toEqual([3, 13, 13]); // (24 + 8 - 7) div 2 + 1
  });

  it('params: arithmetic, div, log2, **, --set and presets', () => {
    const text = MINI.replace('param ndf = 8', 'param ndf = 8\nparam depth = log2(ngf) div 1 + 2 ** 2 - ngf % 3\nparam flag = ngf >= 8 and not false') + 'preset small { param ngf = 4 }\n';
    const m = model(text);
    expect(m.params).toMatchObject({ ngf: 8, depth: 3 + 4 - 2, flag: true });
    const set = model(text, { set: ['ngf=16'] });
    expect(set.params).toMatchObject({ ngf: 16, depth: 4 + 4 - 1 });
    expect(shapes(set, 'G')['g0/reshape.0']).toEqual([32, 4, 4]);
    const small = model(text, { preset: 'small' });
    expect(small.params.ngf).toBe(4);
    const both = model(text, { preset: 'small', set: ['ngf=2'] });
    expect(both.params.ngf).toBe(2); // the command line wins over the preset
  });

  it('repeat with an index, if/else, tuples and explicit return', () => {
    const text = MINI.replace(
      'block Up(x, out) {',
      `block Twice(x) { a, b = x |> split(2)
  return concat(b, a), a }
block Up(x, out) {`,
    ).replace(
      'image = h |> conv(3, k = 3) |> tanh',
      `repeat 3 as i { if i == 1 { h = h + 1 } else { h = h * 2 } }
    p, q = Twice(h)
    image = p |> conv(3, k = 3) |> tanh`,
    );
    const m = model(text);
    const g = m.networks[0].graph;
    expect(g.nodes.filter((n) => n.op === 'add' && n.path.startsWith('g0/')).length).toBe(1);
    expect(g.nodes.filter((n) => n.op === 'mul' && n.path.startsWith('g0/')).length).toBe(2);
    expect(shapes(m, 'G')['g0/Twice.0/concat.0']).toEqual([8, 16, 16]);
  });

  it('a variant overrides params, settings, blocks and stages of its base', () => {
    const r = checkFiles(
      {
        'v.gan': `gan V extends "base.gan"
param ngf = 4
block Up(x, out) { x |> upsample(2) |> conv(out, k = 1) }
train { d.lr = 5e-5  real_label = 0.9 }
objective { use_uncond_loss = true }`,
        'base.gan': MINI + 'train { batch = 8  d = adam(lr = 2e-4, betas = (0.5, 0.99)) }\n',
      },
      'v.gan',
    );
    expect(errors(r)).toEqual([]);
    const m = r.model!;
    expect(m.name).toBe('V');
    expect(m.params.ngf).toBe(4);
    expect(m.train).toMatchObject({ batch: 8, real_label: 0.9, d: { kind: 'adam', lr: 5e-5, betas: [0.5, 0.99] } });
    expect(m.objective.use_uncond_loss).toBe(true);
    const s = shapes(m, 'G');
    expect(s['g0/Up.0/conv2d.0']).toEqual([4, 8, 8]); // the variant's Up: no glu
  });

  it('warns about a param that is never used', () => {
    const r = checkText(MINI.replace('param ndf = 8', 'param ndf = 8\nparam nfd = 3'));
    expect(errors(r)).toEqual([]);
    const w = r.diagnostics.find((d) => d.code === 'GAN207')!;
    expect(w.message).toBe("param 'nfd' is never used");
  });
});

describe('every bundled model checks', () => {
  const files = ['models/ms-clip-gan.gan', 'models/stackgan-v2.gan', 'models/dcgan.gan', ...readdirSync('models/variants').map((f) => `models/variants/${f}`)];
  for (const f of files) {
    it(f, () => {
      const r = checkFile(f);
      expect(r.diagnostics).toEqual([]);
      const tiny = checkFile(f, { preset: 'tiny' });
      expect(errors(tiny)).toEqual([]);
      expect(tiny.model!.networks[0].graph.parameters).toBeLessThan(r.model!.networks[0].graph.parameters / 16);
    });
  }
});
