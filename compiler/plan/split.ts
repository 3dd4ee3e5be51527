// Batch splitting: a launch that binds a value larger than one storage binding
// (maxStorageBufferBindingSize) but within one buffer (maxBufferSize) runs as
// several dispatches, each over a chunk of the batch (axis 0). Its kernels are
// lowered for the chunk's batch size, and every value carrying the batch is
// bound as a window of its buffer (offset + size) holding that chunk's
// samples; values that do not carry it (weights, per-channel statistics) are
// bound whole. The plan states every window, so the runtime needs nothing new.
//
// Per kind of launch:
//   fused elementwise / reduction kernels: the batch flows through every root
//     and inlined node. Elementwise ops keep it (an input of size 1 on axis 0,
//     or of lower rank, is a broadcast and bound whole); reshape, expand and
//     fill keep axis 0 (their target shape's axis 0 becomes the chunk's);
//     slice, pad and concat must act on another axis. Reductions keeping
//     axis 0 make each chunk independent; reductions over it (BatchNorm
//     statistics and bias gradients of inputs too small to be reduced in two
//     steps, loss means) bind their output whole: the first chunk's dispatch
//     writes it, later ones are lowered with `accumulate` and combine their
//     result into it (out = combine(out, chunk)), in dispatch order.
//   kernel ops declare it (PrimitiveOp.batch): 'sample' ops (conv2d forward,
//     backward-data) are independent per chunk; 'sum' ops (conv2d
//     backward-weight) sum over the batch: the first chunk's dispatch writes
//     the output and later ones are lowered with `accumulate` and add to it,
//     in dispatch order (no partial buffers, no combine pass).
// Anything else bound over the limit (a matmul, slicing the batch, a value
// read whole) is refused as before, with the reason.
//
// Chunk size: the fewest chunks such that every window fits one binding and
// every window offset is a multiple of minStorageBufferOffsetAlignment (homes
// start aligned: arena slots are laid out aligned, buffers start at 0), as
// balanced as alignment allows (24 samples in 2 chunks: 12 + 12), so one
// kernel serves them all, or two when the last chunk is smaller.
import type { KernelSpec } from '../../runtime/format/kernel.ts';
import { bytesOf, type Attrs, type Node, type Value } from '../ir/graph.ts';
import { fusedKernel } from '../kernels/fused.ts';
import type { ReduceAttrs } from '../ops/reduce.ts';
import { primitive } from '../ops/registry.ts';
import type { Fusion } from './fuse.ts';
import { maxBufferSize, tooBig, type PlanLimits } from './limits.ts';

/** Bytes [offset, offset + size) of a value's home: one batch chunk of it. */
export interface Window {
  value: Value;
  offset: number;
  size: number;
}

export type LaunchArg = Value | Window | 'rng';

export interface SplitKernel {
  spec: KernelSpec;
  args: LaunchArg[];
}

/** The value an argument binds (null for the random-number state). */
export function argValue(a: LaunchArg): Value | null {
  return a === 'rng' ? null : 'value' in a ? a.value : a;
}

class Refusal extends Error {}

/** How one launch is cut: which values carry the batch, and how to lower one chunk. */
interface Cut {
  /** Batch size. */
  N: number;
  /** Ids of the bound values that carry the batch (windowed). */
  batched: Set<number>;
  /** Every value the launch binds (inputs and outputs). */
  bound: Value[];
  /** The kernels for the chunk of `n` samples (`first`: the first chunk). */
  lower(n: number, first: boolean): SplitKernel[];
}

