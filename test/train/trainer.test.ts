// The training loop on a tiny conditional GAN (miniGan: CA, one stage at
// 16x16, one D) with an in-memory batch source: losses move, two runs from
// one seed agree bit for bit, N steps equal N/2 + resume N/2 bit for bit
// (every loss, every param, optimizer moment, EMA and BN statistic), and a
// NaN stops the run naming the term, network and step, keeping the last good
// checkpoint.
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { trainerSpec } from '../../compiler/cli/train.ts';
import { buildGanSteps } from '../../compiler/gan-step.ts';
import { listCheckpoints, loadCheckpoint } from '../../runtime/train/checkpoint.ts';
import { MetricsLog, type MetricRecord } from '../../runtime/train/metrics.ts';
import { NonFiniteLossError, Trainer, type TrainerSpec } from '../../runtime/train/trainer.ts';
import { checkText, miniGan } from '../helpers/gan.ts';
import { FakeSource } from './trainer-fake-source.ts';

const BATCH = 2;
const TEXT = 16;

function spec(extraTrain = ''): TrainerSpec {
  const src = miniGan({ text: TEXT, z: 8, caOut: 16, ngf: 4, ndf: 4 }) + `train { batch = ${BATCH}  g = adam(lr = 2e-3)  d = adam(lr = 2e-3)  g_ema = 0.9 ${extraTrain} }\n`;
  const r = checkText(src);
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return trainerSpec(r.model, buildGanSteps(r.model, BATCH));
}

const source = (poison?: number) => new FakeSource(TEXT, BATCH, [16], 1, poison);
const tmp = () => mkdtempSync(join(tmpdir(), 'gan-train-'));
/** Metrics without the wall-clock fields. */
const losses = (ms: MetricRecord[]) => ms.map((m) => ({ step: m.step, losses: m.losses }));

