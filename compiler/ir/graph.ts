// The tensor graph: values with static shapes, produced by nodes (one op, one
// output each). Values that no node produces are the graph's leaves, and their
// kind says who fills them: the optimizer (param), the data loader (input),
// the random generator (noise, produced by a `randn` node), or the step itself
// (buffer: BatchNorm running statistics, rewritten by `updates`).
import type { Init } from '../../runtime/format/plan.ts';
import { fmtShape, numel, type Shape } from './shape.ts';

export type ValueKind = 'param' | 'input' | 'noise' | 'buffer' | 'intermediate';

/** How a param or buffer is initialised: the runtime's format (it initialises them). */
export type { Init };

export type Attrs = Record<string, unknown>;

export interface Value {
  readonly id: number;
  readonly shape: Shape;
  readonly kind: ValueKind;
  /** Names are unique among leaves; intermediates may carry a debug name. */
  name?: string;
  /** The producing node (intermediates and noise). */
  readonly node?: Node;
  /** Params and buffers. */
  readonly init?: Init;
  /** Params: the network they belong to, e.g. 'G', 'D0' (optimizer groups). */
  readonly group?: string;
  /** Params of a frozen network (a pretrained encoder): never trained, so no gradient arena. */
  readonly frozen?: boolean;
}

export interface Node {
  readonly id: number;
  readonly op: string;
  readonly inputs: readonly Value[];
  readonly attrs: Attrs;
  readonly output: Value;
}

/** A state buffer rewritten at the end of a step: `target <- value`. */
export interface Update {
  readonly target: Value;
  readonly value: Value;
}

export class Graph {
  readonly values: Value[] = [];
  readonly nodes: Node[] = [];
  readonly updates: Update[] = [];
  /** Named results (losses, images, ...). */
  readonly outputs = new Map<string, Value>();
  private readonly leaves = new Map<string, Value>();

  newValue(shape: Shape, kind: ValueKind, extra: { name?: string; init?: Init; group?: string; frozen?: boolean; node?: Node } = {}): Value {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 1) throw new Error(`invalid shape ${fmtShape(shape)}${extra.name ? ` for '${extra.name}'` : ''}`);
    }
    const v: Value = { id: this.values.length, shape: [...shape], kind, ...extra };
    if (kind !== 'intermediate' && extra.name !== undefined) {
      if (this.leaves.has(extra.name)) throw new Error(`duplicate ${kind} name '${extra.name}'`);
      this.leaves.set(extra.name, v);
    }
    this.values.push(v);
    return v;
  }

  addNode(op: string, inputs: readonly Value[], attrs: Attrs, shape: Shape, kind: ValueKind = 'intermediate', name?: string): Value {
    const id = this.nodes.length;
    const node = { id, op, inputs: [...inputs], attrs, output: undefined as unknown as Value };
    const out = this.newValue(shape, kind, { node, name });
    (node as { output: Value }).output = out;
    this.nodes.push(node);
    return out;
  }

  /** A leaf (param/input/noise/buffer) by name. */
  leaf(name: string): Value | undefined {
    return this.leaves.get(name);
  }

  byKind(kind: ValueKind): Value[] {
    return this.values.filter((v) => v.kind === kind);
  }

  get params(): Value[] {
    return this.byKind('param');
  }
}

/** Nodes needed to compute `roots`, in a topological order (inputs first). */
export function topoSort(roots: readonly Value[]): Node[] {
  const order: Node[] = [];
  const seen = new Set<number>();
  // Iterative DFS: graphs of deep networks would overflow a recursive one.
  const stack: { node: Node; next: number }[] = [];
  const visit = (v: Value) => {
    const n = v.node;
    if (!n || seen.has(n.id)) return;
    seen.add(n.id);
    stack.push({ node: n, next: 0 });
    while (stack.length) {
      const top = stack[stack.length - 1];
      if (top.next < top.node.inputs.length) {
        const inp = top.node.inputs[top.next++].node;
        if (inp && !seen.has(inp.id)) {
          seen.add(inp.id);
          stack.push({ node: inp, next: 0 });
        }
      } else {
        order.push(top.node);
        stack.pop();
      }
    }
  };
  for (const r of roots) visit(r);
  return order;
}

export function bytesOf(v: Value): number {
  return numel(v.shape) * 4;
}
