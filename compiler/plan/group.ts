// Grouping: one launch per materialised node, then horizontal and vertical
// fusion of launches. A reduce root joins an earlier launch of the same
// signature (a sum over the same input shape and axes) when everything it
// reads is already computed there: BatchNorm's backward sums then share one
// dispatch and one pass over their inputs. An elementwise node merges into the
// launch producing its input when nothing else reads that result in between
// (both are written). Independent elementwise siblings are not merged: they
// share no reads, so merging saved only the fixed cost of a dispatch (about 32
// us on lavapipe), while every mix of siblings (a running-mean update beside
// two others, or three) was another pipeline to compile. Measured on the tiny
// step: 1420 -> 1552 dispatches, step time within noise (three alternating
// pairs), 103 -> 91 distinct pipelines on lavapipe.
import { bytesOf, type Node, type Value } from '../ir/graph.ts';
import { primitive } from '../ops/registry.ts';
import { RECOMPUTE_COST, type Fusion } from './fuse.ts';
import type { Views } from './homes.ts';
import { maxBufferSize, tooBig, type PlanLimits } from './limits.ts';
import type { Computation } from './program.ts';

/** Roots one fused launch may compute. */
const MAX_ROOTS = 4;

export interface Group {
  roots: Node[];
  /** Horizontal-fusion signature: reductions only (null: never merged horizontally). */
  sig: string | null;
  /** An elementwise launch (a later elementwise node may merge into it vertically). */
  ew: boolean;
  /** Ids of the stored values its kernel reads. */
  leaves: Set<number>;
}

/** The nodes that get a launch of their own: neither inlined nor views. Refuses outputs too big for one buffer. */
export function materialisedNodes(c: Computation, fusion: Fusion, views: Views, limits: PlanLimits): Node[] {
  const materialised = c.nodes.filter((n) => !fusion.inline.has(n.output.id) && !views.aliased.has(n.output.id));
  // Only stored tensors are bound; values computed inline (a tiled vector) may be bigger.
  // One over a binding but within a buffer is bound in batch windows (split.ts).
  for (const n of materialised) {
    if (bytesOf(n.output) > maxBufferSize(limits)) throw tooBig(`'${n.op}' output`, n.output.shape, limits, undefined, 'maxBufferSize');
  }
  return materialised;
}

/** Decides which materialised nodes share a launch, in launch order. */
export function groupLaunches(materialised: Node[], fusion: Fusion, views: Views, maxLeaves: number): Group[] {
  const { inline, cost } = fusion;
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
  const groups: Group[] = [];
  const producer = new Map<number, number>(); // value id -> group index
  for (const node of materialised) {
    const def = primitive(node.op);
    const leaves = def.kind === 'kernel' ? node.inputs : kernelLeaves(node);
    let sig: string | null = null;
    if (def.kind === 'reduce') sig = `${node.op}:${node.inputs[0].shape.join(',')}:${JSON.stringify(node.attrs)}`;
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
        if (union.size + g.roots.length + 1 > maxLeaves + 1) continue;
        groups.splice(gi, 1);
        for (const [id, k] of producer) if (k > gi) producer.set(id, k - 1);
        const merged = { roots: [...g.roots, node], sig, ew: true, leaves: union };
        target = groups.length;
        groups.push(merged);
        for (const r of g.roots) {
          producer.set(r.output.id, target);
          const view = views.viewOf.get(r.output.id);
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
        if (union.size + g.roots.length + 1 > maxLeaves + 1) continue;
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
    const view = views.viewOf.get(node.output.id);
    if (view !== undefined) producer.set(view, target);
  }
  return groups;
}
