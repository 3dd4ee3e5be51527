// The batch source: shapes and ranges of every tensor, StackGAN-v2's
// crop/flip/downscale, caption and wrong-image draws, determinism from the
// seed, and getState/setState continuing the exact same sequence.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { openDataset, type DatasetLoader } from '../../runtime/train/data/loader.ts';
import { readNpy, writeNpy } from '../../runtime/train/data/npy.ts';
import type { TrainBatch } from '../../runtime/train/data/types.ts';
import { copyOf, makeShapes } from './data-helpers.ts';

let dir: string;
const RES = [16, 32, 64];
const B = 5;

beforeAll(async () => {
  dir = await makeShapes(24, 64, 32, 3);
});

const open = (seed = 11, extra: { cacheBytes?: number } = {}) => openDataset(dir, { batch: B, resolutions: RES, seed, textDim: 32, ...extra });

async function take(src: DatasetLoader, n: number): Promise<TrainBatch[]> {
  const out: TrainBatch[] = [];
  for (let i = 0; i < n; i++) out.push(await src.next());
  return out;
}

/** A batch as plain arrays, for deep equality. */
const plain = (b: TrainBatch) => ({
  indices: b.indices,
  captions: b.captions,
  text: Array.from(b.text),
  real: RES.map((r) => Buffer.from(b.real.get(r)!.buffer).toString('base64')),
  wrong: RES.map((r) => Buffer.from(b.wrong.get(r)!.buffer).toString('base64')),
});

