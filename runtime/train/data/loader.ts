// The training batch source, as StackGAN-v2 loads images: each image is
// resized (bilinear) so its shorter side is 76/64 of the largest stage, then
// randomly cropped to the largest stage and randomly flipped left-right; one
// copy per stage resolution is made by downscaling that crop, values in
// [-1, 1], NCHW float32. One of the image's K captions is drawn per sample;
// the "wrong" image is another image, of another class when classes are given
// (and, for a share wrongSameGroup of them, of the real image's own group).
//
// Every random choice comes from the seed: the order of each epoch from a
// stream seeded by (seed, epoch), the per-sample choices from one stream whose
// four words are part of the state. All choices of a batch are drawn before
// any image work, so getState/setState continue the exact same sequence even
// with the next batch in flight.
import sharp from 'sharp';
import { Rng, type RngWords } from './rng.ts';
import type { BatchSource, DataState, OpenDatasetOptions, TrainBatch } from './types.ts';
import { DataError, validateDataset, type ValidDataset } from './validate.ts';

/** Decode every image at open when their resized copies fit in this much memory. */
export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;

interface PreparedImage {
  data: Buffer; // RGB, row-major
  width: number;
  height: number;
}

interface SampleChoice {
  index: number;
  x: number;
  y: number;
  flip: boolean;
}

interface BatchPlan {
  real: SampleChoice[];
  wrong: SampleChoice[];
  captions: number[];
}

interface Cursor {
  epoch: number;
  cursor: number;
  rng: RngWords;
}

const STATE_VERSION = 1;

export class DatasetLoader implements BatchSource {
  readonly size: number;
  readonly textDim: number;
  private readonly resolutions: number[];
  private readonly largest: number;
  /** The shorter side after the first resize (76/64 of the largest stage). */
  private readonly base: number;
  private readonly dims: { width: number; height: number }[];
  private cache: (PreparedImage | undefined)[] | null = null;
  private rng: Rng;
  private epoch = 0;
  private cursor = 0;
  private order: number[] | null = null;
  private orderEpoch = -1;
  private pending: { promise: Promise<TrainBatch>; after: Cursor } | null = null;
  private delivered: Cursor | null = null;
  /** Indices by class, for drawing a wrong image of another class. */
  private readonly otherClassCount: number[] | null;
  /** Per image, how many images of its group could be its wrong image (another class, or another image). */
  private readonly groupWrongCount: number[] | null;

  constructor(
    private readonly ds: ValidDataset,
    private readonly opts: OpenDatasetOptions & { cacheBytes?: number },
  ) {
    this.size = ds.n;
    this.textDim = ds.d;
    this.resolutions = [...new Set(opts.resolutions)].sort((a, b) => a - b);
    this.largest = this.resolutions[this.resolutions.length - 1];
    this.base = Math.floor((this.largest * 76) / 64);
    this.dims = ds.widths.map((w, i) => {
      const h = ds.heights[i];
      const s = this.base / Math.min(w, h);
      return { width: Math.max(this.base, Math.round(w * s)), height: Math.max(this.base, Math.round(h * s)) };
    });
    this.rng = Rng.seeded(opts.seed, 0);
    if (ds.classes) {
      const perClass = new Map<number, number>();
      for (const c of ds.classes) perClass.set(c, (perClass.get(c) ?? 0) + 1);
      this.otherClassCount = ds.classes.map((c) => ds.n - perClass.get(c)!);
    } else this.otherClassCount = null;
    const share = opts.wrongSameGroup ?? 0;
    if (!(share >= 0 && share <= 1)) throw new DataError([`wrongSameGroup must be in [0, 1], got ${share}`]);
    if (share > 0 && !ds.groups) {
      throw new DataError([`${ds.dir}/captions.jsonl: a share ${share} of wrong images from the same group needs a "group" id on every line (none given)`]);
    }
    if (share > 0 && ds.groups) {
      const key = (i: number) => `${ds.groups![i]}/${ds.classes ? ds.classes[i] : i}`;
      const perGroup = new Map<number, number>();
      const perKey = new Map<string, number>();
      for (let i = 0; i < ds.n; i++) {
        perGroup.set(ds.groups[i], (perGroup.get(ds.groups[i]) ?? 0) + 1);
        perKey.set(key(i), (perKey.get(key(i)) ?? 0) + 1);
      }
      this.groupWrongCount = ds.groups.map((g, i) => perGroup.get(g)! - perKey.get(key(i))!);
    } else this.groupWrongCount = null;
  }

