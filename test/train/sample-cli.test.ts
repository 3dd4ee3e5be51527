// `gan sample` and `gan eval colour` through the CLI, as a user runs them
// (a .gan source: its seeded initial weights; checkpoints once they exist).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { writeNpy } from '../../runtime/train/data/npy.ts';
import { gridLayout } from '../../runtime/train/samples.ts';
import { miniGan } from '../helpers/gan.ts';

function gan(...args: string[]) {
  const r = spawnSync(process.execPath, ['scripts/gan.js', ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'gan-sample-cli-'));
const model = join(dir, 'mini.gan');
writeFileSync(model, miniGan({ text: 12, z: 4, caOut: 8, ngf: 2 }));
const data = join(dir, 'data');
mkdirSync(data);
const colours = ['red', 'blue', 'green'];
writeNpy(join(data, 'embeddings.npy'), [3, 2, 12], Float32Array.from({ length: 72 }, (_, k) => Math.sin(k)));
writeFileSync(join(data, 'captions.jsonl'), colours.map((c) => JSON.stringify({ file: `${c}.png`, captions: [`a small ${c} circle`, `a ${c} circle <b>`] })).join('\n') + '\n');

describe('gan sample', () => {
  it('writes a grid of N images with the captions in an HTML page beside it', async () => {
    const out = join(dir, 'grid.png');
    const r = gan('sample', model, '--embeddings', join(data, 'embeddings.npy'), '--captions', join(data, 'captions.jsonl'), '--n', '5', '--seed', '3', '--out', out);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(0);
    expect(r.out).toContain('sampled 5 image(s)');
    expect(r.out).toContain('BatchNorm in eval mode');
    const meta = await sharp(out).metadata();
    const L = gridLayout(5, 16);
    expect([meta.width, meta.height]).toEqual([L.width, L.height]);
    const html = readFileSync(join(dir, 'grid.html'), 'utf8');
    expect(html).toContain('a small red circle');
    expect(html).toContain('a small red circle</figcaption>'); // caption 0 of each image, cycled
    expect(html.match(/<figure>/g)).toHaveLength(5);
  }, 150_000);

  it('--out DIR/ writes one PNG per image, the same pixels for the same seed', async () => {
    const out = join(dir, 'each') + '/';
    const r = gan('sample', model, '--embeddings', join(data, 'embeddings.npy'), '--n', '5', '--seed', '3', '--out', out);
    expect(r.code).toBe(0);
    for (const f of ['0000.png', '0001.png', '0004.png']) expect((await sharp(join(out, f)).metadata()).width).toBe(16);
    expect(existsSync(join(out, '0005.png'))).toBe(false);
    // The grid of the previous test (same seed) holds the same first image.
    const one = await sharp(join(out, '0000.png')).raw().toBuffer();
    const grid = await sharp(join(dir, 'grid.png')).extract({ left: 2, top: 2, width: 16, height: 16 }).raw().toBuffer();
    expect(one.equals(grid)).toBe(true);
  }, 150_000);

  it('refuses bad arguments with a message, before any work', () => {
    const emb = join(data, 'embeddings.npy');
    const bad = (args: string[], msg: RegExp) => {
      const r = gan('sample', ...args);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(msg);
      expect(r.err).not.toMatch(/\n\s+at /);
    };
    bad([model, '--embeddings', emb, '--out', join(dir, 'x.jpg')], /--out must be a \.png file or a folder/);
    bad([model, '--embeddings', emb, '--n', '0', '--out', join(dir, 'x.png')], /--n must be a positive integer/);
    bad([model, '--embeddings', join(dir, 'missing.npy'), '--out', join(dir, 'x.png')], /missing\.npy: cannot open/);
    const wide = join(dir, 'wide.npy');
    writeNpy(wide, [2, 7], new Float32Array(14));
    bad([model, '--embeddings', wide, '--out', join(dir, 'x.png')], /embeddings are 7 wide, the model's 'text' input is 12/);
    bad([model, '--embeddings', emb, '--captions', join(dir, 'grid.html'), '--out', join(dir, 'x.png')], /grid\.html:1: not a JSON line|cannot read/);
  });
});

describe('gan eval colour', () => {
  it("prints the share next to chance, per caption colour, from the data's own captions", () => {
    const r = gan('eval', 'colour', model, '--data', data, '--n', '6', '--json');
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ stage: 'g0', n: 6, seed: 0, scored: 6, chance: 1 / 8 });
    expect(j.share).toBeGreaterThanOrEqual(0);
    expect(Object.keys(j.confusion).every((c) => colours.includes(c))).toBe(true);
    const t = gan('eval', 'sharpness', model, '--data', data);
    expect(t.code).toBe(1);
    expect(t.err).toContain("unknown evaluation 'sharpness' (available: colour)");
  }, 150_000);
});
