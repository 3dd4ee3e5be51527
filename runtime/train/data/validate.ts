// Validation of a dataset directory before the first training step. Every
// problem found is collected (up to a cap), each naming the file and the line
// or index, so a user fixes them all in one go:
//   DIR/images/          PNG or JPEG files
//   DIR/embeddings.npy   float32 [N, D] or [N, K, D] (float64 converted)
//   DIR/captions.jsonl   one line per image: {"file", "captions": [K texts], "class"?}
// Images are checked by decoding their headers only (sharp's metadata()).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, normalize, sep } from 'node:path';
import sharp from 'sharp';
import { NpyError, readNpy } from './npy.ts';

/** The most problems listed; the rest are counted. */
const MAX_ERRORS = 50;
/** captions.jsonl larger than this is refused rather than read into memory. */
const MAX_CAPTIONS_BYTES = 1 << 30;

export class DataError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid dataset:\n  ${problems.join('\n  ')}`);
  }
}

export interface CaptionRecord {
  file: string;
  captions: string[];
  class?: number;
  /** Images of one group are hard negatives for each other (see OpenDatasetOptions.wrongSameGroup). */
  group?: number;
  /** 1-based line in captions.jsonl. */
  line: number;
}

export interface ValidDataset {
  dir: string;
  /** Absolute or dir-relative path of each image, in captions.jsonl order. */
  images: string[];
  records: CaptionRecord[];
  /** [N, K, D] (K = 1 for an [N, D] file). */
  embeddings: Float32Array;
  n: number;
  k: number;
  d: number;
  /** Class id per image, or null when captions.jsonl gives none. */
  classes: number[] | null;
  /** Group id per image (images that are hard negatives for each other), or null when none is given. */
  groups: number[] | null;
  /** Image sizes from the headers. */
  widths: number[];
  heights: number[];
}

export interface ValidateOptions {
  /** The model's `text` input width. */
  textDim?: number;
}

class Problems {
  readonly list: string[] = [];
  private dropped = 0;
  add(msg: string): void {
    if (this.list.length < MAX_ERRORS) this.list.push(msg);
    else this.dropped++;
  }
  get any(): boolean {
    return this.list.length > 0;
  }
  all(): string[] {
    return this.dropped ? [...this.list, `... and ${this.dropped} more problems`] : this.list;
  }
}

function parseCaptions(path: string, problems: Problems): CaptionRecord[] | null {
  if (!existsSync(path)) {
    problems.add(`${path}: missing (one JSON line per image: {"file": ..., "captions": [...], "class"?: int, "group"?: int})`);
    return null;
  }
  const size = statSync(path).size;
  if (size > MAX_CAPTIONS_BYTES) {
    problems.add(`${path}: ${size} bytes is over the ${MAX_CAPTIONS_BYTES}-byte limit`);
    return null;
  }
  const records: CaptionRecord[] = [];
  const seen = new Map<string, number>();
  const given = { class: 0, group: 0 };
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((text, i) => {
      const line = i + 1;
      if (text.trim() === '') return; // blank lines (e.g. the last) are skipped
      const where = `${path}:${line}`;
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch (e) {
        problems.add(`${where}: not valid JSON (${(e as Error).message})`);
        return;
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return problems.add(`${where}: expected an object {"file": ..., "captions": [...]}`);
      const o = v as Record<string, unknown>;
      if (typeof o.file !== 'string' || o.file === '') return problems.add(`${where}: "file" must be a non-empty string`);
      const norm = normalize(o.file);
      if (isAbsolute(o.file) || norm === '..' || norm.startsWith(`..${sep}`) || o.file.includes('\0')) {
        return problems.add(`${where}: "file" must be a path inside images/, got ${JSON.stringify(o.file)}`);
      }
      if (!Array.isArray(o.captions) || o.captions.length === 0 || !o.captions.every((c) => typeof c === 'string')) {
        return problems.add(`${where}: "captions" must be a non-empty array of strings`);
      }
      for (const k of ['class', 'group'] as const) {
        if (o[k] !== undefined && (!Number.isInteger(o[k]) || (o[k] as number) < 0)) {
          return problems.add(`${where}: "${k}" must be a non-negative integer, got ${JSON.stringify(o[k])}`);
        }
      }
      const before = seen.get(norm);
      if (before !== undefined) return problems.add(`${where}: ${JSON.stringify(o.file)} is already listed on line ${before}`);
      seen.set(norm, line);
      for (const k of ['class', 'group'] as const) if (o[k] !== undefined) given[k]++;
      records.push({ file: o.file, captions: o.captions as string[], class: o.class as number | undefined, group: o.group as number | undefined, line });
    });
  for (const k of ['class', 'group'] as const) {
    if (given[k] > 0 && given[k] < records.length) {
      const missing = records.find((r) => r[k] === undefined)!;
      problems.add(`${path}:${missing.line}: "${k}" is given for ${given[k]} of ${records.length} images; give it for all or none`);
    }
  }
  return records;
}

interface Embeddings {
  data: Float32Array;
  n: number;
  k: number;
  d: number;
}

function loadEmbeddings(path: string, problems: Problems): Embeddings | null {
  if (!existsSync(path)) {
    problems.add(`${path}: missing (float32 [N, D] or [N, K, D] caption embeddings)`);
    return null;
  }
  let a;
  try {
    a = readNpy(path);
  } catch (e) {
    if (e instanceof NpyError) {
      problems.add(e.message);
      return null;
    }
    throw e;
  }
  if (a.shape.length !== 2 && a.shape.length !== 3) {
    problems.add(`${path}: shape (${a.shape.join(', ')}) must be [N, D] or [N, K, D]`);
    return null;
  }
  const [n, k, d] = a.shape.length === 2 ? [a.shape[0], 1, a.shape[1]] : a.shape;
  if (n === 0 || k === 0 || d === 0) {
    problems.add(`${path}: shape (${a.shape.join(', ')}) has an empty dimension`);
    return null;
  }
  let bad = 0;
  for (let i = 0; i < a.data.length; i++) {
    if (!Number.isFinite(a.data[i])) {
      const img = Math.floor(i / (k * d));
      const cap = Math.floor(i / d) % k;
      if (bad < 5) problems.add(`${path}: ${Number.isNaN(a.data[i]) ? 'NaN' : 'Inf'} at image ${img}${a.shape.length === 3 ? `, caption ${cap}` : ''}, component ${i % d}`);
      bad++;
    }
  }
  if (bad > 5) problems.add(`${path}: ${bad} non-finite values in all`);
  return { data: a.data, n, k, d };
}

/** Reads and checks everything; returns the dataset or every problem found. */
export async function validateDataset(dir: string, opts: ValidateOptions = {}): Promise<{ dataset: ValidDataset | null; problems: string[] }> {
  const problems = new Problems();
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    return { dataset: null, problems: [`${dir}: not a directory (expected images/, embeddings.npy, captions.jsonl)`] };
  }
  const imagesDir = join(dir, 'images');
  const haveImagesDir = existsSync(imagesDir) && statSync(imagesDir).isDirectory();
  if (!haveImagesDir) problems.add(`${imagesDir}: missing (the PNG or JPEG images)`);
  const captionsPath = join(dir, 'captions.jsonl');
  const embPath = join(dir, 'embeddings.npy');
  const records = parseCaptions(captionsPath, problems);
  const emb = loadEmbeddings(embPath, problems);

  if (emb && opts.textDim !== undefined && emb.d !== opts.textDim) {
    problems.add(`${embPath}: embeddings are ${emb.d} wide, the model's text input takes ${opts.textDim}`);
  }
  if (records && emb) {
    if (records.length !== emb.n) {
      problems.add(`${embPath}: ${emb.n} embedding rows, but ${captionsPath} lists ${records.length} images`);
    }
    let kBad = 0;
    for (const r of records) {
      if (r.captions.length !== emb.k) {
        if (kBad < 5) problems.add(`${captionsPath}:${r.line}: ${r.captions.length} captions, but ${embPath} has ${emb.k} per image`);
        kBad++;
      }
    }
    if (kBad > 5) problems.add(`${captionsPath}: ${kBad} lines in all disagree with ${embPath} on the number of captions`);
  }

  const widths: number[] = [];
  const heights: number[] = [];
  const images: string[] = [];
  if (records && haveImagesDir) {
    const check = async (r: CaptionRecord, i: number) => {
      const path = join(imagesDir, r.file);
      images[i] = path;
      const where = `${path} (${captionsPath}:${r.line})`;
      if (!existsSync(path)) return problems.add(`${where}: image missing`);
      try {
        const m = await sharp(path).metadata();
        if (m.format !== 'png' && m.format !== 'jpeg') return problems.add(`${where}: ${m.format} image; only PNG and JPEG are supported`);
        if (!m.width || !m.height) return problems.add(`${where}: image has no size`);
        widths[i] = m.width;
        heights[i] = m.height;
      } catch (e) {
        problems.add(`${where}: unreadable image (${(e as Error).message})`);
      }
    };
    // Bounded concurrency: many small header reads.
    for (let s = 0; s < records.length; s += 64) await Promise.all(records.slice(s, s + 64).map((r, j) => check(r, s + j)));
  }

  if (problems.any || !records || !emb) return { dataset: null, problems: problems.all() };
  const classes = records.length > 0 && records[0].class !== undefined ? records.map((r) => r.class!) : null;
  const groups = records.length > 0 && records[0].group !== undefined ? records.map((r) => r.group!) : null;
  return { dataset: { dir, images, records, embeddings: emb.data, n: emb.n, k: emb.k, d: emb.d, classes, groups, widths, heights }, problems: [] };
}
