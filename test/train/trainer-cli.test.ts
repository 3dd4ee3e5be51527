// `gan train` end to end through the command line, as a user runs it, on a
// tiny model (miniGan at 16x16) and a tiny shapes dataset: a run leaves
// checkpoints, metrics, curves and samples; --resume continues it; Ctrl-C
// finishes the step, checkpoints and exits 0; bad data is refused before the
// first step.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateShapes } from '../../runtime/train/data/index.ts';
import { listCheckpoints, loadCheckpoint } from '../../runtime/train/checkpoint.ts';
import { MetricsLog } from '../../runtime/train/metrics.ts';
import { miniGan } from '../helpers/gan.ts';
import { gan, ours } from '../helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'gan-train-cli-'));
const model = join(dir, 'mini.gan');
const data = join(dir, 'shapes');
const env = { ...process.env, NO_COLOR: '1', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp/xdg' };

/** stderr less Dawn's own notices about lavapipe's limits. */


beforeAll(async () => {
  writeFileSync(model, miniGan({ text: 16, z: 8, caOut: 16, ngf: 4, ndf: 4 }) + 'train { batch = 2  g = adam(lr = 2e-3)  d = adam(lr = 2e-3) }\n');
  await generateShapes({ out: data, n: 8, size: 16, dim: 16, seed: 3 });
}, 60_000);

describe('gan train', () => {
  it('trains, leaves checkpoints, metrics, curves and samples, and resumes exactly', () => {
    const out = join(dir, 'run');
    const r = gan('train', model, '--data', data, '--steps', '4', '--out', out, '--ckpt-every', '2', '--sample-every', '2');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/planned memory/);
    expect(r.out).toMatch(/compiling kernels (\d+)\/\1/);
    expect(r.out).toMatch(/step 4\/4 {2}ETA \S+ {2}[\d.]+ img\/s {2}D [\d.]+ {2}G [\d.]+/);
    expect(r.out).toContain(`done: 4 steps; checkpoint: ${join(out, 'ckpt-00000004.json')}`);
    expect(listCheckpoints(out).map((c) => c.step)).toEqual([2, 4]);
    for (const f of ['metrics.jsonl', 'curves.png', 'samples/latest-g0.png', 'samples/index.html']) expect(existsSync(join(out, f)), f).toBe(true);
    const ck = loadCheckpoint(out);
    expect(ck.sidecar).toMatchObject({ step: 4, model: { file: model, name: 'Mini' }, train: { batch: 2 }, data: { epoch: expect.any(Number) } });
    expect(ck.sidecar.sources_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.values(ck.sidecar.sources as Record<string, string>)[0]).toContain('gan Mini');
    expect(ck.sidecar.adapter).toHaveProperty('description');

    // the same run in two halves: identical losses, identical final tensors
    const half = join(dir, 'half');
    expect(gan('train', model, '--data', data, '--steps', '2', '--out', half).code).toBe(0);
    const again = gan('train', model, '--data', data, '--steps', '4', '--out', half);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already holds checkpoints: pass --resume/);
    const rr = gan('train', model, '--data', data, '--steps', '4', '--out', half, '--resume', '--ckpt-every', '1', '--keep', '5');
    expect(rr.code).toBe(0);
    expect(rr.out).toContain(`resumed from ${half} at step 2`);
    const strip = (p: string) => MetricsLog.read(p).map((m) => ({ step: m.step, losses: m.losses }));
    expect(strip(join(half, 'metrics.jsonl'))).toEqual(strip(join(out, 'metrics.jsonl')));
    // and a run resumed from a resumed run's checkpoint (its data state as it saved it)
    const r3 = gan('train', model, '--data', data, '--steps', '5', '--out', half, '--resume', join(half, 'ckpt-00000003.json'));
    expect(r3.err).toBe('');
    expect(r3.code).toBe(0);
    const a = loadCheckpoint(join(out, 'ckpt-00000004.json')).tensors;
    const b = loadCheckpoint(join(half, 'ckpt-00000004.json')).tensors;
    for (const [k, t] of Object.entries(a)) expect(Buffer.from(b[k].data.buffer).equals(Buffer.from(t.data.buffer)), k).toBe(true);
  }, 240_000);

  it('Ctrl-C finishes the step, writes a checkpoint and exits 0', async () => {
    const out = join(dir, 'sigint');
    const child = spawn(process.execPath, ['scripts/gan.js', 'train', model, '--data', data, '--steps', '100000', '--out', out], { env });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        const first = !/step 1\//.test(stdout);
        stdout += d;
        if (first && /step 1\//.test(stdout)) child.kill('SIGINT');
      });
      child.on('exit', (c) => resolve(c));
    });
    expect(ours(stderr)).toBe('');
    expect(code).toBe(0);
    const m = /interrupted at step (\d+); checkpoint: (\S+)/.exec(stdout);
    expect(m, stdout).not.toBeNull();
    const step = Number(m![1]);
    expect(step).toBeGreaterThanOrEqual(1);
    expect(loadCheckpoint(out).sidecar.step).toBe(step);
    expect(MetricsLog.read(join(out, 'metrics.jsonl')).length).toBe(step);
  }, 120_000);

  it('a NaN loss (a --set that blows D up) stops the run naming the term, network and step, exit 1', () => {
    const out = join(dir, 'nan');
    const r = gan('train', model, '--data', data, '--steps', '10', '--out', out, '--set', 'train.d.lr=1e20');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^gan: loss term '[\w.]+' of network '\w+' is (NaN|-?Infinity) at step \d+; stopped/m);
    expect(r.err).not.toMatch(/\n\s+at /); // no stack trace
  }, 60_000);

  it('a lost device is reported naming the step and the last good checkpoint, exit 70', () => {
    const out = join(dir, 'lost');
    const r = spawnSync(process.execPath, ['scripts/gan.js', 'train', model, '--data', data, '--steps', '10', '--ckpt-every', '2', '--out', out], {
      encoding: 'utf8',
      env: { ...env, GAN_TEST_DEVICE_LOST_AFTER_STEP: '5' },
      timeout: 120_000,
    });
    expect(r.status).toBe(70);
    const err = ours(r.stderr);
    expect(err).toMatch(/^gan: WebGPU device lost: lost on purpose/m);
    const m = /^gan: the device was lost at step (\d+); last good checkpoint: (\S+) \(continue with --resume\)$/m.exec(err);
    expect(m, err).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(5);
    // The newest checkpoint on disk is the one named, and it is whole.
    const newest = listCheckpoints(out).at(-1)!;
    expect(m![2]).toBe(newest.path);
    expect(loadCheckpoint(newest.path).sidecar.step).toBe(4);
    expect(err).not.toMatch(/\n\s+at /);
  }, 60_000);

  it('a term nothing computes: --strict refuses, otherwise a one-line warning recorded in the sidecar; --epochs counts passes', () => {
    // A loss declared in a discriminator that no objective weight reads.
    const withLoss = join(dir, 'extra-loss.gan');
    const body = `  f = image |> conv(ndf, k = 4, stride = 2) |> leaky_relu(0.2)
  head uncond = f |> conv(1, k = 8, stride = 8, bias = true) |> reshape(1)
  head cond = concat(tile(mu, 8), f) |> conv(1, k = 8, stride = 8, bias = true)
  loss extra = l1(f |> mean_hw, f |> mean_hw)
`;
    writeFileSync(withLoss, miniGan({ text: 16, z: 8, caOut: 16, ngf: 4, ndf: 4, discriminator: body }) + 'train { batch = 2 }\n');
    const out = join(dir, 'extra');
    const unsupported = "loss 'extra' of d0 (no objective weight reads it)";
    const strict = gan('train', withLoss, '--data', data, '--steps', '2', '--out', out, '--strict');
    expect(strict.code).toBe(1);
    expect(strict.err).toContain(`gan: --strict: the model asks for terms this trainer does not compute: ${unsupported}`);
    const r = gan('train', withLoss, '--data', data, '--epochs', '1', '--out', out);
    expect(r.code).toBe(0);
    expect(r.err).toBe(`warning: training without ${unsupported} (not implemented yet; recorded in the checkpoint sidecar)\n`);
    const ck = loadCheckpoint(out);
    expect(ck.sidecar.step).toBe(4); // 8 images at batch 2
    expect(ck.sidecar.unsupported).toEqual([unsupported]);
  }, 60_000);

  it('a frozen term without its checkpoint stops before compiling, naming the path; off trains without it', () => {
    const out = join(dir, 'perceptual');
    const term = 'objective.perceptual=vgg(weight = 1, at = g0, checkpoint = "no/vgg16.safetensors")';
    const r = gan('train', model, '--data', data, '--steps', '2', '--out', out, '--set', term);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^gan: objective\.perceptual needs VGG16's weights, and 'no\/vgg16\.safetensors' does not exist \(.*\)\. .*--set objective\.perceptual=off$/m);
    expect(r.out).not.toMatch(/compil/);
    const off = gan('train', model, '--data', data, '--steps', '2', '--out', out, '--set', 'objective.perceptual=off');
    expect(off.code).toBe(0);
    expect(loadCheckpoint(out).sidecar.unsupported).toEqual([]);
  }, 60_000);

  it('refuses data whose embeddings do not fit the model, before training', () => {
    const wide = join(dir, 'wide.gan');
    writeFileSync(wide, miniGan({ text: 32, z: 8, caOut: 16, ngf: 4, ndf: 4 }) + 'train { batch = 2 }\n');
    const r = gan('train', wide, '--data', data, '--steps', '2', '--out', join(dir, 'never'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/invalid dataset/);
    expect(r.err).toMatch(/32/);
    expect(existsSync(join(dir, 'never'))).toBe(false);
  }, 60_000);

  it('says how long to train when nothing does', () => {
    const r = gan('train', model, '--data', data, '--out', join(dir, 'never2'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/give --steps N or --epochs N/);
  }, 60_000);
});
