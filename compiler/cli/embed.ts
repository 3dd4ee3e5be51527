// `gan embed CAPTIONS.jsonl --weights CLIP.safetensors --vocab FILE --out
// embeddings.npy`: the caption texts of a dataset through CLIP's text tower
// (models/encoders/clip-vit-b32.gan, encoder `text`), L2-normalised as CLIP
// does, written as the dataset's embeddings.npy ([N, K, D], or [N, D] when
// K = 1). `gan sample --caption` embeds its texts with the same functions
// (openClipText, embedCaptions), so both give the same vectors.
//
// Everything that can be wrong with the inputs (files, vocabulary size,
// captions, checkpoint) is reported before any GPU work; the output is
// written only at the end, through a temporary file and a rename.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NetworkInfo } from '../check/model.ts';
import { CheckpointError, readCheckpoint } from '../encoders/checkpoint.ts';
import { encoderProgram, loadEncoder } from '../encoders/program.ts';
import type { ClipTokenizer } from '../../runtime/text/clip-tokenizer.ts';
import { loadClipTokenizer } from '../../runtime/text/vocab-files.ts';
import { writeNpy } from '../../runtime/train/data/npy.ts';
import { UserError } from './user-error.ts';

/** The bundled CLIP ViT-B/32, found beside this file so that `gan` works from any folder. */
const BUNDLED_CLIP = fileURLToPath(new URL('../../models/encoders/clip-vit-b32.gan', import.meta.url));
export const DEFAULT_EMBED_BATCH = 32;

// ---- reading captions.jsonl ----

/** The caption texts of a captions.jsonl: `texts[i]` holds line i's K captions, the same K on every line. */
export interface CaptionLines {
  texts: string[][];
  K: number;
}

const LINE_FORMAT = '{"file": "0001.png", "captions": ["...", ...]}';

/** Reads every line's "captions" (blank lines skipped); each problem names the file and line. */
export function readCaptionLines(path: string): CaptionLines {
  const text = readTextFile(path, 'captions.jsonl');
  const texts: string[][] = [];
  let firstLine = 0;
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    const where = `${path}:${i + 1}`;
    let rec: unknown;
    try {
      rec = JSON.parse(raw);
    } catch (e) {
      throw new UserError(`${where}: not valid JSON (${(e as Error).message}); expected one object per line, ${LINE_FORMAT}`);
    }
    const caps = typeof rec === 'object' && rec !== null && !Array.isArray(rec) ? (rec as { captions?: unknown }).captions : undefined;
    if (!Array.isArray(caps) || caps.length === 0 || !caps.every((c) => typeof c === 'string')) {
      throw new UserError(`${where}: expected ${LINE_FORMAT} with "captions" a non-empty array of strings`);
    }
    if (texts.length && caps.length !== texts[0].length) {
      throw new UserError(`${where}: ${caps.length} caption(s), but line ${firstLine} has ${texts[0].length}; every line needs the same number (the embeddings are [N, K, D])`);
    }
    if (!texts.length) firstLine = i + 1;
    texts.push(caps as string[]);
  });
  if (!texts.length) throw new UserError(`${path}: no caption lines (expected one per image, ${LINE_FORMAT})`);
  return { texts, K: texts[0].length };
}

function readTextFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(unreadable(path, what, e));
  }
}

function unreadable(path: string, what: string, e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? `${path}: no such file (${what})` : `${path}: cannot read ${what} (${code ?? (e as Error).message})`;
}

/** Fails unless `path` is a readable regular file; readers further down give rawer messages. */
function requireFile(path: string, what: string): void {
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
    closeSync(openSync(path, 'r'));
  } catch (e) {
    throw new UserError(unreadable(path, what, e));
  }
  if (!isFile) throw new UserError(`${path}: not a file (${what})`);
}

// ---- the text tower ----

export interface ClipTextOptions {
  /** The CLIP checkpoint (safetensors, OpenAI's tensor names). */
  weights: string;
  /** bpe_simple_vocab_16e6.txt.gz, or a vocab.json. */
  vocab: string;
  /** merges.txt for a vocab.json (default: beside it). */
  merges?: string;
  /** The .gan file declaring encoder `text` (default: the bundled CLIP ViT-B/32). */
  model?: string;
  preset?: string;
  set?: string[];
  /** The option that sets `set`, for messages (gan sample's is --clip-set). */
  setFlag?: string;
}

/** CLIP's text tower checked, its parameters read, and its tokenizer: everything short of the GPU. */
export interface ClipText {
  encoder: NetworkInfo;
  params: Map<string, Float32Array>;
  tokenizer: ClipTokenizer;
  /** Tokens per caption, start and end included (the length of the `tokens` input). */
  context: number;
  /** The embedding's width (the encoder's output). */
  dim: number;
  /** For messages: "models/encoders/clip-vit-b32.gan (encoder 'text')". */
  describe: string;
}

