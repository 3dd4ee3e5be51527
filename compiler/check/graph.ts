// The per-network graph the checker records while it evaluates a model: one
// node per op call with its inputs, attributes, output shape and the
// parameters it owns. The model summary is a view of it; the compiler lowers
// it to the tensor IR.
//
// The graph also keeps its counts exact: every tensor (an output or a
// parameter) must be indexable by a WebGPU kernel, and the parameter and MAC
// totals must stay exact integers (below 2^53). Past either limit, `add`
// throws a located diagnostic instead of recording a count that would print
// as if it were exact.
import type { Span } from '../../grammar/ast.ts';
import { Codes, DiagnosticError, error } from '../../grammar/diagnostics.ts';

/** Most elements in one tensor, per sample: WGSL indexes storage buffers with 32-bit integers. */
export const MAX_ELEMENTS = 2 ** 31 - 1;

export type NodeKind = 'input' | 'noise' | 'op';

export interface ParamInfo {
  /** Full name, e.g. `g0/Up.0/conv.0/weight`. */
  name: string;
  shape: number[];
  /** How it is initialised (orthogonal for conv/linear weights, N(1, 0.02) for BN weight, zeros for biases, N(0, 0.02) for embeddings). */
  init: 'orthogonal' | 'zeros' | 'ones' | 'bn_weight' | 'embedding';
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
  private paramTotal = 0;
  private macTotal = 0;

  constructor(readonly name: string) {}

  /** Adds a node; `span` is where in the source it comes from, for the size diagnostics. */
  add(n: Omit<GraphNode, 'id'>, span?: Span): GraphNode {
    checkTensorSize(n.shape, span, `the output of '${n.op}'`);
    let params = 0;
    for (const p of n.params) {
      checkTensorSize(p.shape, span, `parameter '${p.name}'`, false);
      params += numel(p.shape);
    }
    if (!Number.isSafeInteger(n.macs)) throw tooLargeToCount(`'${n.op}' does`, 'multiply-accumulates per sample', span);
    if (!Number.isSafeInteger(this.paramTotal + params)) throw tooLargeToCount(`network '${this.name}' has`, 'parameters', span);
    if (!Number.isSafeInteger(this.macTotal + n.macs)) throw tooLargeToCount(`network '${this.name}' does`, 'multiply-accumulates per sample', span);
    this.paramTotal += params;
    this.macTotal += n.macs;
    const node = { ...n, id: this.nodes.length };
    this.nodes.push(node);
    return node;
  }

  /** Trainable parameters (exact: `add` keeps the total below 2^53). */
  get parameters(): number {
    return this.paramTotal;
  }

  /** Forward multiply-accumulates per sample (exact, like `parameters`). */
  get macs(): number {
    return this.macTotal;
  }
}

export function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The exact element count of `shape` as digits (a float product past 2^53 would print rounded). */
function exactCount(shape: number[]): string {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) return String(numel(shape));
  return shape.reduce((a, d) => a * BigInt(d), 1n).toLocaleString('en-US');
}

/** Refuses a tensor a WebGPU kernel could not index: more than MAX_ELEMENTS elements (per sample, unless it is a parameter). */
export function checkTensorSize(shape: number[], span: Span | undefined, what: string, perSample = true): void {
  if (numel(shape) <= MAX_ELEMENTS) return;
  const per = perSample ? ' per sample' : '';
  throw new DiagnosticError(
    error(Codes.tooLarge, `${what} is too large: [${shape.join(', ')}] has ${exactCount(shape)} elements${per}`, span, {
      label: 'too large for a WebGPU kernel',
      notes: [`a tensor may have at most 2^31 - 1 = ${MAX_ELEMENTS.toLocaleString('en-US')} elements${per}`],
      help: 'check the widths and resolutions (a --set or a param far larger than intended?)',
    }),
  );
}

function tooLargeToCount(who: string, what: string, span: Span | undefined): DiagnosticError {
  return new DiagnosticError(
    error(Codes.tooLarge, `${who} more than 2^53 ${what}: too many to count exactly`, span, {
      label: 'the count passes 2^53 here',
      help: 'a model this large cannot be trained; check the widths (a --set or a param far larger than intended?)',
    }),
  );
}
