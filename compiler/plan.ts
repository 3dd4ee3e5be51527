// Planning: a graph becomes a Plan in the runtime's format
// (runtime/format/plan.ts): the kernels (WGSL with shapes baked in,
// deduplicated), the steps that run them in order with the buffer ranges each
// binding uses, and the memory they need. The runtime executes it without
// knowing anything about ops.
//
// State shared by every program of a model lives in a StateLayout (layoutState):
// params of one optimizer group packed into "arena" buffers, a gradient arena
// with the same layout, and the state buffers. Activations live in transient
// buffers assigned from liveness, reused within a program and across programs.
import type { KernelSpec } from '../runtime/format/kernel.ts';
import { PLAN_FORMAT_VERSION, type Plan, type Slot, type StateLayout, type Step } from '../runtime/format/plan.ts';
import { bytesOf, topoSort, type Graph, type Node, type Value } from './ir/graph.ts';
import { fmtShape, numel } from './ir/shape.ts';
import { fusedKernel } from './kernels/fused.ts';
import { primitive } from './ops/registry.ts';

export interface PlanLimits {
  maxStorageBufferBindingSize: number;
  minStorageBufferOffsetAlignment: number;
  /** Bindings one kernel may use (WebGPU's default is 8; lavapipe offers 16). */
  maxStorageBuffersPerShaderStage?: number;
  /** The device offers the 'subgroups' feature (faster conv kernels); off by default for portability. */
  subgroups?: boolean;
}

export const DEFAULT_LIMITS: PlanLimits = { maxStorageBufferBindingSize: 128 * 1024 * 1024, minStorageBufferOffsetAlignment: 256 };

const align = (x: number, a: number) => Math.ceil(x / a) * a;

function tooBig(what: string, shape: readonly number[], limits: PlanLimits): Error {
  const bytes = numel(shape) * 4;
  return new Error(
    `${what} ${fmtShape(shape)} needs ${bytes} bytes (${(bytes / 2 ** 20).toFixed(1)} MiB), more than the adapter's ` +
      `maxStorageBufferBindingSize of ${limits.maxStorageBufferBindingSize} bytes (${(limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(1)} MiB); ` +
      `reduce the batch size or the layer width`,
  );
}

/** Packs params by group (and state buffers) into arena chunks no larger than one binding. */
export function layoutState(graph: Graph, limits: PlanLimits = DEFAULT_LIMITS): StateLayout {
  const layout: StateLayout = { version: PLAN_FORMAT_VERSION, params: {}, state: {}, buffers: {}, groups: {} };
  const a = limits.minStorageBufferOffsetAlignment;
  const pack = (values: Value[], prefix: string, place: (v: Value, buffer: string, offset: number) => void): string[] => {
    const chunks: string[] = [];
    let used = Infinity;
    for (const v of values) {
      const size = bytesOf(v);
      if (size > limits.maxStorageBufferBindingSize) throw tooBig(`${v.kind} '${v.name}'`, v.shape, limits);
      if (used + size > limits.maxStorageBufferBindingSize) {
        chunks.push(`${prefix}:${chunks.length}`);
        used = 0;
      }
      const buffer = chunks[chunks.length - 1];
      place(v, buffer, used);
      used = align(used + size, a);
      layout.buffers[buffer] = used;
    }
    return chunks;
  };
  const groups = new Map<string, Value[]>();
  for (const p of graph.params) {
    const g = p.group ?? 'default';
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(p);
  }
  for (const [g, ps] of groups) {
    const chunks = pack(ps, `param:${g}`, (v, buffer, offset) => {
      const size = bytesOf(v);
      layout.params[v.name!] = {
        buffer,
        offset,
        size,
        shape: [...v.shape],
        group: g,
        init: v.init ?? { kind: 'zeros' },
        grad: { buffer: buffer.replace(/^param:/, 'grad:'), offset, size },
      };
    });
    for (const c of chunks) layout.buffers[c.replace(/^param:/, 'grad:')] = layout.buffers[c];
    layout.groups[g] = {
      params: ps.map((p) => p.name!),
      chunks: chunks.map((c) => ({ param: c, grad: c.replace(/^param:/, 'grad:'), bytes: layout.buffers[c] })),
    };
  }
  pack(graph.byKind('buffer'), 'state', (v, buffer, offset) => {
    layout.state[v.name!] = { buffer, offset, size: bytesOf(v), shape: [...v.shape], init: v.init ?? { kind: 'zeros' } };
  });
  return layout;
}

