// The generator alone, in eval mode (BatchNorm reads its running statistics),
// as one program: what `gan sample`, `gan eval colour` and generated modules
// run (runtime/module/generator.ts runs it). Weights come from a checkpoint
// (EMA by default) or, for tests, from Runtime.initState.
import type { CheckedModel, NetworkInfo } from '../check/model.ts';
import { lowerNetwork } from '../lower.ts';
import { compileProgram, layoutState, DEFAULT_LIMITS, type PlanLimits } from '../plan/index.ts';
import type { StateLayout } from '../../runtime/format/plan.ts';
import type { Program, Runtime } from '../../runtime/executor.ts';
import { GeneratorInputError, runGenerator, writeWeights, type GeneratorSpec, type StageImages } from '../../runtime/module/generator.ts';
import { UserError } from './user-error.ts';

/** The generator's eval program and what a caller needs to run it (runtime/module/generator.ts). */
export type GeneratorEval = GeneratorSpec;

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
    model: model.name,
    batch,
    layout,
    plan,
    textFeed: text.name!,
    textDim: text.shape[1],
    stages: g.stages.map((s) => ({ name: s.name, output: `${s.name}.image`, resolution: s.resolution })),
  };
}

/** runtime/module/generator.ts's writeWeights, its input errors as user errors. */
export function writeGeneratorWeights(rt: Runtime, layout: StateLayout, values: Record<string, Float32Array>, what: string): void {
  try {
    writeWeights(rt, layout, values, what);
  } catch (e) {
    throw asUserError(e);
  }
}

/** runtime/module/generator.ts's runGenerator (every stage's n images, in runs of the program's batch), its input errors as user errors. */
export async function generate(rt: Runtime, prog: Program, gen: GeneratorEval, text: Float32Array, n: number): Promise<StageImages[]> {
  try {
    return await runGenerator(rt, prog, gen, text, n);
  } catch (e) {
    throw asUserError(e);
  }
}

/** A generator's input error (runtime/module/generator.ts) as the CLI's user error; anything else unchanged. */
export const asUserError = (e: unknown) => (e instanceof GeneratorInputError ? new UserError(e.message) : e);
