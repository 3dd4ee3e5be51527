// The training loop of a multi-stage conditional GAN (StackGAN-v2 with
// MS-CLIP-GAN's terms), over the two compiled step programs (d_step, g_step)
// and a batch source. It knows no syntax: everything comes in a JSON-able
// TrainerSpec that the CLI builds from the compiler's GanSteps and the
// model's TrainConfig.
//
// One iteration (a "step" everywhere: --steps, checkpoints, metrics):
//   1. z and the CA sample are drawn on the host from a seeded NoiseStream and
//      fed to both programs, so D and G see the same G forward (StackGAN's
//      single forward). Every noise feed is fed: nothing random is left to
//      the device, and the stream's one-word state is checkpointed.
//   2. On every d_every-th iteration: n_critic D steps, each one run of
//      d_step (the losses of every discriminator; each D_i has its own
//      optimizer, recorded after the program). The last one uses this
//      iteration's batch and noise; earlier ones draw their own.
//   3. One G step (g_step with G's optimizer), then the G EMA update.
// Losses are read back asynchronously: an iteration's readback is awaited
// only after the next iteration has been submitted, so the device never
// idles waiting for the host. A NaN or Inf stops the run naming the term,
// network and step; checkpoints are written only after every loss up to
// their step has been read back finite, so the last one is always good.
import type { GpuContext } from '../device.ts';
import { Runtime, type Program } from '../executor.ts';
import type { KernelSpec } from '../format/kernel.ts';
import type { Plan, StateLayout } from '../format/plan.ts';
import type { Tensor, TensorData } from '../format/safetensors.ts';
import type { StepValue } from '../format/step.ts';
import { createOptimizer, type Adam, type OptimizerSettings, type SGD } from '../optim.ts';
import type { SavedState, StateTensor } from '../state.ts';
import { loadCheckpoint, writeCheckpoint, type CheckpointSidecar } from './checkpoint.ts';
import type { BatchSource, DataState, TrainBatch } from './data/types.ts';
import { Ema, type EmaMode } from './ema.ts';
import { metricKey, MetricsLog, type MetricRecord } from './metrics.ts';
import { NoiseStream } from './noise.ts';

export interface StepProgramSpec {
  plan: Plan;
  feeds: StepValue[];
  outputs: StepValue[];
}

/** Everything the trainer needs, as JSON (the CLI builds it; the sidecar records it less the plans). */
export interface TrainerSpec {
  layout: StateLayout;
  dStep: StepProgramSpec;
  gStep: StepProgramSpec;
  groups: { g: string; d: string[] };
  optim: { g: OptimizerSettings; d: Record<string, OptimizerSettings> };
  n_critic: number;
  d_every: number;
  /** EMA decay of G's params; 0 = no EMA. */
  g_ema: number;
  ema_mode: EmaMode;
  batch: number;
  /** Seeds the initial weights, the host noise and (by the caller) the data order. */
  seed: number;
  /** Objective terms the model asks for that the programs leave out (trained without, with a warning). */
  unsupported: string[];
  /** Frozen encoders in the programs (CLIP guidance, perceptual): their terms and checkpoints, for the sidecar. */
  frozen?: { term: string; encoder: string; checkpoint: string }[];
}

export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
  constructor(
    readonly step: number,
    readonly net: string,
    readonly term: string,
    readonly value: number,
    readonly lastCheckpoint: string | null,
  ) {
    super(
      `loss term '${term}' of network '${net}' is ${value} at step ${step}; stopped` +
        (lastCheckpoint ? ` (last good checkpoint: ${lastCheckpoint})` : ' (no checkpoint was written before it)'),
    );
  }
}

export interface TrainerOptions {
  ctx?: GpuContext;
  /** Refuse to train when the model asks for terms the programs leave out. */
  strict?: boolean;
  /** One-line warnings (unsupported terms). */
  warn?: (msg: string) => void;
  /** Kernel compilation progress: distinct kernels compiled so far of the total. */
  onCompile?: (done: number, total: number) => void;
  /** Called once the kernels are compiled, before each is dispatched once (lavapipe JIT-compiles on first dispatch). */
  onWarm?: () => void;
  /** Values of the frozen groups' params (pretrained encoders), by param name: written over the seed's initial values, and kept on resume. */
  frozen?: Map<string, Float32Array>;
}