export interface ProgramSpec {
  name: string;
  /** Named values copied out (losses, images). Small ones are cheap to read back every step. */
  outputs?: Record<string, Value>;
  /** Gradient values to store in the gradient arena, by param name (from autodiff). */
  grads?: Map<string, Value | null> | Record<string, Value | null>;
  /**
   * State updates (BatchNorm running statistics) to apply: true (default) applies
   * those whose statistics this program computes anyway (a G step does not run
   * D's forward on real images just to update D's running stats); 'all' forces
   * every update of the graph; false none.
   */
  updates?: boolean | 'all';
  /** Zero the gradients of params of these groups that `grads` leaves out. */
  groups?: string[];
}

/** Fusible nodes with several consumers are recomputed by each when at most this many ops deep. */
const RECOMPUTE_COST = 3;
/** Bound on the ops (counted with repetition) one fused kernel computes per element. */
const MAX_INLINE_COST = 48;
/** Horizontal fusion only for outputs up to this many elements (moving big tensors earlier lengthens their lives). */
const HORIZONTAL_MAX = 1 << 16;
/** Pure index arithmetic: free to recompute. */
const FREE_OPS = new Set(['fill', 'reshape', 'expand', 'detach']);

export function compileProgram(graph: Graph, layout: StateLayout, spec: ProgramSpec, limits: PlanLimits = DEFAULT_LIMITS): Plan {
  // Inputs a fused kernel may read: the adapter's storage bindings minus the output.
  const MAX_LEAVES = Math.max(2, (limits.maxStorageBuffersPerShaderStage ?? 8) - 1);
  const outputs = Object.entries(spec.outputs ?? {});
  const gradEntries = (spec.grads instanceof Map ? [...spec.grads] : Object.entries(spec.grads ?? {})).filter(
    (e): e is [string, Value] => e[1] !== null,
  );
  const base = [...outputs.map((e) => e[1]), ...gradEntries.map((e) => e[1])];
  const needed = new Set(topoSort(base).map((n) => n.id));
  const updates =
    spec.updates === false
      ? []
      : graph.updates.filter((u) => u.value !== u.target && (spec.updates === 'all' || topoSort([u.value]).some((n) => needed.has(n.id) && !FREE_OPS.has(n.op))));
  const roots = [...base, ...updates.map((u) => u.value)];
  const nodes = topoSort(roots);

  // ---- fusion: which fusible values are computed inline by their consumers ----
  const consumers = new Map<number, Node[]>();
  for (const n of nodes) {
    for (const v of n.inputs) {
      if (!consumers.has(v.id)) consumers.set(v.id, []);
      consumers.get(v.id)!.push(n);
    }
  }
  const required = new Set(roots.map((v) => v.id));
  const inline = new Set<number>();
  const cost = new Map<number, number>();
  const leafCount = new Map<number, Set<number>>();
  for (const n of nodes) {
    const def = primitive(n.op);
    const leaves = new Set<number>();
    let c = def.kind === 'fusible' && !FREE_OPS.has(n.op) ? 1 : 0;
    for (const v of n.inputs) {
      if (inline.has(v.id)) {
        c += cost.get(v.id)!;
        for (const l of leafCount.get(v.id)!) leaves.add(l);
      } else leaves.add(v.id);
    }
    cost.set(n.output.id, c);
    leafCount.set(n.output.id, leaves);
    if (def.kind !== 'fusible' || required.has(n.output.id)) continue;
    const cons = [...new Set(consumers.get(n.output.id) ?? [])];
    const fusibleConsumers = cons.every((m) => {
      const k = primitive(m.op).kind;
      return k === 'fusible' || k === 'reduce';
    });
    if (!fusibleConsumers || cons.length === 0) continue;
    // Several consumers recompute the value: fine when it is cheap, or when they
    // read disjoint parts of it (GLU's two halves are slices of one tensor).
    const reads = cons.reduce((r, m) => r + (m.op === 'slice' ? numel(m.output.shape) / numel(n.output.shape) : 1), 0);
    if (cons.length > 1 && c > RECOMPUTE_COST && reads > 1) continue;
    if (leaves.size > MAX_LEAVES || c > MAX_INLINE_COST) continue;
    inline.add(n.output.id);
  }
  // A consumer that gathers too many leaves materialises its widest inlined input.
  for (const n of nodes) {
    if (inline.has(n.output.id)) continue;
    for (;;) {
      const all = new Set<number>();
      const widest = { id: -1, n: 0 };
      for (const v of n.inputs) {
        const ls = inline.has(v.id) ? leafCount.get(v.id)! : new Set([v.id]);
        for (const l of ls) all.add(l);
        if (inline.has(v.id) && ls.size > widest.n) Object.assign(widest, { id: v.id, n: ls.size });
      }
      if (all.size <= MAX_LEAVES || widest.id < 0) break;
      inline.delete(widest.id);
    }
  }

  // ---- storage -------------------------------------------------------------------
  const home = new Map<number, Slot>();
  const feeds: Plan['feeds'] = {};
  const outs: Plan['outputs'] = {};
  const steps: Step[] = [];
  const tail: Step[] = [];
  const slotOf = (v: Value): Slot => {
    const s = home.get(v.id);
    if (!s) throw new Error(`internal: value %${v.id} has no storage`);
    return s;
  };
  // Leaves used by this program: params and state live in the layout, inputs get feed buffers.
  const homeLeaf = (v: Value) => {
    if (v.node || home.has(v.id)) return;
    if (v.kind === 'param') home.set(v.id, slotOf2(layout.params[v.name!], v));
    else if (v.kind === 'buffer') home.set(v.id, slotOf2(layout.state[v.name!], v));
    else if (v.kind === 'input') {
      const slot = { buffer: `in:${v.name}`, offset: 0, size: bytesOf(v) };
      feeds[v.name!] = { slot, shape: [...v.shape], kind: 'input' };
      home.set(v.id, slot);
    }
  };
  for (const n of nodes) for (const v of n.inputs) homeLeaf(v);
  // Roots that are leaves themselves (an output that is an input, say) are copied.
  for (const v of roots) homeLeaf(v);
  // Fixed homes for values that must persist: grads in the arena, outputs, noise (feedable).
  const gradParams: string[] = [];
  for (const [p, v] of gradEntries) {
    const ps = layout.params[p];
    if (!ps) throw new Error(`grads: '${p}' is not a param`);
    if (bytesOf(v) !== ps.size) throw new Error(`grads: gradient of '${p}' has shape ${fmtShape(v.shape)}, param has ${fmtShape(ps.shape)}`);
    gradParams.push(p);
    if (v.node && !home.has(v.id)) home.set(v.id, ps.grad);
    else tail.push({ op: 'copy', src: v.node ? home.get(v.id)! : slotOfLeaf(v), dst: ps.grad });
  }
  function slotOfLeaf(v: Value): Slot {
    return home.get(v.id)!;
  }
  // Noise lives in a feed buffer, so a caller can fix it by name.
  for (const n of nodes) {
    if (n.output.kind === 'noise' && !home.has(n.output.id)) {
      const slot = { buffer: `in:${n.output.name}`, offset: 0, size: bytesOf(n.output) };
      feeds[n.output.name!] = { slot, shape: [...n.output.shape], kind: 'noise' };
      home.set(n.output.id, slot);
    }
  }
  for (const [name, v] of outputs) {
    const slot = { buffer: `out:${name}`, offset: 0, size: bytesOf(v) };
    outs[name] = { slot, shape: [...v.shape] };
    if (v.node && !home.has(v.id)) home.set(v.id, slot);
    else tail.push({ op: 'copy', src: home.get(v.id)!, dst: slot });
  }

  // A reshape that only moves a value into its fixed home (a gradient arena
  // range, an output) is a view: its producer writes there directly.
  const aliased = new Set<number>();
  const viewOf = new Map<number, number>(); // producer value id -> the reshape viewing it
  for (const n of nodes) {
    const src = n.inputs[0];
    if (n.op !== 'reshape' || inline.has(n.output.id) || !home.has(n.output.id) || !src?.node) continue;
    if (inline.has(src.id) || home.has(src.id) || required.has(src.id) || (consumers.get(src.id) ?? []).length !== 1) continue;
    home.set(src.id, home.get(n.output.id)!);
    aliased.add(n.output.id);
    viewOf.set(src.id, n.output.id);
  }

  // ---- grouping: one launch per materialised node, then horizontal fusion -----------
  // A fusible or reduce root joins an earlier launch of the same signature (same
  // output shape; or a sum over the same input shape and axes) when everything it
  // reads is already computed there: BatchNorm's backward sums, running-stat
  // updates and other small siblings then share one dispatch.
  const materialised = nodes.filter((n) => !inline.has(n.output.id) && !aliased.has(n.output.id));
  // Only stored tensors are bound; values computed inline (a tiled vector) may be bigger.
  for (const n of materialised) {
    if (bytesOf(n.output) > limits.maxStorageBufferBindingSize) throw tooBig(`'${n.op}' output`, n.output.shape, limits);
  }
  const kernelLeaves = (root: Node): Value[] => {
    const out: Value[] = [];
    const seen = new Set<number>();
    const walk = (v: Value) => {
      if (seen.has(v.id)) return;
      seen.add(v.id);
      if (v.node && inline.has(v.id)) v.node.inputs.forEach(walk);
      else out.push(v);
    };
    root.inputs.forEach(walk);
    return out;
  };
  interface Group {
    roots: Node[];
    /** Horizontal-fusion signature (null: never merged horizontally). */
    sig: string | null;
    ew: boolean;
    leaves: Set<number>;
  }
  const groups: Group[] = [];
  const producer = new Map<number, number>(); // value id -> group index
  const MAX_ROOTS = 4;
  for (const node of materialised) {
    const def = primitive(node.op);
    const leaves = def.kind === 'kernel' ? node.inputs : kernelLeaves(node);
    let sig: string | null = null;
    if (def.kind === 'reduce') sig = `${node.op}:${node.inputs[0].shape.join(',')}:${JSON.stringify(node.attrs)}`;
    else if (def.kind === 'fusible' && numel(node.output.shape) <= HORIZONTAL_MAX) sig = `ew:${node.output.shape.join(',')}`;
    let target = -1;
    // Vertical: M reads the result of an elementwise launch of its own shape that
    // nothing else reads before M: compute both in one kernel (both are written).
    if (def.kind === 'fusible') {
      const shape = node.output.shape.join(',');
      for (const v of leaves) {
        const gi = producer.get(v.id);
        if (gi === undefined) continue;
        const g = groups[gi];
        if (!g.ew || g.roots.some((r) => r.output.shape.join(',') !== shape)) continue;
        // M recomputes v inline (besides the launch writing it): only when cheap.
        if ((cost.get(v.id) ?? Infinity) > 2 * RECOMPUTE_COST) continue;
        if (g.roots.length >= MAX_ROOTS) continue;
        const outs = new Set(g.roots.map((r) => r.output.id));
        let readLater = false;
        for (let k = gi + 1; k < groups.length && !readLater; k++) for (const o of outs) if (groups[k].leaves.has(o)) readLater = true;
        if (readLater) continue;
        const union = new Set([...g.leaves, ...leaves.map((x) => x.id)].filter((id) => !outs.has(id)));
        if (union.size + g.roots.length + 1 > MAX_LEAVES + 1) continue;
        groups.splice(gi, 1);
        for (const [id, k] of producer) if (k > gi) producer.set(id, k - 1);
        const merged = { roots: [...g.roots, node], sig, ew: true, leaves: union };
        target = groups.length;
        groups.push(merged);
        for (const r of g.roots) {
          producer.set(r.output.id, target);
          const view = viewOf.get(r.output.id);
          if (view !== undefined) producer.set(view, target);
        }
        break;
      }
    }
    if (target >= 0) {
      // merged vertically above
    } else if (sig !== null) {
      const after = Math.max(-1, ...leaves.map((v) => producer.get(v.id) ?? -1));
      for (let i = after + 1; i < groups.length; i++) {
        const g = groups[i];
        if (g.sig !== sig || g.roots.length >= MAX_ROOTS) continue;
        const union = new Set([...g.leaves, ...leaves.map((v) => v.id)]);
        if (union.size + g.roots.length + 1 > MAX_LEAVES + 1) continue;
        target = i;
        break;
      }
    }
    if (target >= 0 && groups[target].roots.includes(node)) {
      // already placed (vertical merge)
    } else if (target >= 0) {
      groups[target].roots.push(node);
      for (const v of leaves) groups[target].leaves.add(v.id);
    } else {
      target = groups.length;
      groups.push({ roots: [node], sig, ew: def.kind === 'fusible', leaves: new Set(leaves.map((v) => v.id)) });
    }
    producer.set(node.output.id, target);
    const view = viewOf.get(node.output.id);
    if (view !== undefined) producer.set(view, target);
  }

  // ---- schedule + transient allocation from liveness ---------------------------------
  interface Launch {
    outputs: Value[];
    kernels: { spec: KernelSpec; args: (Value | 'rng')[] }[];
  }
  const launches: Launch[] = groups.map(({ roots: gr }) => {
    const node = gr[0];
    const def = primitive(node.op);
    if (def.kind === 'kernel') {
      const lowered = def.lower!({ node, ins: node.inputs.map((v) => v.shape), out: node.output.shape, attrs: node.attrs, target: { subgroups: limits.subgroups === true } });
      return {
        outputs: [node.output],
        kernels: lowered.map((k) => ({ spec: k.spec, args: k.args.map((a) => (a === 'out' ? node.output : a === 'rng' ? 'rng' : node.inputs[a])) })),
      };
    }
    const fk = fusedKernel(gr, (v) => inline.has(v.id));
    const outs = gr.map((r) => r.output);
    return { outputs: outs, kernels: [{ spec: fk.spec, args: [...fk.leaves, ...outs] }] };
  });
  const lastUse = new Map<number, number>();
  launches.forEach((l, i) => {
    for (const k of l.kernels) for (const a of k.args) if (a !== 'rng') lastUse.set(a.id, i);
  });
  for (const v of roots) lastUse.set(v.id, Infinity);
  const free: { id: number; size: number }[] = [];
  const transients: number[] = [];
  const owner = new Map<number, number>(); // value id -> transient index
  let live = 0;
  let liveBytes = 0;
  let unsharedBytes = 0;
  const kernelIndex = new Map<string, number>();
  const kernels: KernelSpec[] = [];
  launches.forEach((l, i) => {
    for (const v of l.outputs) {
      if (home.has(v.id)) continue;
      const size = bytesOf(v);
      unsharedBytes += size;
      // Best fit among free buffers; else grow the largest free one; else a new buffer.
      free.sort((p, q) => p.size - q.size);
      let pick = free.findIndex((f) => f.size >= size);
      if (pick < 0 && free.length) pick = free.length - 1;
      let t: number;
      if (pick >= 0) {
        t = free.splice(pick, 1)[0].id;
        transients[t] = Math.max(transients[t], size);
      } else {
        t = transients.length;
        transients.push(size);
      }
      owner.set(v.id, t);
      home.set(v.id, { buffer: `t${t}`, offset: 0, size });
      live += size;
      liveBytes = Math.max(liveBytes, live);
    }
    const v = l.outputs[0];
    for (const k of l.kernels) {
      let ki = kernelIndex.get(k.spec.wgsl);
      if (ki === undefined) {
        ki = kernels.length;
        kernels.push(k.spec);
        kernelIndex.set(k.spec.wgsl, ki);
      }
      const args = k.args.map((a) => (a === 'rng' ? { buffer: 'rng', offset: 0, size: 16 } : slotOf(a)));
      steps.push({ op: 'dispatch', kernel: ki, args, ...(v.kind === 'noise' ? { noise: v.name } : {}) });
    }
    const released = new Set<number>();
    for (const k of l.kernels) {
      for (const a of k.args) {
        if (a === 'rng' || released.has(a.id)) continue;
        const t = owner.get(a.id);
        if (t !== undefined && lastUse.get(a.id) === i) {
          released.add(a.id);
          free.push({ id: t, size: transients[t] });
          live -= bytesOf(a);
        }
      }
    }
  });
  // Values with no consumers in this program (dead ends) were never released: harmless.

  for (const u of updates) tail.push({ op: 'copy', src: slotOf(u.value), dst: slotOf2(layout.state[u.target.name!], u.target) });
  // Gradients of params in the optimised groups that nothing here computes are zeroed.
  const clears: Step[] = [];
  for (const g of spec.groups ?? []) {
    for (const p of layout.groups[g]?.params ?? []) {
      if (!gradParams.includes(p)) {
        clears.push({ op: 'clear', dst: layout.params[p].grad });
        gradParams.push(p);
      }
    }
  }

  const stateBytes = Object.values(layout.buffers).reduce((s, b) => s + b, 0);
  const ioBytes = [...Object.values(feeds).map((f) => f.slot.size), ...Object.values(outs).map((o) => o.slot.size)].reduce((s, b) => s + b, 0);
  const transientBytes = transients.reduce((s, b) => s + b, 0);
  return {
    version: PLAN_FORMAT_VERSION,
    name: spec.name,
    kernels,
    steps: [...clears, ...steps, ...tail],
    transients,
    feeds,
    outputs: outs,
    grads: gradParams,
    memory: { stateBytes, ioBytes, transientBytes, liveBytes, unsharedBytes, peakBytes: stateBytes + ioBytes + transientBytes },
    stats: { nodes: nodes.length, dispatches: steps.length, kernels: kernels.length, fusedNodes: inline.size },
  };
}