const chunkShape = (s: readonly number[], n: number) => [n, ...s.slice(1)];
const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** A fused launch (fusible or reduce roots with their inlined producers), cut along axis 0. */
function cutFused(roots: Node[], fusion: Fusion): Cut {
  const rootIds = new Set(roots.map((r) => r.id));
  const computed = (v: Value) => v.node !== undefined && (rootIds.has(v.node.id) || fusion.inline.has(v.id));
  // Roots of one launch are all of one kind (group.ts): fusible, or one reduction over the same axes.
  const axes = primitive(roots[0].op).kind === 'reduce' ? (roots[0].attrs as unknown as ReduceAttrs).axes : [];
  const overBatch = axes.includes(0);
  const N = overBatch ? roots[0].inputs[0].shape[0] : roots[0].output.shape[0];
  const batched = new Map<number, boolean>();
  const values = new Map<number, Value>();
  const visit = (v: Value, b: boolean): void => {
    const prev = batched.get(v.id);
    if (prev !== undefined) {
      if (prev !== b) throw new Refusal(`its kernel reads %${v.id} both per sample and whole`);
      return;
    }
    batched.set(v.id, b);
    values.set(v.id, v);
    if (!computed(v)) return;
    const n = v.node!;
    const def = primitive(n.op);
    const a = n.attrs as Record<string, unknown>;
    if (b) {
      const axis = typeof a.axis === 'number' ? (a.axis < 0 ? a.axis + v.shape.length : a.axis) : -1;
      if (axis === 0) throw new Refusal(`'${n.op}' works along the batch axis`);
      if (def.kind === 'reduce' && (a.axes as number[]).some((x) => x === 0 || x === -n.inputs[0].shape.length)) throw new Refusal(`'${n.op}' reduces over the batch`);
      if (Array.isArray(a.shape) && a.shape[0] !== N) throw new Refusal(`'${n.op}' moves the batch axis`);
    }
    for (const x of n.inputs) {
      let xb = false;
      if (b && def.kind === 'reduce') xb = true;
      else if (b && n.op === 'reshape') {
        if (x.shape[0] !== N) throw new Refusal(`'reshape' moves the batch axis`);
        xb = true;
      } else if (b) xb = x.shape.length === v.shape.length && x.shape[0] === N;
      visit(x, xb);
    }
  };
  for (const r of roots) {
    if (overBatch) {
      // The output is a sum (or max...) over the batch: bound whole, its input per chunk.
      if (r.inputs[0].shape[0] !== N) throw new Refusal(`its reductions differ on axis 0`);
      batched.set(r.output.id, false);
      values.set(r.output.id, r.output);
      visit(r.inputs[0], true);
    } else {
      if (r.output.shape[0] !== N) throw new Refusal(`its outputs differ on axis 0`);
      visit(r.output, true);
    }
  }
  const ids = new Set([...batched].filter(([, b]) => b).map(([id]) => id));
  const lower = (c: number, first: boolean): SplitKernel[] => {
    // The launch's subgraph with the chunk's shapes (same ids, so fusion still applies).
    const shadow = new Map<number, Value>();
    const shade = (v: Value): Value => {
      let s = shadow.get(v.id);
      if (s) return s;
      const shape = ids.has(v.id) ? chunkShape(v.shape, c) : [...v.shape];
      if (!computed(v)) {
        s = { ...v, shape };
        shadow.set(v.id, s);
        return s;
      }
      const n = v.node!;
      const ins = n.inputs.map(shade);
      const attrs: Attrs = ids.has(v.id) && Array.isArray((n.attrs as Record<string, unknown>).shape) ? { ...n.attrs, shape: chunkShape((n.attrs as { shape: number[] }).shape, c) } : n.attrs;
      let got: number[];
      try {
        got = primitive(n.op).shape(ins.map((x) => x.shape), attrs);
      } catch (e) {
        throw new Refusal(`'${n.op}' does not take a batch chunk (${(e as Error).message})`);
      }
      if (!same(got, shape)) throw new Refusal(`'${n.op}' does not keep the batch on axis 0`);
      const node = { ...n, inputs: ins, attrs } as Node;
      s = { ...v, shape, node };
      (node as { output: Value }).output = s;
      shadow.set(v.id, s);
      return s;
    };
    const shadowRoots = roots.map((r) => shade(r.output).node!);
    const fk = fusedKernel(shadowRoots, (v) => fusion.inline.has(v.id), { accumulate: overBatch && !first });
    return [{ spec: fk.spec, args: [...fk.leaves, ...shadowRoots.map((r) => r.output)].map((v) => values.get(v.id)!) }];
  };
  return { N, batched: ids, bound: [...values.values()].filter((v) => !computed(v) || rootIds.has(v.node!.id)), lower };
}

