// The plan format: what the compiler produces (compiler/plan/) and the runtime
// executes (runtime/executor.ts), as plain JSON-able data.
//
// A Plan is one program: its kernels (WGSL with shapes baked in, or read at run
// time from a uniform binding; deduplicated), the steps that run them in order
// with the buffer range each binding uses (and the u32 words, 'params', of a
// size-generic kernel's uniform binding),
// its feeds and outputs, and the memory it needs. State shared by every program
// of a model lives in a StateLayout: the params of one optimizer group packed
// into "arena" buffers (so one optimizer dispatch covers a whole network), a
// gradient arena with the same layout, and the state buffers (BatchNorm running
// statistics). Activations live in transient buffers 't0', 't1', ... shared by
// all programs of a runtime.
//
// Buffer names a Slot may use: arena buffers of the layout ('param:G:0',
// 'grad:G:0', 'state:0'), the program's feeds ('in:NAME') and outputs
// ('out:NAME'), transients ('tN') and the random-number state ('rng').
//
// Both carry PLAN_FORMAT_VERSION; serializePlan/parsePlan and
// serializeLayout/parseLayout are the JSON round trip, and parsing refuses
// another version or a malformed document with an error naming what is wrong.
import { paramsBinding, paramWord, readKernelSpec, workgroupCount, type KernelSpec } from './kernel.ts';
import { array, count, fail, fields, FormatError, num, oneOf, parseJson, record, str } from './validate.ts';

/** Bumped whenever a field of Plan, StateLayout or KernelSpec changes meaning or shape. */
export const PLAN_FORMAT_VERSION = 3; // 2: a dispatch step may carry its own workgroups and flops; 3: kernels and steps may carry params (u32 words of a uniform binding)

/** How a param or state buffer is initialised. */
export type Init =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'const'; value: number }
  | { kind: 'normal'; mean: number; std: number }
  | { kind: 'uniform'; low: number; high: number }
  | { kind: 'orthogonal'; gain: number };

/** A byte range of a named buffer. */
export interface Slot {
  buffer: string;
  offset: number;
  size: number;
}

export interface ParamSlot extends Slot {
  shape: number[];
  group: string;
  init: Init;
  /** The same range in the gradient arena; absent for a frozen group's params (no gradient arena). */
  grad?: Slot;
}

export interface StateSlot extends Slot {
  shape: number[];
  init: Init;
}

export interface StateLayout {
  version: typeof PLAN_FORMAT_VERSION;
  params: Record<string, ParamSlot>;
  state: Record<string, StateSlot>;
  /** Every arena buffer and its size in bytes. */
  buffers: Record<string, number>;
  /** Optimizer groups: the param and gradient arena chunks of each; a frozen group (a pretrained encoder) has no gradient chunks and no optimizer. */
  groups: Record<string, { params: string[]; chunks: { param: string; grad?: string; bytes: number }[]; frozen?: boolean }>;
}

export type Step =
  | {
      op: 'dispatch';
      kernel: number;
      args: Slot[];
      /** skipped when this noise is fed */
      noise?: string;
      /** This launch's grid and FLOPs where they differ from the kernel's (a size-generic kernel serves launches of several sizes). */
      workgroups?: [number, number, number];
      flops?: number;
      /** This launch's params (the words of its kernel's uniform binding) where they differ from the kernel's. */
      params?: number[];
    }
  | { op: 'copy'; src: Slot; dst: Slot }
  | { op: 'clear'; dst: Slot };

export type DispatchStep = Extract<Step, { op: 'dispatch' }>;

/** The grid a dispatch step launches: its own where it has one, else its kernel's. */
export function dispatchGrid(plan: Plan, step: DispatchStep): [number, number, number] {
  return step.workgroups ?? plan.kernels[step.kernel].workgroups;
}

/**
 * The params a dispatch step binds: its own where it has one, else its
 * kernel's; null for a kernel without a uniform binding. A step's `args` bind
 * the kernel's other bindings, in order; the executor binds these words, from
 * a buffer it writes once at load, at the uniform binding.
 */
export function dispatchParams(plan: Plan, step: DispatchStep): number[] | null {
  const spec = plan.kernels[step.kernel];
  return paramsBinding(spec) < 0 ? null : (step.params ?? spec.params ?? []);
}

export interface MemoryReport {
  /** Params, their gradients and state buffers (shared by all programs). */
  stateBytes: number;
  /** Feed and output buffers of this program. */
  ioBytes: number;
  /** Transient activation buffers after liveness-based reuse. */
  transientBytes: number;
  /** Largest sum of live activations at any step (a lower bound for transientBytes). */
  liveBytes: number;
  /** Without reuse: every activation in its own buffer. */
  unsharedBytes: number;
  peakBytes: number;
}

