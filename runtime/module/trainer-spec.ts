// The trainer's spec (runtime/train/trainer.ts TrainerSpec: the D and G step
// programs with their roles, the layout, every setting) as JSON, so a
// generated module carries what `gan train` runs and trains without the
// compiler. Plans and layout are validated on reading.
import { parseLayout, parsePlan, serializeLayout, serializePlan } from '../format/plan.ts';
import type { TrainerSpec } from '../train/trainer.ts';

export function serializeTrainerSpec(spec: TrainerSpec): string {
  const step = (p: TrainerSpec['dStep']) => ({ ...p, plan: JSON.parse(serializePlan(p.plan)) });
  return JSON.stringify({ ...spec, layout: JSON.parse(serializeLayout(spec.layout)), dStep: step(spec.dStep), gStep: step(spec.gStep) });
}

export function parseTrainerSpec(text: string): TrainerSpec {
  const o = JSON.parse(text) as TrainerSpec & { layout: unknown };
  const layout = parseLayout(JSON.stringify(o.layout));
  const step = (p: TrainerSpec['dStep'], what: string) => {
    if (!p || !Array.isArray(p.feeds) || !Array.isArray(p.outputs)) throw new Error(`trainer spec: ${what} needs plan, feeds and outputs`);
    return { ...p, plan: parsePlan(JSON.stringify(p.plan), layout) };
  };
  for (const k of ['groups', 'optim', 'n_critic', 'd_every', 'g_ema', 'ema_mode', 'batch', 'seed', 'unsupported'] as const) {
    if (o[k] === undefined) throw new Error(`trainer spec: missing '${k}'`);
  }
  return { ...o, layout, dStep: step(o.dStep, 'dStep'), gStep: step(o.gStep, 'gStep') };
}
