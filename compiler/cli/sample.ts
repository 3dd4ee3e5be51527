// `gan sample RUN_OR_CHECKPOINT --embeddings FILE.npy [--captions FILE.jsonl]
// [--n N] [--stage S] [--seed S] [--live] --out grid.png | DIR/`: generates
// with the generator alone, BatchNorm in eval mode, from a checkpoint's EMA
// weights (or its live weights with --live). A .gan file instead of a
// checkpoint samples the model's seeded initial weights: a check of the
// pipeline, not of a trained model. `--caption TEXT` (repeatable, with
// --weights and --vocab of a CLIP checkpoint) replaces --embeddings: the texts
// are embedded as `gan embed` embeds them (embed.ts).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path';
import type { CheckedModel } from '../check/model.ts';
import { checkFile } from '../index.ts';
import { initialValues } from '../../runtime/init.ts';
import { readNpy } from '../../runtime/train/data/npy.ts';
import { loadCheckpoint, type Checkpoint } from '../../runtime/train/checkpoint.ts';
import { gridHtml, writeGridPng, writeImagePngs, type GridLayout, type StageImages } from '../../runtime/train/samples.ts';
import { UserError } from './user-error.ts';
import { printDiagnostics } from './diagnostics.ts';
import { DEFAULT_EMBED_BATCH, embedCaptions, openClipText, truncationNote } from './embed.ts';
import { asUserError, buildGeneratorEval, generatorOf } from './generator-eval.ts';
import { Generator } from '../../runtime/module/generator.ts';
import { recordSources } from './train.ts';

/** A model and the generator weights to sample it with. */
export interface SampleSource {
  model: CheckedModel;
  /** Generator params and state buffers by layout name. */
  weights(layout: { params: Record<string, unknown>; state: Record<string, unknown> }): Record<string, Float32Array>;
  /** What the weights are, for the user ("checkpoint runs/x/ckpt-100 (EMA)"). */
  describe: string;
}

export interface SourceOptions {
  set?: string[];
  preset?: string;
  live?: boolean;
  /** For a .gan file: the initialisation seed (default 0). */
  initSeed?: number;
}

/** Opens what `gan sample` and `gan eval` read from: a checkpoint or run folder, or a .gan file. */
export function openSampleSource(target: string, opts: SourceOptions): SampleSource {
  return extname(target) === '.gan' ? modelSource(target, opts) : checkpointSource(target, opts);
}

/** A .gan file: the model's seeded initial weights (a check of the pipeline). */
function modelSource(target: string, opts: SourceOptions): SampleSource {
  const r = checkFile(target, { set: opts.set, preset: opts.preset });
  printDiagnostics(r);
  if (!r.model) throw new UserError(`'${target}' does not check`);
  const seed = opts.initSeed ?? 0;
  return {
    model: r.model,
    describe: `${target}: initial weights (seed ${seed}), untrained`,
    weights: (layout) => {
      const init = initialValues(layout as Parameters<typeof initialValues>[0], seed);
      return { ...init.params, ...init.state };
    },
  };
}

interface RecordedModel {
  file: string;
  preset?: string | null;
  set?: string[];
}

/**
 * A checkpoint (a run folder: its newest): the model re-checked from the
 * sources its sidecar recorded (written to a temporary folder with their
 * relative layout, so imports resolve), with the preset and overrides it was
 * trained with; weights 'ema:NAME' (or 'param:NAME' with --live) and the
 * BatchNorm statistics 'state:NAME'.
 */
