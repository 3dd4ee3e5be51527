// `gan train MODEL.gan --data DIR ...`: check -> compile -> train. The CLI
// builds the trainer's JSON spec from the compiler's GanSteps and the model's
// TrainConfig; everything after that (the loop, checkpoints, metrics) lives in
// runtime/train/ and knows no syntax.
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { CheckedModel } from '../check/model.ts';
import { readCheckpoint } from '../encoders/checkpoint.ts';
import { FrozenTermError, frozenTerms, type FrozenTerm } from '../encoders/frozen.ts';
import { buildGanSteps, type GanSteps } from '../gan-step.ts';
import { checkFile } from '../index.ts';
import { DEFAULT_LIMITS, formatMemory } from '../plan/index.ts';
import { onDeviceLost, reportDeviceLost } from '../../runtime/device.ts';
import { Runtime } from '../../runtime/executor.ts';
import { listCheckpoints, type CheckpointSidecar } from '../../runtime/train/checkpoint.ts';
import { writeCurves } from '../../runtime/train/curves.ts';
import { DataError, openDataset, validateDataset, type BatchSource } from '../../runtime/train/data/index.ts';
import type { EmaMode } from '../../runtime/train/ema.ts';
import { sampleFixture, writeSamples } from '../../runtime/train/samples.ts';
import { NonFiniteLossError, Trainer, type TrainerSpec } from '../../runtime/train/trainer.ts';
import { UserError } from './user-error.ts';
import { printDiagnostics } from './diagnostics.ts';
import { buildGeneratorEval, generate, writeGeneratorWeights } from './generator-eval.ts';

/** The trainer's spec: the two programs with their roles, and every setting the loop reads, resolved. */
export function trainerSpec(m: CheckedModel, steps: GanSteps, opts: { batch?: number; seed?: number; emaMode?: EmaMode; frozen?: readonly FrozenTerm[] } = {}): TrainerSpec {
  const t = m.train;
  const batch = opts.batch ?? t.batch;
  const text = steps.dStep.feeds.find((f) => f.role.role === 'text');
  if (text && text.shape[0] !== batch) throw new Error(`internal: step programs built for batch ${text.shape[0]}, not ${batch}`);
  return {
    layout: steps.layout,
    dStep: steps.dStep,
    gStep: steps.gStep,
    groups: steps.groups,
    optim: { g: { ...t.g }, d: Object.fromEntries(steps.groups.d.map((d) => [d, { ...t.d }])) },
    n_critic: t.n_critic,
    d_every: t.d_every,
    g_ema: t.g_ema,
    ema_mode: opts.emaMode ?? 'bias_corrected',
    batch,
    seed: opts.seed ?? t.seed,
    unsupported: steps.unsupported,
    ...(opts.frozen?.length ? { frozen: opts.frozen.map((f) => ({ term: f.setting, encoder: f.encoder.name, checkpoint: f.checkpoint })) } : {}),
  };
}

/** The frozen encoders' parameter values by param name, read from their checkpoints (checked against the encoders). */
function frozenValues(frozen: readonly FrozenTerm[], say: (s: string) => void): Map<string, Float32Array> {
  const values = new Map<string, Float32Array>();
  for (const f of frozen) {
    let params: Map<string, Float32Array>;
    try {
      params = readCheckpoint(f.encoder, f.checkpoint);
    } catch (e) {
      throw new UserError(`objective.${f.setting}: ${(e as Error).message}`);
    }
    for (const [path, data] of params) values.set(`${f.encoder.name}/${path}`, data);
    say(`frozen: ${f.encoder.name} (${f.encoder.graph.parameters.toLocaleString('en-US')} parameters) from ${f.checkpoint}: ${f.setting} at ${f.at}, weight ${f.weight}`);
  }
  return values;
}

/**
 * The model's sources (the file and its imports) with one hash over them all,
 * for the sidecar. Command-line overrides, which the checker keeps as sources
 * named '--set ...', are left out: the sidecar records them under model.set.
 */