/**
 * Loads the vocabulary, checks the model file's encoder `text` (inputs
 * `tokens: [context]` and `eot: [1]`, a vector out), that every token id fits
 * its embedding table, and maps the checkpoint onto it. Throws UserError.
 */
export function openClipText(opts: ClipTextOptions): ClipText {
  const modelFile = opts.model ?? shownPath(BUNDLED_CLIP);
  requireFile(opts.weights, 'the CLIP checkpoint');
  let tokenizer: ClipTokenizer;
  try {
    tokenizer = loadClipTokenizer(opts.vocab, opts.merges);
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  let encoder: NetworkInfo;
  try {
    encoder = loadEncoder(modelFile, 'text', { preset: opts.preset, set: opts.set });
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  const describe = `${modelFile} (encoder 'text')`;
  const shape = (id: number | undefined) => (id === undefined ? undefined : encoder.graph.nodes[id].shape);
  const tokens = shape(encoder.inputs.tokens);
  const eot = shape(encoder.inputs.eot);
  const out = shape(encoder.output);
  if (tokens?.length !== 1 || eot?.length !== 1 || eot[0] !== 1 || out?.length !== 1) {
    throw new UserError(`${describe} must take tokens: [context] and eot: [1] and return a vector, as CLIP's text tower does`);
  }
  // The ids index the embedding table fed by `tokens`: a larger vocabulary would read past it.
  const table = encoder.graph.nodes.find((n) => n.op === 'embedding' && n.inputs[0] === encoder.inputs.tokens);
  const vocab = table?.attrs.vocab;
  if (typeof vocab === 'number' && tokenizer.vocabSize > vocab) {
    throw new UserError(
      `${opts.vocab}: the vocabulary has ${tokenizer.vocabSize} tokens, more than the ${vocab} of ${modelFile}'s 'vocab' param (change it with ${opts.setFlag ?? '--set'} vocab=N for a checkpoint made for this vocabulary)`,
    );
  }
  let params: Map<string, Float32Array>;
  try {
    params = readCheckpoint(encoder, opts.weights);
  } catch (e) {
    if (e instanceof CheckpointError) throw new UserError(e.message);
    throw new UserError(`${opts.weights}: not a usable CLIP checkpoint (${(e as Error).message})`);
  }
  return { encoder, params, tokenizer, context: tokens[0], dim: out[0], describe };
}

/** A path as the user would type it: relative to the working folder when it lies inside it. */
function shownPath(abs: string): string {
  const rel = relative(process.cwd(), abs);
  return rel.startsWith('..') ? abs : rel;
}

export interface EmbedRunOptions {
  /** Captions per GPU batch; the last batch is padded. */
  batch: number;
  /** Called after each batch with the captions embedded so far. */
  onProgress?: (done: number, total: number) => void;
  /** Checked between batches; aborting throws its reason. */
  signal?: AbortSignal;
}

export interface CaptionEmbeddings {
  /** [texts.length, dim], each row of unit length. */
  data: Float32Array;
  /** How many texts were longer than the context and cut (CLIP keeps the first context-1 tokens and an end-of-text). */
  truncated: number;
}

/**
 * Embeds `texts` with CLIP's text tower, as CLIP's encode_text followed by
 * its L2 normalisation: tokenized to the tower's context (truncated as
 * clip.tokenize(truncate=True) does), run at min(batch, texts) per dispatch.
 */
export async function embedCaptions(clip: ClipText, texts: readonly string[], opts: EmbedRunOptions): Promise<CaptionEmbeddings> {
  const { context: L, dim: D } = clip;
  if (!texts.length) return { data: new Float32Array(0), truncated: 0 };
  const batch = Math.min(opts.batch, texts.length);
  const data = new Float32Array(texts.length * D);
  let truncated = 0;
  const run = await encoderProgram(clip.encoder, { batch, params: clip.params });
  try {
    const tokens = new Float32Array(batch * L);
    const eot = new Float32Array(batch);
    for (let at = 0; at < texts.length; at += batch) {
      opts.signal?.throwIfAborted();
      const chunk = texts.slice(at, at + batch);
      const t = clip.tokenizer.tokenize(chunk, L);
      // Padding rows keep zeros: any valid ids; their outputs are dropped.
      tokens.fill(0);
      eot.fill(0);
      tokens.set(t.ids);
      eot.set(t.eot);
      for (const text of chunk) if (clip.tokenizer.encode(text).length + 2 > L) truncated++;
      const { y } = await run.run({ tokens, eot });
      chunk.forEach((text, r) => data.set(unitRow(y.subarray(r * D, (r + 1) * D), text), (at + r) * D));
      opts.onProgress?.(at + chunk.length, texts.length);
    }
  } finally {
    run.destroy();
  }
  return { data, truncated };
}

/** x / ||x||, as CLIP normalises its features; a zero or non-finite row means a broken checkpoint. */
function unitRow(x: Float32Array, text: string): Float32Array {
  let sq = 0;
  for (const v of x) sq += v * v;
  const norm = Math.sqrt(sq);
  if (!(norm > 0 && Number.isFinite(norm))) throw new UserError(`the caption ${JSON.stringify(text.slice(0, 60))} embeds to a vector of norm ${norm}: is the checkpoint broken?`);
  return x.map((v) => v / norm);
}

// ---- the command ----

export interface EmbedCliOptions {
  weights: string;
  vocab: string;
  merges?: string;
  out: string;
  model?: string;
  preset?: string;
  set?: string[];
  batch?: string;
}

export async function runEmbed(captionsPath: string, opts: EmbedCliOptions): Promise<number> {
  const batch = opts.batch === undefined ? DEFAULT_EMBED_BATCH : Number(opts.batch);
  if (!Number.isInteger(batch) || batch < 1) throw new UserError(`--batch must be a positive integer, got '${opts.batch}'`);
  checkOut(opts.out);
  const { texts, K } = readCaptionLines(captionsPath);
  const clip = openClipText(opts);
  const all = texts.flat();
  const N = texts.length;
  process.stdout.write(`embedding ${N} image(s) x ${K} caption(s) with ${clip.describe}: ${clip.context} tokens, ${clip.dim}-wide, batch ${Math.min(batch, all.length)}\n`);

  // Ctrl-C stops between batches with nothing written; a second one quits at once.
  const stop = new AbortController();
  const onSigint = () => {
    if (stop.signal.aborted) process.exit(130);
    stop.abort(new UserError('interrupted; nothing written'));
  };
  process.on('SIGINT', onSigint);
  const progress = new ProgressLine();
  let result: CaptionEmbeddings;
  try {
    result = await embedCaptions(clip, all, { batch, signal: stop.signal, onProgress: (done, total) => progress.update(done, total) });
  } catch (e) {
    progress.done();
    if (stop.signal.aborted && e === stop.signal.reason) {
      process.stderr.write(`gan: ${(e as Error).message}\n`);
      return 130;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
  }
  progress.done();
  const shape = K === 1 ? [N, clip.dim] : [N, K, clip.dim];
  writeNpyAtomic(opts.out, shape, result.data);
  if (result.truncated) process.stderr.write(`${truncationNote(result.truncated, all.length, clip.context)}\n`);
  process.stdout.write(`wrote ${opts.out}: float32 [${shape.join(', ')}], L2-normalised\n`);
  return 0;
}

export function truncationNote(truncated: number, total: number, context: number): string {
  return `note: ${truncated} of ${total} caption(s) longer than ${context} tokens, truncated as CLIP does (the last kept token becomes end-of-text)`;
}

/** Refuses an --out that cannot be written at the end, before the work. */
function checkOut(out: string): void {
  if (extname(out).toLowerCase() !== '.npy') throw new UserError(`--out must be a .npy file, got '${out}'`);
  let folder: boolean;
  try {
    folder = statSync(dirname(out)).isDirectory();
  } catch {
    folder = false;
  }
  if (!folder) throw new UserError(`--out: the folder '${dirname(out)}' does not exist`);
  let isDir = false;
  try {
    isDir = statSync(out).isDirectory();
  } catch {
    // absent: fine
  }
  if (isDir) throw new UserError(`--out: '${out}' is a folder`);
}

/**
 * writeNpy into a temporary file beside `path`, fsync, rename: `path` is the
 * old file or the whole new one, never half written (writeNpy alone is a
 * plain write).
 */
function writeNpyAtomic(path: string, shape: number[], data: Float32Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeNpy(tmp, shape, data);
    const fd = openSync(tmp, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new UserError(`${path}: cannot write (${(e as Error).message})`);
  }
}

/**
 * `embedded 1,024/5,000 captions` on stderr: rewritten in place on a
 * terminal (at most every 100 ms), otherwise a line at most every 5 s and at
 * the end, so logs stay short.
 */
class ProgressLine {
  private readonly tty = Boolean(process.stderr.isTTY);
  private readonly everyMs = this.tty ? 100 : 5000;
  private last = -Infinity;
  private open = false;

  update(done: number, total: number): void {
    const now = performance.now();
    if (done < total && now - this.last < this.everyMs) return;
    this.last = now;
    const text = `embedded ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} captions`;
    if (this.tty) {
      process.stderr.write(`\r\x1b[K${text}`);
      this.open = true;
    } else process.stderr.write(`${text}\n`);
  }

  done(): void {
    if (this.open) process.stderr.write('\n');
    this.open = false;
  }
}
