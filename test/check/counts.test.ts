// Parameter and MAC counts against the published StackGAN++ numbers
// (shared/reference/stackgan.md), computed there from the layer list and
// cross-checked with PyTorch module hooks: not by this code.
import { describe, expect, it } from 'vitest';
import { checkFile } from '../../compiler/index.ts';
import type { CheckedModel } from '../../compiler/check/model.ts';

function counts(m: CheckedModel): Record<string, [number, number]> {
  return Object.fromEntries(m.networks.map((n) => [n.kind === 'generator' ? 'G' : `D${n.resolution}`, [n.graph.parameters, n.graph.macs]]));
}

function load(path: string, set: string[] = []): CheckedModel {
  const r = checkFile(path, { set });
  expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return r.model!;
}

describe('reference counts', () => {
  it('stackgan-v2.gan equals StackGAN++ exactly', () => {
    expect(counts(load('models/stackgan-v2.gan'))).toEqual({
      G: [21_239_696, 7_909_277_696],
      D64: [5_723_906, 151_011_328],
      D128: [18_834_178, 672_153_600],
      D256: [71_269_122, 3_159_375_872],
    });
  });

  it('512-d text with the v2 CA matches the reference G', () => {
    const c = counts(load('models/stackgan-v2.gan', ['text_dim=512']));
    expect(c.G).toEqual([20_977_552, 7_909_015_552]);
  });

  it('ms-clip-gan.gan: G as published for 512-d text; each D adds only its alignment head', () => {
    const c = counts(load('models/ms-clip-gan.gan'));
    expect(c.G).toEqual([20_977_552, 7_909_015_552]);
    const align = 8 * 64 * 512 + 512; // Linear(8 ndf, 512) with bias
    expect(c.D64).toEqual([5_723_906 + align, 151_011_328 + 8 * 64 * 512]);
    expect(c.D128).toEqual([18_834_178 + align, 672_153_600 + 8 * 64 * 512]);
    expect(c.D256).toEqual([71_269_122 + align, 3_159_375_872 + 8 * 64 * 512]);
    const without = counts(load('models/ms-clip-gan.gan', ['use_align=false']));
    expect(without.D64).toEqual([5_723_906, 151_011_328]);
  });

  it('the v1 conditioning augmentation variant matches the reference G', () => {
    expect(counts(load('models/variants/ca-v1.gan')).G).toEqual([20_846_224, 7_908_884_480]);
  });

  it('the D-text-conditioning variant: G unchanged, each D adds only a Linear(512, c_dim) on the text', () => {
    const base = counts(load('models/ms-clip-gan.gan'));
    const c = counts(load('models/variants/d-text-cond.gan'));
    expect(c.G).toEqual(base.G);
    const proj = 512 * 128 + 128; // Linear(text_dim, c_dim) with bias
    for (const d of ['D64', 'D128', 'D256']) expect(c[d]).toEqual([base[d][0] + proj, base[d][1] + 512 * 128]);
  });
});
