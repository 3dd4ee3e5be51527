// The harness for language-op examples (compiler/lang/op.ts OpExample): each
// example becomes a small .gan model whose generator computes `y = <the op>`
// over fixed inputs, checked and lowered by the real compiler. Used by
// op-coverage.test.ts (checker and lowering agree) and
// test/ops/lang-parity.test.ts (the same programs on the GPU vs PyTorch).
import type { NetworkInfo } from '../../compiler/check/model.ts';
import type { GraphNode } from '../../compiler/check/graph.ts';
import { defaultOf, type ArgSpec, type CallOp, type ExampleArg, type LangOp, type OpExample } from '../../compiler/lang/op.ts';
import { allLangOps } from '../../compiler/lang/registry.ts';
import { GraphBuilder } from '../../compiler/ir/builder.ts';
import { lowerNetwork, type LoweredNetwork } from '../../compiler/lower.ts';
import type { Value } from '../../compiler/check/values.ts';
import type { Domain } from '../../compiler/ops/op.ts';
import { checkText, errors } from '../helpers/gan.ts';

/** Per-sample inputs the examples may name, with the value range the GPU test draws them from. */
export const INPUTS: Record<string, { shape: number[]; domain: Domain }> = {
  a: { shape: [6], domain: 'normal' },
  b: { shape: [6], domain: 'normal' },
  p: { shape: [6], domain: 'positive' },
  m: { shape: [4, 6, 6], domain: 'normal' },
  n: { shape: [4, 6, 6], domain: 'normal' },
  s: { shape: [1], domain: 'normal' },
  t: { shape: [5, 8], domain: 'normal' },
  ids: { shape: [5], domain: { ints: 7 } },
  pos: { shape: [1], domain: { ints: 5 } },
};
const NOISE_SHAPE = [4, 6, 6];

export interface Case {
  op: LangOp;
  ex: OpExample;
  label: string;
}

export function allCases(): Case[] {
  return allLangOps().flatMap((op) =>
    op.examples.map((ex, k) => ({ op, ex, label: `${op.syntax} ${op.name}${ex.name ? ` (${ex.name})` : op.examples.length > 1 ? ` #${k}` : ''}` })),
  );
}

const lit = (v: ExampleArg) => (typeof v === 'number' && v < 0 ? `(${v})` : String(v));

/** The .gan expression of an example: tensors positionally, then `rest`, then keywords. */
export function expression(op: LangOp, ex: OpExample): string {
  const args = ex.args ?? {};
  if (op.syntax === 'noise') return 'z';
  if (op.syntax === 'operator') return `${lit(args.x)} ${op.name} ${lit(args.y)}`;
  const positional = op.args.filter((s) => s.type === 'tensor' && s.name in args).map((s) => String(args[s.name]));
  const keywords = op.args.filter((s) => s.type !== 'tensor' && s.name in args).map((s) => `${s.name} = ${lit(args[s.name])}`);
  const unknown = Object.keys(args).filter((k) => !op.args.some((s) => s.name === k));
  if (unknown.length) throw new Error(`example of ${op.name} names arguments it does not have: ${unknown.join(', ')}`);
  return `${op.name}(${[...positional, ...(ex.rest ?? []).map(lit), ...keywords].join(', ')})`;
}

export function modelText(op: LangOp, ex: OpExample): string {
  const inputs = Object.entries(INPUTS).map(([k, v]) => `input ${k}: [${v.shape.join(', ')}]`);
  const noise = op.syntax === 'noise' ? [`noise z: [${NOISE_SHAPE.join(', ')}] ~ ${op.name}`] : [];
  return [
    'gan OpCase',
    ...inputs,
    'input img: [3, 8, 8]',
    ...noise,
    `generator { stage g @ 8 {`,
    `  y = ${expression(op, ex)}`,
    '  image = img',
    '} }',
    'discriminator d @ 8 { head uncond = image |> mean_hw |> linear(1) }',
    '',
  ].join('\n');
}

export interface CheckedCase {
  net: NetworkInfo;
  /** The nodes the example recorded (everything but the declared inputs). */
  nodes: GraphNode[];
  /** Its results: nodes no other example node reads, in order. */
  results: GraphNode[];
  /** Input names the example reads. */
  reads: string[];
}

export function checkCase(op: LangOp, ex: OpExample): CheckedCase {
  const text = modelText(op, ex);
  const r = checkText(text);
  const errs = errors(r);
  if (errs.length || !r.model) throw new Error(`${text}\ndoes not check: ${errs.map((e) => `${e.code} ${e.message}`).join('; ')}`);
  const net = r.model.networks.find((n) => n.kind === 'generator')!;
  const nodes = net.graph.nodes.filter((n) => n.kind !== 'input');
  const read = new Set(nodes.flatMap((n) => n.inputs));
  const results = nodes.filter((n) => !read.has(n.id));
  const reads = Object.keys(INPUTS).filter((k) => read.has(net.inputs[k]));
  return { net, nodes, results, reads };
}

/** Lowers the example's network, recording the IR ops applied directly (not inside composites). */
export function lowerCase(c: CheckedCase, batch: number): { lowered: LoweredNetwork; applied: string[] } {
  const b = new GraphBuilder();
  const applied: string[] = [];
  b.trace = (op, depth) => {
    if (depth === 0) applied.push(op);
  };
  const lowered = lowerNetwork(c.net, { batch, training: true }, b);
  b.trace = undefined;
  return { lowered, applied };
}

/** Non-tensor arguments a call example gives a value other than their default (all given ones, for required args). */
export function nonDefaultKeywords(op: CallOp, ex: OpExample): string[] {
  const args = ex.args ?? {};
  const asValue = (v: ExampleArg): Value => (typeof v === 'number' ? { t: 'num', v } : typeof v === 'boolean' ? { t: 'bool', v } : { t: 'str', v });
  // Bound in signature order, as the checker binds: a default may depend on earlier arguments (conv's pad on k and stride).
  const bound: Record<string, Value> = {};
  const out: string[] = [];
  for (const s of op.args) {
    if (s.type === 'tensor') continue;
    const d = defaultOf(s, bound);
    if (s.name in args) {
      bound[s.name] = asValue(args[s.name]);
      if (d === undefined || JSON.stringify(d) !== JSON.stringify(bound[s.name])) out.push(s.name);
    } else if (d !== undefined) bound[s.name] = d;
  }
  return out;
}

/** The keyword arguments of a call op: every argument that is not a tensor. */
export function keywords(op: CallOp): ArgSpec[] {
  return op.args.filter((s) => s.type !== 'tensor');
}
