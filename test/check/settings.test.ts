// The typed settings (compiler/check/settings.ts): the schema's defaults are
// the documented StackGAN-v2 ones, every override (a variant, a preset,
// `--set`) arrives in the typed config, and summaries show only the objective
// settings that act on the model.
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { CheckedModel } from '../../compiler/check/model.ts';
import { objectiveInEffect, type AdamConfig, type ObjectiveConfig, type OptimizerConfig, type TrainConfig } from '../../compiler/check/settings.ts';
import { renderSummary, toJsonSummary } from '../../compiler/check/summary.ts';
import { checkFile, type CheckOptions } from '../../compiler/index.ts';
import { checkFiles, checkText, errors, MINI } from '../helpers/gan.ts';

function model(r: ReturnType<typeof checkText>): CheckedModel {
  expect(errors(r).map((d) => d.message)).toEqual([]);
  return r.model!;
}

const bundled = (file: string, opts: CheckOptions = {}) => model(checkFile(file, opts));

// Each default with where it is documented: shared/reference/stackgan.md's "Defaults
// (text-to-image config)" table, or the README's settings list where StackGAN has no say.
// "Adam lr 2e-4, betas (0.5, 0.999)"; eps and weight_decay: torch.optim.Adam's.
const ADAM: AdamConfig = { kind: 'adam', lr: 2e-4, betas: [0.5, 0.999], eps: 1e-8, weight_decay: 0 };
const DOCUMENTED: { train: TrainConfig; objective: ObjectiveConfig } = {
  train: {
    batch: 24, // "batch | 24"
    epochs: null, // unset: a run says how long
    steps: null,
    g: ADAM, // "one for G, one per D"
    d: ADAM,
    n_critic: 1, // "n_critic = k means k D steps per G step"; StackGAN: one D step per G step
    d_every: 1,
    real_label: 1, // no smoothing unless asked ("a real label y < 1 means ...")
    g_ema: 0.999, // "G EMA | 0.999 per G step"
    wrong_same_group: 0, // README settings list: wrong images as StackGAN draws them unless asked
    seed: 0,
  },
  objective: {
    adversarial: 'bce', // README: bce (hinge and wgan are not supported yet)
    use_uncond_loss: false, // "uncond loss weight | 1.0 when enabled (0 = off)"
    uncond: 1,
    kl: 2, // "KL weight | 2.0"
    align: 1, // MS-CLIP-GAN's own head (no upstream default)
    colour: 0, // "colour-consistency weight | 0 for text-to-image"
    perceptual: null,
    clip_guidance: null,
  },
};

describe('typed settings', () => {
  it('a model without objective or train sections gets every documented default', () => {
    const m = model(checkText(MINI));
    for (const section of ['train', 'objective'] as const) {
      const got = m[section] as unknown as Record<string, unknown>;
      const want = DOCUMENTED[section] as unknown as Record<string, unknown>;
      expect(Object.keys(got).sort(), section).toEqual(Object.keys(want).sort());
      for (const k of Object.keys(want)) expect(got[k], `${section}.${k}`).toEqual(want[k]);
    }
  });

  it("a variant's overrides arrive typed, with the optimizer's own defaults filled in", () => {
    const m = model(
      checkFiles(
        {
          'v.gan': `gan V extends "base.gan"
train { d.lr = 5e-5  g = sgd(lr = 0.01, momentum = 0.9)  steps = 100 }
objective { kl = 0.5  use_uncond_loss = true }`,
          'base.gan': MINI + 'train { batch = 8  d = adam(lr = 2e-4, eps = 1e-6) }\n',
        },
        'v.gan',
      ),
    );
    expect(m.train.d).toEqual({ kind: 'adam', lr: 5e-5, betas: [0.5, 0.999], eps: 1e-6, weight_decay: 0 });
    expect(m.train.g).toEqual({ kind: 'sgd', lr: 0.01, momentum: 0.9, nesterov: false, weight_decay: 0 });
    expect([m.train.batch, m.train.steps, m.train.epochs]).toEqual([8, 100, null]);
    expect([m.objective.kl, m.objective.use_uncond_loss]).toEqual([0.5, true]);
    expectTypeOf(m.train.g).toEqualTypeOf<OptimizerConfig>();
    expectTypeOf(m.objective.kl).toEqualTypeOf<number>();
    if (m.train.d.kind === 'adam') expectTypeOf(m.train.d.betas).toEqualTypeOf<[number, number]>();
  });

  it('the bundled variants, presets and --set change exactly their setting', () => {
    const base = bundled('models/ms-clip-gan.gan');
    expect(bundled('models/variants/d-lr-low.gan').train).toEqual({ ...base.train, d: { ...ADAM, lr: 5e-5 } });
    expect(bundled('models/variants/label-smoothing.gan').train).toEqual({ ...base.train, real_label: 0.9 });
    expect(bundled('models/variants/d-every-2.gan').train).toEqual({ ...base.train, d_every: 2 });
    expect(bundled('models/variants/uncond-loss.gan').objective).toEqual({ ...base.objective, use_uncond_loss: true });
    expect(bundled('models/ms-clip-gan.gan', { preset: 'tiny' }).train).toEqual({ ...base.train, batch: 4, epochs: 1 });
    const set = bundled('models/ms-clip-gan.gan', { set: ['train.g.betas=(0.9, 0.99)', 'objective.align=0.25'] });
    expect(set.train.g).toEqual({ ...ADAM, betas: [0.9, 0.99] });
    expect(set.objective.align).toBe(0.25);
    expect(base.objective.clip_guidance).toEqual({ weight: 1, at: 'g2', model: 'encoders/clip-vit-b32.gan', checkpoint: 'weights/clip-vit-b32.safetensors', encoder_preset: '' });
  });
});

describe('objective settings in effect', () => {
  const keys = (m: CheckedModel) => Object.keys(objectiveInEffect(m.objective, m.networks)).sort();

  it('no kl without a condition, no align without an align head, no uncond without both heads, no colour on one stage', () => {
    const dcgan = bundled('models/dcgan.gan');
    expect(keys(dcgan)).toEqual(['adversarial']);
    expect(keys(model(checkText(MINI)))).toEqual(['adversarial', 'kl', 'use_uncond_loss']);
    expect(keys(model(checkText(MINI + 'objective { use_uncond_loss = true }\n')))).toEqual(['adversarial', 'kl', 'uncond', 'use_uncond_loss']);
    expect(keys(bundled('models/ms-clip-gan.gan'))).toEqual(['adversarial', 'align', 'clip_guidance', 'colour', 'kl', 'use_uncond_loss']);
    // A term set with weight 0, or turned off, is not in effect.
    expect(keys(model(checkText(MINI + 'objective { perceptual = vgg(weight = 0, at = g0, checkpoint = "v.safetensors") }\n')))).not.toContain('perceptual');
    expect(keys(model(checkText(MINI + 'objective { perceptual = vgg(weight = 0.5, at = g0, checkpoint = "v.safetensors") }\n')))).toContain('perceptual');
    // Both summaries show that view; train keys that are unset are left out of the table.
    const line = (m: CheckedModel, what: string) => renderSummary(m, { layers: false }).split('\n').find((l) => l.startsWith(`${what}: `));
    expect(line(dcgan, 'objective')).toBe('objective: adversarial="bce"');
    expect(line(model(checkText(MINI)), 'train')).not.toContain('steps');
    expect(Object.keys((toJsonSummary(dcgan) as { objective: object }).objective).sort()).toEqual(['adversarial']);
  });
});