export function recordSources(sources: Map<string, string>): { sources: Record<string, string>; sources_sha256: string } {
  const entries = [...sources.entries()].filter(([k]) => !k.startsWith('--')).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const h = createHash('sha256');
  for (const [k, v] of entries) h.update(`${k}\0${v}\0`);
  return { sources: Object.fromEntries(entries), sources_sha256: h.digest('hex') };
}

// ---- the command ----

export interface TrainCliOptions {
  data?: string;
  preset?: string;
  set?: string[];
  steps?: string;
  epochs?: string;
  batch?: string;
  seed?: string;
  out?: string;
  resume?: string | boolean;
  ckptEvery?: string;
  keep?: string;
  sampleEvery?: string;
  strict?: boolean;
  ema?: string;
}

function wholeNumber(flag: string, s: string | undefined, min = 1): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isInteger(n) || n < min) throw new UserError(`${flag} must be a whole number >= ${min}, got '${s}'`);
  return n;
}

function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** A line that rewrites itself on a terminal and prints plainly (every `every`-th update) elsewhere. */
class StatusLine {
  private readonly tty = Boolean(process.stdout.isTTY);
  private open = false;
  update(text: string, always = false): void {
    if (this.tty) {
      process.stdout.write(`\r\x1b[K${text}`);
      this.open = true;
    } else if (always) process.stdout.write(text + '\n');
  }
  done(): void {
    if (this.open) process.stdout.write('\n');
    this.open = false;
  }
}

