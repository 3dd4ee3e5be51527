// Which part of the graph a program computes: the values it must produce
// (outputs, gradients, running-statistic updates) and every node they need,
// in topological order.
import { topoSort, type Graph, type Node, type Update, type Value } from '../ir/graph.ts';

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

/** Pure index arithmetic: free to recompute. */
export const FREE_OPS = new Set(['fill', 'reshape', 'expand', 'detach']);

export interface Computation {
  outputs: [string, Value][];
  /** Gradients that exist (autodiff's nulls dropped), by param name. */
  grads: [string, Value][];
  updates: Update[];
  /** Every value the program must produce: outputs, gradients, update values. */
  roots: Value[];
  /** Ids of the roots (they are always stored, never inlined). */
  required: Set<number>;
  /** The nodes computing the roots, in topological order. */
  nodes: Node[];
  /** Value id -> the nodes reading it (a node reading a value twice is listed twice). */
  consumers: Map<number, Node[]>;
}

/** Decides what the program computes: its roots, and the nodes they need. */
export function selectComputation(graph: Graph, spec: ProgramSpec): Computation {
  const outputs = Object.entries(spec.outputs ?? {});
  const grads = (spec.grads instanceof Map ? [...spec.grads] : Object.entries(spec.grads ?? {})).filter((e): e is [string, Value] => e[1] !== null);
  const base = [...outputs.map((e) => e[1]), ...grads.map((e) => e[1])];
  const needed = new Set(topoSort(base).map((n) => n.id));
  const updates =
    spec.updates === false
      ? []
      : graph.updates.filter((u) => u.value !== u.target && (spec.updates === 'all' || topoSort([u.value]).some((n) => needed.has(n.id) && !FREE_OPS.has(n.op))));
  const roots = [...base, ...updates.map((u) => u.value)];
  const nodes = topoSort(roots);
  const consumers = new Map<number, Node[]>();
  for (const n of nodes) {
    for (const v of n.inputs) {
      if (!consumers.has(v.id)) consumers.set(v.id, []);
      consumers.get(v.id)!.push(n);
    }
  }
  return { outputs, grads, updates, roots, required: new Set(roots.map((v) => v.id)), nodes, consumers };
}