  /** Decodes and resizes every image into memory when they fit under the cap. */
  async warm(): Promise<void> {
    const bytes = this.dims.reduce((a, d) => a + d.width * d.height * 3, 0);
    if (bytes > (this.opts.cacheBytes ?? DEFAULT_CACHE_BYTES)) return;
    const cache: PreparedImage[] = new Array(this.size);
    for (let s = 0; s < this.size; s += 32) {
      await Promise.all(Array.from({ length: Math.min(32, this.size - s) }, async (_, j) => (cache[s + j] = await this.decode(s + j))));
    }
    this.cache = cache;
  }

  /** Whether every image is held decoded in memory. */
  get cached(): boolean {
    return this.cache !== null;
  }

  private async decode(i: number): Promise<PreparedImage> {
    const { width, height } = this.dims[i];
    const { data, info } = await sharp(this.ds.images[i])
      .removeAlpha()
      .toColourspace('srgb')
      .resize(width, height, { kernel: 'linear', fit: 'fill' })
      .raw()
      .toBuffer({ resolveWithObject: true })
      .catch((e: Error) => {
        throw new DataError([`${this.ds.images[i]}: cannot decode (${e.message})`]);
      });
    if (info.channels !== 3 || info.width !== width || info.height !== height) {
      throw new DataError([`${this.ds.images[i]}: decoded to ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x3`]);
    }
    return { data, width, height };
  }

  private epochOrder(): number[] {
    if (this.orderEpoch !== this.epoch) {
      this.order = Rng.seeded(this.opts.seed, 1000 + this.epoch).permutation(this.size);
      this.orderEpoch = this.epoch;
    }
    return this.order!;
  }

  private choose(index: number): SampleChoice {
    const { width, height } = this.dims[index];
    const x = this.rng.int(width - this.largest + 1);
    const y = this.rng.int(height - this.largest + 1);
    return { index, x, y, flip: this.rng.int(2) === 1 };
  }

  /** Another image; of another class when classes are given and one exists; of the same group for a share wrongSameGroup. */
  private wrongIndex(index: number): number {
    const n = this.size;
    if (n === 1) return index;
    const classes = this.ds.classes;
    // Drawn only when a share is set, so runs without one keep their exact stream.
    if (this.groupWrongCount && this.groupWrongCount[index] > 0 && this.rng.float() < this.opts.wrongSameGroup!) {
      const groups = this.ds.groups!;
      let r = this.rng.int(this.groupWrongCount[index]);
      for (let j = 0; j < n; j++) {
        if (groups[j] === groups[index] && (classes ? classes[j] !== classes[index] : j !== index) && r-- === 0) return j;
      }
      throw new Error('unreachable: same-group count out of step');
    }
    if (!classes || this.otherClassCount![index] === 0) {
      const r = this.rng.int(n - 1);
      return r >= index ? r + 1 : r;
    }
    // The r-th image (in index order) whose class differs.
    let r = this.rng.int(this.otherClassCount![index]);
    const own = classes[index];
    for (let j = 0; j < n; j++) {
      if (classes[j] !== own && r-- === 0) return j;
    }
    throw new Error('unreachable: wrong-class count out of step');
  }

  /** Draws every random choice of the next batch (drop-last epochs, as StackGAN's loader). */
  private plan(): BatchPlan {
    const B = this.opts.batch;
    if (this.cursor + B > this.size) {
      this.epoch++;
      this.cursor = 0;
    }
    const order = this.epochOrder();
    const plan: BatchPlan = { real: [], wrong: [], captions: [] };
    for (let s = 0; s < B; s++) {
      const index = order[this.cursor + s];
      plan.captions.push(this.rng.int(this.ds.k));
      plan.real.push(this.choose(index));
      plan.wrong.push(this.choose(this.wrongIndex(index)));
    }
    this.cursor += B;
    return plan;
  }

  private snapshot(): Cursor {
    return { epoch: this.epoch, cursor: this.cursor, rng: this.rng.words() };
  }

  private async image(i: number): Promise<PreparedImage> {
    return this.cache?.[i] ?? this.decode(i);
  }