describe('openDataset batches', () => {
  it('have the agreed shapes, values in [-1, 1], and the drawn caption embeddings', async () => {
    const src = await open();
    expect(src.size).toBe(24);
    expect(src.textDim).toBe(32);
    expect(src.cached).toBe(true);
    const b = await src.next();
    expect(b.text.length).toBe(B * 32);
    expect(b.indices).toHaveLength(B);
    expect(new Set(b.indices).size).toBe(B);
    for (const R of RES) {
      for (const m of [b.real, b.wrong]) {
        const a = m.get(R)!;
        expect(a.length).toBe(B * 3 * R * R);
        let lo = Infinity;
        let hi = -Infinity;
        for (const v of a) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
        expect(lo).toBeGreaterThanOrEqual(-1);
        expect(hi).toBeLessThanOrEqual(1);
        expect(hi - lo).toBeGreaterThan(0.3); // a shape on a background, not a flat fill
      }
    }
    const emb = readNpy(join(dir, 'embeddings.npy'));
    b.indices.forEach((idx, s) => {
      expect(b.captions[s]).toBeGreaterThanOrEqual(0);
      expect(b.captions[s]).toBeLessThan(3);
      const at = (idx * 3 + b.captions[s]) * 32;
      expect(Array.from(b.text.subarray(s * 32, (s + 1) * 32))).toEqual(Array.from(emb.data.subarray(at, at + 32)));
    });
    await src.close();
  });

  it('make each lower resolution by downscaling the same crop', async () => {
    const src = await open();
    const [b] = await take(src, 1);
    const big = b.real.get(64)!;
    const small = b.real.get(32)!;
    // A 2x bilinear (linear-kernel) reduction is close to the 2x2 box average.
    let err = 0;
    for (let s = 0; s < B; s++)
      for (let c = 0; c < 3; c++)
        for (let y = 0; y < 32; y++)
          for (let x = 0; x < 32; x++) {
            const at = (yy: number, xx: number) => big[((s * 3 + c) * 64 + yy) * 64 + xx];
            const box = (at(2 * y, 2 * x) + at(2 * y + 1, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x + 1)) / 4;
            err += Math.abs(small[((s * 3 + c) * 32 + y) * 32 + x] - box);
          }
    expect(err / (B * 3 * 32 * 32)).toBeLessThan(0.05);
    await src.close();
  });

  it('draw the wrong image from another class', async () => {
    const src = await open();
    const classes = (await import('node:fs')).readFileSync(join(dir, 'captions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).class as number);
    const [b] = await take(src, 1);
    // The wrong copies are other images, not the real ones again.
    expect(Buffer.from(b.wrong.get(64)!.buffer)).not.toEqual(Buffer.from(b.real.get(64)!.buffer));
    // The draw itself (private): over many samples, always another class.
    const loader = src as unknown as { wrongIndex(i: number): number };
    for (let i = 0; i < 24; i++) for (let t = 0; t < 20; t++) expect(classes[loader.wrongIndex(i)]).not.toBe(classes[i]);
    await src.close();
  });

  it('draw a share wrong_same_group of wrong images from the real image\'s own group, of another class', async () => {
    const lines = (await import('node:fs')).readFileSync(join(dir, 'captions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { class: number; group: number });
    const draws = async (share: number) => {
      const src = await openDataset(dir, { batch: B, resolutions: RES, seed: 11, textDim: 32, wrongSameGroup: share });
      const loader = src as unknown as { wrongIndex(i: number): number };
      let same = 0;
      let all = 0;
      for (let i = 0; i < lines.length; i++) {
        if (!lines.some((o, j) => j !== i && o.group === lines[i].group && o.class !== lines[i].class)) continue;
        for (let t = 0; t < 20; t++) {
          const j = loader.wrongIndex(i);
          expect(lines[j].class).not.toBe(lines[i].class);
          all++;
          if (lines[j].group === lines[i].group) same++;
        }
      }
      await src.close();
      return same / all;
    };
    expect(await draws(1)).toBe(1);
    // Half of them by the share, and a quarter of the rest by chance (4 groups): about 0.62.
    const half = await draws(0.5);
    expect(half).toBeGreaterThan(0.5);
    expect(half).toBeLessThan(0.75);
    // Without the share, as often as chance has it (4 backgrounds).
    expect(await draws(0)).toBeLessThan(0.4);
  });

  it('refuse a wrong_same_group share when captions.jsonl gives no groups', async () => {
    const d = copyOf(dir);
    const path = join(d, 'captions.jsonl');
    const fs = await import('node:fs');
    fs.writeFileSync(path, fs.readFileSync(path, 'utf8').trim().split('\n').map((l) => { const o = JSON.parse(l); delete o.group; return JSON.stringify(o); }).join('\n') + '\n');
    await expect(openDataset(d, { batch: B, resolutions: RES, seed: 1, textDim: 32, wrongSameGroup: 0.5 })).rejects.toThrow(`${path}: a share 0.5 of wrong images from the same group needs a "group" id on every line (none given)`);
    // No share: groups are not needed.
    await (await openDataset(d, { batch: B, resolutions: RES, seed: 1, textDim: 32 })).close();
  });

  it('are the same for the same seed, cached or decoded on demand, and differ for another seed', async () => {
    const a = (await take(await open(11), 6)).map(plain);
    const b = (await take(await open(11, { cacheBytes: 0 }), 6)).map(plain);
    expect(b).toEqual(a);
    const c = (await take(await open(12), 2)).map(plain);
    expect(c[0].indices).not.toEqual(a[0].indices);
  });

  it('prepare the next batch while the caller works on the current one', async () => {
    const src = await open(11, { cacheBytes: 0 }); // decode on demand, so image work can be counted
    expect(src.cached).toBe(false);
    const proto = Object.getPrototypeOf(src) as { decode: (i: number) => Promise<unknown> };
    let decodes = 0;
    const decode = proto.decode;
    (src as unknown as { decode: (i: number) => Promise<unknown> }).decode = function (this: unknown, i: number) {
      decodes++;
      return decode.call(this, i);
    };
    await src.next();
    // The following batch (B real + B wrong images) was started without another call.
    expect(decodes).toBe(4 * B);
    const inFlight = (src as unknown as { pending: { promise: Promise<TrainBatch> } }).pending.promise;
    expect(await src.next()).toBe(await inFlight);
    await src.close();
  });

  it('cover each epoch without repeats (drop-last) and reshuffle the next', async () => {
    const src = await open();
    const bs = await take(src, 8); // 24 images, batch 5: 4 batches per epoch
    const e0 = bs.slice(0, 4).flatMap((b) => b.indices);
    const e1 = bs.slice(4, 8).flatMap((b) => b.indices);
    expect(new Set(e0).size).toBe(20);
    expect(new Set(e1).size).toBe(20);
    expect(e1).not.toEqual(e0);
    await src.close();
  });

  it('continue the exact same sequence after getState/setState, across an epoch boundary', async () => {
    const a = await open();
    await take(a, 3);
    const state = JSON.parse(JSON.stringify(a.getState()));
    expect(state).toMatchObject({ version: 1, size: 24, seed: 11, epoch: 0, cursor: 15 });
    const rest = (await take(a, 4)).map(plain); // crosses into epoch 1
    const b = await open();
    b.setState(state);
    expect((await take(b, 4)).map(plain)).toEqual(rest);
    // setState on a loader with a batch already in flight discards that batch.
    const c = await open();
    await take(c, 1);
    c.setState(state);
    expect(c.getState()).toEqual(state);
    expect((await take(c, 4)).map(plain)).toEqual(rest);
    expect(() => c.setState({ ...state, size: 25 })).toThrow(/dataset of 25 images, this one has 24/);
    expect(() => c.setState({ ...state, rng: [1, 2] })).toThrow(/four 32-bit words/);
  });

  it('read JPEG, greyscale and non-square images, [N, D] embeddings and no classes', async () => {
    const d = join(mkdtempSync(join(tmpdir(), 'gan-data-mixed-')), 'ds');
    mkdirSync(join(d, 'images'), { recursive: true });
    await sharp({ create: { width: 80, height: 50, channels: 3, background: { r: 200, g: 10, b: 10 } } }).jpeg().toFile(join(d, 'images', 'a.jpg'));
    await sharp({ create: { width: 40, height: 40, channels: 3, background: { r: 128, g: 128, b: 128 } } }).greyscale().png().toFile(join(d, 'images', 'b.png'));
    await sharp({ create: { width: 30, height: 60, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 0.5 } } }).png().toFile(join(d, 'images', 'c.png'));
    writeFileSync(join(d, 'captions.jsonl'), ['a.jpg', 'b.png', 'c.png'].map((f) => JSON.stringify({ file: f, captions: [`image ${f}`] })).join('\n') + '\n');
    writeNpy(join(d, 'embeddings.npy'), [3, 4], new Float32Array(12).map((_, i) => i / 12));
    const src = await openDataset(d, { batch: 3, resolutions: [8, 16], seed: 0, textDim: 4 });
    const b = await src.next();
    expect(b.captions).toEqual([0, 0, 0]);
    const r16 = b.real.get(16)!;
    const meanOf = (s: number, c: number) => r16.subarray((s * 3 + c) * 256, (s * 3 + c + 1) * 256).reduce((a, v) => a + v, 0) / 256;
    b.indices.forEach((idx, s) => {
      const rgb = [0, 1, 2].map((c) => meanOf(s, c));
      const want = [
        [200, 10, 10],
        [128, 128, 128],
        [0, 0, 255],
      ][idx].map((v) => v / 127.5 - 1);
      rgb.forEach((v, c) => expect(Math.abs(v - want[c])).toBeLessThan(0.06));
      expect(Array.from(b.text.subarray(s * 4, s * 4 + 4))).toEqual(Array.from(new Float32Array(12).map((_, i) => i / 12).subarray(idx * 4, idx * 4 + 4)));
    });
    // No classes: the wrong image is any other image.
    const loader = src as unknown as { wrongIndex(i: number): number };
    for (let t = 0; t < 20; t++) expect(loader.wrongIndex(1)).not.toBe(1);
    await src.close();
  });

  it('flip and crop: a horizontal ramp comes out increasing or decreasing, both over many samples', async () => {
    const d = join(mkdtempSync(join(tmpdir(), 'gan-data-ramp-')), 'ds');
    mkdirSync(join(d, 'images'), { recursive: true });
    const W = 32;
    const raw = Buffer.alloc(W * W * 3);
    for (let y = 0; y < W; y++) for (let x = 0; x < W; x++) raw.fill(x * 8, (y * W + x) * 3, (y * W + x) * 3 + 3);
    await sharp(raw, { raw: { width: W, height: W, channels: 3 } }).png().toFile(join(d, 'images', 'r.png'));
    writeFileSync(join(d, 'captions.jsonl'), JSON.stringify({ file: 'r.png', captions: ['ramp'] }) + '\n');
    writeNpy(join(d, 'embeddings.npy'), [1, 2], new Float32Array([1, 0]));
    const src = await openDataset(d, { batch: 1, resolutions: [32], seed: 5, textDim: 2 });
    const seen = { up: 0, down: 0 };
    const lefts = new Set<number>();
    for (let i = 0; i < 24; i++) {
      const img = (await src.next()).real.get(32)!;
      const left = img[8 * 32 + 0];
      const right = img[8 * 32 + 31];
      if (right > left) seen.up++;
      else seen.down++;
      lefts.add(Math.round(Math.min(left, right) * 1000));
      // Every row is the same ramp: vertical crop offsets do not change it.
      expect(img[20 * 32 + 5]).toBeCloseTo(img[8 * 32 + 5], 5);
    }
    expect(seen.up).toBeGreaterThan(3);
    expect(seen.down).toBeGreaterThan(3);
    expect(lefts.size).toBeGreaterThan(1); // random horizontal crop offsets
    await src.close();
  });
});
