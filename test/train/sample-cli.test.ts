// `gan sample` and `gan eval colour` through the CLI, as a user runs them
// (a .gan source: its seeded initial weights; checkpoints once they exist).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { writeNpy } from '../../runtime/train/data/npy.ts';
import { gridLayout } from '../../runtime/train/samples.ts';
import { writeCheckpoint } from '../../runtime/train/checkpoint.ts';
import { initialValues } from '../../runtime/init.ts';
import { buildGeneratorEval } from '../../compiler/cli/generator-eval.ts';
import { recordSources } from '../../compiler/cli/train.ts';
import { checkFile } from '../../compiler/index.ts';
import { generateShapes } from '../../runtime/train/data/shapes.ts';
import { miniGan } from '../helpers/gan.ts';
import { gan } from '../helpers/cli.ts';


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

describe('gan sample from a checkpoint', () => {
  it('re-checks the recorded sources (not the files on disk) with the recorded overrides; EMA by default, --live on request', async () => {
    // A variant in models/ extending a base in base/, trained (here: written) with --set ngf=2.
    const root = join(dir, 'ck');
    mkdirSync(join(root, 'base'), { recursive: true });
    mkdirSync(join(root, 'models'), { recursive: true });
    const base = join(root, 'base', 'mini.gan');
    const variant = join(root, 'models', 'v.gan');
    writeFileSync(base, miniGan({ text: 12, z: 4, caOut: 8, ngf: 8 }));
    writeFileSync(variant, 'gan V extends "../base/mini.gan"\nparam ngf = 4\n');
    const checked = checkFile(variant, { set: ['ngf=2'] });
    const layout = buildGeneratorEval(checked.model!, 1).layout;
    const ema = initialValues(layout, 0);
    const live = initialValues(layout, 1);
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [n, d] of Object.entries(ema.params)) tensors[`ema:${n}`] = { shape: [d.length], data: d };
    for (const [n, d] of Object.entries(live.params)) tensors[`param:${n}`] = { shape: [d.length], data: d };
    for (const [n, d] of Object.entries(ema.state)) tensors[`state:${n}`] = { shape: [d.length], data: d };
    const run = join(root, 'run');
    writeCheckpoint(run, 10, tensors, { model: { file: variant, name: 'V', preset: null, set: ['ngf=2'] }, ...recordSources(checked.sources) });
    const emb = join(data, 'embeddings.npy');
    // The reference: the same weights (initial, seed 0) sampled from the .gan file itself.
    expect(gan('sample', variant, '--set', 'ngf=2', '--embeddings', emb, '--n', '3', '--out', join(root, 'ref.png')).code).toBe(0);
    // The files on disk change after training: sampling must not read them.
    writeFileSync(base, miniGan({ text: 12, z: 6, caOut: 8, ngf: 8 }));
    const r = gan('sample', run, '--embeddings', emb, '--n', '3', '--out', join(root, 'ema.png'));
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(0);
    expect(r.out).toContain('step 10, EMA weights');
    const px = (f: string) => sharp(join(root, f)).raw().toBuffer();
    expect((await px('ema.png')).equals(await px('ref.png'))).toBe(true);
    const l = gan('sample', join(run, 'ckpt-00000010.safetensors'), '--live', '--embeddings', emb, '--n', '3', '--out', join(root, 'live.png'));
    expect(l.code).toBe(0);
    expect(l.out).toContain('live weights');
    expect((await px('live.png')).equals(await px('ref.png'))).toBe(false);
    // Without EMA tensors: a clear message.
    const noEma = Object.fromEntries(Object.entries(tensors).filter(([k]) => !k.startsWith('ema:')));
    const run2 = join(root, 'run2');
    writeCheckpoint(run2, 3, noEma, { model: { file: variant, set: ['ngf=2'] }, ...recordSources(checked.sources) });
    const e = gan('sample', run2, '--embeddings', emb, '--out', join(root, 'x.png'));
    expect(e.code).toBe(1);
    expect(e.err).toContain('has no EMA weights for the generator');
    expect(gan('sample', join(root, 'nothing'), '--embeddings', emb, '--out', join(root, 'x.png')).err).toContain('no such checkpoint or run folder');
  }, 240_000);
});

describe('gan train, then gan sample and gan eval colour on its run', () => {
  it('samples the trained EMA generator and scores it on the data it trained on', async () => {
    const root = join(dir, 'trained');
    const shapes = join(root, 'shapes');
    const m = join(root, 'mini.gan');
    mkdirSync(root, { recursive: true });
    writeFileSync(m, miniGan({ text: 16, z: 8, caOut: 16, ngf: 4, ndf: 4 }) + 'train { batch = 2  g = adam(lr = 2e-3)  d = adam(lr = 2e-3) }\n');
    await generateShapes({ out: shapes, n: 8, size: 16, dim: 16, seed: 3 });
    const run = join(root, 'run');
    const t = gan('train', m, '--data', shapes, '--steps', '2', '--out', run);
    expect(t.code, t.err).toBe(0);
    const r = gan('sample', run, '--embeddings', join(shapes, 'embeddings.npy'), '--captions', join(shapes, 'captions.jsonl'), '--n', '4', '--out', join(root, 'grid.png'));
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(0);
    expect(r.out).toContain('ckpt-00000002.json (step 2, EMA weights)');
    expect((await sharp(join(root, 'grid.png')).metadata()).width).toBe(gridLayout(4, 16).width);
    expect(readFileSync(join(root, 'grid.html'), 'utf8')).toMatch(/on a (grey|white|black|brown) background<\/figcaption>/);
    const live = gan('sample', run, '--live', '--embeddings', join(shapes, 'embeddings.npy'), '--n', '4', '--out', join(root, 'live.png'));
    expect(live.code).toBe(0);
    const px = (f: string) => sharp(join(root, f)).raw().toBuffer();
    expect((await px('live.png')).equals(await px('grid.png'))).toBe(false); // the EMA average is not the live generator
    const e = gan('eval', 'colour', run, '--data', shapes, '--n', '8', '--json');
    expect(e.code).toBe(0);
    const j = JSON.parse(e.out);
    expect(j).toMatchObject({ stage: 'g0', n: 8, scored: 8, chance: 1 / 8 });
    expect(j.source).toContain('EMA weights');
  }, 300_000);
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
