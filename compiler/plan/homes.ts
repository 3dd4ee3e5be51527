// Fixed homes: the values whose storage the program does not choose. Params
// and state live in the layout's arenas, inputs and noise in feed buffers
// ('in:NAME', so a caller can fill them), outputs in 'out:NAME', gradients in
// their param's range of the gradient arena. A root that cannot be computed in
// place (a leaf, or a value with a home already) is copied at the end.
// Everything else gets a transient buffer later (allocate.ts).
import type { Plan, Slot, StateLayout, Step } from '../../runtime/format/plan.ts';
import { bytesOf, type Value } from '../ir/graph.ts';
import { fmtShape } from '../ir/shape.ts';
import type { Fusion } from './fuse.ts';
import { layoutSlot } from './layout.ts';
import type { Computation } from './program.ts';

export interface Homes {
  /** Value id -> where it is stored; later phases add views and transients. */
  home: Map<number, Slot>;
  feeds: Plan['feeds'];
  outputs: Plan['outputs'];
  /** Copies run after the program's dispatches (roots that are not computed in place). */
  copies: Step[];
  /** Params whose gradient range the program writes. */
  gradParams: string[];
}

/** Decides the fixed homes of leaves, gradients, noise and outputs, and which roots are copied there. */
export function placeFixedValues(c: Computation, layout: StateLayout): Homes {
  const home = new Map<number, Slot>();
  const feeds: Plan['feeds'] = {};
  const outputs: Plan['outputs'] = {};
  const copies: Step[] = [];
  // Leaves used by this program: params and state live in the layout, inputs get feed buffers.
  const homeLeaf = (v: Value) => {
    if (v.node || home.has(v.id)) return;
    if (v.kind === 'param') home.set(v.id, layoutSlot(layout.params[v.name!], v));
    else if (v.kind === 'buffer') home.set(v.id, layoutSlot(layout.state[v.name!], v));
    else if (v.kind === 'input') {
      const slot = { buffer: `in:${v.name}`, offset: 0, size: bytesOf(v) };
      feeds[v.name!] = { slot, shape: [...v.shape], kind: 'input' };
      home.set(v.id, slot);
    }
  };
  for (const n of c.nodes) for (const v of n.inputs) homeLeaf(v);
  // Roots that are leaves themselves (an output that is an input, say) are copied.
  for (const v of c.roots) homeLeaf(v);
  const gradParams: string[] = [];
  for (const [p, v] of c.grads) {
    const ps = layout.params[p];
    if (!ps) throw new Error(`grads: '${p}' is not a param`);
    if (bytesOf(v) !== ps.size) throw new Error(`grads: gradient of '${p}' has shape ${fmtShape(v.shape)}, param has ${fmtShape(ps.shape)}`);
    if (!ps.grad) throw new Error(`grads: '${p}' is frozen (a pretrained encoder's): it has no gradient arena`);
    gradParams.push(p);
    if (v.node && !home.has(v.id)) home.set(v.id, ps.grad);
    else copies.push({ op: 'copy', src: home.get(v.id)!, dst: ps.grad });
  }
  // Noise lives in a feed buffer, so a caller can fix it by name.
  for (const n of c.nodes) {
    if (n.output.kind === 'noise' && !home.has(n.output.id)) {
      const slot = { buffer: `in:${n.output.name}`, offset: 0, size: bytesOf(n.output) };
      feeds[n.output.name!] = { slot, shape: [...n.output.shape], kind: 'noise' };
      home.set(n.output.id, slot);
    }
  }
  for (const [name, v] of c.outputs) {
    const slot = { buffer: `out:${name}`, offset: 0, size: bytesOf(v) };
    outputs[name] = { slot, shape: [...v.shape] };
    if (v.node && !home.has(v.id)) home.set(v.id, slot);
    else copies.push({ op: 'copy', src: home.get(v.id)!, dst: slot });
  }
  return { home, feeds, outputs, copies, gradParams };
}

export interface Views {
  /** Ids of reshapes that are views (no launch of their own). */
  aliased: Set<number>;
  /** Producer value id -> the reshape viewing it. */
  viewOf: Map<number, number>;
}

/**
 * Decides which reshapes are views: a reshape that only moves a value into its
 * fixed home (a gradient arena range, an output) lets its producer write there
 * directly. Adds the producers' homes to `homes.home`.
 */
export function aliasReshapeViews(c: Computation, fusion: Fusion, homes: Homes): Views {
  const { home } = homes;
  const aliased = new Set<number>();
  const viewOf = new Map<number, number>();
  for (const n of c.nodes) {
    const src = n.inputs[0];
    if (n.op !== 'reshape' || fusion.inline.has(n.output.id) || !home.has(n.output.id) || !src?.node) continue;
    if (fusion.inline.has(src.id) || home.has(src.id) || c.required.has(src.id) || (c.consumers.get(src.id) ?? []).length !== 1) continue;
    home.set(src.id, home.get(n.output.id)!);
    aliased.add(n.output.id);
    viewOf.set(src.id, n.output.id);
  }
  return { aliased, viewOf };
}

/** Copies of the new running statistics into their state buffers, run after the dispatches. */
export function copyStateUpdates(c: Computation, layout: StateLayout, home: ReadonlyMap<number, Slot>): Step[] {
  return c.updates.map((u) => {
    const src = home.get(u.value.id);
    if (!src) throw new Error(`internal: value %${u.value.id} has no storage`);
    return { op: 'copy', src, dst: layoutSlot(layout.state[u.target.name!], u.target) };
  });
}

/**
 * Decides which gradients are zeroed: those of params in the optimised
 * `groups` that the program does not compute. Adds them to `homes.gradParams`.
 */
export function clearUnwrittenGrads(groups: readonly string[], layout: StateLayout, homes: Homes): Step[] {
  const clears: Step[] = [];
  for (const g of groups) {
    for (const p of layout.groups[g]?.params ?? []) {
      const grad = layout.params[p].grad;
      if (!grad) throw new Error(`group '${g}' is frozen: it cannot be optimised`);
      if (!homes.gradParams.includes(p)) {
        clears.push({ op: 'clear', dst: grad });
        homes.gradParams.push(p);
      }
    }
  }
  return clears;
}