export async function runTrain(file: string, opts: TrainCliOptions): Promise<number> {
  const say = (s: string) => process.stdout.write(s + '\n');
  if (!opts.data) throw new UserError('--data DIR is required (a dataset folder: images/, embeddings.npy, captions.jsonl; see the README)');
  if (opts.steps !== undefined && opts.epochs !== undefined) throw new UserError('give --steps or --epochs, not both');
  const emaMode = (opts.ema ?? 'bias_corrected') as EmaMode;
  if (emaMode !== 'plain' && emaMode !== 'bias_corrected') throw new UserError(`--ema must be 'plain' or 'bias_corrected', got '${opts.ema}'`);

  // 1. check
  const r = checkFile(file, { set: opts.set, preset: opts.preset });
  printDiagnostics(r);
  if (!r.model) return 1;
  const m = r.model;
  const batch = wholeNumber('--batch', opts.batch) ?? m.train.batch;
  const seed = wholeNumber('--seed', opts.seed, 0) ?? m.train.seed;

  // 2. the frozen encoders' checkpoints, then the two step programs (the kernels themselves compile on the device below)
  let frozen: FrozenTerm[];
  try {
    frozen = frozenTerms(m);
  } catch (e) {
    if (e instanceof FrozenTermError) throw new UserError(e.message);
    throw e;
  }
  const frozenParams = frozenValues(frozen, say);
  const t0 = performance.now();
  const steps = buildGanSteps(m, batch, DEFAULT_LIMITS, frozen);
  const spec = trainerSpec(m, steps, { batch, seed, emaMode, frozen });
  const text = steps.dStep.feeds.find((f) => f.role.role === 'text');
  const resolutions = [...new Set(steps.dStep.feeds.filter((f) => f.role.role === 'real_image').map((f) => f.shape[2]))];
  say(`${m.name}: batch ${batch}, seed ${seed}; planned memory:`);
  for (const p of [steps.dStep.plan, steps.gStep.plan]) say(formatMemory(p).replace(/^/gm, '  '));

  // 3. the data, validated before anything trains
  let source: BatchSource;
  try {
    source = await openDataset(opts.data, { batch, resolutions, seed, textDim: text?.shape[1], wrongSameGroup: m.train.wrong_same_group });
  } catch (e) {
    if (e instanceof DataError) {
      process.stderr.write(`gan: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  const perEpoch = Math.ceil(source.size / batch);
  const epochs = wholeNumber('--epochs', opts.epochs);
  const total = wholeNumber('--steps', opts.steps) ?? (epochs !== undefined ? epochs * perEpoch : (m.train.steps ?? (m.train.epochs !== null ? m.train.epochs * perEpoch : undefined)));
  if (total === undefined) throw new UserError('how long to train? give --steps N or --epochs N (or train.steps / train.epochs in the model)');
  say(`data: ${opts.data}: ${source.size} images, captions ${source.textDim} wide, ${perEpoch} steps per epoch`);

  const out = opts.out ?? join('runs', m.name.toLowerCase());
  if (!opts.resume && listCheckpoints(out).length) throw new UserError(`${out} already holds checkpoints: pass --resume to continue that run, or another --out`);
  mkdirSync(out, { recursive: true });

  // 4. kernels compiled on the device, with progress
  const status = new StatusLine();
  let trainer: Trainer;
  try {
    trainer = await Trainer.create(spec, source, {
      strict: opts.strict,
      frozen: frozenParams,
      warn: (w) => process.stderr.write(`${w}\n`),
      onCompile: (done, n) => status.update(`compiling kernels ${done}/${n}`, done === n),
      onWarm: () => status.update('first dispatch of every kernel (the driver finishes compiling them)...'),
    });
  } catch (e) {
    status.done();
    await source.close();
    if (opts.strict && /--strict/.test((e as Error).message)) throw new UserError((e as Error).message);
    throw e;
  }
  status.done();
  say(`compiled in ${duration(performance.now() - t0)} on ${trainer.rt.ctx.info.description}`);

  if (opts.resume) {
    const from = typeof opts.resume === 'string' ? opts.resume : out;
    let side: CheckpointSidecar;
    try {
      side = trainer.resume(from);
    } catch (e) {
      await source.close();
      trainer.destroy();
      throw new UserError(`cannot resume from ${from}: ${(e as Error).message}`);
    }
    if (side.sources_sha256 !== undefined && side.sources_sha256 !== recordSources(r.sources).sources_sha256) {
      process.stderr.write(`warning: the model's sources differ from those the checkpoint was trained with\n`);
    }
    for (const change of settingChanges(side.settings, trainer.spec)) process.stderr.write(`warning: resuming with ${change}\n`);
    say(`resumed from ${from} at step ${trainer.step}`);
  }

  const record = {
    model: { file, name: m.name, preset: opts.preset ?? null, set: opts.set ?? [] },
    ...recordSources(r.sources),
    params: m.params,
    train: m.train,
    objective: m.objective,
    adapter: trainer.rt.ctx.info,
  };

  // 5. train
  let stop = false;
  const onSigint = () => {
    if (stop) process.exit(130); // a second Ctrl-C: leave now
    stop = true;
    status.update('stopping after this step (Ctrl-C again to quit without a checkpoint)...', true);
  };
  process.on('SIGINT', onSigint);
  const offLost = onDeviceLost(() => {
    status.done();
    const last = listCheckpoints(out).at(-1);
    process.stderr.write(`gan: the device was lost at step ${trainer.step + 1}; ${last ? `last good checkpoint: ${last.path} (continue with --resume)` : 'no checkpoint was written before it'}\n`);
  });
  // Test hook: Dawn cannot lose a device on demand, so the tests take this
  // path (the same as a real loss's, runtime/device.ts) after a given step.
  const loseAfter = Number(process.env.GAN_TEST_DEVICE_LOST_AFTER_STEP ?? NaN);
  const every = Math.max(1, Math.floor(total / 100));
  const started = performance.now();
  const startStep = trainer.step;
  const samples = opts.sampleEvery ? await sampler(m, trainer, opts.data, out, seed) : null;
  let code = 0;
  try {
    const res = await trainer.run({
      steps: total,
      out,
      ckptEvery: wholeNumber('--ckpt-every', opts.ckptEvery) ?? Math.max(1, Math.min(1000, total)),
      keep: wholeNumber('--keep', opts.keep) ?? 3,
      record,
      shouldStop: () => stop,
      sampleEvery: wholeNumber('--sample-every', opts.sampleEvery),
      onSample: samples ?? undefined,
      onStep: (mr) => {
        const done = mr.step - startStep;
        const eta = ((performance.now() - started) / done) * (total - mr.step);
        const d = Object.entries(mr.losses).filter(([k]) => k.endsWith('.loss') && !k.startsWith('G.')).map(([, v]) => v);
        const dl = d.length ? (d.reduce((a, b) => a + b, 0) / d.length).toFixed(3) : '-';
        const g = mr.losses['G.loss'];
        status.update(`step ${mr.step}/${total}  ETA ${duration(eta)}  ${mr.images_per_s.toFixed(1)} img/s  D ${dl}  G ${g === undefined ? '-' : g.toFixed(3)}`, mr.step === startStep + 1 || mr.step % every === 0 || mr.step === total);
        if (mr.step === loseAfter) reportDeviceLost('lost on purpose (GAN_TEST_DEVICE_LOST_AFTER_STEP)');
      },
    });
    status.done();
    await writeCurves(join(out, 'metrics.jsonl'), join(out, 'curves.png')).catch(() => {});
    if (res.reason === 'stopped') say(`interrupted at step ${res.step}; checkpoint: ${res.lastCheckpoint}`);
    else say(`done: ${res.step} steps; checkpoint: ${res.lastCheckpoint}`);
    say(`run folder: ${out} (metrics.jsonl, curves.png${samples ? ', samples/' : ''}, ckpt-*.safetensors + .json)`);
  } catch (e) {
    status.done();
    // A bad image found mid-run (DataError) is reported like one found before it.
    if (!(e instanceof NonFiniteLossError || e instanceof DataError)) throw e;
    process.stderr.write(`gan: ${e.message}\n`);
    code = 1;
  } finally {
    process.off('SIGINT', onSigint);
    offLost();
    await source.close();
    trainer.destroy();
  }
  return code;
}

/** Settings of the run that differ from those a checkpoint recorded ("train.g.lr 0.0002 -> 0.0001"). */
function settingChanges(recorded: unknown, spec: TrainerSpec): string[] {
  if (typeof recorded !== 'object' || recorded === null) return [];
  const { layout: _l, dStep: _d, gStep: _g, ...now } = spec;
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, path: string) => {
    if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && !Array.isArray(a)) {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
    } else if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${path} ${JSON.stringify(a)} -> ${JSON.stringify(b)} (the checkpoint's value first)`);
  };
  walk(recorded, now, '');
  return out;
}