describe('trainer', () => {
  const S = spec();

  it('trains, is deterministic, and resumes bit for bit', async () => {
    const dirA = tmp();
    const a = await Trainer.create(S, source());
    expect(a.ema?.mode).toBe('bias_corrected');
    const ra = await a.run({ steps: 4, out: dirA, ckptEvery: 2, keep: 5 });
    expect(ra).toMatchObject({ step: 4, reason: 'done' });
    const mA = MetricsLog.read(join(dirA, 'metrics.jsonl'));
    expect(mA.map((m) => m.step)).toEqual([1, 2, 3, 4]);
    // every loss term of both networks is logged and finite, and training moves them
    expect(Object.keys(mA[0].losses).sort()).toEqual(['G.g0.cond_fake', 'G.kl', 'G.loss', 'd0.cond_fake', 'd0.cond_real', 'd0.cond_wrong', 'd0.loss']);
    for (const m of mA) for (const v of Object.values(m.losses)) expect(Number.isFinite(v)).toBe(true);
    expect(mA[3].losses['d0.loss']).not.toBe(mA[0].losses['d0.loss']);
    expect(mA[3].losses['G.loss']).not.toBe(mA[0].losses['G.loss']);
    expect(listCheckpoints(dirA).map((c) => c.step)).toEqual([2, 4]);
    a.destroy();

    // determinism: a second run from the same seed
    const dirB = tmp();
    const b = await Trainer.create(S, source());
    await b.run({ steps: 4, out: dirB });
    expect(losses(MetricsLog.read(join(dirB, 'metrics.jsonl')))).toEqual(losses(mA));
    b.destroy();

    // resume: 2 steps from A's step-2 checkpoint, into a copy of its metrics
    const c = await Trainer.create(S, source());
    const side = c.resume(join(dirA, 'ckpt-00000002.json'));
    expect(side.step).toBe(2);
    expect(c.step).toBe(2);
    const dirC = tmp();
    await c.run({ steps: 4, out: dirC });
    expect(losses(MetricsLog.read(join(dirC, 'metrics.jsonl')))).toEqual(losses(mA.slice(2)));
    c.destroy();

    const endA = loadCheckpoint(dirA);
    const endC = loadCheckpoint(dirC);
    expect(endA.sidecar.step).toBe(4);
    expect(Object.keys(endC.tensors).sort()).toEqual(Object.keys(endA.tensors).sort());
    const kinds = new Set(Object.keys(endA.tensors).map((k) => k.split(':')[0]));
    expect([...kinds].sort()).toEqual(['ema', 'ema_acc', 'opt', 'param', 'rng', 'state']);
    for (const [k, t] of Object.entries(endA.tensors)) expect(Buffer.from(endC.tensors[k].data.buffer).equals(Buffer.from(t.data.buffer)), k).toBe(true);
    expect(endC.sidecar.optimizers).toEqual(endA.sidecar.optimizers);
    expect(endC.sidecar.ema).toEqual({ mode: 'bias_corrected', decay: 0.9, steps: 4 });
    expect(endC.sidecar.noise).toBe(endA.sidecar.noise);
    expect(endC.sidecar.data).toEqual({ cursor: 4 });
    expect((endA.sidecar.settings as { n_critic: number }).n_critic).toBe(1);
    // the EMA to sample from is the bias-corrected average, not the raw accumulator
    const name = Object.keys(endA.tensors).find((k) => k.startsWith('ema:'))!;
    const acc = endA.tensors[name.replace('ema:', 'ema_acc:')].data as Float32Array;
    const avg = endA.tensors[name].data as Float32Array;
    expect(avg[0]).toBeCloseTo(acc[0] / (1 - 0.9 ** 4), 5);
  }, 120_000);

  it('stops on a NaN loss naming the term, network and step, keeping the last good checkpoint', async () => {
    const dir = tmp();
    const t = await Trainer.create(S, source(2)); // the third batch (step 3) has NaN captions
    const err = await t.run({ steps: 6, out: dir, ckptEvery: 2, keep: 3 }).catch((e: unknown) => e);
    t.destroy();
    expect(err).toBeInstanceOf(NonFiniteLossError);
    const e = err as NonFiniteLossError;
    expect(e.step).toBe(3);
    expect(e.net).toBe('d0');
    expect(e.message).toMatch(/loss term 'cond_real' of network 'd0' is NaN at step 3/);
    expect(e.lastCheckpoint).toBe(join(dir, 'ckpt-00000002.json'));
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([2]);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  }, 60_000);

  it("keeps StackGAN-v2's plain EMA on request: it starts as the initial weights and is sampled as is", async () => {
    const t = await Trainer.create({ ...S, ema_mode: 'plain' }, source());
    const name = t.spec.layout.groups.G.params[0];
    const initial = await t.rt.readParam(name);
    expect((await t.ema!.average())[name]).toEqual(initial);
    const dir = tmp();
    await t.run({ steps: 2, out: dir });
    t.destroy();
    const ck = loadCheckpoint(dir);
    expect(ck.sidecar.ema).toEqual({ mode: 'plain', decay: 0.9, steps: 2 });
    expect(ck.tensors[`ema:${name}`].data).toEqual(ck.tensors[`ema_acc:${name}`].data);
    // two updates from the initial weights: 0.81 p0 + 0.09 p1 + 0.1 p2, not the live p2
    expect(ck.tensors[`ema:${name}`].data).not.toEqual(ck.tensors[`param:${name}`].data);
  }, 60_000);

  it('puts n_critic and d_every in effect (optimizer step counts)', async () => {
    for (const [train, dSteps] of [['n_critic = 2', 6], ['d_every = 2', 2]] as const) {
      const t = await Trainer.create(spec(train), source());
      await t.run({ steps: 3 });
      expect([t.optG.steps, t.optD[0].steps], train).toEqual([3, dSteps]);
      t.destroy();
    }
  }, 60_000);

  it('refuses unsupported terms with strict and warns without', async () => {
    const withPerceptual = { ...S, unsupported: ['perceptual'] };
    await expect(Trainer.create(withPerceptual, source(), { strict: true })).rejects.toThrow(/--strict: .*perceptual/);
    const warnings: string[] = [];
    const t = await Trainer.create(withPerceptual, source(), { warn: (m) => warnings.push(m) });
    t.destroy();
    expect(warnings).toEqual(['warning: training without perceptual (not implemented yet; recorded in the checkpoint sidecar)']);
  }, 60_000);

  it('refuses data whose embedding width differs from the model', async () => {
    await expect(Trainer.create(S, new FakeSource(TEXT + 1, BATCH, [16]))).rejects.toThrow(/embeddings are 17 wide, the model's text input takes 16/);
  });
});
