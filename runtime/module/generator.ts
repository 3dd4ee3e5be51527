// A trained generator as an application runs it: the eval-mode plan with its
// layout and the facts a caller needs (GeneratorSpec, plain JSON), its
// weights, and generate(). `gan sample`, the trainer's sample grids and the
// TypeScript modules `gan compile --emit ts` writes all run this one path.
// Browser-safe: no Node modules here (the device comes from the caller or
// runtime/device.ts).
import type { GpuContext } from '../device.ts';
import { Runtime, type Program } from '../executor.ts';
import { parseLayout, parsePlan, serializeLayout, serializePlan, type Plan, type StateLayout } from '../format/plan.ts';

/** Everything about a compiled generator but its weights. */
export interface GeneratorSpec {
  /** The model's name (`gan MSClipGAN`). */
  model: string;
  /** Samples per program run; any number is generated in runs of this many. */
  batch: number;
  layout: StateLayout;
  plan: Plan;
  /** The plan's feed of the caption embeddings ([batch, textDim]). */
  textFeed: string;
  textDim: number;
  /** Stage name, plan output and resolution, in generation order. */
  stages: { name: string; output: string; resolution: number }[];
}

/** One stage's N images, NCHW float32 in [-1, 1]. */
export interface StageImages {
  name: string;
  images: Float32Array;
}

/** Wrong input from a caller (a length, a shape, a missing tensor): the message names the input and both shapes. */
export class GeneratorInputError extends Error {
  override name = 'GeneratorInputError';
}

export function serializeGeneratorSpec(spec: GeneratorSpec): string {
  const { layout, plan, ...rest } = spec;
  return JSON.stringify({ ...rest, layout: JSON.parse(serializeLayout(layout)), plan: JSON.parse(serializePlan(plan)) });
}

/** Reads a spec written by serializeGeneratorSpec, validating its layout and plan. */
export function parseGeneratorSpec(text: string): GeneratorSpec {
  const o = JSON.parse(text) as Omit<GeneratorSpec, 'layout' | 'plan'> & { layout: unknown; plan: unknown };
  const layout = parseLayout(JSON.stringify(o.layout));
  const plan = parsePlan(JSON.stringify(o.plan), layout);
  if (typeof o.model !== 'string' || !Number.isInteger(o.batch) || typeof o.textFeed !== 'string' || !Number.isInteger(o.textDim) || !Array.isArray(o.stages)) {
    throw new Error('generator spec: expected model, batch, textFeed, textDim and stages');
  }
  if (!(o.textFeed in plan.feeds)) throw new Error(`generator spec: the plan has no feed '${o.textFeed}'`);
  for (const s of o.stages) if (!(s.output in plan.outputs)) throw new Error(`generator spec: the plan has no output '${s.output}' for stage '${s.name}'`);
  return { model: o.model, batch: o.batch, textFeed: o.textFeed, textDim: o.textDim, stages: o.stages, layout, plan };
}

/** Refuses `values` unless they hold every param and state buffer of `layout` (by layout name) at its size. */
export function checkWeights(layout: StateLayout, values: Record<string, Float32Array>, what: string): void {
  const slots = [...Object.entries(layout.params), ...Object.entries(layout.state)];
  const missing = slots.filter(([k]) => !(k in values)).map(([k]) => k);
  if (missing.length) throw new GeneratorInputError(`${what} lacks ${missing.length} generator tensor(s): ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ', ...' : ''}`);
  const sizes = slots.filter(([k, slot]) => values[k].length * 4 !== slot.size);
  if (sizes.length) {
    const [k, slot] = sizes[0];
    throw new GeneratorInputError(`${what}: tensor '${k}' has ${values[k].length} values, the model's has ${slot.size / 4}${sizes.length > 1 ? ` (and ${sizes.length - 1} more differ)` : ''}: another model or other params?`);
  }
}

/** Writes every param and state buffer of `layout` from `values` (by layout name), refusing missing or misfitting tensors. */
export function writeWeights(rt: Runtime, layout: StateLayout, values: Record<string, Float32Array>, what: string): void {
  checkWeights(layout, values, what);
  for (const name of Object.keys(layout.params)) rt.writeParam(name, values[name]);
  for (const name of Object.keys(layout.state)) rt.writeState(name, values[name]);
}

/**
 * Runs the generator over n caption embeddings ([n, D]) in runs of the
 * program's batch (the last one padded by repeating rows: eval BatchNorm
 * treats samples independently) and returns every stage's n images. Noise is
 * drawn on the device from the runtime's seed, so a seed gives the same images.
 */
export async function runGenerator(rt: Runtime, prog: Program, spec: GeneratorSpec, text: Float32Array, n: number): Promise<StageImages[]> {
  const D = spec.textDim;
  if (!Number.isInteger(n) || n < 1) throw new GeneratorInputError(`n must be a positive whole number, got ${n}`);
  if (text.length !== n * D) throw new GeneratorInputError(`text: expected [${n}, ${D}] (${n * D} values), got ${text.length} values${text.length % D === 0 ? ` ([${text.length / D}, ${D}])` : ''}`);
  const B = spec.batch;
  const out = spec.stages.map((s) => ({ name: s.name, images: new Float32Array(n * 3 * s.resolution * s.resolution) }));
  for (let start = 0; start < n; start += B) {
    const batch = new Float32Array(B * D);
    for (let i = 0; i < B; i++) batch.set(text.subarray(((start + i) % n) * D, ((start + i) % n) * D + D), i * D);
    const res = await rt.run(prog, { [spec.textFeed]: batch });
    const take = Math.min(B, n - start);
    spec.stages.forEach((s, k) => {
      const per = 3 * s.resolution * s.resolution;
      out[k].images.set(res[s.output].subarray(0, take * per), start * per);
    });
  }
  return out;
}

export interface GenerateOptions {
  /** Caption embeddings, [n, textDim] row-major (L2-normalised, as the model was trained with). */
  text: Float32Array;
  /** Samples (default: as many as `text` holds rows). */
  n?: number;
  /** Device noise seed (default 0): the same seed, text and weights give the same images. */
  seed?: number;
}

/** A generator on a device with its weights, ready to generate. */
export class Generator {
  private constructor(
    readonly spec: GeneratorSpec,
    readonly rt: Runtime,
    private readonly prog: Program,
  ) {}

  /** Compiles the spec's kernels on the device and writes the weights (every param and BatchNorm statistic, by layout name). */
  static async create(spec: GeneratorSpec, weights: Record<string, Float32Array>, opts: { ctx?: GpuContext; what?: string } = {}): Promise<Generator> {
    const rt = await Runtime.create(spec.layout, { ctx: opts.ctx });
    try {
      writeWeights(rt, spec.layout, weights, opts.what ?? 'the weights');
      return new Generator(spec, rt, await rt.load(spec.plan));
    } catch (e) {
      rt.destroy();
      throw e;
    }
  }

  /** Every stage's images for the captions. */
  async generate(o: GenerateOptions): Promise<StageImages[]> {
    const D = this.spec.textDim;
    const n = o.n ?? o.text.length / D;
    if (o.n === undefined && !Number.isInteger(n)) throw new GeneratorInputError(`text: expected [n, ${D}], got ${o.text.length} values (not a multiple of ${D})`);
    this.rt.setSeed(o.seed ?? 0);
    return runGenerator(this.rt, this.prog, this.spec, o.text, n);
  }

  destroy(): void {
    this.rt.destroy();
  }
}
