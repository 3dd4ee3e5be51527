// Executes compiled plans (runtime/format/plan.ts) on a WebGPU device.
//
//   const rt = await Runtime.create(layout);      // arenas for params, grads, state
//   rt.initState(seed);                           // params/state from their Init
//   const step = await rt.load(plan);             // compiles every pipeline up front
//   const out = await rt.run(step, { text, image }, { optimizers: [adamD] });
//   const saved = await rt.exportState();         // params, state, noise words;
//   fresh.importState(saved);                     // with each optimizer's, an exact resume
//
// A run records the whole program (and optimizer updates) into one command
// buffer and submits it once; named outputs are copied into a staging buffer
// from a reusable ring and mapped asynchronously, so callers that do not await
// the returned promise never wait on the GPU. The runtime knows nothing about
// ops: it only imports the plan format.
import { MAP_MODE_READ, READBACK_USAGE, STORAGE_USAGE as STORAGE, UNIFORM_USAGE, USAGE } from './buffers.ts';
import type { GpuContext } from './gpu-context.ts';
import { paramBytes, paramsBinding, type KernelSpec } from './format/kernel.ts';
import { dispatchGrid, dispatchParams, type DispatchStep, type Plan, type Slot, type StateLayout } from './format/plan.ts';
import { initialValues } from './init.ts';
import { warmOnHelper } from './jit-helper.ts';
import { pipelineCache, type PipelineCache } from './pipelines.ts';
import { checkTensors, type SavedState, type StateTensor } from './state.ts';

/** Something recorded after a program's steps, e.g. an optimizer update. */
export interface StepHook {
  kernels(): KernelSpec[];
  /** Called before the command buffer is recorded (write per-step uniforms here). */
  beforeStep?(): void;
  /** Dispatches its kernels once without touching real state (Runtime.load's warm-up). */
  warm?(pass: GPUComputePassEncoder): void;
  record(pass: GPUComputePassEncoder): void;
}

export interface RunOptions {
  optimizers?: StepHook[];
  /** Which outputs to read back (default: all of the plan's outputs). */
  read?: boolean | string[];
}

interface Staging {
  buffer: GPUBuffer;
  busy: boolean;
}

export class Program {
  /** Per step: bind group and pipeline, or null for copy/clear steps (resolved once at load: hashing WGSL per dispatch is slow). */
  groups: (GPUBindGroup | null)[] = [];
  pipelines: (GPUComputePipeline | null)[] = [];
  readonly local = new Map<string, GPUBuffer>();
  readonly ring: Staging[] = [];
  /** Every dispatch's params (size-generic kernels), written once at load; per step its byte offset there, or -1. */
  params: GPUBuffer | null = null;
  paramOffsets: number[] = [];
  constructor(readonly plan: Plan) {}
}

export class Runtime {
  readonly device: GPUDevice;
  readonly cache: PipelineCache;
  private readonly buffers = new Map<string, GPUBuffer>();
  private transients: GPUBuffer[] = [];
  private readonly programs: Program[] = [];
  private readonly rng: GPUBuffer;
  private readonly rngWords = new Uint32Array(4);
  private stepCount = 0;

  private constructor(
    readonly ctx: GpuContext,
    readonly layout: StateLayout,
    seed: number,
  ) {
    this.device = ctx.device;
    this.cache = pipelineCache(this.device);
    for (const [name, bytes] of Object.entries(layout.buffers)) {
      this.buffers.set(name, this.device.createBuffer({ label: name, size: Math.max(bytes, 4), usage: STORAGE }));
    }
    this.rng = this.device.createBuffer({ label: 'rng', size: 16, usage: STORAGE });
    this.rngWords[0] = seed >>> 0;
  }

  static async create(layout: StateLayout, opts: { ctx?: GpuContext; seed?: number } = {}): Promise<Runtime> {
    // Dawn in Node by default, imported only then: a page passes its browserDevice() and never loads it.
    return new Runtime(opts.ctx ?? (await (await import('./device.ts')).getDevice()), layout, opts.seed ?? 0);
  }

