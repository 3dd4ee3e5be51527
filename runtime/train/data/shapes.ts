// `gan data shapes`: a synthetic image-caption dataset of coloured shapes on
// plain backgrounds, in the dataset format (images/, captions.jsonl,
// embeddings.npy). Shapes are drawn into a raw RGB buffer (4x4 supersampled
// for smooth edges) and written as PNG by sharp; each image gets K phrasings
// of its caption, embedded by the stand-in text encoder (text-encoder.ts).
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeNpy } from './npy.ts';
import { Rng } from './rng.ts';
import { BACKGROUNDS, SHAPE_COLOURS, SHAPE_KINDS, SHAPE_SIZE_FRACTION, SHAPE_SIZES } from './shapes-palette.ts';
import { embedCaption } from './text-encoder.ts';

export interface ShapesOptions {
  out: string;
  /** Images (default 1000). */
  n?: number;
  /** Side in pixels (default 64). */
  size?: number;
  seed?: number;
  /** Embedding width (default 512, the width of models/ms-clip-gan.gan's `text`). */
  dim?: number;
}

export interface ShapeSpec {
  colour: number;
  kind: number;
  size: number;
  background: number;
  /** Centre, in pixels. */
  cx: number;
  cy: number;
}

/** The K = 3 phrasings of one image's caption. */
export function shapeCaptions(s: ShapeSpec): string[] {
  const size = SHAPE_SIZES[s.size];
  const colour = SHAPE_COLOURS[s.colour].name;
  const kind = SHAPE_KINDS[s.kind];
  const bg = BACKGROUNDS[s.background].name;
  return [`a ${size} ${colour} ${kind} on a ${bg} background`, `a ${colour} ${kind}, ${size}, in front of a ${bg} background`, `there is a ${size} ${colour} ${kind} on ${bg}`];
}

/** Class id: colour and shape together (the "wrong" image differs in at least one). */
export function shapeClass(s: ShapeSpec): number {
  return s.colour * SHAPE_KINDS.length + s.kind;
}

export function randomShape(rng: Rng, side: number): ShapeSpec {
  const colour = rng.int(SHAPE_COLOURS.length);
  const kind = rng.int(SHAPE_KINDS.length);
  const size = rng.int(SHAPE_SIZES.length);
  const background = rng.int(BACKGROUNDS.length);
  const half = (SHAPE_SIZE_FRACTION[SHAPE_SIZES[size]] * side) / 2;
  const span = side - 2 * half - 2;
  return { colour, kind, size, background, cx: 1 + half + rng.float() * span, cy: 1 + half + rng.float() * span };
}

/** Whether the point (x, y) is inside the shape. */
function inside(s: ShapeSpec, side: number, x: number, y: number): boolean {
  const h = (SHAPE_SIZE_FRACTION[SHAPE_SIZES[s.size]] * side) / 2;
  const dx = x - s.cx;
  const dy = y - s.cy;
  switch (SHAPE_KINDS[s.kind]) {
    case 'circle':
      return dx * dx + dy * dy <= h * h;
    case 'square':
      return Math.abs(dx) <= h * 0.85 && Math.abs(dy) <= h * 0.85;
    default: {
      // Upward triangle with its apex at the top of the box and base at the bottom.
      if (dy > h || dy < -h) return false;
      const halfWidth = (h * (dy + h)) / (2 * h);
      return Math.abs(dx) <= halfWidth;
    }
  }
}

/** The shape drawn over its background: RGB, side x side, 8 bits, row-major. */
export function drawShape(s: ShapeSpec, side: number, jitter: number): Buffer {
  const fg = SHAPE_COLOURS[s.colour].rgb;
  const bg = BACKGROUNDS[s.background].rgb.map((c) => Math.min(255, Math.max(0, c + jitter)));
  const out = Buffer.alloc(side * side * 3);
  const SS = 4;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      let hits = 0;
      for (let j = 0; j < SS; j++) for (let i = 0; i < SS; i++) if (inside(s, side, x + (i + 0.5) / SS, y + (j + 0.5) / SS)) hits++;
      const a = hits / (SS * SS);
      for (let c = 0; c < 3; c++) out[(y * side + x) * 3 + c] = Math.round(a * fg[c] + (1 - a) * bg[c]);
    }
  }
  return out;
}

export interface ShapesResult {
  n: number;
  size: number;
  dim: number;
  k: number;
  dir: string;
}

export async function generateShapes(opts: ShapesOptions): Promise<ShapesResult> {
  const n = opts.n ?? 1000;
  const side = opts.size ?? 64;
  const dim = opts.dim ?? 512;
  const seed = opts.seed ?? 0;
  for (const [name, v, min] of [['n', n, 1], ['size', side, 8], ['dim', dim, 1]] as const) {
    if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer >= ${min}, got ${v}`);
  }
  if (existsSync(opts.out) && readdirSync(opts.out).length > 0 && !existsSync(join(opts.out, 'shapes.json'))) {
    throw new Error(`${opts.out} exists and is not empty (and is not a shapes dataset); choose another --out`);
  }
  rmSync(join(opts.out, 'images'), { recursive: true, force: true });
  mkdirSync(join(opts.out, 'images'), { recursive: true });
  const rng = Rng.seeded(seed, 0x5a4e);
  const K = 3;
  const lines: string[] = [];
  const emb = new Float32Array(n * K * dim);
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const s = randomShape(rng, side);
    const jitter = rng.int(31) - 15;
    const file = `${String(i).padStart(5, '0')}.png`;
    const caps = shapeCaptions(s);
    caps.forEach((c, k) => emb.set(embedCaption(c, dim), (i * K + k) * dim));
    lines.push(
      JSON.stringify({ file, captions: caps, class: shapeClass(s), group: s.background, colour: SHAPE_COLOURS[s.colour].name, shape: SHAPE_KINDS[s.kind], size: SHAPE_SIZES[s.size], background: BACKGROUNDS[s.background].name }),
    );
    const raw = drawShape(s, side, jitter);
    writes.push(sharp(raw, { raw: { width: side, height: side, channels: 3 } }).png().toFile(join(opts.out, 'images', file)));
    if (writes.length >= 32) await Promise.all(writes.splice(0));
  }
  await Promise.all(writes);
  writeFileSync(join(opts.out, 'captions.jsonl'), lines.join('\n') + '\n');
  writeNpy(join(opts.out, 'embeddings.npy'), [n, K, dim], emb);
  writeFileSync(
    join(opts.out, 'shapes.json'),
    JSON.stringify({ generator: 'gan data shapes', n, size: side, seed, dim, captionsPerImage: K, sizeFraction: SHAPE_SIZE_FRACTION, encoder: 'stand-in: L2-normalised sum of seeded per-word vectors (runtime/train/data/text-encoder.ts), not CLIP' }, null, 2) + '\n',
  );
  return { n, size: side, dim, k: K, dir: opts.out };
}
