// Fused kernels: a root node plus the fusible producers inlined into it. Each
// inlined node becomes a WGSL function `fN(i) -> f32` (its output at flat
// index i), built from the op's own `fn` (compiler/ops); values computed
// elsewhere are read from storage bindings. The root is either fusible (a
// grid-stride loop over the output elements, about EW_PER_INVOCATION per
// invocation) or a reduction (a workgroup tree per output,
// or one invocation per output when the reduced extent is small), rendered
// from the op's declared identity and combine step. The bounds check reads the
// output count from the output binding (plans bind a value's exact bytes), so
// kernels that differ only in size share one WGSL and one pipeline; each
// dispatch step then carries its own grid (runtime/format/plan.ts).
import type { Node, Value } from '../ir/graph.ts';
import { numel, sameShape, strides, type Shape } from '../ir/shape.ts';
import { primitive } from '../ops/registry.ts';
import { f32, type SizeArith } from '../ops/op.ts';
import type { ReduceAttrs } from '../ops/reduce.ts';
import { gridFor, groupsFor } from '../../runtime/format/grid.ts';
import type { KernelSpec } from '../../runtime/format/kernel.ts';
import { SizeParams } from './sizes.ts';

/**
 * Constants kept as literals: identities and the halves and doubles of
 * formulas (exp(0.5 x), a square root's derivative), which the JIT folds into
 * the arithmetic around them. Measured: reading +-0.5 from the uniform instead
 * moved the float32 error of d2's gradients in the whole-iteration parity test
 * (test/blocks/gan-iteration.test.ts) from 7e-5 to 2.8e-3 of float64 (every
 * kernel alone agreed within 1.5e-6; the difference grows through BatchNorm
 * at batch 4), and keeping them merges no fewer kernels.
 */
const STRUCTURAL_CONSTANTS = new Set([0, 0.5, 1, 2]);

/** The bits of `value` as an f32 (a constant carried in a u32 word of the Sizes uniform). */
function f32Bits(value: number): number {
  return new Uint32Array(Float32Array.of(value).buffer)[0];
}

export interface FusedKernel {
  spec: KernelSpec;
  /** Values bound as inputs, in binding order; the outputs (one per root) follow. */
  leaves: Value[];
}

const pow2 = (v: number) => v >= 1 && (v & (v - 1)) === 0;

/**
 * SizeArith over `params`, its fields named `prefix` + a counter. Measured
 * on lavapipe: a shift or mask by a run-time amount costs what a literal one
 * does (4.3-4.4 ms either way for a 512K-element per-channel broadcast), while
 * a division by a run-time value made the same kernel 1.75x slower than by a
 * literal, which the JIT turns into a multiply: so a division or remainder
 * moves to the uniform only by a power of two (a shift or mask, 1 included, so
 * the WGSL's structure does not depend on which sizes happen to be 1), and a
 * multiply always does.
 */
function sizeArith(params: SizeParams, prefix: string): SizeArith {
  let n = 0;
  const field = (value: number) => params.field(`${prefix}${n++}`, value);
  return {
    div: (e, v) => (pow2(v) ? `(${e} >> ${field(Math.log2(v))})` : `(${e} / ${v}u)`),
    mod: (e, v) => (pow2(v) ? `(${e} & ${field(v - 1)})` : `(${e} % ${v}u)`),
    // A multiply by a run-time value costs what a literal one does, and one
    // form for every value keeps the WGSL free of which strides are powers of two.
    mul: (e, v) => `(${e} * ${field(v)})`,
    u: (v) => field(v),
  };
}

/**
 * Index into `from` (broadcast) for flat index `i` of shape `to`, its sizes
 * through `size` (sizeArith: powers of two from the Sizes uniform).
 */