export interface RunOptions {
  /** Iterations to reach (the step count after the run, counting from the start of training). */
  steps: number;
  /** Run folder: metrics.jsonl and checkpoints go there. */
  out?: string;
  ckptEvery?: number;
  keep?: number;
  /** Extra sidecar fields (the .gan sources and hash, the adapter, the resolved settings). */
  record?: Record<string, unknown>;
  /** Called with each step's metrics once its losses are read back. */
  onStep?: (m: MetricRecord) => void;
  /** Polled between steps; when true the run checkpoints and returns (Ctrl-C). */
  shouldStop?: () => boolean;
  /** Called every `sampleEvery` steps (after the step's losses are read back). */
  sampleEvery?: number;
  onSample?: (step: number) => Promise<void>;
}

export interface RunResult {
  step: number;
  reason: 'done' | 'stopped';
  lastCheckpoint: string | null;
}

type Optimizer = Adam | SGD;

interface Pending {
  step: number;
  d: Promise<Record<string, Float32Array>> | null;
  g: Promise<Record<string, Float32Array>>;
  submitted: number;
}

/** The loss outputs of a program: the names to read back and their metric keys. */
function lossOutputs(p: StepProgramSpec): { name: string; key: string; net: string; term: string }[] {
  return p.outputs.flatMap((o) => {
    const key = metricKey(o.role);
    if (!key) return [];
    const r = o.role as { net: string; term?: string };
    return [{ name: o.name, key, net: r.net, term: o.role.role === 'loss' ? 'loss' : key.slice(r.net.length + 1) }];
  });
}

export class Trainer {
  /** Iterations completed. */
  step = 0;
  private readonly noise: NoiseStream;
  private readonly dLosses: ReturnType<typeof lossOutputs>;
  private readonly gLosses: ReturnType<typeof lossOutputs>;
  private lastLog = performance.now();

  private constructor(
    readonly spec: TrainerSpec,
    readonly source: BatchSource,
    readonly rt: Runtime,
    private readonly dProg: Program,
    private readonly gProg: Program,
    readonly optD: Optimizer[],
    readonly optG: Optimizer,
    readonly ema: Ema | null,
  ) {
    this.noise = new NoiseStream(spec.seed);
    this.dLosses = lossOutputs(spec.dStep);
    this.gLosses = lossOutputs(spec.gStep);
  }

  /** Creates the runtime, optimizers and EMA, compiles both programs, and initialises the weights from the seed. */
  static async create(spec: TrainerSpec, source: BatchSource, opts: TrainerOptions = {}): Promise<Trainer> {
    if (spec.unsupported.length) {
      if (opts.strict) throw new Error(`--strict: the model asks for terms this trainer does not compute: ${spec.unsupported.join('; ')}`);
      for (const u of spec.unsupported) opts.warn?.(`warning: training without ${u} (not implemented yet; recorded in the checkpoint sidecar)`);
    }
    checkSource(spec, source);
    // A frozen encoder left at its random initial weights would train G towards noise, silently.
    for (const [g, grp] of Object.entries(spec.layout.groups)) {
      const missing = grp.frozen ? grp.params.filter((p) => !opts.frozen?.has(p)) : [];
      if (missing.length) throw new Error(`frozen group '${g}' has no values for ${missing.length} param(s) (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''}): load its checkpoint`);
    }
    const rt = await Runtime.create(spec.layout, { ctx: opts.ctx, seed: spec.seed });
    const optD = spec.groups.d.map((d) => {
      const s = spec.optim.d[d];
      if (!s) throw new Error(`no optimizer settings for discriminator '${d}'`);
      return createOptimizer(rt, d, s);
    });
    const optG = createOptimizer(rt, spec.groups.g, spec.optim.g);
    const ema = spec.g_ema > 0 ? new Ema(rt, spec.groups.g, spec.g_ema, spec.ema_mode) : null;
    const gHooks = ema ? [optG, ema] : [optG];
    // Compiled one kernel at a time in parallel so progress can be shown; load() then finds them all cached.
    const distinct = new Map<string, KernelSpec>();
    for (const k of [...spec.dStep.plan.kernels, ...spec.gStep.plan.kernels, ...optD.flatMap((o) => o.kernels()), ...gHooks.flatMap((h) => h.kernels())]) distinct.set(k.wgsl, k);
    let done = 0;
    opts.onCompile?.(0, distinct.size);
    await Promise.all([...distinct.values()].map((k) => rt.cache.prepare([k]).then(() => opts.onCompile?.(++done, distinct.size))));
    opts.onWarm?.();
    const dProg = await rt.load(spec.dStep.plan, optD);
    const gProg = await rt.load(spec.gStep.plan, gHooks);
    const t = new Trainer(spec, source, rt, dProg, gProg, optD, optG, ema);
    t.init(opts.frozen ?? new Map());
    return t;
  }