function checkpointSource(target: string, opts: SourceOptions): SampleSource {
  let ck: Checkpoint;
  try {
    ck = loadCheckpoint(target);
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  const side = ck.sidecar;
  const model = side.model as RecordedModel | undefined;
  const sources = side.sources as Record<string, string> | undefined;
  if (!model?.file || !sources || typeof sources !== 'object') throw new UserError(`${ck.path}: the sidecar does not record the model's sources`);
  if (side.sources_sha256 !== undefined && recordSources(new Map(Object.entries(sources))).sources_sha256 !== side.sources_sha256) {
    throw new UserError(`${ck.path}: the recorded sources do not match their hash`);
  }
  const mainKey = Object.keys(sources).find((k) => resolve(k) === resolve(model.file));
  if (!mainKey) throw new UserError(`${ck.path}: the sidecar's sources lack the model file '${model.file}'`);
  // Mirror the sources under a temporary folder, relative to their common ancestor.
  const abs = Object.keys(sources).map((k) => resolve(k));
  let root = dirname(abs[0]);
  while (!abs.every((p) => p.startsWith(root.endsWith(sep) ? root : root + sep))) root = dirname(root);
  const tmp = mkdtempSync(join(tmpdir(), 'gan-ckpt-model-'));
  let mainPath = '';
  try {
    for (const [k, text] of Object.entries(sources)) {
      const to = join(tmp, relative(root, resolve(k)));
      mkdirSync(dirname(to), { recursive: true });
      writeFileSync(to, text);
      if (k === mainKey) mainPath = to;
    }
    const r = checkFile(mainPath, { set: model.set ?? [], preset: model.preset ?? undefined });
    printDiagnostics(r);
    if (!r.model) throw new UserError(`${ck.path}: the recorded model '${model.file}' no longer checks`);
    return {
      model: r.model,
      describe: `${ck.path} (step ${side.step}, ${opts.live ? 'live' : 'EMA'} weights)`,
      weights: (layout) => {
        const values: Record<string, Float32Array> = {};
        const tensor = (key: string): Float32Array | undefined => {
          const t = ck.tensors[key];
          return t && t.data instanceof Float32Array ? t.data : undefined;
        };
        const noEma = !opts.live && Object.keys(layout.params).some((n) => !tensor(`ema:${n}`));
        if (noEma) throw new UserError(`${ck.path} has no EMA weights for the generator (trained with g_ema = 0?); use --live for the live weights`);
        for (const n of Object.keys(layout.params)) {
          const t = tensor(`${opts.live ? 'param' : 'ema'}:${n}`);
          if (t) values[n] = t;
        }
        for (const n of Object.keys(layout.state)) {
          const t = tensor(`state:${n}`);
          if (t) values[n] = t;
        }
        return values;
      },
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The caption texts of a captions.jsonl (one line per image: { "file": ..., "captions": [K texts] }). */
export function readCaptionTable(path: string): string[][] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const out: string[][] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      throw new UserError(`${path}:${i + 1}: not a JSON line`);
    }
    const caps = (rec as { captions?: unknown } | null)?.captions;
    if (!Array.isArray(caps) || caps.length === 0 || !caps.every((c) => typeof c === 'string')) throw new UserError(`${path}:${i + 1}: expected { "captions": ["...", ...] }`);
    out.push(caps as string[]);
  });
  return out;
}

/** Caption embeddings as [N, K, D] (K = 1 for an [N, D] file). */
export interface EmbeddingTable {
  N: number;
  K: number;
  D: number;
  data: Float32Array;
}

export function readEmbeddingTable(path: string): EmbeddingTable {
  let a;
  try {
    a = readNpy(path);
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  if (a.shape.length === 2) return { N: a.shape[0], K: 1, D: a.shape[1], data: a.data };
  if (a.shape.length === 3) return { N: a.shape[0], K: a.shape[1], D: a.shape[2], data: a.data };
  throw new UserError(`${path}: embeddings must be [N, D] or [N, K, D], got [${a.shape.join(', ')}]`);
}

/** The rows (image i, caption k) of the table, as [picks, D]. */
export function pickRows(t: EmbeddingTable, picks: { i: number; k: number }[]): Float32Array {
  const out = new Float32Array(picks.length * t.D);
  picks.forEach(({ i, k }, j) => {
    const at = (i * t.K + Math.min(k, t.K - 1)) * t.D;
    out.set(t.data.subarray(at, at + t.D), j * t.D);
  });
  return out;
}

export function positiveInt(name: string, s: string | undefined, fallback: number): number {
  if (s === undefined) return fallback;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`${name} must be a positive integer, got '${s}'`);
  return n;
}

export function seedOf(s: string | undefined): number {
  if (s === undefined) return 0;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new UserError(`--seed must be an integer in 0..2^32-1, got '${s}'`);
  return n;
}

/**
 * Generates every stage's images for the given embedding rows ([n, D]) from a
 * source's generator: compiles it in eval mode at min(n, 16) per batch and
 * runs it through the API a generated module runs (runtime/module/generator.ts
 * Generator), with device noise seeded by `seed`.
 */
export async function sampleImages(src: SampleSource, text: Float32Array, n: number, seed: number): Promise<StageImages[]> {
  const gen = buildGeneratorEval(src.model, Math.min(n, 16));
  if (text.length !== n * gen.textDim) throw new UserError(`the embeddings are ${text.length / n} wide, the model's 'text' input is ${gen.textDim}`);
  let g: Generator | undefined;
  try {
    g = await Generator.create(gen, src.weights(gen.layout), { what: src.describe });
    return await g.generate({ text, n, seed });
  } catch (e) {
    throw asUserError(e);
  } finally {
    g?.destroy();
  }
}

export interface SampleCliOptions extends SourceOptions {
  embeddings?: string;
  /** Texts to embed with CLIP instead of reading --embeddings. */
  caption?: string[];
  /** With --caption: the CLIP checkpoint, vocabulary and text-tower model. */
  weights?: string;
  vocab?: string;
  merges?: string;
  clipModel?: string;
  clipPreset?: string;
  clipSet?: string[];
  captions?: string;
  n?: string;
  stage?: string;
  seed?: string;
  out: string;
}

const isDirOut = (out: string) => out.endsWith('/') || (existsSync(out) && statSync(out).isDirectory());