function broadcastIndex(from: Shape, to: Shape, i: string, size: SizeArith): string {
  if (sameShape(from, to)) return i;
  if (numel(from) === 1) return '0u';
  return broadcastRuns(from, to)
    .map((r) => {
      const coord = size.div(i, r.toStride);
      // The mask is a no-op on the outermost run but keeps one WGSL form for
      // every broadcast with this many runs; only a non-power-of-two extent
      // there (a % by a literal) is left out.
      const kept = r.outermost && !pow2(r.extent) ? coord : size.mod(coord, r.extent);
      return size.mul(kept, r.fromStride);
    })
    .join(' + ');
}

/** A run of adjacent kept dims: its innermost stride in each shape, its extent, and whether nothing but 1s lies outside it. */
interface BroadcastRun {
  toStride: number;
  extent: number;
  fromStride: number;
  outermost: boolean;
}

/**
 * The dims `from` keeps (not broadcast) in runs of adjacent ones: within a run
 * the flat coordinate is contiguous in both shapes, so one div, mod and mul
 * index the whole run. Measured on the tiny step: per-dim terms rendered a
 * per-channel read of [N, C, 1, 1] and of [1, C, 1, 1] as different WGSL.
 */
function broadcastRuns(from: Shape, to: Shape): BroadcastRun[] {
  const lead = to.length - from.length;
  const fs = strides(from);
  const ts = strides(to);
  const runs: BroadcastRun[] = [];
  let open = false;
  for (let d = 0; d < from.length; d++) {
    const td = d + lead;
    if (from[d] === 1) {
      // A dim of 1 in both shapes does not break a run; a broadcast one does.
      if (to[td] !== 1) open = false;
      continue;
    }
    const last = runs.at(-1);
    if (open && last) {
      last.extent *= to[td];
      last.toStride = ts[td];
      last.fromStride = fs[d];
    } else runs.push({ toStride: ts[td], extent: to[td], fromStride: fs[d], outermost: to.slice(0, td).every((e) => e === 1) });
    open = true;
  }
  return runs;
}

/**
 * Elements one invocation of an elementwise kernel writes, at most: the grid
 * has 1/EW_PER_INVOCATION of an invocation per element and each invocation
 * loops over its elements a grid's width apart (neighbouring lanes on
 * neighbouring elements). Measured on lavapipe (y = 0.5 x + 1 over 256K
 * elements, 100 dispatches): 553-589 us per dispatch with one element per
 * invocation, 345-380 us with this loop; the per-invocation cost, not memory,
 * was the limit. The loop's bound is the run-time length, so the JIT does not
 * unroll it: a fixed count of 4 measured 318-396 us but quadrupled the
 * elementwise kernels' cold JIT (2.6 -> 10.8 s for the tiny step's 50).
 */
export const EW_PER_INVOCATION = 4;

const REDUCE_WG = 64;
/** Below this many reduced elements per output, one invocation reduces serially. */
const SERIAL_REDUCE = 32;

/** A run of adjacent dims of one kind (kept or reduced), as one extent and the innermost's stride in x. */
interface Run {
  reduced: boolean;
  extent: number;
  stride: number;
}

/** `rs` with runs of extent 1 in front up to `n`: layouts with fewer runs render the same WGSL. */
function padRuns(rs: readonly Run[], n: number): Run[] {
  const pad: Run[] = Array.from({ length: Math.max(0, n - rs.length) }, () => ({ reduced: rs[0]?.reduced ?? false, extent: 1, stride: 0 }));
  return [...pad, ...rs];
}

/**
 * Offset in x of flat index `v` over `rs` (innermost fastest), its extents and
 * strides named `P`E/X + run number in `sizes`; peeled innermost first, one
 * run-time division per run but the outermost (lines go to `lines`).
 */
function decompose(v: string, rs: readonly Run[], P: string, lines: string[], sizes: SizeParams): string {
  const terms: string[] = [];
  let q = v;
  for (let t = rs.length - 1; t > 0; t--) {
    const e = sizes.u(`${P}E${t}`, rs[t].extent);
    const next = `${v}q${t}`;
    lines.push(`let ${next} = ${q} / ${e};`);
    terms.push(`(${q} - ${next} * ${e}) * ${sizes.u(`${P}X${t}`, rs[t].stride)}`);
    q = next;
  }
  terms.push(`${q} * ${sizes.u(`${P}X0`, rs[0].stride)}`);
  return terms.reverse().join(' + ');
}

