// Sample grids: a PNG per generator stage (N images tiled into a grid) plus an
// HTML page beside them that shows each image with its caption under it. The
// PNGs hold only pixels, so they decode back to exactly what was generated
// (rounded to 8 bits); the captions live in the HTML, which crops each tile
// out of the grid with CSS rather than duplicating the images.
//
// writeSamples is the trainer's hook: every N steps it writes
// samples/step-<step>-<stage>.png and step-<step>.html, copies the newest to
// samples/latest-<stage>.png and points samples/index.html at them. The noise
// and captions behind those images are chosen once per run (sampleFixture),
// so successive grids show the same prompts as training goes on.
import { copyFile, mkdir, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import sharp from 'sharp';
import { normalSource } from '../init.ts';

/** One stage's images: [N, 3, R, R], values in [-1, 1] (a generator's tanh output). */
export type { StageImages } from '../module/generator.ts';
import type { StageImages } from '../module/generator.ts';

export interface GridOptions {
  /** Images per row (default: ceil(sqrt(N)), a square grid). */
  columns?: number;
  /** Pixels between tiles (default 2). */
  pad?: number;
  /** Page title of the HTML (default: the file prefix's name). */
  title?: string;
  /** Display size of one tile in the HTML, in CSS pixels (default: max(R, 96)); the PNG keeps R. */
  tilePx?: number;
}

export interface GridLayout {
  n: number;
  resolution: number;
  columns: number;
  rows: number;
  pad: number;
  width: number;
  height: number;
}

/** The grid's geometry for N images of R x R pixels. */
export function gridLayout(n: number, resolution: number, opts: { columns?: number; pad?: number } = {}): GridLayout {
  if (n < 1) throw new Error('a sample grid needs at least one image');
  const columns = Math.max(1, Math.min(n, opts.columns ?? Math.ceil(Math.sqrt(n))));
  const rows = Math.ceil(n / columns);
  const pad = opts.pad ?? 2;
  return { n, resolution, columns, rows, pad, width: columns * resolution + (columns + 1) * pad, height: rows * resolution + (rows + 1) * pad };
}

/** The resolution R of [n, 3, R, R] images held in `data`; throws when the length does not fit. */
export function imageResolution(data: Float32Array, n: number, what = 'images'): number {
  const r = Math.round(Math.sqrt(data.length / (3 * n)));
  if (r < 1 || n * 3 * r * r !== data.length) throw new Error(`${what}: ${data.length} values are not ${n} RGB square images`);
  return r;
}

/** A [-1, 1] value as an 8-bit channel (round to nearest, clamped). */
export function toByte(v: number): number {
  const x = Math.round(((v + 1) / 2) * 255);
  return x > 0 ? (x > 255 ? 255 : x) : 0; // also maps NaN and -0 to 0
}

/** Tiles [N, 3, R, R] images into one interleaved RGB buffer (white gaps). */
export function tileImages(images: Float32Array, layout: GridLayout): Uint8Array {
  const { n, resolution: R, columns, pad, width, height } = layout;
  const out = new Uint8Array(width * height * 3).fill(255);
  const plane = R * R;
  for (let i = 0; i < n; i++) {
    const x0 = pad + (i % columns) * (R + pad);
    const y0 = pad + Math.floor(i / columns) * (R + pad);
    const base = i * 3 * plane;
    for (let y = 0; y < R; y++) {
      for (let x = 0; x < R; x++) {
        const o = ((y0 + y) * width + x0 + x) * 3;
        for (let c = 0; c < 3; c++) out[o + c] = toByte(images[base + c * plane + y * R + x]);
      }
    }
  }
  return out;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The HTML page: per stage, each tile cropped from the stage's PNG with its caption under it. */
export function gridHtml(title: string, stages: { name: string; file: string; layout: GridLayout }[], captions: string[], tilePx?: number): string {
  const sections = stages.map(({ name, file, layout }) => {
    const { resolution: R, pad, columns, width, height } = layout;
    const scale = (tilePx ?? Math.max(R, 96)) / R;
    const cells = Array.from({ length: layout.n }, (_, i) => {
      const x = pad + (i % columns) * (R + pad);
      const y = pad + Math.floor(i / columns) * (R + pad);
      const style = [
        `width:${R * scale}px`,
        `height:${R * scale}px`,
        `background:url('${encodeURI(file)}') ${-x * scale}px ${-y * scale}px / ${width * scale}px ${height * scale}px no-repeat`,
      ].join(';');
      return `<figure><div class="img" style="${style}"></div><figcaption>${escapeHtml(captions[i] ?? '')}</figcaption></figure>`;
    });
    return `<h2>${escapeHtml(name)} (${R}&times;${R}) <a href="${encodeURI(file)}">png</a></h2>\n<div class="grid">${cells.join('\n')}</div>`;
  });
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body { font: 13px sans-serif; margin: 1em; }
.grid { display: flex; flex-wrap: wrap; gap: 8px; }
figure { margin: 0; width: min-content; }
.img { image-rendering: pixelated; }
figcaption { font-size: 11px; max-width: 12em; }
</style></head>
<body><h1>${escapeHtml(title)}</h1>
${sections.join('\n')}
</body></html>
`;
}

/** Writes `data` to `path` through a temporary file and a rename, so a reader never sees half a file. */
async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/** Writes N images ([N, 3, R, R] in [-1, 1]) as one grid PNG at exactly `path`. */
export async function writeGridPng(path: string, images: Float32Array, n: number, opts: { columns?: number; pad?: number } = {}): Promise<GridLayout> {
  const layout = gridLayout(n, imageResolution(images, n), opts);
  const png = await sharp(tileImages(images, layout), { raw: { width: layout.width, height: layout.height, channels: 3 } }).png().toBuffer();
  await mkdir(dirname(path), { recursive: true });
  await writeAtomic(path, png);
  return layout;
}

/** Writes each of N images ([N, 3, R, R] in [-1, 1]) as its own PNG, `dir/name(i)`; returns the paths. */
export async function writeImagePngs(dir: string, images: Float32Array, n: number, name: (i: number) => string): Promise<string[]> {
  const R = imageResolution(images, n);
  const one = gridLayout(1, R, { pad: 0 });
  await mkdir(dir, { recursive: true });
  const paths: string[] = [];
  for (let i = 0; i < n; i++) {
    const px = tileImages(images.subarray(i * 3 * R * R, (i + 1) * 3 * R * R), one);
    const path = join(dir, name(i));
    await writeAtomic(path, await sharp(px, { raw: { width: R, height: R, channels: 3 } }).png().toBuffer());
    paths.push(path);
  }
  return paths;
}

export interface WrittenGrid {
  /** One PNG per stage, in the order given. */
  pngs: string[];
  html: string;
}

/**
 * Writes `<prefix>-<stage>.png` for each stage and `<prefix>.html` showing
 * them with `captions` (one per image) under the images.
 */
export async function writeSampleGrid(prefix: string, stages: StageImages[], captions: string[], opts: GridOptions = {}): Promise<WrittenGrid> {
  if (stages.length === 0) throw new Error('writeSampleGrid: no stages');
  await mkdir(dirname(prefix), { recursive: true });
  const n = captions.length;
  const written: { name: string; file: string; layout: GridLayout }[] = [];
  for (const s of stages) {
    const R = imageResolution(s.images, n, `stage ${s.name}`);
    const layout = gridLayout(n, R, opts);
    const path = `${prefix}-${s.name}.png`;
    const png = await sharp(tileImages(s.images, layout), { raw: { width: layout.width, height: layout.height, channels: 3 } }).png().toBuffer();
    await writeAtomic(path, png);
    written.push({ name: s.name, file: basename(path), layout });
  }
  const html = `${prefix}.html`;
  await writeAtomic(html, gridHtml(opts.title ?? basename(prefix), written, captions, opts.tilePx));
  return { pngs: written.map((w) => join(dirname(prefix), w.file)), html };
}

/** What every sample grid of a run is drawn from: fixed captions and fixed noise. */
export interface SampleFixture {
  /** Dataset indices of the images whose captions are used, and which of their K captions. */
  indices: number[];
  captions: number[];
  /** Per noise input of the generator (e.g. 'z', the CA's 'eps'), [N, ...shape] standard normals. */
  noise: Record<string, Float32Array>;
}

/**
 * Chooses N dataset entries (distinct while N <= size) and one of K captions
 * each, and draws the noise, all from `seed`: the same run configuration gives
 * the same fixture, so grids of a run (and of a resumed run) are comparable.
 */
export function sampleFixture(opts: { n: number; size: number; captionsPer?: number; noise: Record<string, number>; seed: number }): SampleFixture {
  const { n, size } = opts;
  if (size < 1) throw new Error('sampleFixture: empty dataset');
  const pick = uniformInts(opts.seed);
  // A partial Fisher-Yates shuffle: N distinct entries, repeating only when N > size.
  const order = Array.from({ length: size }, (_, i) => i);
  for (let j = 0; j < Math.min(n, size); j++) {
    const k = j + pick(size - j);
    [order[j], order[k]] = [order[k], order[j]];
  }
  const indices = Array.from({ length: n }, (_, i) => order[i % size]);
  const captions = indices.map(() => pick(opts.captionsPer ?? 1));
  const randn = normalSource((opts.seed ^ 0x53a9b1e5) >>> 0);
  const noise: Record<string, Float32Array> = {};
  for (const [name, perSample] of Object.entries(opts.noise)) noise[name] = Float32Array.from({ length: n * perSample }, randn);
  return { indices, captions, noise };
}

/** Integers in [0, k) from a splitmix32 stream (the modulo bias is irrelevant at these sizes). */
function uniformInts(seed: number): (k: number) => number {
  let s = (seed ^ 0x2f6b1d3c) >>> 0;
  return (k) => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) % k;
  };
}

export interface WrittenSamples extends WrittenGrid {
  latest: string[];
  index: string;
}

/**
 * The trainer's hook: writes this step's grids under `<runDir>/samples/`,
 * copies them to `latest-<stage>.png` and rewrites `index.html` to show the
 * latest step (with links to the per-step pages).
 */
export async function writeSamples(runDir: string, step: number, stages: StageImages[], captions: string[], opts: GridOptions = {}): Promise<WrittenSamples> {
  const dir = join(runDir, 'samples');
  const tag = `step-${String(step).padStart(6, '0')}`;
  const grid = await writeSampleGrid(join(dir, tag), stages, captions, { ...opts, title: opts.title ?? `samples at step ${step}` });
  const latest: string[] = [];
  for (const s of stages) {
    const to = join(dir, `latest-${s.name}.png`);
    const tmp = `${to}.${process.pid}.tmp`;
    await copyFile(join(dir, `${tag}-${s.name}.png`), tmp);
    await rename(tmp, to);
    latest.push(to);
  }
  // index.html is the latest step's page: its relative PNG links resolve the same from samples/.
  const index = join(dir, 'index.html');
  await copyFile(grid.html, `${index}.${process.pid}.tmp`);
  await rename(`${index}.${process.pid}.tmp`, index);
  return { ...grid, latest, index };
}
