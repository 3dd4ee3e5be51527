// A frozen encoder as a runnable program: checked from its .gan file, lowered
// at a batch size, compiled, its parameters filled from a checkpoint. Used by
// `gan embed` and the encoder tests; the trainer lowers encoders into G's step.
import { grad } from '../autodiff.ts';
import type { NetworkInfo } from '../check/model.ts';
import { checkFile } from '../index.ts';
import { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/graph.ts';
import { lowerNetwork } from '../lower.ts';
import { compileProgram, layoutState, planLimits } from '../plan/index.ts';
import { getDevice } from '../../runtime/device.ts';
import { Runtime, type Program } from '../../runtime/executor.ts';
import { renderShort } from '../../grammar/render.ts';

export interface EncoderFileOptions {
  preset?: string;
  set?: string[];
}

/** The encoder `name` of a .gan file, checked; throws with the diagnostics or the names it has. */
export function loadEncoder(file: string, name: string, opts: EncoderFileOptions = {}): NetworkInfo {
  const r = checkFile(file, opts);
  if (!r.model) {
    const lookup = (f: string) => r.sources.get(f);
    throw new Error(`${file} does not check:\n${r.diagnostics.filter((d) => d.severity === 'error').map((d) => renderShort(d, lookup)).join('\n')}`);
  }
  const enc = r.model.encoders.find((e) => e.name === name);
  if (!enc) {
    const names = r.model.encoders.map((e) => e.name);
    throw new Error(`${file} has no encoder '${name}'${names.length ? ` (it declares ${names.join(', ')})` : ' (it declares no encoders)'}`);
  }
  return enc;
}

export interface EncoderRun {
  readonly encoder: NetworkInfo;
  readonly batch: number;
  /** The input shapes with the batch in front, by name. */
  readonly inputs: Record<string, number[]>;
  /** Output `y` [batch, ...]; with `gy` fed, also `grad/NAME` for the input named in `inputGrad`. */
  run(feeds: Record<string, Float32Array>): Promise<Record<string, Float32Array>>;
  destroy(): void;
}

/**
 * Compiles `enc` at `batch` and fills its parameters (by path, e.g.
 * `conv2d.0/weight`, as checkpointParams gives them; any left out keep their
 * initial values). With `inputGrad`, the program also returns the gradient of
 * sum(y * gy) with respect to that input.
 */
export async function encoderProgram(enc: NetworkInfo, opts: { batch: number; params?: Map<string, Float32Array>; inputGrad?: string }): Promise<EncoderRun> {
  const b = new GraphBuilder();
  const lowered = lowerNetwork(enc, { batch: opts.batch, training: false }, b);
  const y = lowered.outputs.out;
  const outputs: Record<string, Value> = { y };
  if (opts.inputGrad) {
    const x = lowered.inputs[opts.inputGrad];
    if (!x) throw new Error(`encoder '${enc.name}' has no input '${opts.inputGrad}' (inputs: ${Object.keys(lowered.inputs).join(', ')})`);
    const gy = b.input('gy', y.shape);
    const [g] = grad(b, b.sum(b.mul(y, gy)), [x]);
    outputs[`grad/${opts.inputGrad}`] = g ?? b.expand(b.scalar(0), x.shape);
  }
  const ctx = await getDevice();
  const limits = planLimits(ctx.info.limits, ctx.info.features);
  const layout = layoutState(b.graph, limits);
  const plan = compileProgram(b.graph, layout, { name: `encoder_${enc.name}`, outputs }, limits);
  const rt = await Runtime.create(layout, { ctx });
  rt.initState(0);
  for (const [path, data] of opts.params ?? []) rt.writeParam(`${enc.name}/${path}`, data);
  const prog: Program = await rt.load(plan);
  const inputs = Object.fromEntries(Object.entries(lowered.inputs).map(([k, v]) => [k, [...v.shape]]));
  return {
    encoder: enc,
    batch: opts.batch,
    inputs,
    run: (feeds) => rt.run(prog, feeds),
    destroy: () => rt.destroy(),
  };
}
