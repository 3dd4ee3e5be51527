// `gan train MODEL.gan --data DIR ...`: check -> compile -> train. The CLI
// builds the trainer's JSON spec from the compiler's GanSteps and the model's
// TrainConfig; everything after that (the loop, checkpoints, metrics) lives in
// runtime/train/ and knows no syntax.
import { createHash } from 'node:crypto';
import type { CheckedModel } from '../check/model.ts';
import type { GanSteps } from '../gan-step.ts';
import type { EmaMode } from '../../runtime/train/ema.ts';
import type { TrainerSpec } from '../../runtime/train/trainer.ts';

/** The trainer's spec: the two programs with their roles, and every setting the loop reads, resolved. */
export function trainerSpec(m: CheckedModel, steps: GanSteps, opts: { batch?: number; seed?: number; emaMode?: EmaMode } = {}): TrainerSpec {
  const t = m.train;
  const batch = opts.batch ?? t.batch;
  const text = steps.dStep.feeds.find((f) => f.role.role === 'text');
  if (text && text.shape[0] !== batch) throw new Error(`internal: step programs built for batch ${text.shape[0]}, not ${batch}`);
  return {
    layout: steps.layout,
    dStep: steps.dStep,
    gStep: steps.gStep,
    groups: steps.groups,
    optim: { g: { ...t.g }, d: Object.fromEntries(steps.groups.d.map((d) => [d, { ...t.d }])) },
    n_critic: t.n_critic,
    d_every: t.d_every,
    g_ema: t.g_ema,
    ema_mode: opts.emaMode ?? 'bias_corrected',
    batch,
    seed: opts.seed ?? t.seed,
    unsupported: steps.unsupported,
  };
}

/** The model's sources (the file and its imports) with one hash over them all, for the sidecar. */
export function recordSources(sources: Map<string, string>): { sources: Record<string, string>; sources_sha256: string } {
  const entries = [...sources.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const h = createHash('sha256');
  for (const [k, v] of entries) h.update(`${k}\0${v}\0`);
  return { sources: Object.fromEntries(entries), sources_sha256: h.digest('hex') };
}
