// Checkpoint files: names, keep-K, the sidecar's hash check, what a run
// folder resolves to, and a torn write (a tensor file without its sidecar)
// never taken for a checkpoint.
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listCheckpoints, loadCheckpoint, writeCheckpoint } from '../../runtime/train/checkpoint.ts';

const tensors = (x: number) => ({ 'param:G.w': { shape: [2, 2], data: Float32Array.of(x, 2, 3, 4) }, rng: { shape: [2], data: Uint32Array.of(7, x) } });

describe('checkpoints', () => {
  it('writes tensors and sidecar, keeps the newest K, loads the newest from a run folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gan-ckpt-'));
    for (const s of [1, 2, 3, 4]) writeCheckpoint(dir, s, tensors(s), { noise: s * 10, data: { cursor: s } }, 2);
    expect(readdirSync(dir).sort()).toEqual(['ckpt-00000003.json', 'ckpt-00000003.safetensors', 'ckpt-00000004.json', 'ckpt-00000004.safetensors']);
    const ck = loadCheckpoint(dir);
    expect(ck.path).toBe(join(dir, 'ckpt-00000004.json'));
    expect(ck.sidecar).toMatchObject({ format: 'gan-checkpoint', version: 1, step: 4, noise: 40, data: { cursor: 4 }, tensors: 'ckpt-00000004.safetensors' });
    expect([...ck.tensors['param:G.w'].data]).toEqual([4, 2, 3, 4]);
    expect(ck.tensors['param:G.w'].shape).toEqual([2, 2]);
    expect(ck.tensors.rng.data).toEqual(Uint32Array.of(7, 4));
    expect(loadCheckpoint(join(dir, 'ckpt-00000003.safetensors')).sidecar.step).toBe(3);
  });

  it('ignores a tensor file without a sidecar and refuses one whose contents changed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gan-ckpt-'));
    writeCheckpoint(dir, 5, tensors(5), {});
    writeFileSync(join(dir, 'ckpt-00000009.safetensors'), 'torn');
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([5]);
    writeFileSync(join(dir, 'ckpt-00000005.safetensors'), 'tampered');
    expect(() => loadCheckpoint(dir)).toThrow(/do not match the sidecar's SHA-256/);
  });

  it('explains what is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gan-ckpt-'));
    expect(() => loadCheckpoint(dir)).toThrow(/no checkpoint \(ckpt-<step>\.json\) in this folder/);
    expect(() => loadCheckpoint(join(dir, 'nope'))).toThrow(/no such checkpoint or run folder/);
    writeFileSync(join(dir, 'ckpt-00000001.json'), '{"format": "other"}');
    expect(() => loadCheckpoint(dir)).toThrow(/not a gan checkpoint sidecar/);
    writeFileSync(join(dir, 'ckpt-00000001.json'), '{"format": "gan-checkpoint", "version": 1, "tensors": "../../etc/passwd"}');
    expect(() => loadCheckpoint(dir)).toThrow(/bad tensor file name/);
  });
});
