// The caption-following metric: dominant foreground colour vs the caption's
// colour word. On true image-caption pairs it must read ~100%, on shuffled
// pairs ~chance (1 / colours).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { generateShapes } from '../../runtime/train/data/shapes.ts';
import { backgroundAgreement, borderColour, captionColour, colourAgreement, dominantColour, renderBackgroundAgreement, renderColourAgreement } from '../../runtime/train/colour-metric.ts';
import { BACKGROUNDS, SHAPE_COLOURS, SHAPE_KINDS, SHAPE_SIZE_FRACTION, SHAPE_SIZES } from '../../runtime/train/data/shapes-palette.ts';

/** A deterministic uniform stream in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Draws shapes-data-like images: [N, 3, R, R] in [-1, 1], one shape each on a flat background, with pixel noise. */
function drawShapes(n: number, R: number, seed: number): { images: Float32Array; captions: string[] } {
  const u = rng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(u() * xs.length)];
  const images = new Float32Array(n * 3 * R * R);
  const captions: string[] = [];
  for (let i = 0; i < n; i++) {
    const colour = SHAPE_COLOURS[i % SHAPE_COLOURS.length];
    const bg = pick(BACKGROUNDS);
    const kind = pick(SHAPE_KINDS);
    const size = pick(SHAPE_SIZES);
    const half = (SHAPE_SIZE_FRACTION[size] * R) / 2;
    const cx = half + 1 + u() * (R - 2 * half - 2);
    const cy = half + 1 + u() * (R - 2 * half - 2);
    for (let y = 0; y < R; y++) {
      for (let x = 0; x < R; x++) {
        const dx = x + 0.5 - cx;
        const dy = y + 0.5 - cy;
        const inside =
          kind === 'circle' ? dx * dx + dy * dy <= half * half : kind === 'square' ? Math.abs(dx) <= half && Math.abs(dy) <= half : dy <= half && dy >= -half && Math.abs(dx) <= (dy + half) / 2;
        const rgb = inside ? colour.rgb : bg.rgb;
        for (let c = 0; c < 3; c++) images[((i * 3 + c) * R + y) * R + x] = Math.max(-1, Math.min(1, (rgb[c] + (u() - 0.5) * 30) / 127.5 - 1));
      }
    }
    captions.push(`a ${size} ${colour.name} ${kind} on a ${bg.name} background`);
  }
  return { images, captions };
}

