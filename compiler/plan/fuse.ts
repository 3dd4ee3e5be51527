// Vertical fusion: which fusible values are not stored but computed inline by
// each kernel that reads them. A value is inlined when all its consumers are
// elementwise or reductions, recomputing it is cheap (or its consumers read
// disjoint parts of it), and the fused kernel stays within the adapter's
// bindings and a bound on work per element.
import { numel } from '../ir/shape.ts';
import { primitive } from '../ops/registry.ts';
import { FREE_OPS, type Computation } from './program.ts';

/** Fusible nodes with several consumers are recomputed by each when at most this many ops deep. */
export const RECOMPUTE_COST = 3;
/** Bound on the ops (counted with repetition) one fused kernel computes per element. */
const MAX_INLINE_COST = 48;

export interface Fusion {
  /** Ids of the values computed inline by their consumers. */
  inline: Set<number>;
  /** Value id -> ops computed per element to produce it inline (0 for stored leaves' reads). */
  cost: Map<number, number>;
}

/** Decides which values are inlined into their consumers, with at most `maxLeaves` stored inputs per kernel. */
export function chooseInlineValues(c: Computation, maxLeaves: number): Fusion {
  const { nodes, required, consumers } = c;
  const inline = new Set<number>();
  const cost = new Map<number, number>();
  const leafCount = new Map<number, Set<number>>();
  for (const n of nodes) {
    const def = primitive(n.op);
    const leaves = new Set<number>();
    let k = def.kind === 'fusible' && !FREE_OPS.has(n.op) ? 1 : 0;
    for (const v of n.inputs) {
      if (inline.has(v.id)) {
        k += cost.get(v.id)!;
        for (const l of leafCount.get(v.id)!) leaves.add(l);
      } else leaves.add(v.id);
    }
    cost.set(n.output.id, k);
    leafCount.set(n.output.id, leaves);
    if (def.kind !== 'fusible' || required.has(n.output.id)) continue;
    const cons = [...new Set(consumers.get(n.output.id) ?? [])];
    const fusibleConsumers = cons.every((m) => {
      const kind = primitive(m.op).kind;
      return kind === 'fusible' || kind === 'reduce';
    });
    if (!fusibleConsumers || cons.length === 0) continue;
    // Several consumers recompute the value: fine when it is cheap, or when they
    // read disjoint parts of it (GLU's two halves are slices of one tensor).
    const reads = cons.reduce((r, m) => r + (m.op === 'slice' ? numel(m.output.shape) / numel(n.output.shape) : 1), 0);
    if (cons.length > 1 && k > RECOMPUTE_COST && reads > 1) continue;
    // A small value broadcast into several big consumers (a per-channel
    // statistic) is stored once rather than recomputed per element of each:
    // its readers then stay cheap enough to be inlined themselves.
    if (cons.length > 1 && k > 1 && cons.some((m) => numel(m.output.shape) >= 16 * numel(n.output.shape))) continue;
    if (leaves.size > maxLeaves || k > MAX_INLINE_COST) continue;
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
      if (all.size <= maxLeaves || widest.id < 0) break;
      inline.delete(widest.id);
    }
  }
  return { inline, cost };
}