  /** Seeds the on-GPU noise generator (streams restart from step 0); exportState/importState save and restore it mid-run. */
  setSeed(seed: number): void {
    this.rngWords[0] = seed >>> 0;
    this.stepCount = 0;
  }

  /** The arena buffer of a layout name ('param:G:0', 'grad:G:0', 'state:0'). */
  arena(name: string): GPUBuffer {
    const b = this.buffers.get(name);
    if (!b) throw new Error(`no arena buffer '${name}'`);
    return b;
  }

  /** Initialises every param and state buffer from its Init, deterministically from `seed`. */
  initState(seed = 0): void {
    const init = initialValues(this.layout, seed);
    for (const [name, data] of Object.entries(init.params)) this.writeParam(name, data);
    for (const [name, data] of Object.entries(init.state)) this.writeState(name, data);
  }

  /**
   * Params ('param:NAME'), state buffers ('state:NAME', e.g. BatchNorm running
   * statistics) and the noise generator ('rng' = [seed, next step]): with each
   * optimizer's exportState, everything a resumed run needs to continue bit for
   * bit. Reads after the work submitted so far.
   */
  async exportState(): Promise<SavedState> {
    const slots = this.savedSlots();
    const arenas = [...new Set(Object.values(slots).map((s) => s.buffer))];
    const bytes = await this.readBuffers(arenas.map((a) => this.arena(a)));
    const tensors: Record<string, StateTensor> = {};
    for (const [name, slot] of Object.entries(slots)) {
      tensors[name] = new Float32Array(bytes[arenas.indexOf(slot.buffer)], slot.offset, slot.size / 4).slice();
    }
    // The kernels see the step as a u32 word: wrapping here loses nothing.
    tensors.rng = Uint32Array.of(this.rngWords[0], this.stepCount >>> 0);
    return { tensors, scalars: {} };
  }

  /** Restores what exportState saved (of a runtime with the same layout); the next run continues that run's noise. */
  importState(s: SavedState): void {
    const slots = this.savedSlots();
    const expected = Object.fromEntries(Object.entries(slots).map(([name, slot]) => [name, { type: 'f32' as const, length: slot.size / 4 }]));
    checkTensors('Runtime.importState', s, { ...expected, rng: { type: 'u32', length: 2 } });
    for (const [name, slot] of Object.entries(slots)) this.write(slot, s.tensors[name] as Float32Array, name);
    const rng = s.tensors.rng;
    this.rngWords[0] = rng[0];
    this.stepCount = rng[1];
  }

  /** The slots exportState saves, by their saved names: not a frozen group's params (they come from their own checkpoint). */
  private savedSlots(): Record<string, Slot> {
    const slots: Record<string, Slot> = {};
    for (const [name, p] of Object.entries(this.layout.params)) if (!this.layout.groups[p.group]?.frozen) slots[`param:${name}`] = p;
    for (const [name, s] of Object.entries(this.layout.state)) slots[`state:${name}`] = s;
    return slots;
  }

  /** Copies whole buffers to the host in one submission (checkpoints, tests; not for the hot path). */
  async readBuffers(buffers: GPUBuffer[]): Promise<ArrayBuffer[]> {
    if (buffers.length === 0) return [];
    const at: number[] = [];
    let total = 0;
    for (const b of buffers) {
      at.push(total);
      total += b.size;
    }
    const staging = this.device.createBuffer({ size: total, usage: READBACK_USAGE });
    const enc = this.device.createCommandEncoder();
    buffers.forEach((b, i) => enc.copyBufferToBuffer(b, 0, staging, at[i], b.size));
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(MAP_MODE_READ);
    const range = staging.getMappedRange();
    const out = buffers.map((b, i) => range.slice(at[i], at[i] + b.size));
    staging.unmap();
    staging.destroy();
    return out;
  }

  writeParam(name: string, data: Float32Array): void {
    this.write(this.paramSlot(name), data, `param '${name}'`);
  }
  writeState(name: string, data: Float32Array): void {
    const s = this.layout.state[name];
    if (!s) throw new Error(`no state buffer '${name}'`);
    this.write(s, data, `state '${name}'`);
  }
  readParam(name: string): Promise<Float32Array> {
    return this.readSlot(this.paramSlot(name));
  }
  readGrad(name: string): Promise<Float32Array> {
    const g = this.paramSlot(name).grad;
    if (!g) throw new Error(`param '${name}' is frozen: it has no gradient`);
    return this.readSlot(g);
  }
  readState(name: string): Promise<Float32Array> {
    const s = this.layout.state[name];
    if (!s) throw new Error(`no state buffer '${name}'`);
    return this.readSlot(s);
  }

