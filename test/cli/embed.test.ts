// `gan embed` and `gan sample --caption` through the CLI, as a user runs them:
// a vocabulary learned by the Python reference tokenizer, a CLIP text tower
// (the `tiny` preset at context 16) with random weights from
// test/encoders/encoders_ref.py, and the output checked against embed_ref.py,
// which recomputes it from the same files with PyTorch alone.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadClipTokenizer } from '../../runtime/text/vocab-files.ts';
import { readNpy } from '../../runtime/train/data/npy.ts';
import { gridLayout } from '../../runtime/train/samples.ts';
import { trainClipVocab, tokenizerReferenceAvailable, type ClipVocabFiles } from '../helpers/clip-vocab.ts';
import { miniGan } from '../helpers/gan.ts';
import { relErr } from '../oracle/compare.ts';
import { torchAvailable } from '../oracle/torch.ts';
import { gan } from '../helpers/cli.ts';

const PYTHON = process.env.GAN_TORCH_PYTHON ?? '/usr/bin/python3';
const ENCODERS_REF = join(import.meta.dirname, '..', 'encoders', 'encoders_ref.py');
const EMBED_REF = join(import.meta.dirname, 'embed_ref.py');
const dir = mkdtempSync(join(tmpdir(), 'gan-embed-'));


/** Random text-tower weights under OpenAI's names (encoders_ref.py run), the `tiny` preset's sizes unless overridden. */
function textTowerWeights(tag: string, vocab: number, over: Record<string, number> = {}): string {
  const cfg = join(dir, `${tag}.json`);
  writeFileSync(cfg, JSON.stringify({ net: 'clip_text', vocab, context: 16, width: 16, layers: 2, heads: 4, output_dim: 8, batch: 1, seed: 5, ...over }));
  execFileSync(PYTHON, [ENCODERS_REF, 'run', cfg, join(dir, tag)], { stdio: ['ignore', 'ignore', 'inherit'] });
  return join(dir, tag, 'weights.safetensors');
}

function jsonl(name: string, lines: object[] | string): string {
  const path = join(dir, name);
  writeFileSync(path, typeof lines === 'string' ? lines : lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  return path;
}

/**
 * 5 images x 2 captions (10: batches of 4, 4 and a padded 2 at --batch 4);
 * with the learned vocabulary one caption runs past 16 tokens, the first
 * fills them exactly.
 */
const CAPTIONS = [
  ['a red circle on a blue background', 'a red circle'],
  ['two dogs playing in the snow', 'A Photo Of A CAT'],
  ['the quick brown fox jumps over the lazy dog, then a man riding a bicycle down the street sees a yellow flower', 'a blue square'],
  ['café crème', 'a white plate with a banana'],
  ['wow!!!', 'in 2024'],
];

const norm = (v: Float32Array) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));