/**
 * One kernel computing `roots`: either fusible roots of one output shape (an
 * invocation writes every root at each of its elements), or reductions of one kind over the
 * same input shape and axes (their accumulations share one loop). Bindings: the
 * leaves read, then one output per root. With `accumulate` (reductions only),
 * each output combines its old value with the new result: a reduction over the
 * batch split into chunks (compiler/plan/split.ts) folds every chunk in.
 */
export function fusedKernel(roots: readonly Node[], isInlined: (v: Value) => boolean, opts: { accumulate?: boolean } = {}): FusedKernel {
  const rootIds = new Set(roots.map((r) => r.id));
  const inlined = (v: Value) => (v.node !== undefined && rootIds.has(v.node.id)) || isInlined(v);
  const leaves: Value[] = [];
  const leafIdx = new Map<number, number>();
  const fns: string[] = [];
  const done = new Set<number>();
  const names: string[] = roots.map((r) => r.op);

  // Local names (n0, n1, ... in emission order), so identical subgraphs
  // render identical WGSL and share a pipeline.
  const fnName = new Map<number, string>();
  /** Functions of no index (a constant): called at 0u, so a fill of the output's shape and a broadcast scalar fill render alike. */
  const constantFns = new Set<string>();
  const call = (fn: string, idx: () => string) => `${fn}(${constantFns.has(fn) ? '0u' : idx()})`;
  let nodeFns = 0;
  const sizes = new SizeParams();
  const fnOf = (v: Value): string => {
    if (v.node && inlined(v)) {
      // A constant gets a function per use: fills of equal value are one node
      // (hash-consing), and sharing it would make the WGSL depend on which
      // constants happen to be equal (BatchNorm's two momentum updates).
      if (v.node.op === 'fill') done.delete(v.node.id);
      emit(v.node);
      return fnName.get(v.node.id)!;
    }
    let k = leafIdx.get(v.id);
    if (k === undefined) {
      k = leaves.length;
      leafIdx.set(v.id, k);
      leaves.push(v);
      fns.push(`fn l${k}(i: u32) -> f32 { return in${k}[i]; }`);
    }
    return `l${k}`;
  };

  const emit = (n: Node): void => {
    if (done.has(n.id)) return;
    done.add(n.id);
    const def = primitive(n.op);
    if (!def.fn) throw new Error(`op '${n.op}' cannot be fused`);
    const inFns = n.inputs.map(fnOf);
    names.push(n.op);
    const id = nodeFns; // this node's local number: names its function, sizes and constants
    let constants = 0;
    const body = def.fn({
      out: n.output.shape,
      ins: n.inputs.map((v) => v.shape),
      attrs: n.attrs,
      at: (k, idx) => call(inFns[k], () => idx),
      bcast: (k) => call(inFns[k], () => broadcastIndex(n.inputs[k].shape, n.output.shape, 'i', sizeArith(sizes, `B${id}_${k}_`))),
      size: sizeArith(sizes, `S${id}_`),
      constant: (value) => (STRUCTURAL_CONSTANTS.has(Math.abs(value)) ? f32(value) : `bitcast<f32>(${sizes.field(`F${id}_${constants++}`, f32Bits(value))})`),
    });
    // A node that reads its input at its own index (a reshape, a detach, an
    // expand to the same shape) is that input: no function of its own, so a
    // graph with or without such a node renders the same WGSL.
    if (n.inputs.length === 1 && body === `return ${inFns[0]}(i);`) {
      fnName.set(n.id, inFns[0]);
      return;
    }
    fnName.set(n.id, `n${id}`);
    if (n.inputs.length === 0 && !/\bi\b/.test(body)) constantFns.add(`n${id}`);
    nodeFns++;
    fns.push(`fn n${id}(i: u32) -> f32 {\n  ${body}\n}`);
  };

  let main: string;
  let workgroups: [number, number, number];
  let flops = 0;
  const root = roots[0];
  const outShape = root.output.shape;
  const total = numel(outShape);
  const R_ = roots.map((_, k) => k);

  const algebra = primitive(root.op).reduce;
  if (algebra) {
    if (roots.some((r) => r.op !== root.op)) throw new Error(`internal: one kernel for reductions ${[...new Set(roots.map((r) => r.op))].join(', ')}`);
    const { identity, combine } = algebra;
    const store = (k: number, v: string) => `out${k}[o] = ${opts.accumulate ? combine(`out${k}[o]`, v) : v};`;
    const srcs = roots.map((r) => fnOf(r.inputs[0]));
    const x = root.inputs[0].shape;
    const { axes } = root.attrs as unknown as ReduceAttrs;
    const xs = strides(x);
    const R = axes.reduce((p, a) => p * x[a], 1);
    // The extents and strides are run-time sizes (the Sizes uniform): reductions
    // that differ only in them share one WGSL. Dims of one kind next to each
    // other (size-1 dims dropped) are one run, with one extent and the
    // innermost's stride in x. What stays in the code is only how many runs
    // there are beyond two kept and two reduced ones, so a BatchNorm statistic,
    // a bias gradient and a mean over a map all run one WGSL per fused graph,
    // for each of the two strategies below.
    const runs: Run[] = [];
    x.forEach((d, a) => {
      if (d === 1) return;
      const reduced = axes.includes(a);
      const last = runs.at(-1);
      if (last && last.reduced === reduced) {
        last.extent *= d;
        last.stride = xs[a];
      } else runs.push({ reduced, extent: d, stride: xs[a] });
    });
    const keptRuns = runs.filter((r) => !r.reduced);
    const redRuns = runs.filter((r) => r.reduced);
    const baseLines: string[] = [];
    // Up to two kept runs render as two (a missing run has extent 1): one
    // division per output, not per element.
    baseLines.push(`let b0 = ${decompose('o', padRuns(keptRuns, 2), 'O', baseLines, sizes)};`);
    // The reduced runs: the longest is the inner loop (split across the lanes
    // in a tree), the rest the outer one (one run renders as one loop).
    const lane = redRuns.reduce((best, r) => (r.extent > best.extent ? r : best), redRuns[redRuns.length - 1] ?? { reduced: true, extent: 1, stride: 0 });
    const outer = padRuns(
      redRuns.filter((r) => r !== lane),
      1,
    );
    const outerLines: string[] = [];
    const outerExpr = decompose('r0', outer, 'R', outerLines, sizes);
    const RO = sizes.u('RO', outer.reduce((p, r) => p * r.extent, 1));
    const RI = sizes.u('RI', lane.extent);
    const RIX = sizes.u('RIX', lane.stride);
    flops = numel(x) * roots.length;
    const accs = R_.map((k) => `  var acc${k} = ${f32(identity)};`).join('\n');
    const adds = R_.map((k) => `acc${k} = ${combine(`acc${k}`, `${srcs[k]}(j)`)};`).join(' ');
    const loops = (start: string, step: string) => `for (var r0 = 0u; r0 < ${RO}; r0++) {
    ${[...outerLines, `let j0 = b0 + ${outerExpr};`].join(' ')}
    for (var r1 = ${start}; r1 < ${RI}; r1 += ${step}) { let j = j0 + r1 * ${RIX}; ${adds} }
  }`;
    // Two strategies with literal loop steps, both in one WGSL and chosen per
    // launch by a word of the uniform (the branch is uniform, so the
    // barriers of the tree stay in uniform control flow): reductions of one
    // fused graph then share one pipeline whichever strategy their sizes pick.
    // A kernel taking its lanes per output from the uniform instead measured
    // 1.3x slower over the cpu preset's reductions (up to 3x on serial ones),
    // and so did a tree splitting its lanes over both loops by uniform shifts.
    // Serial: few elements per output, or outputs enough to fill the machine
    // while the tree's inner loop would leave lanes idle (a 4x4 map under the
    // batch).
    const serial = R <= SERIAL_REDUCE || (total >= 4096 && R <= 256) || (lane.extent < REDUCE_WG && total >= 2 * REDUCE_WG);
    const SERIAL = sizes.u('SERIAL', serial ? 1 : 0);
    // The grid's flat index whether or not it folds into y (num_workgroups
    // tells), so the WGSL does not depend on the launch's size either.
    const flat = (id: string) => `${id}.x + ${id}.y * nwg.x`;
    workgroups = serial ? gridFor(total, REDUCE_WG).workgroups : groupsFor(total).workgroups;
    const body = (start: string, step: string, indent: string) =>
      [...baseLines.map((l) => `  ${l}`), accs, `  ${loops(start, step)}`].join('\n').replace(/^/gm, indent);
    main = `${R_.map((k) => `var<workgroup> part${k}: array<f32, ${REDUCE_WG}>;`).join('\n')}

@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
${sizes.prologue().replace(/^/gm, '  ')}
  let group = ${flat('wid')};
  if (${SERIAL} != 0u) {
    // One invocation per output.
    let o = group * ${REDUCE_WG}u + lid;
    if (o < arrayLength(&out0)) {
${body('0u', '1u', '    ')}
${R_.map((k) => `      ${store(k, `acc${k}`)}`).join('\n')}
    }
  } else {
    // One workgroup per output: a tree over its lanes.
    let o = group;
${body('lid', `${REDUCE_WG}u`, '  ')}
${R_.map((k) => `    part${k}[lid] = acc${k};`).join('\n')}
    workgroupBarrier();
    for (var s = ${REDUCE_WG / 2}u; s > 0u; s >>= 1u) {
      if (lid < s) { ${R_.map((k) => `part${k}[lid] = ${combine(`part${k}[lid]`, `part${k}[lid + s]`)};`).join(' ')} }
      workgroupBarrier();
    }
    if (lid == 0u) { ${R_.map((k) => store(k, `part${k}[0]`)).join(' ')} }
  }
}`;
  } else {
    if (opts.accumulate) throw new Error('internal: only reductions accumulate');
    const fs = roots.map((r) => fnOf(r.output));
    const g = gridFor(Math.ceil(total / EW_PER_INVOCATION));
    workgroups = g.workgroups;
    flops = total * names.length;
    // A grid-stride loop: up to EW_PER_INVOCATION elements per invocation.
    main = `@compute @workgroup_size(${g.size})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * ${g.size}u;
  let n = arrayLength(&out0);
  for (var i = gid.x + gid.y * nwg.x * ${g.size}u; i < n; i += stride) {
${R_.map((k) => `    out${k}[i] = ${fs[k]}(i);`).join('\n')}
  }
}`;
  }

  // Roots are computed by `main`, never read from a binding.
  if (leaves.some((v) => v.node && rootIds.has(v.node.id))) throw new Error('internal: fused root read as a leaf');
  const decls = leaves.map((_, k) => `@group(0) @binding(${k}) var<storage, read> in${k}: array<f32>;`);
  R_.forEach((k) => decls.push(`@group(0) @binding(${leaves.length + k}) var<storage, read_write> out${k}: array<f32>;`));
  if (!sizes.empty) decls.push(sizes.declaration(leaves.length + roots.length));
  const wgsl = `${decls.join('\n')}\n\n${fns.join('\n\n')}\n\n${main}\n`;
  const tag = [...new Set(names)].slice(0, 6).join('_');
  const attached = sizes.attach([
    ...leaves.map((_, k) => ({ name: `in${k}`, access: 'read' as const })),
    ...R_.map((k) => ({ name: `out${k}`, access: 'read_write' as const })),
  ]);
  return {
    spec: {
      // No size in the name: the WGSL is shared by launches of every size it fits.
      name: `fused${roots.length > 1 ? `x${roots.length}` : ''}_${tag}${opts.accumulate ? '_acc' : ''}`,
      wgsl,
      bindings: attached.bindings,
      workgroups,
      flops,
      ...(attached.params ? { params: attached.params } : {}),
    },
    leaves,
  };
}