/**
 * The --sample-every hook: the generator in eval mode on a second runtime,
 * fed fixed captions of the dataset (sampleFixture) and fixed device noise,
 * with the EMA average (or the live weights without an EMA) and G's BatchNorm
 * statistics copied from the trainer; grids via writeSamples.
 */
async function sampler(m: CheckedModel, trainer: Trainer, dataDir: string, out: string, seed: number): Promise<(step: number) => Promise<void>> {
  const n = 16;
  const { dataset } = await validateDataset(dataDir);
  if (!dataset) throw new UserError(`${dataDir}: could not be read for samples`);
  const gen = buildGeneratorEval(m, Math.min(n, trainer.spec.batch));
  const rt = await Runtime.create(gen.layout, { ctx: trainer.rt.ctx });
  const prog = await rt.load(gen.plan);
  const fx = sampleFixture({ n, size: dataset.n, captionsPer: dataset.k, noise: {}, seed });
  const D = dataset.d;
  const text = new Float32Array(n * D);
  fx.indices.forEach((idx, i) => text.set(dataset.embeddings.subarray((idx * dataset.k + fx.captions[i]) * D, (idx * dataset.k + fx.captions[i] + 1) * D), i * D));
  const captions = fx.indices.map((idx, i) => dataset.records[idx].captions[fx.captions[i]]);
  return async (step: number) => {
    const values: Record<string, Float32Array> = trainer.ema ? await trainer.ema.average() : {};
    for (const name of Object.keys(gen.layout.params)) values[name] ??= await trainer.rt.readParam(name);
    for (const name of Object.keys(gen.layout.state)) values[name] = await trainer.rt.readState(name);
    writeGeneratorWeights(rt, gen.layout, values, 'the trainer');
    rt.setSeed(seed);
    const images = await generate(rt, prog, gen, text, n);
    await writeSamples(out, step, images, captions);
    await writeCurves(join(out, 'metrics.jsonl'), join(out, 'curves.png')).catch(() => {});
  };
}
