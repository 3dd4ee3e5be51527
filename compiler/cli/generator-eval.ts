// The generator alone, in eval mode (BatchNorm reads its running statistics),
// as one program: what `gan sample` and `gan eval colour` run. Weights come
// from a checkpoint (EMA by default) or, for tests, from Runtime.initState.
import type { CheckedModel, NetworkInfo } from '../check/model.ts';
import { lowerNetwork } from '../lower.ts';
import { compileProgram, layoutState, DEFAULT_LIMITS, type PlanLimits } from '../plan/index.ts';
import type { Plan, StateLayout } from '../../runtime/format/plan.ts';
import type { Program, Runtime } from '../../runtime/executor.ts';
import type { StageImages } from '../../runtime/train/samples.ts';
import { UserError } from './compile.ts';

export interface GeneratorEval {
  batch: number;
  layout: StateLayout;
  plan: Plan;
  /** The plan's feed of the model input `text` ([batch, D]). */
  textFeed: string;
  textDim: number;
  /** Stage name, output name and resolution, in generation order. */
  stages: { name: string; output: string; resolution: number }[];
}

export function generatorOf(model: CheckedModel): NetworkInfo {
  const g = model.networks.find((n) => n.kind === 'generator');
  if (!g) throw new UserError('the model has no generator');
  return g;
}

/** Lowers and plans the generator at `batch` with BatchNorm in eval mode; only the stage images are outputs. */
export function buildGeneratorEval(model: CheckedModel, batch: number, limits: PlanLimits = DEFAULT_LIMITS): GeneratorEval {
  const g = generatorOf(model);
  const lowered = lowerNetwork(g, { batch, training: false });
  const others = Object.keys(lowered.inputs).filter((k) => k !== 'text');
  if (others.length) throw new UserError(`the generator takes input(s) ${others.join(', ')} besides 'text'; sampling feeds only caption embeddings`);
  const text = lowered.inputs.text;
  if (!text) throw new UserError("the generator has no 'text' input to feed caption embeddings into");
  const outputs = Object.fromEntries(g.stages.map((s) => [`${s.name}.image`, lowered.outputs[`${s.name}.image`]]));
  const graph = lowered.builder.graph;
  const layout = layoutState(graph, limits);
  const plan = compileProgram(graph, layout, { name: 'G sample (eval)', outputs, updates: false }, limits);
  return {
    batch,
    layout,
    plan,
    textFeed: text.name!,
    textDim: text.shape[1],
    stages: g.stages.map((s) => ({ name: s.name, output: `${s.name}.image`, resolution: s.resolution })),
  };
}

/**
 * Writes generator weights into the runtime: every param and state buffer of
 * the eval layout must be in `values` (by layout name), with its size.
 */
export function writeGeneratorWeights(rt: Runtime, layout: StateLayout, values: Record<string, Float32Array>, what: string): void {
  const missing = [...Object.keys(layout.params), ...Object.keys(layout.state)].filter((k) => !(k in values));
  if (missing.length) throw new UserError(`${what} lacks ${missing.length} generator tensor(s): ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ', ...' : ''}`);
  const sizes = [...Object.entries(layout.params), ...Object.entries(layout.state)].filter(([k, slot]) => values[k].length * 4 !== slot.size);
  if (sizes.length) {
    const [k, slot] = sizes[0];
    throw new UserError(`${what}: tensor '${k}' has ${values[k].length} values, the model's has ${slot.size / 4}${sizes.length > 1 ? ` (and ${sizes.length - 1} more differ)` : ''}: another model or other params?`);
  }
  for (const name of Object.keys(layout.params)) rt.writeParam(name, values[name]);
  for (const name of Object.keys(layout.state)) rt.writeState(name, values[name]);
}

/**
 * Runs the generator over N caption embeddings ([N, D]) in batches of the
 * program's size (the last one padded by repeating rows: eval BatchNorm treats
 * samples independently) and returns every stage's N images. Noise is drawn on
 * the device from the runtime's seed, so a seed gives the same images.
 */
export async function generate(rt: Runtime, prog: Program, gen: GeneratorEval, text: Float32Array, n: number): Promise<StageImages[]> {
  const D = gen.textDim;
  if (text.length !== n * D) throw new UserError(`embeddings: expected ${n} x ${D} values, got ${text.length}`);
  const B = gen.batch;
  const out = gen.stages.map((s) => ({ name: s.name, images: new Float32Array(n * 3 * s.resolution * s.resolution) }));
  for (let start = 0; start < n; start += B) {
    const batch = new Float32Array(B * D);
    for (let i = 0; i < B; i++) batch.set(text.subarray(((start + i) % n) * D, ((start + i) % n) * D + D), i * D);
    const res = await rt.run(prog, { [gen.textFeed]: batch });
    const take = Math.min(B, n - start);
    gen.stages.forEach((s, k) => {
      const per = 3 * s.resolution * s.resolution;
      out[k].images.set(res[s.output].subarray(0, take * per), start * per);
    });
  }
  return out;
}
