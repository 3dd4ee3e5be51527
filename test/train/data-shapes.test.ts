// The synthetic shapes dataset and the stand-in caption encoder.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../../runtime/train/data/npy.ts';
import { BACKGROUNDS, SHAPE_COLOURS, SHAPE_KINDS, SHAPE_SIZE_FRACTION, SHAPE_SIZES } from '../../runtime/train/data/shapes-palette.ts';
import { embedCaption } from '../../runtime/train/data/text-encoder.ts';
import { validateDataset } from '../../runtime/train/data/validate.ts';
import { makeShapes } from './data-helpers.ts';

let dir: string;
beforeAll(async () => {
  dir = await makeShapes(24, 64, 512, 1);
});

const lines = () => readFileSync(join(dir, 'captions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

describe('gan data shapes', () => {
  it('has the promised vocabulary', () => {
    expect(SHAPE_COLOURS.length).toBeGreaterThanOrEqual(6);
    expect(SHAPE_KINDS).toEqual(['circle', 'square', 'triangle']);
    expect(SHAPE_SIZES.length).toBeGreaterThanOrEqual(2);
    expect(BACKGROUNDS.length).toBeGreaterThanOrEqual(2);
  });

  it('writes a dataset that passes validation, with K = 3 captions per image', async () => {
    const r = await validateDataset(dir, { textDim: 512 });
    expect(r.problems).toEqual([]);
    expect(r.dataset).toMatchObject({ n: 24, k: 3, d: 512 });
    const l = lines();
    expect(l[0].captions[0]).toBe(`a ${l[0].size} ${l[0].colour} ${l[0].shape} on a ${l[0].background} background`);
    expect(new Set(l.map((x) => x.colour)).size).toBeGreaterThan(3); // varied
    expect(new Set(l.map((x) => x.shape)).size).toBe(3);
  });

  it('draws the caption: the foreground colour is the most common non-background colour', async () => {
    for (const l of lines().slice(0, 8)) {
      const { data } = await sharp(join(dir, 'images', l.file)).raw().toBuffer({ resolveWithObject: true });
      const fg = SHAPE_COLOURS.find((c) => c.name === l.colour)!.rgb;
      let exact = 0;
      for (let p = 0; p < data.length; p += 3) if (data[p] === fg[0] && data[p + 1] === fg[1] && data[p + 2] === fg[2]) exact++;
      const minArea = 0.25 * (SHAPE_SIZE_FRACTION[l.size] * 64) ** 2;
      expect(exact).toBeGreaterThan(minArea);
    }
  });

  it('stores the stand-in embeddings of the captions', () => {
    const e = readNpy(join(dir, 'embeddings.npy'));
    expect(e.shape).toEqual([24, 3, 512]);
    const l = lines();
    expect(Array.from(e.data.subarray((5 * 3 + 2) * 512, (5 * 3 + 3) * 512))).toEqual(Array.from(embedCaption(l[5].captions[2], 512)));
  });

  it('is deterministic in the seed', async () => {
    const again = await makeShapes(24, 64, 512, 1);
    expect(readFileSync(join(again, 'captions.jsonl'))).toEqual(readFileSync(join(dir, 'captions.jsonl')));
    expect(readFileSync(join(again, 'images', '00013.png'))).toEqual(readFileSync(join(dir, 'images', '00013.png')));
    const other = await makeShapes(24, 64, 512, 2);
    expect(readFileSync(join(other, 'captions.jsonl'))).not.toEqual(readFileSync(join(dir, 'captions.jsonl')));
  });
});

describe('embedCaption (stand-in encoder, not CLIP)', () => {
  const cos = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i], 0);

  it('is unit length, deterministic, case- and punctuation-blind, and sized by dim', () => {
    const a = embedCaption('a small red circle on a grey background', 512);
    expect(cos(a, a)).toBeCloseTo(1, 5);
    expect(Array.from(embedCaption('A small RED circle, on a grey background.', 512))).toEqual(Array.from(a));
    expect(embedCaption('red', 7)).toHaveLength(7);
    expect(Array.from(embedCaption('', 4))).toEqual([0, 0, 0, 0]);
  });

  it('puts captions that share words closer than captions that do not', () => {
    const a = embedCaption('a small red circle on a grey background');
    const b = embedCaption('a small red circle on a white background');
    const c = embedCaption('a large blue triangle on a black background');
    expect(cos(a, b)).toBeGreaterThan(cos(a, c) + 0.2);
  });
});
