// Caption following on the synthetic shapes data: does each generated image's
// dominant foreground colour match the colour word of its caption?
//
// Per image: the background is the per-channel median of the one-pixel border
// (shapes never touch every edge, so the border is background); foreground
// pixels are those farther than `threshold` from it; those of the shape's core
// (far from the background, not its blended edge) each vote for their nearest
// palette colour and the majority is the image's colour. An image with
// no foreground reads as 'none' and counts as a miss. Chance is 1 / colours.
//
// A second, coarser reading: does the background (the border median, nearest
// background palette colour) match the caption's background word? The
// background fills most of the image, so a generator tends to follow it first.
import { BACKGROUNDS, SHAPE_COLOURS } from './data/shapes-palette.ts';

/** A palette entry, rgb in 0..255 (runtime/train/data/shapes-palette.ts SHAPE_COLOURS). */
export interface PaletteColour {
  name: string;
  rgb: readonly [number, number, number] | readonly number[];
}

export interface ColourAgreement {
  /** Images whose dominant colour is their caption's colour, over all scored images. */
  share: number;
  /** 1 / number of palette colours. */
  chance: number;
  /** Images scored (those whose caption names a palette colour). */
  scored: number;
  matched: number;
  /** Captions without a palette colour word (left out of the share). */
  unscored: number;
  /** confusion[captionColour][dominantColour or 'none'] = count. */
  confusion: Record<string, Record<string, number>>;
  /** Per caption colour: share of its images that came out in that colour. */
  perColour: Record<string, { n: number; share: number }>;
  /** The dominant colour found in each image ('none' when no foreground), in input order. */
  dominant: string[];
}

export interface ColourOptions {
  /** Euclidean RGB distance (0..255 units) beyond which a pixel is foreground (default 48). */
  threshold?: number;
  /** Least share of the image's pixels that must be foreground (default 0.5%). */
  minForeground?: number;
  /** Only pixels at least this share of the (90th-percentile) foreground distance from the background vote (default 0.6). */
  coreShare?: number;
}

/** The first palette colour named as a whole word in the caption (the shape's colour comes before any background's). */
export function captionColour(caption: string, palette: readonly PaletteColour[]): string | undefined {
  const words = caption.toLowerCase().split(/[^a-z]+/);
  for (const w of words) {
    const hit = palette.find((c) => c.name.toLowerCase() === w);
    if (hit) return hit.name;
  }
  return undefined;
}

/** Image `i`'s pixel (0..255) at channel c, row y, column x. */
function pixels(images: Float32Array, i: number, R: number): (c: number, y: number, x: number) => number {
  const plane = R * R;
  const base = i * 3 * plane;
  return (c, y, x) => ((images[base + c * plane + y * R + x] + 1) / 2) * 255;
}

/** The background of image `i`: per channel the median of the one-pixel border (corners twice), 0..255. */
export function borderColour(images: Float32Array, i: number, R: number): [number, number, number] {
  const px = pixels(images, i, R);
  const [r, g, b] = [0, 1, 2].map((c) => {
    const border: number[] = [];
    for (let k = 0; k < R; k++) border.push(px(c, 0, k), px(c, R - 1, k), px(c, k, 0), px(c, k, R - 1));
    border.sort((a, b) => a - b);
    return border[border.length >> 1];
  });
  return [r, g, b];
}

function nearest(rgb: readonly number[], palette: readonly PaletteColour[]): number {
  let best = 0;
  let bestD = Infinity;
  palette.forEach((c, k) => {
    const d = (rgb[0] - c.rgb[0]) ** 2 + (rgb[1] - c.rgb[1]) ** 2 + (rgb[2] - c.rgb[2]) ** 2;
    if (d < bestD) [best, bestD] = [k, d];
  });
  return best;
}