  private paramSlot(name: string) {
    const p = this.layout.params[name];
    if (!p) throw new Error(`no param '${name}'`);
    return p;
  }

  private write(slot: Slot, data: Float32Array, what: string): void {
    if (data.byteLength !== slot.size) throw new Error(`${what}: expected ${slot.size / 4} floats, got ${data.length}`);
    this.device.queue.writeBuffer(this.resolve(slot.buffer), slot.offset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Reads any slot back (tests, checkpoints); not for the hot path. */
  async readSlot(slot: Slot, program?: Program): Promise<Float32Array> {
    const staging = this.device.createBuffer({ size: slot.size, usage: READBACK_USAGE });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(this.resolve(slot.buffer, program), slot.offset, staging, 0, slot.size);
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(MAP_MODE_READ);
    const out = new Float32Array(staging.getMappedRange().slice(0));
    staging.unmap();
    staging.destroy();
    return out;
  }

  /** Reads one output of the program's last run (e.g. images every N steps, when `run` reads only losses). */
  readOutput(prog: Program, name: string): Promise<Float32Array> {
    const o = prog.plan.outputs[name];
    if (!o) throw new Error(`${prog.plan.name}: no output '${name}'`);
    return this.readSlot(o.slot, prog);
  }

  private resolve(name: string, program?: Program): GPUBuffer {
    if (name === 'rng') return this.rng;
    if (/^t\d+$/.test(name)) return this.transients[Number(name.slice(1))];
    const local = program?.local.get(name);
    if (local) return local;
    const b = this.buffers.get(name);
    if (!b) throw new Error(`plan refers to unknown buffer '${name}'`);
    return b;
  }

  /**
   * Compiles the plan's kernels (asynchronously, all at once) and allocates its
   * buffers. With `warm` (default), every kernel is then dispatched once:
   * lavapipe JIT-compiles a shader on its first dispatch, not at pipeline
   * creation, so this moves that cost here instead of into the first step.
   * The warm-up writes only activations, gradients and outputs (every run
   * rewrites them); params and state are untouched. On a software adapter a
   * helper device compiles the same kernels from the other end meanwhile
   * (runtime/jit-helper.ts).
   */
  async load(plan: Plan, hooks: StepHook[] = [], opts: { warm?: boolean } = {}): Promise<Program> {
    const kernels = [...plan.kernels, ...hooks.flatMap((h) => h.kernels())];
    const helper = (opts.warm ?? true) ? await warmOnHelper(this.ctx, firstUseOrder(plan, kernels).reverse()) : null;
    try {
      return await this.loadHere(plan, hooks, kernels, opts);
    } finally {
      helper?.stop();
      await helper?.done;
    }
  }

  private async loadHere(plan: Plan, hooks: StepHook[], kernels: KernelSpec[], opts: { warm?: boolean }): Promise<Program> {
    await this.cache.prepare(kernels);
    const prog = new Program(plan);
    const mk = (name: string, size: number) => prog.local.set(name, this.device.createBuffer({ label: name, size: Math.max(4, size), usage: STORAGE }));
    for (const f of Object.values(plan.feeds)) mk(f.slot.buffer, f.slot.size);
    for (const o of Object.values(plan.outputs)) mk(o.slot.buffer, o.slot.size);
    this.writeParams(prog);
    // The transient pool is shared by all programs: grow it, then rebind everyone.
    let grown = false;
    plan.transients.forEach((size, i) => {
      const cur = this.transients[i];
      if (!cur || cur.size < size) {
        cur?.destroy();
        this.transients[i] = this.device.createBuffer({ label: `t${i}`, size: Math.max(4, size), usage: STORAGE });
        grown = true;
      }
    });
    this.programs.push(prog);
    for (const p of grown ? this.programs : [prog]) this.bind(p);
    if (opts.warm ?? true) {
      const enc = this.device.createCommandEncoder({ label: `${plan.name}-warmup` });
      const pass = enc.beginComputePass();
      plan.steps.forEach((s, i) => {
        if (s.op !== 'dispatch') return;
        pass.setPipeline(prog.pipelines[i]!);
        pass.setBindGroup(0, prog.groups[i]!);
        pass.dispatchWorkgroups(...dispatchGrid(plan, s));
      });
      for (const h of hooks) h.warm?.(pass);
      pass.end();
      this.device.queue.submit([enc.finish()]);
      await this.idle();
    }
    return prog;
  }

  /**
   * One uniform buffer holding the params of every dispatch of a size-generic
   * kernel, each distinct word list once, at offsets aligned to the device's
   * minUniformBufferOffsetAlignment; written once (params never change).
   */
  private writeParams(prog: Program): void {
    const align = this.device.limits.minUniformBufferOffsetAlignment;
    const at = new Map<string, { offset: number; bytes: Uint32Array }>();
    let end = 0;
    prog.paramOffsets = prog.plan.steps.map((s) => {
      const words = s.op === 'dispatch' ? dispatchParams(prog.plan, s) : null;
      if (!words) return -1;
      const key = words.join(',');
      let slot = at.get(key);
      if (!slot) {
        slot = { offset: Math.ceil(end / align) * align, bytes: paramBytes(words) };
        end = slot.offset + slot.bytes.byteLength;
        at.set(key, slot);
      }
      return slot.offset;
    });
    if (end === 0) return;
    const all = new Uint32Array(end / 4);
    for (const { offset, bytes } of at.values()) all.set(bytes, offset / 4);
    prog.params = this.device.createBuffer({ label: `${prog.plan.name}-params`, size: end, usage: UNIFORM_USAGE });
    this.device.queue.writeBuffer(prog.params, 0, all.buffer, all.byteOffset, all.byteLength);
  }

  private bind(prog: Program): void {
    prog.pipelines = prog.plan.steps.map((s) => (s.op === 'dispatch' ? this.cache.pipeline(prog.plan.kernels[s.kernel]) : null));
    prog.groups = prog.plan.steps.map((s, i) => {
      if (s.op !== 'dispatch') return null;
      const spec = prog.plan.kernels[s.kernel];
      const pipeline = this.cache.pipeline(spec);
      // The args bind the storage bindings in order; the uniform binding (if any) takes the step's params.
      const uniform = paramsBinding(spec);
      const entries: GPUBindGroupEntry[] = s.args.map((a, k) => ({
        binding: uniform >= 0 && k >= uniform ? k + 1 : k,
        resource: { buffer: this.resolve(a.buffer, prog), offset: a.offset, size: a.size },
      }));
      if (uniform >= 0) {
        const words = paramBytes(dispatchParams(prog.plan, s)!);
        entries.push({ binding: uniform, resource: { buffer: prog.params!, offset: prog.paramOffsets[i], size: words.byteLength } });
      }
      return this.device.createBindGroup({ label: spec.name, layout: pipeline.getBindGroupLayout(0), entries });
    });
  }

  /**
   * Runs one step: writes feeds, records every dispatch (and the hooks, e.g.
   * optimizers) into one command buffer, submits it, and returns a promise of
   * the outputs, read back asynchronously through a reused staging ring.
   */
  run(prog: Program, feeds: Record<string, Float32Array> = {}, opts: RunOptions = {}): Promise<Record<string, Float32Array>> {
    const plan = prog.plan;
    const q = this.device.queue;
    for (const [name, data] of Object.entries(feeds)) {
      const f = plan.feeds[name];
      if (!f) throw new Error(`${plan.name}: unknown feed '${name}' (feeds: ${Object.keys(plan.feeds).join(', ') || 'none'})`);
      if (data.byteLength !== f.slot.size) throw new Error(`${plan.name}: feed '${name}' [${f.shape.join(',')}] needs ${f.slot.size / 4} floats, got ${data.length}`);
      q.writeBuffer(prog.local.get(f.slot.buffer)!, 0, data.buffer, data.byteOffset, data.byteLength);
    }
    for (const [name, f] of Object.entries(plan.feeds)) {
      if (f.kind === 'input' && !(name in feeds)) throw new Error(`${plan.name}: missing feed '${name}' [${f.shape.join(',')}]`);
    }
    this.rngWords[1] = this.stepCount++;
    q.writeBuffer(this.rng, 0, this.rngWords);
    const hooks = opts.optimizers ?? [];
    for (const h of hooks) h.beforeStep?.();

    const enc = this.device.createCommandEncoder({ label: plan.name });
    let pass: GPUComputePassEncoder | null = null;
    const open = () => (pass ??= enc.beginComputePass({ label: plan.name }));
    const close = () => {
      pass?.end();
      pass = null;
    };
    plan.steps.forEach((s, i) => {
      if (s.op === 'dispatch') {
        if (s.noise && s.noise in feeds) return;
        const p = open();
        p.setPipeline(prog.pipelines[i]!);
        p.setBindGroup(0, prog.groups[i]!);
        p.dispatchWorkgroups(...dispatchGrid(plan, s));
      } else if (s.op === 'copy') {
        close();
        enc.copyBufferToBuffer(this.resolve(s.src.buffer, prog), s.src.offset, this.resolve(s.dst.buffer, prog), s.dst.offset, s.src.size);
      } else {
        close();
        enc.clearBuffer(this.resolve(s.dst.buffer, prog), s.dst.offset, s.dst.size);
      }
    });
    if (hooks.length) {
      const p = open();
      for (const h of hooks) h.record(p);
    }
    close();

    const names = opts.read === false ? [] : Array.isArray(opts.read) ? opts.read : Object.keys(plan.outputs);
    if (names.length === 0) {
      q.submit([enc.finish()]);
      return Promise.resolve({});
    }
    let total = 0;
    const at: number[] = [];
    for (const n of names) {
      const o = plan.outputs[n];
      if (!o) throw new Error(`${plan.name}: no output '${n}'`);
      at.push(total);
      total += Math.ceil(o.slot.size / 4) * 4;
    }
    let st = prog.ring.find((r) => !r.busy && r.buffer.size >= total);
    if (!st) {
      st = { buffer: this.device.createBuffer({ label: `${plan.name}-staging`, size: total, usage: READBACK_USAGE }), busy: false };
      prog.ring.push(st);
    }
    const staging = st;
    staging.busy = true;
    names.forEach((n, k) => {
      const o = plan.outputs[n];
      enc.copyBufferToBuffer(prog.local.get(o.slot.buffer)!, 0, staging.buffer, at[k], o.slot.size);
    });
    q.submit([enc.finish()]);
    return staging.buffer.mapAsync(MAP_MODE_READ, 0, total).then(() => {
      const range = staging.buffer.getMappedRange(0, total);
      const out: Record<string, Float32Array> = {};
      names.forEach((n, k) => {
        out[n] = new Float32Array(range.slice(at[k], at[k] + plan.outputs[n].slot.size));
      });
      staging.buffer.unmap();
      staging.busy = false;
      return out;
    });
  }

  /**
   * Profiles one run (for reports, not training): the time of every dispatch
   * in plan order. With the adapter's 'timestamp-query' feature (lavapipe has
   * it) each dispatch is its own compute pass with GPU timestamps at its
   * start and end, all in one submit, so the times are the dispatches' own
   * and add up to about the run's. Otherwise, or with `clock: 'wall'`, each
   * dispatch is submitted and awaited alone and timed on the host, which adds
   * the submit and the wait (at least one Dawn poll interval,
   * runtime/dawn-polling.ts) to each: read such a profile's shares, not its sum.
   */
  async profile(prog: Program, feeds: Record<string, Float32Array> = {}, opts: { clock?: 'gpu' | 'wall' } = {}): Promise<ProfileRow[]> {
    const plan = prog.plan;
    for (const [name, data] of Object.entries(feeds)) {
      const f = plan.feeds[name];
      if (f) this.device.queue.writeBuffer(prog.local.get(f.slot.buffer)!, 0, data.buffer, data.byteOffset, data.byteLength);
    }
    await this.idle();
    const steps = plan.steps.flatMap((s, i): { s: DispatchStep; i: number }[] => (s.op === 'dispatch' && !(s.noise && s.noise in feeds) ? [{ s, i }] : []));
    const row = ({ s, i }: { s: DispatchStep; i: number }, ms: number): ProfileRow => {
      const spec = plan.kernels[s.kernel];
      return { name: spec.name, ms, flops: s.flops ?? spec.flops ?? 0, step: i, workgroups: dispatchGrid(plan, s), params: dispatchParams(plan, s) };
    };
    const record = (enc: GPUCommandEncoder, { s, i }: { s: DispatchStep; i: number }, timestampWrites?: GPUComputePassTimestampWrites) => {
      const pass = enc.beginComputePass(timestampWrites ? { timestampWrites } : {});
      pass.setPipeline(prog.pipelines[i]!);
      pass.setBindGroup(0, prog.groups[i]!);
      pass.dispatchWorkgroups(...dispatchGrid(plan, s));
      pass.end();
    };
    const rows: ProfileRow[] = [];
    if (opts.clock !== 'wall' && this.device.features.has('timestamp-query')) {
      // Two timestamps per dispatch; a query set holds at most 4096.
      const CHUNK = 2048;
      for (let at = 0; at < steps.length; at += CHUNK) {
        const part = steps.slice(at, at + CHUNK);
        const count = 2 * part.length;
        const querySet = this.device.createQuerySet({ type: 'timestamp', count });
        const resolved = this.device.createBuffer({ size: 8 * count, usage: USAGE.QUERY_RESOLVE | USAGE.COPY_SRC });
        const staging = this.device.createBuffer({ size: 8 * count, usage: READBACK_USAGE });
        const enc = this.device.createCommandEncoder();
        part.forEach((d, k) => record(enc, d, { querySet, beginningOfPassWriteIndex: 2 * k, endOfPassWriteIndex: 2 * k + 1 }));
        enc.resolveQuerySet(querySet, 0, count, resolved, 0);
        enc.copyBufferToBuffer(resolved, 0, staging, 0, 8 * count);
        this.device.queue.submit([enc.finish()]);
        await staging.mapAsync(MAP_MODE_READ);
        const ns = new BigUint64Array(staging.getMappedRange().slice(0));
        staging.unmap();
        part.forEach((d, k) => rows.push(row(d, Number(ns[2 * k + 1] - ns[2 * k]) / 1e6)));
        querySet.destroy();
        resolved.destroy();
        staging.destroy();
      }
      return rows;
    }
    for (const d of steps) {
      const enc = this.device.createCommandEncoder();
      record(enc, d);
      const t0 = performance.now();
      this.device.queue.submit([enc.finish()]);
      await this.idle();
      rows.push(row(d, performance.now() - t0));
    }
    return rows;
  }

  /** Waits until the GPU has finished everything submitted so far. */
  async idle(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
  }

  destroy(): void {
    for (const b of this.buffers.values()) b.destroy();
    for (const b of this.transients) b.destroy();
    for (const p of this.programs) {
      for (const b of p.local.values()) b.destroy();
      for (const r of p.ring) r.buffer.destroy();
      p.params?.destroy();
    }
    this.rng.destroy();
  }
}

/** One dispatch of Runtime.profile: its kernel, wall time, FLOPs, and where and how it ran (plan step index, grid, params words). */
export interface ProfileRow {
  name: string;
  ms: number;
  flops: number;
  step: number;
  workgroups: [number, number, number];
  params: number[] | null;
}

/** Distinct kernels in the order the warm-up first dispatches them (plan steps, then the hooks'). */
function firstUseOrder(plan: Plan, kernels: readonly KernelSpec[]): KernelSpec[] {
  const seen = new Set<string>();
  const out: KernelSpec[] = [];
  const add = (k: KernelSpec) => {
    if (!seen.has(k.wgsl)) {
      seen.add(k.wgsl);
      out.push(k);
    }
  };
  for (const s of plan.steps) if (s.op === 'dispatch') add(plan.kernels[s.kernel]);
  kernels.forEach(add);
  return out;
}