export interface Plan {
  version: typeof PLAN_FORMAT_VERSION;
  name: string;
  kernels: KernelSpec[];
  steps: Step[];
  /** Sizes of transient buffers 't0', 't1', ... */
  transients: number[];
  feeds: Record<string, { slot: Slot; shape: number[]; kind: 'input' | 'noise' }>;
  outputs: Record<string, { slot: Slot; shape: number[] }>;
  /** Params whose gradient arena range this program writes (or clears). */
  grads: string[];
  memory: MemoryReport;
  stats: { nodes: number; dispatches: number; kernels: number; fusedNodes: number };
}

// ---- JSON round trip -------------------------------------------------------------

export function serializePlan(plan: Plan): string {
  return JSON.stringify(plan);
}

export function serializeLayout(layout: StateLayout): string {
  return JSON.stringify(layout);
}

/**
 * Reads a plan serialized by serializePlan. With `layout`, every arena slot is
 * also checked against it (the buffer exists and the range fits).
 */
export function parsePlan(text: string, layout?: StateLayout): Plan {
  return readPlan(parseJson(text, 'plan'), layout);
}

export function parseLayout(text: string): StateLayout {
  return readLayout(parseJson(text, 'state layout'));
}

function readVersion(x: unknown, what: string, kind: string): typeof PLAN_FORMAT_VERSION {
  if (typeof x !== 'object' || x === null || Array.isArray(x) || !('version' in x)) {
    throw new FormatError(`${what}: no 'version' field (not a serialized ${kind})`);
  }
  const v = (x as { version: unknown }).version;
  if (v !== PLAN_FORMAT_VERSION) {
    throw new FormatError(`${what}: format version ${JSON.stringify(v)} is not supported (this runtime reads version ${PLAN_FORMAT_VERSION}); compile the model again`);
  }
  return PLAN_FORMAT_VERSION;
}

function size(x: unknown, path: string): number {
  const n = count(x, path);
  return n > 0 && n % 4 === 0 ? n : fail(path, 'a positive multiple of 4 bytes', x);
}

function readSlot(x: unknown, path: string): Slot {
  const o = fields(x, path, ['buffer', 'offset', 'size']);
  return { buffer: str(o.buffer, `${path}.buffer`), offset: count(o.offset, `${path}.offset`), size: size(o.size, `${path}.size`) };
}

function readShape(x: unknown, path: string): number[] {
  return array(x, path, count);
}

function readInit(x: unknown, path: string): Init {
  const kind = oneOf((x as { kind?: unknown } | null)?.kind, `${path}.kind`, ['zeros', 'ones', 'const', 'normal', 'uniform', 'orthogonal'] as const);
  switch (kind) {
    case 'zeros':
    case 'ones':
      fields(x, path, ['kind']);
      return { kind };
    case 'const': {
      const o = fields(x, path, ['kind', 'value']);
      return { kind, value: num(o.value, `${path}.value`) };
    }
    case 'normal': {
      const o = fields(x, path, ['kind', 'mean', 'std']);
      return { kind, mean: num(o.mean, `${path}.mean`), std: num(o.std, `${path}.std`) };
    }
    case 'uniform': {
      const o = fields(x, path, ['kind', 'low', 'high']);
      return { kind, low: num(o.low, `${path}.low`), high: num(o.high, `${path}.high`) };
    }
    case 'orthogonal': {
      const o = fields(x, path, ['kind', 'gain']);
      return { kind, gain: num(o.gain, `${path}.gain`) };
    }
  }
}

/** The layout's bytes for a slot of `numel` floats must match its shape. */
function checkShapeFits(slot: Slot & { shape: number[] }, path: string): void {
  const bytes = slot.shape.reduce((p, d) => p * d, 1) * 4;
  if (bytes !== slot.size) throw new FormatError(`${path}: shape [${slot.shape.join(', ')}] needs ${bytes} bytes, the slot has ${slot.size}`);
}

/** `slot` lies inside a buffer of `bytes` bytes. */
function checkInside(slot: Slot, bytes: number | undefined, path: string): void {
  if (bytes === undefined) throw new FormatError(`${path}.buffer: unknown buffer '${slot.buffer}'`);
  if (slot.offset + slot.size > bytes) {
    throw new FormatError(`${path}: bytes ${slot.offset}..${slot.offset + slot.size} run past the end of '${slot.buffer}' (${bytes} bytes)`);
  }
}

