// The per-network graph the checker records while it evaluates a model: one
// node per op call with its inputs, attributes, output shape and the
// parameters it owns. The model summary is a view of it; the compiler lowers
// it to the tensor IR.
export type NodeKind = 'input' | 'noise' | 'op';

export interface ParamInfo {
  /** Full name, e.g. `g0/Up.0/conv.0/weight`. */
  name: string;
  shape: number[];
  /** How it is initialised (orthogonal for conv/linear weights, N(1, 0.02) for BN weight, zeros for biases). */
  init: 'orthogonal' | 'zeros' | 'ones' | 'bn_weight';
}

export interface BufferInfo {
  name: string;
  shape: number[];
  init: 'zeros' | 'ones';
}

export interface GraphNode {
  id: number;
  kind: NodeKind;
  op: string;
  inputs: number[];
  attrs: Record<string, number | boolean | string | number[]>;
  /** Per-sample output shape (batch implicit). */
  shape: number[];
  /** Layer path, e.g. `g1/Res.0/conv.1`. */
  path: string;
  params: ParamInfo[];
  buffers: BufferInfo[];
  /** Forward multiply-accumulates per sample (conv, linear, matmul only). */
  macs: number;
}

export class NetworkGraph {
  readonly nodes: GraphNode[] = [];
  /** Named outputs: stage images, heads, losses, feature maps. */
  readonly outputs = new Map<string, number>();

  constructor(readonly name: string) {}

  add(n: Omit<GraphNode, 'id'>): GraphNode {
    const node = { ...n, id: this.nodes.length };
    this.nodes.push(node);
    return node;
  }

  get parameters(): number {
    let s = 0;
    for (const n of this.nodes) for (const p of n.params) s += p.shape.reduce((a, b) => a * b, 1);
    return s;
  }

  get macs(): number {
    return this.nodes.reduce((a, n) => a + n.macs, 0);
  }
}

export function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