describe('colour agreement', () => {
  const { images, captions } = drawShapes(160, 32, 1);

  it('reads the colour word of a caption (the shape comes before the background)', () => {
    expect(captionColour('a small red circle on a grey background', SHAPE_COLOURS)).toBe('red');
    expect(captionColour('A large CYAN square.', SHAPE_COLOURS)).toBe('cyan');
    expect(captionColour('a reddish blob', SHAPE_COLOURS)).toBeUndefined();
  });

  it('is ~100% on true pairs', () => {
    const r = colourAgreement(images, captions);
    expect(r.scored).toBe(160);
    expect(r.share).toBeGreaterThanOrEqual(0.98);
    expect(r.chance).toBeCloseTo(1 / SHAPE_COLOURS.length, 12);
    expect(Object.keys(r.perColour).sort()).toEqual(SHAPE_COLOURS.map((c) => c.name).sort());
    expect(renderColourAgreement(r)).toMatch(/colour agreement: \d+\.\d% \(\d+\/160\); chance 12\.5%/);
  });

  it('is ~chance on shuffled pairs', () => {
    const u = rng(99);
    const shuffled = [...captions];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(u() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
    }
    const r = colourAgreement(images, shuffled);
    expect(r.share).toBeLessThan(0.3);
    expect(r.share).toBeGreaterThan(0.02);
    // The confusion matrix still finds the true colours: its rows sum to the images of each caption colour.
    const total = Object.values(r.confusion).reduce((a, row) => a + Object.values(row).reduce((p, q) => p + q, 0), 0);
    expect(total).toBe(160);
  });

  it('reads the background from the border: ~100% on true pairs, ~chance on shuffled ones', () => {
    const r = backgroundAgreement(images, captions);
    expect(r.scored).toBe(160);
    expect(r.share).toBe(1);
    expect(r.chance).toBeCloseTo(1 / BACKGROUNDS.length, 12);
    expect(renderBackgroundAgreement(r)).toBe(`background agreement: 100.0% (160/160); chance ${(100 / BACKGROUNDS.length).toFixed(1)}%`);
    const rotated = [...captions.slice(1), captions[0]];
    const sameBg = captions.filter((c, i) => captionColour(c, BACKGROUNDS) === captionColour(rotated[i], BACKGROUNDS)).length;
    expect(backgroundAgreement(images, rotated).matched).toBe(sameBg);
    // The border median ignores a shape touching one edge.
    const R = 8;
    const img = new Float32Array(3 * R * R).fill(-1);
    for (let y = 0; y < 3; y++) for (let x = 0; x < R; x++) img[y * R + x] = 1;
    expect(borderColour(img, 0, R)).toEqual([0, 0, 0]);
    expect(backgroundAgreement(img, ['a red bar on a black background']).share).toBe(1);
    expect(backgroundAgreement(img, ['a red bar on a white background']).share).toBe(0);
  });

  it('reads a flat image as no foreground, and a shape on any background by its colour', () => {
    const R = 16;
    const flat = new Float32Array(3 * R * R).fill(0);
    expect(dominantColour(flat, 0, R, SHAPE_COLOURS)).toBe('none');
    const r = colourAgreement(flat, ['a red square']);
    expect(r.share).toBe(0);
    expect(r.confusion).toEqual({ red: { none: 1 } });
    // A blurred, darker blue still reads as blue: nearest palette colour by vote.
    const img = new Float32Array(3 * R * R).fill(-0.9);
    for (let y = 4; y < 12; y++) for (let x = 4; x < 12; x++) [0.1, 0.25, 0.6].forEach((v, c) => (img[c * R * R + y * R + x] = v - 0.5));
    expect(dominantColour(img, 0, R, SHAPE_COLOURS)).toBe('blue');
  });

  it('counts captions without a colour word apart', () => {
    const r = colourAgreement(images.subarray(0, 2 * 3 * 32 * 32), [captions[0], 'a thing']);
    expect([r.scored, r.unscored, r.share]).toEqual([1, 1, 1]);
    expect(() => colourAgreement(images.subarray(0, 5), ['x'])).toThrow(/not 1 RGB square images/);
  });
});

/** The shapes dataset as written by `gan data shapes`, decoded (and resized to `R`) into [N, 3, R, R] in [-1, 1]. */
async function shapesData(n: number, side: number, R: number) {
  const dir = mkdtempSync(join(tmpdir(), 'gan-shapes-colour-'));
  await generateShapes({ out: dir, n, size: side, seed: 5, dim: 8 });
  const records = readFileSync(join(dir, 'captions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { file: string; captions: string[] });
  const images = new Float32Array(n * 3 * R * R);
  for (const [i, r] of records.entries()) {
    const px = await sharp(join(dir, 'images', r.file)).resize(R, R, { kernel: 'linear' }).removeAlpha().raw().toBuffer();
    for (let k = 0; k < R * R; k++) for (let c = 0; c < 3; c++) images[(i * 3 + c) * R * R + k] = px[k * 3 + c] / 127.5 - 1;
  }
  return { images, records };
}

describe('colour agreement on the real shapes dataset', () => {
  it('is ~100% on true pairs (every phrasing, at 32 and 16 pixels) and ~chance on shuffled pairs', async () => {
    const n = 96;
    for (const R of [32, 16]) {
      const { images, records } = await shapesData(n, 32, R);
      for (let k = 0; k < records[0].captions.length; k++) {
        const r = colourAgreement(images, records.map((x) => x.captions[k]));
        expect(r.scored, `phrasing ${k}`).toBe(n);
        expect(r.share, `${R}px, phrasing ${k}: ${renderColourAgreement(r)}`).toBeGreaterThanOrEqual(0.97);
      }
      const shifted = records.map((_, i) => records[(i + 37) % n].captions[0]);
      const s = colourAgreement(images, shifted);
      expect(s.share, `${R}px shuffled`).toBeLessThan(0.3);
    }
  }, 60_000);
});