function readLayout(x: unknown): StateLayout {
  const what = 'state layout';
  const version = readVersion(x, what, 'state layout');
  const o = fields(x, what, ['version', 'params', 'state', 'buffers', 'groups']);
  const buffers = record(o.buffers, `${what}.buffers`, size);
  const params = record(o.params, `${what}.params`, (p, path) => {
    const f = fields(p, path, ['buffer', 'offset', 'size', 'shape', 'group', 'init'], ['grad']);
    const slot: ParamSlot = {
      ...readSlot({ buffer: f.buffer, offset: f.offset, size: f.size }, path),
      shape: readShape(f.shape, `${path}.shape`),
      group: str(f.group, `${path}.group`),
      init: readInit(f.init, `${path}.init`),
      ...(f.grad === undefined ? {} : { grad: readSlot(f.grad, `${path}.grad`) }),
    };
    checkShapeFits(slot, path);
    checkInside(slot, buffers[slot.buffer], path);
    if (slot.grad) {
      checkInside(slot.grad, buffers[slot.grad.buffer], `${path}.grad`);
      if (slot.grad.size !== slot.size) throw new FormatError(`${path}.grad: ${slot.grad.size} bytes for a param of ${slot.size}`);
    }
    return slot;
  });
  const state = record(o.state, `${what}.state`, (s, path) => {
    const f = fields(s, path, ['buffer', 'offset', 'size', 'shape', 'init']);
    const slot: StateSlot = {
      ...readSlot({ buffer: f.buffer, offset: f.offset, size: f.size }, path),
      shape: readShape(f.shape, `${path}.shape`),
      init: readInit(f.init, `${path}.init`),
    };
    checkShapeFits(slot, path);
    checkInside(slot, buffers[slot.buffer], path);
    return slot;
  });
  const groups = record(o.groups, `${what}.groups`, (g, path) => {
    const f = fields(g, path, ['params', 'chunks'], ['frozen']);
    const frozen = f.frozen === undefined ? false : f.frozen === true ? true : (() => { throw new FormatError(`${path}.frozen: expected true`); })();
    const members = array(f.params, `${path}.params`, (p, pp) => {
      const name = str(p, pp);
      if (!params[name]) throw new FormatError(`${pp}: no param '${name}' in the layout`);
      return name;
    });
    const chunks = array(f.chunks, `${path}.chunks`, (c, cp) => {
      const cf = fields(c, cp, ['param', 'bytes'], ['grad']);
      if ((cf.grad === undefined) !== frozen) throw new FormatError(`${cp}: ${frozen ? 'a frozen group has no gradient chunks' : 'missing grad'}`);
      const chunk = { param: str(cf.param, `${cp}.param`), ...(cf.grad === undefined ? {} : { grad: str(cf.grad, `${cp}.grad`) }), bytes: size(cf.bytes, `${cp}.bytes`) };
      for (const b of [chunk.param, ...(chunk.grad ? [chunk.grad] : [])]) {
        if (buffers[b] !== chunk.bytes) throw new FormatError(`${cp}: chunk of ${chunk.bytes} bytes, but buffer '${b}' has ${buffers[b] ?? 'no size (unknown buffer)'}`);
      }
      return chunk;
    });
    for (const m of members) if (!params[m].grad !== frozen) throw new FormatError(`${path}: param '${m}' ${frozen ? 'of a frozen group has a gradient slot' : 'has no gradient slot'}`);
    return { params: members, chunks, ...(frozen ? { frozen } : {}) };
  });
  return { version, params, state, buffers, groups };
}