/** A kernel op's launch, cut as the op declares (PrimitiveOp.batch). */
function cutKernel(node: Node, limits: PlanLimits): Cut {
  const def = primitive(node.op);
  const axis = def.batch;
  if (!axis) throw new Refusal(`'${node.op}' declares no batch axis`);
  const N = node.inputs[axis.inputs[0]].shape[0];
  if (axis.inputs.some((k) => node.inputs[k].shape[0] !== N) || (axis.out === 'sample' && node.output.shape[0] !== N)) {
    throw new Refusal(`'${node.op}' has inputs of different batch sizes`);
  }
  const batched = new Set(axis.inputs.map((k) => node.inputs[k].id));
  if (axis.out === 'sample') batched.add(node.output.id);
  node.inputs.forEach((x, k) => {
    if (!axis.inputs.includes(k) && batched.has(x.id)) throw new Refusal(`'${node.op}' reads %${x.id} both per sample and whole`);
  });
  const lower = (c: number, first: boolean): SplitKernel[] => {
    const ins = node.inputs.map((v, k) => (axis.inputs.includes(k) ? chunkShape(v.shape, c) : v.shape));
    const out = axis.out === 'sample' ? chunkShape(node.output.shape, c) : node.output.shape;
    if (!same(def.shape(ins, node.attrs), out)) throw new Refusal(`'${node.op}' does not keep the batch on axis 0`);
    const lowered = def.lower!({ node, ins, out, attrs: node.attrs, target: { subgroups: limits.subgroups === true }, accumulate: axis.out === 'sum' && !first });
    return lowered.map((k) => ({ spec: k.spec, args: k.args.map((a) => (a === 'out' ? node.output : a === 'rng' ? 'rng' : node.inputs[a])) }));
  };
  return { N, batched, bound: [...node.inputs, node.output], lower };
}

/**
 * Samples per chunk: the fewest chunks whose windows fit one binding at
 * aligned offsets, and among those the smallest chunk (the most balanced:
 * 12 + 12 rather than 13 + 11); null if none.
 */
export function chooseChunk(N: number, sampleBytes: readonly number[], limits: PlanLimits): number | null {
  const align = limits.minStorageBufferOffsetAlignment;
  let best: number | null = null;
  for (let c = 1; c < N; c++) {
    if (!sampleBytes.every((s) => c * s <= limits.maxStorageBufferBindingSize && (c * s) % align === 0)) continue;
    if (best === null || Math.ceil(N / c) < Math.ceil(N / best)) best = c;
  }
  return best;
}

/**
 * The dispatches of a launch split by batch, in order: per chunk, its kernels
 * with windows for the values carrying the batch. Throws the planner's
 * too-big error (naming `over`, a value it binds over the limit), with the
 * reason, when the launch cannot be split.
 */
export function splitLaunch(roots: Node[], fusion: Fusion, limits: PlanLimits, over: Value): SplitKernel[] {
  const what = (v: Value) => (v.node ? `'${v.node.op}' output` : `${v.kind} '${v.name ?? `%${v.id}`}'`);
  let cut: Cut;
  try {
    cut = primitive(roots[0].op).kind === 'kernel' ? cutKernel(roots[0], limits) : cutFused(roots, fusion);
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    throw tooBig(what(over), over.shape, limits, `cannot be split by batch (${e.message})`);
  }
  for (const v of cut.bound) {
    if (!cut.batched.has(v.id) && bytesOf(v) > limits.maxStorageBufferBindingSize) throw tooBig(what(v), v.shape, limits, 'is bound whole (it does not carry the batch)');
    if (bytesOf(v) > maxBufferSize(limits)) throw tooBig(what(v), v.shape, limits, undefined, 'maxBufferSize');
  }
  const batched = cut.bound.filter((v) => cut.batched.has(v.id));
  const sampleBytes = new Map(batched.map((v) => [v.id, bytesOf(v) / cut.N]));
  const c = cut.N > 1 ? chooseChunk(cut.N, [...sampleBytes.values()], limits) : null;
  if (c === null) {
    const v = batched.reduce((p, q) => (bytesOf(q) > bytesOf(p) ? q : p), batched[0] ?? roots[0].output);
    const why = cut.N > 1 ? `no batch chunk of it fits one binding at offsets aligned to ${limits.minStorageBufferOffsetAlignment} bytes` : 'the batch is 1';
    throw tooBig(what(v), v.shape, limits, `cannot be split by batch (${why})`);
  }
  const out: SplitKernel[] = [];
  const lowered = new Map<number, SplitKernel[]>();
  for (let start = 0; start < cut.N; start += c) {
    const n = Math.min(c, cut.N - start);
    const first = start === 0;
    // Kernels depend only on the chunk size (and, for 'sum' ops, on being first).
    const key = n * 2 + (first ? 1 : 0);
    let ks = lowered.get(key);
    if (!ks) lowered.set(key, (ks = cut.lower(n, first)));
    for (const k of ks) {
      const args = k.args.map((a): LaunchArg => {
        const v = argValue(a);
        if (!v || !cut.batched.has(v.id)) return a;
        const s = sampleBytes.get(v.id)!;
        return { value: v, offset: start * s, size: n * s };
      });
      out.push({ spec: k.spec, args });
    }
  }
  return out;
}