describe.skipIf(!torchAvailable() || !tokenizerReferenceAvailable())('gan embed and gan sample --caption', () => {
  let vocab: ClipVocabFiles;
  let vocabSize = 0;
  let weights = '';
  let clip: string[] = [];
  const captions = jsonl('captions.jsonl', CAPTIONS.map((c, i) => ({ file: `${i}.png`, captions: c })));

  beforeAll(() => {
    mkdirSync(join(dir, 'vocab'));
    vocab = trainClipVocab(join(dir, 'vocab'));
    vocabSize = loadClipTokenizer(vocab.gz).vocabSize;
    weights = textTowerWeights('clip', vocabSize);
    clip = ['--weights', weights, '--vocab', vocab.gz, '--preset', 'tiny', '--set', `vocab=${vocabSize}`, '--set', 'context=16'];
  });

  it('writes [N, K, D] unit vectors equal to tokenizer + text tower + L2 norm in PyTorch; a partial last batch; truncation counted', () => {
    expect(vocabSize).toBe(512 + 300 + 2);
    const out = join(dir, 'emb.npy');
    const r = gan('embed', captions, ...clip, '--batch', '4', '--out', out);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`wrote ${out}: float32 [5, 2, 8], L2-normalised`);
    expect(r.err).toContain('embedded 10/10 captions');
    const got = readNpy(out);
    expect(got.shape).toEqual([5, 2, 8]);
    for (let row = 0; row < 10; row++) expect(Math.abs(norm(got.data.subarray(row * 8, row * 8 + 8)) - 1)).toBeLessThan(1e-5);

    const ref = JSON.parse(execFileSync(PYTHON, [EMBED_REF, captions, vocab.gz, weights], { encoding: 'utf8' })) as { shape: number[]; embeddings: number[]; truncated: number };
    expect(ref.shape).toEqual([5, 2, 8]);
    const e = relErr(got.data, ref.embeddings);
    expect(e, `rel err ${e}`).toBeLessThan(1e-5);
    expect(ref.truncated).toBe(1);
    expect(r.err).toContain('note: 1 of 10 caption(s) longer than 16 tokens, truncated as CLIP does');
  });

  it('writes [N, D] for one caption per line (default batch), the same vectors', () => {
    const one = jsonl('one.jsonl', CAPTIONS.slice(0, 3).map((c, i) => ({ file: `${i}.png`, captions: [c[0]] })));
    const out = join(dir, 'one.npy');
    const r = gan('embed', one, ...clip, '--out', out);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain('note: 1 of 3 caption(s) longer than 16 tokens');
    const got = readNpy(out);
    expect(got.shape).toEqual([3, 8]);
    const both = readNpy(join(dir, 'emb.npy')).data;
    const firsts = Float32Array.from({ length: 24 }, (_, j) => both[Math.floor(j / 8) * 16 + (j % 8)]);
    expect(relErr(got.data, firsts)).toBeLessThan(1e-6);
  });

  describe('refuses bad input before any GPU work, exit 1, no output left behind', () => {
    const wrongWidth = () => textTowerWeights('clip-w32', vocabSize, { width: 32 });
    const cases: [string, () => string[], RegExp | string][] = [
      ['a missing vocabulary file', () => ['embed', captions, ...clip.map((a) => (a === vocab.gz ? join(dir, 'nope.txt.gz') : a))], `${join(dir, 'nope.txt.gz')}: no such file`],
      ['a vocabulary larger than the model\'s vocab', () => ['embed', captions, ...clip.slice(0, 6), '--set', 'vocab=100', '--set', 'context=16'], /: the vocabulary has 814 tokens, more than the 100 of .*clip-vit-b32\.gan's 'vocab' param/],
      ['a line that is not JSON', () => ['embed', jsonl('bad-json.jsonl', '{"file": "0.png", "captions": ["a"]}\n{"file": "1.png", "capt\n'), ...clip], /bad-json\.jsonl:2: not valid JSON .*expected one object per line/],
      ['a line without a captions array', () => ['embed', jsonl('bad-caps.jsonl', [{ file: '0.png', captions: ['a'] }, {}, { file: '2.png', captions: 'a red circle' }]), ...clip], /bad-caps\.jsonl:2: expected \{"file": "0001\.png", "captions": \["\.\.\.", \.\.\.\]\} with "captions" a non-empty array of strings/],
      ['lines with different K', () => ['embed', jsonl('bad-k.jsonl', '\n{"captions": ["a", "b"]}\n{"captions": ["c"]}\n'), ...clip], /bad-k\.jsonl:3: 1 caption\(s\), but line 2 has 2; every line needs the same number/],
      ['a checkpoint for another width', () => ['embed', captions, ...clip.map((a) => (a === weights ? wrongWidth() : a))], /clip-w32\/weights\.safetensors: does not fit encoder 'text' \(\d+ problems\):\n(.*\n)* {2}tensor 'token_embedding\.weight' is \[814, 32\], parameter 'embedding\.0\/weight' is \[814, 16\]\n/],
      ['a missing checkpoint', () => ['embed', captions, ...clip.map((a) => (a === weights ? join(dir, 'none.safetensors') : a))], `${join(dir, 'none.safetensors')}: no such file (the CLIP checkpoint)`],
    ];
    it.each(cases)('%s', (name, args, message) => {
      const outDir = join(dir, `out-${name.replace(/\W+/g, '-')}`);
      mkdirSync(outDir);
      const r = gan(...args(), '--out', join(outDir, 'embeddings.npy'));
      expect(r.code).toBe(1);
      if (typeof message === 'string') expect(r.err).toContain(message);
      else expect(r.err).toMatch(message);
      expect(r.err).not.toMatch(/\n\s+at /);
      expect(r.err).not.toContain('embedded'); // no batch ran
      expect(readdirSync(outDir)).toEqual([]);
    });
  });

  describe('gan sample --caption', () => {
    const model8 = join(dir, 'mini8.gan');
    writeFileSync(model8, miniGan({ text: 8, z: 4, caOut: 8, ngf: 2 }));
    const sampleClip = () => ['--weights', weights, '--vocab', vocab.gz, '--clip-preset', 'tiny', '--clip-set', `vocab=${vocabSize}`, '--clip-set', 'context=16'];
    const texts = ['a small red circle', 'two dogs playing in the snow'];

    it('samples a grid from captions embedded exactly as gan embed embeds them', async () => {
      const out = join(dir, 'caption.png');
      const r = gan('sample', model8, '--caption', texts[0], '--caption', texts[1], ...sampleClip(), '--n', '4', '--seed', '3', '--out', out);
      expect(r.err).not.toMatch(/\n\s+at /);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toContain('sampled 4 image(s)');
      const L = gridLayout(4, 16);
      const meta = await sharp(out).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['png', L.width, L.height]);
      expect(readFileSync(join(dir, 'caption.html'), 'utf8')).toContain(`${texts[1]}</figcaption>`);
      // The same captions through gan embed, then --embeddings: the same pixels.
      const npy = join(dir, 'two.npy');
      expect(gan('embed', jsonl('two.jsonl', texts.map((t) => ({ captions: [t] }))), ...clip, '--out', npy).code).toBe(0);
      const viaNpy = join(dir, 'via-npy.png');
      expect(gan('sample', model8, '--embeddings', npy, '--n', '4', '--seed', '3', '--out', viaNpy).code).toBe(0);
      const px = (f: string) => sharp(f).raw().toBuffer();
      expect((await px(out)).equals(await px(viaNpy))).toBe(true);
    });

    it('refuses a CLIP width other than the model\'s text input, and --caption with --embeddings', () => {
      const model12 = join(dir, 'mini12.gan');
      writeFileSync(model12, miniGan({ text: 12, z: 4, caOut: 8, ngf: 2 }));
      const out = join(dir, 'mismatch.png');
      const r = gan('sample', model12, '--caption', texts[0], ...sampleClip(), '--out', out);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/clip-vit-b32\.gan \(encoder 'text'\) gives 8-wide embeddings, the model's 'text' input is 12 wide/);
      expect(r.err).not.toMatch(/\n\s+at /);
      expect(existsSync(out)).toBe(false);
      const both = gan('sample', model8, '--caption', texts[0], '--embeddings', join(dir, 'two.npy'), ...sampleClip(), '--out', out);
      expect(both.code).toBe(1);
      expect(both.err).toContain('give --embeddings or --caption, not both');
      const noVocab = gan('sample', model8, '--caption', texts[0], '--weights', weights, '--out', out);
      expect(noVocab.err).toContain('--caption needs --weights CLIP.safetensors and --vocab FILE');
    });
  });
});
