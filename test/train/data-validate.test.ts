// One test per bad-data case: each problem is found before training, named by
// file and line or index, and several problems are reported together.
import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readNpy, writeNpy } from '../../runtime/train/data/npy.ts';
import { DataError, validateDataset } from '../../runtime/train/data/validate.ts';
import { openDataset } from '../../runtime/train/data/loader.ts';
import { copyOf, makeShapes } from './data-helpers.ts';

let good: string;
beforeAll(async () => {
  good = await makeShapes(8, 32, 16);
});

async function problems(dir: string, textDim?: number): Promise<string[]> {
  const r = await validateDataset(dir, { textDim });
  expect(r.dataset).toBeNull();
  return r.problems;
}

function editLines(dir: string, edit: (lines: string[]) => string[]): void {
  const p = join(dir, 'captions.jsonl');
  writeFileSync(p, edit(readFileSync(p, 'utf8').trimEnd().split('\n')).join('\n') + '\n');
}

describe('dataset validation', () => {
  it('accepts the generated shapes dataset', async () => {
    const r = await validateDataset(good, { textDim: 16 });
    expect(r.problems).toEqual([]);
    expect(r.dataset).toMatchObject({ n: 8, k: 3, d: 16 });
    expect(r.dataset!.classes).toHaveLength(8);
    expect(r.dataset!.groups).toEqual(r.dataset!.records.map((x) => x.group));
    expect(new Set(r.dataset!.groups).size).toBeGreaterThan(1);
  });

  it('embedding width differs from the model text input', async () => {
    expect(await problems(good, 512)).toEqual([`${join(good, 'embeddings.npy')}: embeddings are 16 wide, the model's text input takes 512`]);
  });

  it('counts that disagree between captions and embeddings', async () => {
    const d = copyOf(good);
    editLines(d, (l) => l.slice(0, 6));
    expect(await problems(d)).toEqual([`${join(d, 'embeddings.npy')}: 8 embedding rows, but ${join(d, 'captions.jsonl')} lists 6 images`]);
  });

  it('a missing image and an unreadable image', async () => {
    const d = copyOf(good);
    rmSync(join(d, 'images', '00002.png'));
    writeFileSync(join(d, 'images', '00005.png'), 'not a png at all');
    const p = await problems(d);
    expect(p).toHaveLength(2);
    expect(p[0]).toBe(`${join(d, 'images', '00002.png')} (${join(d, 'captions.jsonl')}:3): image missing`);
    expect(p[1]).toMatch(new RegExp(`^${join(d, 'images', '00005.png').replace(/\./g, '\\.')} \\(.*captions\\.jsonl:6\\): unreadable image`));
  });

  it('an image that is neither PNG nor JPEG', async () => {
    const d = copyOf(good);
    execFileSync('node', ['-e', `require('sharp')({create:{width:4,height:4,channels:3,background:'#f00'}}).webp().toFile(${JSON.stringify(join(d, 'images', '00001.png'))})`], { cwd: process.cwd() });
    expect((await problems(d))[0]).toMatch(/00001\.png \(.*:2\): webp image; only PNG and JPEG are supported/);
  });

  it('NaN and Inf in the embeddings, by image and caption index', async () => {
    const d = copyOf(good);
    const a = readNpy(join(d, 'embeddings.npy'));
    a.data[(4 * 3 + 1) * 16 + 7] = NaN;
    a.data[(6 * 3 + 0) * 16 + 0] = -Infinity;
    writeNpy(join(d, 'embeddings.npy'), a.shape, a.data);
    expect(await problems(d)).toEqual([`${join(d, 'embeddings.npy')}: NaN at image 4, caption 1, component 7`, `${join(d, 'embeddings.npy')}: Inf at image 6, caption 0, component 0`]);
  });

  it('a malformed .npy file', async () => {
    const d = copyOf(good);
    const buf = readFileSync(join(d, 'embeddings.npy'));
    writeFileSync(join(d, 'embeddings.npy'), buf.subarray(0, buf.length - 10));
    expect((await problems(d))[0]).toMatch(/embeddings\.npy: shape \(8, 3, 16\) of '<f4' needs 1536 bytes of data, the file has 1526 \(truncated\?\)/);
  });

  it('a malformed jsonl line, by line number', async () => {
    const d = copyOf(good);
    editLines(d, (l) => [...l.slice(0, 3), '{"file": "00003.png", "captions": [', ...l.slice(4)]);
    const p = await problems(d);
    expect(p[0]).toMatch(new RegExp(`^${join(d, 'captions.jsonl').replace(/\./g, '\\.')}:4: not valid JSON`));
    expect(p[1]).toMatch(/7 embedding rows|8 embedding rows, but .* lists 7 images/);
  });

  it('fields of the wrong type, a path outside images/, a repeated file, classes for some only', async () => {
    const d = copyOf(good);
    editLines(d, (l) => {
      l[0] = JSON.stringify({ file: '../../etc/passwd', captions: ['a', 'b', 'c'], class: 1 });
      l[1] = JSON.stringify({ file: '00001.png', captions: 'a red circle', class: 1 });
      l[2] = JSON.stringify({ file: '00002.png', captions: ['a', 'b', 'c'], class: -1 });
      l[3] = JSON.stringify({ file: '00004.png', captions: ['a', 'b', 'c'], class: 2 });
      l[5] = JSON.stringify({ file: '00005.png', captions: ['a', 'b', 'c'] });
      return l;
    });
    const p = (await problems(d)).join('\n');
    const c = join(d, 'captions.jsonl');
    expect(p).toContain(`${c}:1: "file" must be a path inside images/, got "../../etc/passwd"`);
    expect(p).toContain(`${c}:2: "captions" must be a non-empty array of strings`);
    expect(p).toContain(`${c}:3: "class" must be a non-negative integer, got -1`);
    expect(p).toContain(`${c}:5: "00004.png" is already listed on line 4`);
    expect(p).toContain(`${c}:6: "class" is given for 3 of 4 images; give it for all or none`);
  });

  it('group ids: non-negative integers, for all images or none', async () => {
    const d = copyOf(good);
    editLines(d, (l) => {
      const a = JSON.parse(l[0]);
      a.group = 1.5;
      l[0] = JSON.stringify(a);
      const b = JSON.parse(l[2]);
      delete b.group;
      l[2] = JSON.stringify(b);
      return l;
    });
    const p = (await problems(d)).join('\n');
    const c = join(d, 'captions.jsonl');
    expect(p).toContain(`${c}:1: "group" must be a non-negative integer, got 1.5`);
    expect(p).toContain(`${c}:3: "group" is given for 6 of 7 images; give it for all or none`);
  });

  it('K disagrees between captions and embeddings, by line', async () => {
    const d = copyOf(good);
    editLines(d, (l) => {
      const o = JSON.parse(l[4]);
      o.captions = o.captions.slice(0, 2);
      l[4] = JSON.stringify(o);
      return l;
    });
    expect(await problems(d)).toEqual([`${join(d, 'captions.jsonl')}:5: 2 captions, but ${join(d, 'embeddings.npy')} has 3 per image`]);
  });

  it('missing parts, all reported together', async () => {
    const d = copyOf(good);
    rmSync(join(d, 'embeddings.npy'));
    rmSync(join(d, 'captions.jsonl'));
    rmSync(join(d, 'images'), { recursive: true });
    const p = await problems(d);
    expect(p).toHaveLength(3);
    expect(p.join('\n')).toMatch(/images: missing[\s\S]*captions\.jsonl: missing[\s\S]*embeddings\.npy: missing/);
    expect(await problems(join(d, 'nowhere'))).toEqual([`${join(d, 'nowhere')}: not a directory (expected images/, embeddings.npy, captions.jsonl)`]);
  });

  it('many problems are listed up to a cap, the rest counted', async () => {
    const d = copyOf(good);
    appendFileSync(join(d, 'captions.jsonl'), 'x\n'.repeat(80));
    const p = await problems(d);
    expect(p).toHaveLength(51);
    expect(p[50]).toMatch(/^\.\.\. and \d+ more problems$/);
  });

  it('openDataset throws a DataError listing every problem, and refuses a batch larger than the data', async () => {
    const d = copyOf(good);
    rmSync(join(d, 'images', '00000.png'));
    const err = await openDataset(d, { batch: 2, resolutions: [16], seed: 0, textDim: 99 }).catch((e) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as DataError).problems).toHaveLength(2);
    expect((err as DataError).message).toMatch(/invalid dataset:\n {2}.*16 wide, the model's text input takes 99\n {2}.*00000\.png .*image missing/);
    await expect(openDataset(good, { batch: 9, resolutions: [16], seed: 0 })).rejects.toThrow(/batch 9 is larger than the dataset \(8 images\)/);
  });
});