/** The dominant foreground palette colour of image `i` of [N, 3, R, R] data in [-1, 1], or 'none'. */
export function dominantColour(images: Float32Array, i: number, R: number, palette: readonly PaletteColour[], opts: ColourOptions = {}): string {
  const plane = R * R;
  const px = pixels(images, i, R);
  const bg = borderColour(images, i, R);
  const t = opts.threshold ?? 48;
  // Foreground pixels and their distance from the background.
  const fg: { r: number; g: number; b: number; d: number }[] = [];
  for (let y = 0; y < R; y++) {
    for (let x = 0; x < R; x++) {
      const r = px(0, y, x);
      const g = px(1, y, x);
      const b = px(2, y, x);
      const d = Math.sqrt((r - bg[0]) ** 2 + (g - bg[1]) ** 2 + (b - bg[2]) ** 2);
      if (d > t) fg.push({ r, g, b, d });
    }
  }
  if (fg.length === 0 || fg.length < (opts.minForeground ?? 0.005) * plane) return 'none';
  // Only the shape's core votes: edge pixels blend shape and background (red on white reads pink,
  // yellow on black olive), and they sit closer to the background than the core does.
  const ds = fg.map((p) => p.d).sort((a, b) => a - b);
  const core = Math.max(t, (opts.coreShare ?? 0.6) * ds[Math.floor(0.9 * (ds.length - 1))]);
  const votes = new Array<number>(palette.length).fill(0);
  for (const p of fg) {
    if (p.d < core) continue;
    votes[nearest([p.r, p.g, p.b], palette)]++;
  }
  return palette[votes.indexOf(Math.max(...votes))].name;
}

/** Caption following by background: the border's nearest background colour vs the caption's background word. */
export interface BackgroundAgreement {
  share: number;
  /** 1 / number of backgrounds. */
  chance: number;
  scored: number;
  matched: number;
}

function imageSide(images: Float32Array, n: number, what: string): number {
  const R = Math.round(Math.sqrt(images.length / (3 * Math.max(n, 1))));
  if (n === 0 || n * 3 * R * R !== images.length) throw new Error(`${what}: ${images.length} values are not ${n} RGB square images`);
  return R;
}

/** The background agreement of N images ([N, 3, R, R] in [-1, 1]) with their N captions. */
export function backgroundAgreement(images: Float32Array, captions: readonly string[], backgrounds: readonly PaletteColour[] = BACKGROUNDS): BackgroundAgreement {
  const R = imageSide(images, captions.length, 'backgroundAgreement');
  let scored = 0;
  let matched = 0;
  captions.forEach((caption, i) => {
    const want = captionColour(caption, backgrounds);
    if (!want) return;
    scored++;
    if (backgrounds[nearest(borderColour(images, i, R), backgrounds)].name === want) matched++;
  });
  return { share: scored ? matched / scored : 0, chance: 1 / backgrounds.length, scored, matched };
}

/** The colour agreement of N images ([N, 3, R, R] in [-1, 1]) with their N captions. */
export function colourAgreement(images: Float32Array, captions: readonly string[], palette: readonly PaletteColour[] = SHAPE_COLOURS, opts: ColourOptions = {}): ColourAgreement {
  const n = captions.length;
  const R = imageSide(images, n, 'colourAgreement');
  if (palette.length === 0) throw new Error('colourAgreement: empty palette');
  const confusion: Record<string, Record<string, number>> = {};
  const dominant: string[] = [];
  let scored = 0;
  let matched = 0;
  for (let i = 0; i < n; i++) {
    const got = dominantColour(images, i, R, palette, opts);
    dominant.push(got);
    const want = captionColour(captions[i], palette);
    if (!want) continue;
    scored++;
    if (got === want) matched++;
    const row = (confusion[want] ??= {});
    row[got] = (row[got] ?? 0) + 1;
  }
  const perColour: ColourAgreement['perColour'] = {};
  for (const [want, row] of Object.entries(confusion)) {
    const total = Object.values(row).reduce((a, b) => a + b, 0);
    perColour[want] = { n: total, share: (row[want] ?? 0) / total };
  }
  return { share: scored ? matched / scored : 0, chance: 1 / palette.length, scored, matched, unscored: n - scored, confusion, perColour, dominant };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** One line: the background share next to chance. */
export function renderBackgroundAgreement(r: BackgroundAgreement): string {
  return `background agreement: ${pct(r.share)} (${r.matched}/${r.scored}); chance ${pct(r.chance)}`;
}

/** A short report: the share next to chance, then one line per caption colour. */
export function renderColourAgreement(r: ColourAgreement): string {
  const lines = [`colour agreement: ${pct(r.share)} (${r.matched}/${r.scored}); chance ${pct(r.chance)}`];
  for (const [name, c] of Object.entries(r.perColour).sort(([a], [b]) => a.localeCompare(b))) {
    const row = r.confusion[name];
    const top = Object.entries(row)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    lines.push(`  ${name.padEnd(8)} ${pct(c.share).padStart(6)} of ${c.n}  (${top})`);
  }
  if (r.unscored) lines.push(`  ${r.unscored} caption(s) name no palette colour (not scored)`);
  return lines.join('\n');
}