  /** Crops and flips one sample, then writes each resolution's copy into its batch slot. */
  private async render(c: SampleChoice, slot: number, out: Map<number, Float32Array>): Promise<void> {
    const img = await this.image(c.index);
    const L = this.largest;
    const crop = Buffer.alloc(L * L * 3);
    for (let y = 0; y < L; y++) {
      const row = ((c.y + y) * img.width + c.x) * 3;
      if (!c.flip) img.data.copy(crop, y * L * 3, row, row + L * 3);
      else for (let x = 0; x < L; x++) img.data.copy(crop, (y * L + (L - 1 - x)) * 3, row + x * 3, row + x * 3 + 3);
    }
    for (const R of this.resolutions) {
      const px = R === L ? crop : await sharp(crop, { raw: { width: L, height: L, channels: 3 } }).resize(R, R, { kernel: 'linear', fit: 'fill' }).raw().toBuffer();
      const dst = out.get(R)!;
      const plane = R * R;
      const base = slot * 3 * plane;
      for (let p = 0; p < plane; p++) {
        for (let ch = 0; ch < 3; ch++) dst[base + ch * plane + p] = px[p * 3 + ch] / 127.5 - 1;
      }
    }
  }

  private async build(plan: BatchPlan): Promise<TrainBatch> {
    const B = plan.real.length;
    const D = this.ds.d;
    const K = this.ds.k;
    const alloc = () => new Map(this.resolutions.map((R) => [R, new Float32Array(B * 3 * R * R)] as [number, Float32Array]));
    const real = alloc();
    const wrong = alloc();
    const text = new Float32Array(B * D);
    plan.real.forEach((c, s) => text.set(this.ds.embeddings.subarray((c.index * K + plan.captions[s]) * D, (c.index * K + plan.captions[s] + 1) * D), s * D));
    await Promise.all([...plan.real.map((c, s) => this.render(c, s, real)), ...plan.wrong.map((c, s) => this.render(c, s, wrong))]);
    return { text, real, wrong, indices: plan.real.map((c) => c.index), captions: plan.captions };
  }

  private launch(): { promise: Promise<TrainBatch>; after: Cursor } {
    const plan = this.plan();
    const promise = this.build(plan);
    promise.catch(() => {}); // a prefetch nobody awaits must not crash the process
    return { promise, after: this.snapshot() };
  }

  next(): Promise<TrainBatch> {
    const current = this.pending ?? this.launch();
    this.delivered = current.after;
    this.pending = this.launch(); // prepared while the caller's step runs
    return current.promise;
  }

  getState(): DataState {
    const c = this.delivered ?? this.snapshot();
    return { version: STATE_VERSION, size: this.size, seed: this.opts.seed, epoch: c.epoch, cursor: c.cursor, rng: [...c.rng] };
  }

  setState(s: DataState): void {
    const bad = (why: string) => new Error(`data state: ${why}`);
    if (s.version !== STATE_VERSION) throw bad(`version ${String(s.version)} is not ${STATE_VERSION}`);
    if (s.size !== this.size) throw bad(`saved for a dataset of ${String(s.size)} images, this one has ${this.size}`);
    if (s.seed !== this.opts.seed) throw bad(`saved with seed ${String(s.seed)}, opened with ${this.opts.seed}`);
    const rng = s.rng;
    if (!Array.isArray(rng) || rng.length !== 4 || !rng.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff)) throw bad('rng must be four 32-bit words');
    if (!Number.isInteger(s.epoch) || (s.epoch as number) < 0 || !Number.isInteger(s.cursor) || (s.cursor as number) < 0 || (s.cursor as number) > this.size) {
      throw bad('epoch and cursor must be non-negative integers, cursor at most the dataset size');
    }
    this.epoch = s.epoch as number;
    this.cursor = s.cursor as number;
    this.rng = new Rng(rng as RngWords);
    this.pending = null; // its choices came from the old state
    this.delivered = null;
  }

  async close(): Promise<void> {
    const p = this.pending;
    this.pending = null;
    this.cache = null;
    if (p) await p.promise.catch(() => {});
  }
}

/** Validates the dataset (throwing DataError with every problem), then opens it. */
export async function openDataset(dir: string, opts: OpenDatasetOptions & { cacheBytes?: number }): Promise<DatasetLoader> {
  const problems: string[] = [];
  if (!Number.isInteger(opts.batch) || opts.batch < 1) problems.push(`batch must be a positive integer, got ${opts.batch}`);
  if (opts.resolutions.length === 0 || !opts.resolutions.every((r) => Number.isInteger(r) && r >= 1)) problems.push(`resolutions must be positive integers, got [${opts.resolutions.join(', ')}]`);
  if (problems.length) throw new DataError(problems);
  const { dataset, problems: found } = await validateDataset(dir, { textDim: opts.textDim });
  if (!dataset) throw new DataError(found);
  if (opts.batch > dataset.n) throw new DataError([`${dir}: batch ${opts.batch} is larger than the dataset (${dataset.n} images)`]);
  const loader = new DatasetLoader(dataset, opts);
  await loader.warm();
  return loader;
}