function readPlan(x: unknown, layout?: StateLayout): Plan {
  const name = typeof (x as { name?: unknown } | null)?.name === 'string' ? (x as { name: string }).name : undefined;
  const what = name === undefined ? 'plan' : `plan '${name}'`;
  const version = readVersion(x, what, 'plan');
  const o = fields(x, what, ['version', 'name', 'kernels', 'steps', 'transients', 'feeds', 'outputs', 'grads', 'memory', 'stats']);
  const kernels = array(o.kernels, `${what}.kernels`, readKernelSpec);
  const transients = array(o.transients, `${what}.transients`, size);
  const feeds = record(o.feeds, `${what}.feeds`, (f, path) => {
    const ff = fields(f, path, ['slot', 'shape', 'kind']);
    return { slot: readSlot(ff.slot, `${path}.slot`), shape: readShape(ff.shape, `${path}.shape`), kind: oneOf(ff.kind, `${path}.kind`, ['input', 'noise'] as const) };
  });
  const outputs = record(o.outputs, `${what}.outputs`, (f, path) => {
    const ff = fields(f, path, ['slot', 'shape']);
    return { slot: readSlot(ff.slot, `${path}.slot`), shape: readShape(ff.shape, `${path}.shape`) };
  });
  // Every buffer a step may name, with its size when the plan or layout says it.
  const sizes = new Map<string, number | undefined>([['rng', 16]]);
  transients.forEach((b, i) => sizes.set(`t${i}`, b));
  for (const [n, f] of Object.entries(feeds)) {
    if (f.slot.buffer !== `in:${n}`) fail(`${what}.feeds.${n}.slot.buffer`, `'in:${n}'`, f.slot.buffer);
    sizes.set(f.slot.buffer, f.slot.offset + f.slot.size);
  }
  for (const [n, f] of Object.entries(outputs)) {
    if (f.slot.buffer !== `out:${n}`) fail(`${what}.outputs.${n}.slot.buffer`, `'out:${n}'`, f.slot.buffer);
    sizes.set(f.slot.buffer, f.slot.offset + f.slot.size);
  }
  const target = (s: Slot, path: string): Slot => {
    if (sizes.has(s.buffer)) checkInside(s, sizes.get(s.buffer), path);
    else if (layout) checkInside(s, layout.buffers[s.buffer], path);
    else if (!/^(param|grad|state):/.test(s.buffer)) throw new FormatError(`${path}.buffer: unknown buffer '${s.buffer}'`);
    return s;
  };
  const steps = array(o.steps, `${what}.steps`, (s, path): Step => {
    const op = oneOf((s as { op?: unknown } | null)?.op, `${path}.op`, ['dispatch', 'copy', 'clear'] as const);
    if (op === 'dispatch') {
      const f = fields(s, path, ['op', 'kernel', 'args'], ['noise', 'workgroups', 'flops', 'params']);
      const kernel = count(f.kernel, `${path}.kernel`);
      if (kernel >= kernels.length) fail(`${path}.kernel`, `a kernel index below ${kernels.length}`, kernel);
      const args = array(f.args, `${path}.args`, (a, ap) => target(readSlot(a, ap), ap));
      const spec = kernels[kernel];
      const uniform = paramsBinding(spec) >= 0;
      // The uniform binding takes the params, not a slot.
      const bindings = spec.bindings.length - (uniform ? 1 : 0);
      if (args.length !== bindings) throw new FormatError(`${path}.args: kernel '${spec.name}' takes ${bindings} buffers, the step gives ${args.length}`);
      const step: Step = { op, kernel, args };
      if (f.noise !== undefined) step.noise = str(f.noise, `${path}.noise`);
      if (f.workgroups !== undefined) {
        const w = array(f.workgroups, `${path}.workgroups`, workgroupCount);
        if (w.length !== 3) fail(`${path}.workgroups`, 'three workgroup counts [x, y, z]', f.workgroups);
        step.workgroups = w as [number, number, number];
      }
      if (f.flops !== undefined) step.flops = count(f.flops, `${path}.flops`);
      if (f.params !== undefined) {
        if (!uniform) throw new FormatError(`${path}.params: kernel '${spec.name}' has no uniform binding to hold params`);
        step.params = array(f.params, `${path}.params`, paramWord);
      } else if (uniform && spec.params === undefined) {
        throw new FormatError(`${path}: kernel '${spec.name}' reads params, and neither the step nor the kernel has them`);
      }
      return step;
    }
    if (op === 'copy') {
      const f = fields(s, path, ['op', 'src', 'dst']);
      const src = target(readSlot(f.src, `${path}.src`), `${path}.src`);
      const dst = target(readSlot(f.dst, `${path}.dst`), `${path}.dst`);
      if (src.size !== dst.size) throw new FormatError(`${path}: copies ${src.size} bytes into ${dst.size}`);
      return { op, src, dst };
    }
    const f = fields(s, path, ['op', 'dst']);
    return { op, dst: target(readSlot(f.dst, `${path}.dst`), `${path}.dst`) };
  });
  const grads = array(o.grads, `${what}.grads`, (g, path) => {
    const p = str(g, path);
    if (layout && !layout.params[p]) throw new FormatError(`${path}: no param '${p}' in the state layout`);
    return p;
  });
  const m = fields(o.memory, `${what}.memory`, ['stateBytes', 'ioBytes', 'transientBytes', 'liveBytes', 'unsharedBytes', 'peakBytes']);
  const mem = (k: string) => count(m[k], `${what}.memory.${k}`);
  const st = fields(o.stats, `${what}.stats`, ['nodes', 'dispatches', 'kernels', 'fusedNodes']);
  const stat = (k: string) => count(st[k], `${what}.stats.${k}`);
  return {
    version,
    name: str(o.name, `${what}.name`),
    kernels,
    steps,
    transients,
    feeds,
    outputs,
    grads,
    memory: {
      stateBytes: mem('stateBytes'),
      ioBytes: mem('ioBytes'),
      transientBytes: mem('transientBytes'),
      liveBytes: mem('liveBytes'),
      unsharedBytes: mem('unsharedBytes'),
      peakBytes: mem('peakBytes'),
    },
    stats: { nodes: stat('nodes'), dispatches: stat('dispatches'), kernels: stat('kernels'), fusedNodes: stat('fusedNodes') },
  };
}
