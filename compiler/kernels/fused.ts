// Fused kernels: a root node plus the fusible producers inlined into it. Each
// inlined node becomes a WGSL function `fN(i) -> f32` (its output at flat
// index i), built from the op's own `fn` (compiler/ops); values computed
// elsewhere are read from storage bindings. The root is either fusible (one
// invocation per output element) or a reduction (a workgroup tree per output,
// or one invocation per output when the reduced extent is small), rendered
// from the op's declared identity and combine step. The bounds check reads the
// output count from the output binding (plans bind a value's exact bytes), so
// kernels that differ only in size share one WGSL and one pipeline; each
// dispatch step then carries its own grid (runtime/format/plan.ts).
import type { Node, Value } from '../ir/graph.ts';
import { numel, sameShape, strides, type Shape } from '../ir/shape.ts';
import { primitive } from '../ops/registry.ts';
import { f32 } from '../ops/op.ts';
import { keptShape, type ReduceAttrs } from '../ops/reduce.ts';
import { gridFor, groupsFor } from '../../runtime/format/grid.ts';
import type { KernelSpec } from '../../runtime/format/kernel.ts';
import { SizeParams } from './sizes.ts';

export interface FusedKernel {
  spec: KernelSpec;
  /** Values bound as inputs, in binding order; the outputs (one per root) follow. */
  leaves: Value[];
}

/** Index into `from` (broadcast) for flat index `i` of shape `to`. */
export function broadcastIndex(from: Shape, to: Shape, i = 'i'): string {
  if (sameShape(from, to)) return i;
  if (numel(from) === 1) return '0u';
  const lead = to.length - from.length;
  const fs = strides(from);
  const ts = strides(to);
  const terms: string[] = [];
  for (let d = 0; d < from.length; d++) {
    if (from[d] === 1) continue;
    const td = d + lead;
    let coord = ts[td] === 1 ? i : `(${i} / ${ts[td]}u)`;
    if (td > 0) coord = `(${coord} % ${to[td]}u)`;
    terms.push(fs[d] === 1 ? coord : `${coord} * ${fs[d]}u`);
  }
  return terms.join(' + ');
}

const REDUCE_WG = 64;
/** Below this many reduced elements per output, one invocation reduces serially. */
const SERIAL_REDUCE = 32;

