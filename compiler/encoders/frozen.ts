// The frozen networks a model's objective needs (CLIP guidance: the CLIP image
// tower; the perceptual term: VGG16), resolved before anything compiles: the
// encoder files are checked, the image sizes and embedding widths matched to
// the model, and each checkpoint file must exist, or training stops here with
// the path and the term, and how to turn the term off.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { CheckedModel, NetworkInfo } from '../check/model.ts';
import { objectiveInEffect } from '../check/settings.ts';
import { loadEncoder } from './program.ts';

export type FrozenTermKind = 'clip' | 'perceptual';

export interface FrozenTerm {
  kind: FrozenTermKind;
  /** The objective setting it comes from (for messages). */
  setting: 'clip_guidance' | 'perceptual';
  weight: number;
  /** The generator stage whose images it judges. */
  at: string;
  /** The encoder, named for its parameters (`clip_image/...`, `vgg16/...`). */
  encoder: NetworkInfo;
  /** The checkpoint's absolute path. */
  checkpoint: string;
}

export class FrozenTermError extends Error {
  override name = 'FrozenTermError';
}

const ENCODERS: Record<FrozenTermKind, { setting: FrozenTerm['setting']; encoder: string; as: string; what: string }> = {
  clip: { setting: 'clip_guidance', encoder: 'image', as: 'clip_image', what: "the CLIP image tower's" },
  perceptual: { setting: 'perceptual', encoder: 'features', as: 'vgg16', what: "VGG16's" },
};

/** The frozen terms in effect (weight > 0), each with its encoder checked and its checkpoint found. */
export function frozenTerms(m: CheckedModel): FrozenTerm[] {
  const o = objectiveInEffect(m.objective, m.networks);
  const g = m.networks.find((n) => n.kind === 'generator');
  const out: FrozenTerm[] = [];
  const terms = [['clip', o.clip_guidance], ['perceptual', o.perceptual]] as const;
  for (const [kind, cfg] of terms) {
    if (!cfg || !g) continue;
    const info = ENCODERS[kind];
    const off = `--set objective.${info.setting}=off`;
    const checkpoint = resolve(cfg.checkpoint);
    if (!existsSync(checkpoint)) {
      throw new FrozenTermError(
        `objective.${info.setting} needs ${info.what} weights, and '${cfg.checkpoint}' does not exist (${checkpoint}). ` +
          `Give its path with --set 'objective.${info.setting}=${kind === 'clip' ? 'clip' : 'vgg'}(weight = ${cfg.weight}, at = ${cfg.at}, checkpoint = "PATH")', or train without it: ${off}`,
      );
    }
    const stage = g.stages.find((s) => s.name === cfg.at)!;
    const file = resolve(dirname(m.file), cfg.model);
    // VGG's convolutions take any size (a multiple of 8); CLIP resizes to its own.
    const set = kind === 'perceptual' ? [`res=${stage.resolution}`] : [];
    let enc: NetworkInfo;
    try {
      enc = loadEncoder(file, info.encoder, { set, ...(cfg.encoder_preset ? { preset: cfg.encoder_preset } : {}) });
    } catch (e) {
      throw new FrozenTermError(`objective.${info.setting}: ${(e as Error).message}`);
    }
    if (kind === 'clip') {
      const text = g.inputs.text === undefined ? undefined : g.graph.nodes[g.inputs.text].shape;
      const emb = enc.graph.nodes[enc.output!].shape;
      if (!text || text.length !== 1 || text[0] !== emb[0]) {
        throw new FrozenTermError(
          `objective.clip_guidance compares the CLIP image embedding [${emb.join(', ')}] of ${file} with the model's text input ${text ? `[${text.join(', ')}]` : '(it has none)'}: they must be the same width (CLIP text embeddings of the same model)`,
        );
      }
    }
    out.push({ kind, setting: info.setting, weight: cfg.weight, at: cfg.at, encoder: { ...enc, name: info.as }, checkpoint });
  }
  return out;
}