export async function runSample(target: string, opts: SampleCliOptions): Promise<number> {
  const n = positiveInt('--n', opts.n, 16);
  const seed = seedOf(opts.seed);
  if (!isDirOut(opts.out) && extname(opts.out).toLowerCase() !== '.png') throw new UserError(`--out must be a .png file or a folder ending in '/', got '${opts.out}'`);
  const given = opts.caption ?? [];
  if (given.length && opts.embeddings) throw new UserError('give --embeddings or --caption, not both');
  if (!given.length && !opts.embeddings) throw new UserError('give --embeddings FILE.npy, or --caption TEXT (repeatable) with --weights and --vocab of a CLIP checkpoint');
  if (given.length && opts.captions) throw new UserError('--captions names the texts of --embeddings; with --caption the texts are given');
  if (given.length && (!opts.weights || !opts.vocab)) throw new UserError('--caption needs --weights CLIP.safetensors and --vocab FILE (the CLIP vocabulary) to embed its texts');
  const src = openSampleSource(target, opts);
  let emb: EmbeddingTable;
  let captions: string[][] | undefined;
  if (given.length) {
    emb = await embedCaptionTexts(src, given, opts);
    captions = given.map((t) => [t]);
  } else {
    emb = readEmbeddingTable(opts.embeddings!);
    captions = opts.captions ? readCaptionTable(opts.captions) : undefined;
    if (captions && captions.length !== emb.N) throw new UserError(`${opts.captions} has ${captions.length} lines, ${opts.embeddings} has ${emb.N} images`);
  }
  // Caption 0 of the first n images, cycled when there are fewer (each copy gets its own noise).
  const picks = Array.from({ length: n }, (_, j) => ({ i: j % emb.N, k: 0 }));
  const stages = await sampleImages(src, pickRows(emb, picks), n, seed);
  const wanted = opts.stage === 'all' ? stages : [opts.stage ? stages.find((s) => s.name === opts.stage) : stages.at(-1)];
  if (wanted.some((s) => !s)) throw new UserError(`no stage '${opts.stage}' (stages: ${stages.map((s) => s.name).join(', ')}, or 'all')`);
  const chosen = wanted as StageImages[];
  const texts = picks.map(({ i }) => captions?.[i][0] ?? `embedding row ${i}`);
  const written: string[] = [];
  if (isDirOut(opts.out)) {
    for (const s of chosen) {
      const suffix = chosen.length > 1 ? `-${s.name}` : '';
      written.push(...(await writeImagePngs(opts.out, s.images, n, (i) => `${String(i).padStart(4, '0')}${suffix}.png`)));
    }
  } else {
    const base = opts.out.slice(0, -extname(opts.out).length);
    const grids: { name: string; file: string; layout: GridLayout }[] = [];
    for (const s of chosen) {
      const path = chosen.length > 1 ? `${base}-${s.name}.png` : opts.out;
      grids.push({ name: s.name, file: basename(path), layout: await writeGridPng(path, s.images, n) });
      written.push(path);
    }
    // The captions beside the grid: an HTML page showing each image with its text.
    if (captions) {
      writeFileSync(`${base}.html`, gridHtml(`${src.describe}, seed ${seed}`, grids, texts));
      written.push(`${base}.html`);
    }
  }
  process.stdout.write(`sampled ${n} image(s) from ${src.describe}, seed ${seed}, BatchNorm in eval mode\n`);
  process.stdout.write(written.length <= 4 ? written.map((w) => `  ${w}\n`).join('') : `  ${written.length} files in ${join(opts.out)}\n`);
  return 0;
}

/**
 * The --caption texts as an [N, 1, D] table, embedded as `gan embed` does;
 * the CLIP output width is checked against the model's `text` input before
 * anything runs.
 */
async function embedCaptionTexts(src: SampleSource, texts: string[], opts: SampleCliOptions): Promise<EmbeddingTable> {
  const clip = openClipText({ weights: opts.weights!, vocab: opts.vocab!, merges: opts.merges, model: opts.clipModel, preset: opts.clipPreset, set: opts.clipSet, setFlag: '--clip-set' });
  const g = generatorOf(src.model);
  const shape = g.inputs.text === undefined ? undefined : g.graph.nodes[g.inputs.text].shape;
  if (!shape) throw new UserError("the model's generator has no 'text' input to feed caption embeddings into");
  if (shape.length !== 1 || shape[0] !== clip.dim) {
    throw new UserError(`${clip.describe} gives ${clip.dim}-wide embeddings, the model's 'text' input is ${shape.length === 1 ? `${shape[0]} wide` : `[${shape.join(', ')}]`}`);
  }
  const { data, truncated } = await embedCaptions(clip, texts, { batch: DEFAULT_EMBED_BATCH });
  if (truncated) process.stderr.write(`${truncationNote(truncated, texts.length, clip.context)}\n`);
  return { N: texts.length, K: 1, D: clip.dim, data };
}