/**
 * One kernel computing `roots`: either fusible roots of one output shape (an
 * invocation per element writes every root), or reductions of one kind over the
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

  // Local names, so identical subgraphs render identical WGSL (and share a pipeline).
  const local = new Map<number, number>();
  const fnOf = (v: Value): string => {
    if (v.node && inlined(v)) {
      emit(v.node);
      return `n${local.get(v.node.id)}`;
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
    const body = def.fn({
      out: n.output.shape,
      ins: n.inputs.map((v) => v.shape),
      attrs: n.attrs,
      at: (k, idx) => `${inFns[k]}(${idx})`,
      bcast: (k) => `${inFns[k]}(${broadcastIndex(n.inputs[k].shape, n.output.shape)})`,
    });
    local.set(n.id, local.size);
    fns.push(`fn n${local.get(n.id)}(i: u32) -> f32 {\n  ${body}\n}`);
  };

  let main: string;
  let workgroups: [number, number, number];
  let flops = 0;
  const root = roots[0];
  const outShape = root.output.shape;
  const total = numel(outShape);
  const R_ = roots.map((_, k) => k);
  const sizes = new SizeParams();

  const algebra = primitive(root.op).reduce;
  if (algebra) {
    if (roots.some((r) => r.op !== root.op)) throw new Error(`internal: one kernel for reductions ${[...new Set(roots.map((r) => r.op))].join(', ')}`);
    const { identity, combine } = algebra;
    const store = (k: number, v: string) => `out${k}[o] = ${opts.accumulate ? combine(`out${k}[o]`, v) : v};`;
    const srcs = roots.map((r) => fnOf(r.inputs[0]));
    const x = root.inputs[0].shape;
    const { axes } = root.attrs as unknown as ReduceAttrs;
    const kept = keptShape(x, axes);
    const xs = strides(x);
    const ks = strides(kept);
    const reducedDims = axes.filter((a) => x[a] > 1);
    const R = reducedDims.reduce((p, a) => p * x[a], 1);
    // The extents and strides are run-time sizes (the Sizes uniform): reductions
    // that differ only in them share one WGSL. Which dims are kept or reduced
    // (the number of terms) stays in the code. Names count terms, not axes.
    const keptDims = kept.flatMap((d, a) => (d > 1 ? [a] : []));
    const baseTerms = keptDims.map((a, t) => {
      // The last kept dim has stride 1 in the output; the first needs no modulo (o < its count).
      let c = t === keptDims.length - 1 ? 'o' : `(o / ${sizes.u(`OS${t}`, ks[a])})`;
      if (t > 0) c = `(${c} % ${sizes.u(`OE${t}`, kept[a])})`;
      return `${c} * ${sizes.u(`OX${t}`, xs[a])}`;
    });
    const rShape = reducedDims.map((a) => x[a]);
    const rs = strides(rShape);
    const offTerms = reducedDims.map((a, j) => {
      let c = j === reducedDims.length - 1 ? 'r' : `(r / ${sizes.u(`RS${j}`, rs[j])})`;
      if (j > 0) c = `(${c} % ${sizes.u(`RE${j}`, rShape[j])})`;
      return `${c} * ${sizes.u(`RX${j}`, xs[a])}`;
    });
    const RN = sizes.u('RN', R);
    const baseExpr = baseTerms.join(' + ') || '0u';
    const roffExpr = offTerms.join(' + ') || '0u';
    flops = numel(x) * roots.length;
    const accs = R_.map((k) => `  var acc${k} = ${f32(identity)};`).join('\n');
    const adds = R_.map((k) => `acc${k} = ${combine(`acc${k}`, `${srcs[k]}(j)`)};`).join(' ');
    if (R <= SERIAL_REDUCE || (total >= 4096 && R <= 256)) {
      const g = gridFor(total);
      workgroups = g.workgroups;
      main = `@compute @workgroup_size(${g.size})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o = ${g.index('gid')};
  if (o >= arrayLength(&out0)) { return; }
${sizes.prologue().replace(/^/gm, '  ')}
  let b0 = ${baseExpr};
${accs}
  for (var r = 0u; r < ${RN}; r++) { let j = b0 + ${roffExpr}; ${adds} }
${R_.map((k) => `  ${store(k, `acc${k}`)}`).join('\n')}
}`;
    } else {
      const g = groupsFor(total);
      workgroups = g.workgroups;
      main = `${R_.map((k) => `var<workgroup> part${k}: array<f32, ${REDUCE_WG}>;`).join('\n')}

@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let o = ${g.index('wid')};
${sizes.prologue().replace(/^/gm, '  ')}
  let b0 = ${baseExpr};
${accs}
  for (var r = lid; r < ${RN}; r += ${REDUCE_WG}u) { let j = b0 + ${roffExpr}; ${adds} }
${R_.map((k) => `  part${k}[lid] = acc${k};`).join('\n')}
  workgroupBarrier();
  for (var s = ${REDUCE_WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { ${R_.map((k) => `part${k}[lid] = ${combine(`part${k}[lid]`, `part${k}[lid + s]`)};`).join(' ')} }
    workgroupBarrier();
  }
  if (lid == 0u) { ${R_.map((k) => store(k, `part${k}[0]`)).join(' ')} }
}`;
    }
  } else {
    if (opts.accumulate) throw new Error('internal: only reductions accumulate');
    const fs = roots.map((r) => fnOf(r.output));
    const g = gridFor(total);
    workgroups = g.workgroups;
    flops = total * names.length;
    main = `@compute @workgroup_size(${g.size})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = ${g.index('gid')};
  if (i >= arrayLength(&out0)) { return; }
${R_.map((k) => `  out${k}[i] = ${fs[k]}(i);`).join('\n')}
}`;
  }

  // Roots are computed by `main`, never read from a binding.
  if (leaves.some((v) => v.node && rootIds.has(v.node.id))) throw new Error('internal: fused root read as a leaf');
  const decls = leaves.map((_, k) => `@group(0) @binding(${k}) var<storage, read> in${k}: array<f32>;`);
  R_.forEach((k) => decls.push(`@group(0) @binding(${leaves.length + k}) var<storage, read_write> out${k}: array<f32>;`));
  if (!sizes.empty) decls.push(sizes.declaration(leaves.length + roots.length));
  const wgsl = `${decls.join('\n')}\n\n${fns.join('\n\n')}\n\n${main}\n`;
  const tag = [...new Set(names)].slice(0, 6).join('_');
  return {
    spec: {
      // No size in the name: the WGSL is shared by launches of every size it fits.
      name: `fused${roots.length > 1 ? `x${roots.length}` : ''}_${tag}${opts.accumulate ? '_acc' : ''}`,
      wgsl,
      bindings: [
        ...leaves.map((_, k) => ({ name: `in${k}`, access: 'read' as const })),
        ...R_.map((k) => ({ name: `out${k}`, access: 'read_write' as const })),
        ...(sizes.empty ? [] : [SizeParams.binding]),
      ],
      workgroups,
      flops,
      ...(sizes.empty ? {} : { params: sizes.words() }),
    },
    leaves,
  };
}