  /**
   * Fresh weights from the seed (the frozen encoders' from their checkpoints:
   * written once and not kept, since resume leaves them in place), EMA started,
   * noise stream at its start.
   */
  private init(frozen: Map<string, Float32Array>): void {
    this.rt.initState(this.spec.seed);
    for (const [name, data] of frozen) this.rt.writeParam(name, data);
    this.ema?.reset();
    this.step = 0;
  }

  /** Feeds of one program from a batch and the iteration's noise. */
  private feeds(p: StepProgramSpec, batch: TrainBatch, noise: Map<string, Float32Array>): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    for (const f of p.feeds) {
      const r = f.role;
      if (r.role === 'text') out[f.name] = batch.text;
      else if (r.role === 'noise' || r.role === 'ca_noise') out[f.name] = noise.get(f.name)!;
      else if (r.role === 'real_image' || r.role === 'wrong_image') {
        const res = f.shape[2];
        const img = (r.role === 'real_image' ? batch.real : batch.wrong).get(res);
        if (!img) throw new Error(`the batch source gave no ${r.role === 'real_image' ? 'real' : 'wrong'} images at ${res}x${res} (stage ${r.stage})`);
        out[f.name] = img;
      } else throw new Error(`the trainer cannot feed '${f.name}' (role ${r.role}): only text, noise and images`);
    }
    return out;
  }

  /** This iteration's noise, one array per noise feed name (shared names: one array for both programs). */
  private drawNoise(): Map<string, Float32Array> {
    const m = new Map<string, Float32Array>();
    for (const f of [...this.spec.dStep.feeds, ...this.spec.gStep.feeds]) {
      if ((f.role.role === 'noise' || f.role.role === 'ca_noise') && !m.has(f.name)) m.set(f.name, this.noise.normal(f.shape.reduce((a, b) => a * b, 1)));
    }
    return m;
  }

  /** Submits one iteration; resolves its loss readbacks later. */
  private async submitStep(): Promise<Pending> {
    const step = ++this.step;
    const submitted = performance.now();
    let d: Pending['d'] = null;
    const runD = (step - 1) % this.spec.d_every === 0;
    if (runD) {
      for (let k = 1; k < this.spec.n_critic; k++) {
        const b = await this.source.next();
        this.rt.run(this.dProg, this.feeds(this.spec.dStep, b, this.drawNoise()), { optimizers: this.optD, read: false });
      }
    }
    const batch = await this.source.next();
    const noise = this.drawNoise();
    if (runD) d = this.rt.run(this.dProg, this.feeds(this.spec.dStep, batch, noise), { optimizers: this.optD, read: this.dLosses.map((l) => l.name) });
    const g = this.rt.run(this.gProg, this.feeds(this.spec.gStep, batch, noise), { optimizers: this.ema ? [this.optG, this.ema] : [this.optG], read: this.gLosses.map((l) => l.name) });
    // Marked handled: when a run stops early (NaN) the next step's readback is never awaited, and destroy() aborts it.
    d?.catch(() => {});
    g.catch(() => {});
    return { step, d, g, submitted };
  }

  /** Waits for an iteration's losses; throws NonFiniteLossError on NaN/Inf. */
  private async collect(p: Pending, lastCheckpoint: string | null): Promise<MetricRecord> {
    const [d, g] = await Promise.all([p.d ?? Promise.resolve(null), p.g]);
    const losses: Record<string, number> = {};
    const take = (vals: Record<string, Float32Array> | null, outs: ReturnType<typeof lossOutputs>) => {
      if (!vals) return;
      for (const o of outs) {
        const v = vals[o.name][0];
        if (!Number.isFinite(v)) throw new NonFiniteLossError(p.step, o.net, o.term, v, lastCheckpoint);
        losses[o.key] = v;
      }
    };
    take(d, this.dLosses);
    take(g, this.gLosses);
    const now = performance.now();
    const ms = now - this.lastLog;
    this.lastLog = now;
    return { step: p.step, losses, step_ms: Math.round(ms * 100) / 100, images_per_s: Math.round((this.spec.batch / (ms / 1000)) * 100) / 100 };
  }

  /**
   * One iteration (D steps, G step, EMA), awaited with its losses: the unit of
   * a training loop of one's own (a generated module's users write these).
   * Throws NonFiniteLossError on NaN/Inf.
   */
  async trainStep(): Promise<MetricRecord> {
    return this.collect(await this.submitStep(), null);
  }

  /** Trains until `opts.steps` iterations are done (or shouldStop), logging and checkpointing on the way. */
  async run(opts: RunOptions): Promise<RunResult> {
    const log = opts.out ? new MetricsLog(`${opts.out}/metrics.jsonl`) : null;
    log?.truncateAfter(this.step);
    let lastCheckpoint: string | null = null;
    let checkpointed = -1;
    let pending: Pending | null = null;
    const finish = async (p: Pending) => {
      const m = await this.collect(p, lastCheckpoint);
      log?.append(m);
      opts.onStep?.(m);
      return m;
    };
    this.lastLog = performance.now();
    let reason: RunResult['reason'] = 'done';
    while (this.step < opts.steps) {
      if (opts.shouldStop?.()) {
        reason = 'stopped';
        break;
      }
      const next = await this.submitStep();
      if (pending) await finish(pending);
      pending = next;
      const s = next.step;
      const ckpt = opts.out && opts.ckptEvery && s % opts.ckptEvery === 0;
      const sample = opts.onSample && opts.sampleEvery && s % opts.sampleEvery === 0;
      if (ckpt || sample) {
        await finish(pending);
        pending = null;
        if (ckpt) {
          lastCheckpoint = await this.saveCheckpoint(opts.out!, opts.keep, opts.record);
          checkpointed = s;
        }
        if (sample) await opts.onSample!(s);
      }
    }
    if (pending) await finish(pending);
    // The end of a run (finished or stopped) always leaves a checkpoint of where it is.
    if (opts.out && checkpointed !== this.step) {
      lastCheckpoint = await this.saveCheckpoint(opts.out, opts.keep, opts.record);
    }
    return { step: this.step, reason, lastCheckpoint };
  }

  /** Every tensor a resume needs, and the sidecar fields that go with them. */
  async exportCheckpoint(): Promise<{ tensors: Record<string, { shape: number[]; data: TensorData }>; sidecar: Record<string, unknown> }> {
    const tensors: Record<string, { shape: number[]; data: TensorData }> = {};
    const shapeOf = (name: string, data: StateTensor): number[] => {
      const [kind, ...rest] = name.split(':');
      const key = rest.join(':');
      const shape = kind === 'state' ? this.spec.layout.state[key]?.shape : this.spec.layout.params[key]?.shape;
      return shape && shape.reduce((a, b) => a * b, 1) === data.length ? [...shape] : [data.length];
    };
    const add = (prefix: string, s: SavedState, shapeKey: (n: string) => string) => {
      for (const [n, data] of Object.entries(s.tensors)) tensors[prefix + n] = { shape: shapeOf(shapeKey(n), data), data };
    };
    const rtState = await this.rt.exportState();
    add('', rtState, (n) => n);
    const optimizers: Record<string, SavedState['scalars']> = {};
    for (const o of [...this.optD, this.optG]) {
      const s = await o.exportState();
      add(`opt:${o.group}:`, s, (n) => `param:${n.split(':').slice(1).join(':')}`);
      optimizers[o.group] = s.scalars;
    }
    let ema: SavedState['scalars'] | null = null;
    if (this.ema) {
      const s = await this.ema.exportState();
      // The raw accumulator (for an exact resume) and the average to sample from ('ema:NAME').
      add('ema_', s, (n) => `param:${n.slice('acc:'.length)}`);
      for (const [name, data] of Object.entries(await this.ema.average())) tensors[`ema:${name}`] = { shape: shapeOf(`param:${name}`, data), data };
      ema = s.scalars;
    }
    const { layout: _l, dStep: _d, gStep: _g, ...settings } = this.spec;
    return {
      tensors,
      sidecar: {
        optimizers,
        ema,
        noise: this.noise.state,
        data: this.source.getState(),
        settings,
        unsupported: this.spec.unsupported,
        losses: { d: this.dLosses.map((l) => l.key), g: this.gLosses.map((l) => l.key) },
      },
    };
  }

  async saveCheckpoint(runDir: string, keep = 3, record: Record<string, unknown> = {}): Promise<string> {
    const { tensors, sidecar } = await this.exportCheckpoint();
    return writeCheckpoint(runDir, this.step, tensors, { ...record, ...sidecar }, keep);
  }

  /** Continues from a checkpoint (a run folder: its newest) of the same model and settings. */
  resume(pathOrRunDir: string): CheckpointSidecar {
    const ck = loadCheckpoint(pathOrRunDir);
    this.importCheckpoint(ck.tensors, ck.sidecar);
    return ck.sidecar;
  }

  importCheckpoint(tensors: Record<string, Tensor>, sidecar: CheckpointSidecar): void {
    const groups = (prefix: string): SavedState['tensors'] => {
      const out: SavedState['tensors'] = {};
      for (const [n, t] of Object.entries(tensors)) {
        if (!n.startsWith(prefix)) continue;
        if (!(t.data instanceof Float32Array || t.data instanceof Uint32Array)) throw new Error(`checkpoint tensor '${n}' is ${t.dtype}, expected F32 or U32`);
        out[n.slice(prefix.length)] = t.data;
      }
      return out;
    };
    const own = (n: string) => n.startsWith('param:') || n.startsWith('state:') || n === 'rng';
    const rtTensors: SavedState['tensors'] = {};
    for (const [n, t] of Object.entries(groups(''))) if (own(n)) rtTensors[n] = t;
    this.rt.importState({ tensors: rtTensors, scalars: {} });
    const scalars = sidecar.optimizers as Record<string, SavedState['scalars']> | undefined;
    for (const o of [...this.optD, this.optG]) {
      const sc = scalars?.[o.group];
      if (!sc) throw new Error(`checkpoint has no optimizer state for '${o.group}'`);
      o.importState({ tensors: groups(`opt:${o.group}:`), scalars: sc });
    }
    if (this.ema) {
      const sc = sidecar.ema as SavedState['scalars'] | null;
      if (!sc) throw new Error('checkpoint has no EMA state but this run keeps an EMA (g_ema > 0)');
      this.ema.importState({ tensors: groups('ema_'), scalars: sc });
    } else if (sidecar.ema) throw new Error('checkpoint has an EMA but this run keeps none (g_ema = 0)');
    if (typeof sidecar.noise !== 'number') throw new Error('checkpoint sidecar lacks the noise state');
    this.noise.state = sidecar.noise;
    this.source.setState(sidecar.data as DataState);
    this.step = sidecar.step;
  }

  destroy(): void {
    for (const o of [...this.optD, this.optG]) o.destroy();
    this.ema?.destroy();
    this.rt.destroy();
  }
}

/** The batch source must fit the programs: text width and every stage's resolution. */
function checkSource(spec: TrainerSpec, source: BatchSource): void {
  const text = [...spec.dStep.feeds, ...spec.gStep.feeds].find((f) => f.role.role === 'text');
  if (text && text.shape[text.shape.length - 1] !== source.textDim) {
    throw new Error(`the data's caption embeddings are ${source.textDim} wide, the model's text input takes ${text.shape[text.shape.length - 1]}`);
  }
  if (text && text.shape[0] !== spec.batch) throw new Error(`internal: programs built for batch ${text.shape[0]}, spec says ${spec.batch}`);
}
