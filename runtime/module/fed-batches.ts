// Batches from the caller's own data pipeline, for a training loop written
// against a generated module (`gan compile --emit ts`): each batch names its
// images by stage (`real.g0`), as the module's typed batch interface does, and
// is checked against the compiled programs before it reaches the device. No
// Node modules: a browser can train this way too.
import type { BatchSource, DataState, TrainBatch } from '../train/data/types.ts';

/** One iteration's data: caption embeddings and, per stage name, real and mismatched images. */
export interface StageBatch {
  /** [batch, textDim] caption embeddings, row after row. */
  text: Float32Array;
  /** Per stage: [batch, 3, R, R] real images in [-1, 1], R the stage's resolution. */
  real: Record<string, Float32Array>;
  /** Per stage: images mismatched with the text ("wrong" pairs), same layout. */
  wrong: Record<string, Float32Array>;
}

/** Where fed batches come from: called once per batch the trainer needs (n_critic may take several per iteration). */
export interface StageBatchFeed {
  next(): StageBatch | Promise<StageBatch>;
}

/** What a fed batch must match: the compiled batch size, text width and stages. */
export interface FedShape {
  batch: number;
  textDim: number;
  stages: readonly { name: string; resolution: number }[];
}

/** A fed batch that does not fit the programs; the message names the field and both shapes. */
export class BatchInputError extends Error {
  override name = 'BatchInputError';
}

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

function checkArray(v: unknown, what: string, shape: number[]): Float32Array {
  const n = shape.reduce((p, d) => p * d, 1);
  if (!(v instanceof Float32Array)) throw new BatchInputError(`${what}: expected a Float32Array ${fmt(shape)}, got ${v === undefined ? 'nothing' : Object.prototype.toString.call(v).slice(8, -1)}`);
  if (v.length !== n) throw new BatchInputError(`${what}: expected ${fmt(shape)} (${n} values), got ${v.length} values`);
  return v;
}

/** Checks a fed batch against the programs and turns it into the trainer's form (images by resolution). */
export function toTrainBatch(b: StageBatch, shape: FedShape, index: number): TrainBatch {
  const where = `batch ${index}`;
  if (typeof b !== 'object' || b === null) throw new BatchInputError(`${where}: expected { text, real, wrong }, got ${String(b)}`);
  const text = checkArray(b.text, `${where}: text`, [shape.batch, shape.textDim]);
  const real = new Map<number, Float32Array>();
  const wrong = new Map<number, Float32Array>();
  for (const [kind, into] of [['real', real], ['wrong', wrong]] as const) {
    const given = b[kind];
    if (typeof given !== 'object' || given === null) throw new BatchInputError(`${where}: ${kind}: expected images per stage (${shape.stages.map((s) => s.name).join(', ')})`);
    const known = new Set(shape.stages.map((s) => s.name));
    for (const k of Object.keys(given)) if (!known.has(k)) throw new BatchInputError(`${where}: ${kind}.${k}: no such stage (the stages are ${[...known].join(', ')})`);
    for (const s of shape.stages) into.set(s.resolution, checkArray(given[s.name], `${where}: ${kind}.${s.name}`, [shape.batch, 3, s.resolution, s.resolution]));
  }
  for (let i = 0; i < text.length; i++) {
    if (!Number.isFinite(text[i])) throw new BatchInputError(`${where}: text[${Math.floor(i / shape.textDim)}, ${i % shape.textDim}] is ${text[i]}`);
  }
  const indices = Array.from({ length: shape.batch }, (_, i) => index * shape.batch + i);
  return { text, real, wrong, indices, captions: indices.map(() => 0) };
}

/**
 * A BatchSource over the caller's batches. Its state is only a count: a
 * resumed run continues the weights, optimizers and noise exactly, and the
 * caller's pipeline is theirs to resume.
 */
export class FedBatches implements BatchSource {
  readonly size = 0;
  readonly textDim: number;
  private taken = 0;

  constructor(
    private readonly feed: StageBatchFeed,
    private readonly shape: FedShape,
  ) {
    this.textDim = shape.textDim;
  }

  async next(): Promise<TrainBatch> {
    const b = await this.feed.next();
    return toTrainBatch(b, this.shape, this.taken++);
  }

  getState(): DataState {
    return { fed: this.taken };
  }

  setState(s: DataState): void {
    this.taken = typeof s.fed === 'number' ? s.fed : 0;
  }

  async close(): Promise<void> {}
}