function slotOf2(s: Slot | undefined, v: Value): Slot {
  if (!s) throw new Error(`'${v.name}' is not in the state layout (was the layout made from this graph?)`);
  return { buffer: s.buffer, offset: s.offset, size: s.size };
}

/** Bytes of optimizer state for the given groups (Adam keeps 2 floats per param, SGD 0). */
export function optimizerStateBytes(layout: StateLayout, groups: readonly string[], floatsPerParam = 2): number {
  let bytes = 0;
  for (const g of groups) for (const c of layout.groups[g]?.chunks ?? []) bytes += c.bytes * floatsPerParam;
  return bytes;
}

/** Limits of a device (from runtime/device.ts DeviceInfo.limits) as the planner needs them. */
export function planLimits(limits: Record<string, number>, features: readonly string[] = []): PlanLimits {
  return {
    subgroups: features.includes('subgroups'),
    maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize ?? DEFAULT_LIMITS.maxStorageBufferBindingSize,
    minStorageBufferOffsetAlignment: limits.minStorageBufferOffsetAlignment ?? 256,
    maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage ?? 8,
  };
}

/** Human-readable memory report, e.g. for `gan check --memory`. */
export function formatMemory(plan: Plan): string {
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;
  const m = plan.memory;
  return [
    `${plan.name}: peak ${mib(m.peakBytes)}`,
    `  params + grads + state  ${mib(m.stateBytes)}`,
    `  feeds + outputs         ${mib(m.ioBytes)}`,
    `  activations             ${mib(m.transientBytes)} in ${plan.transients.length} buffers (live peak ${mib(m.liveBytes)}, ${mib(m.unsharedBytes)} without reuse)`,
    `  ${plan.stats.dispatches} dispatches, ${plan.stats.kernels} distinct kernels, ${plan.stats.fusedNodes} ops fused away`,
  ].join('\n');
}
