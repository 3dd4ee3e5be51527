// The language-op registry: every op of the .gan language, enumerable. The
// checker (compiler/check/evaluate.ts) finds calls, operators and noise
// distributions here; lowering (compiler/lower.ts) finds the lowering of each
// checker node here by its node op. test/compiler/op-coverage.test.ts walks
// every record through both.
import type { CallOp, LangOp, NoiseOp, OperatorOp } from './op.ts';
import { activationOps } from './ops/activations.ts';
import { arithmeticOps } from './ops/arithmetic.ts';
import { lossOps } from './ops/losses.ts';
import { nnOps } from './ops/nn.ts';
import { noiseOps } from './ops/noise.ts';
import { reductionOps } from './ops/reductions.ts';
import { shapeOps } from './ops/shape.ts';
import { transformerOps } from './ops/transformer.ts';

const all: LangOp[] = [...nnOps, ...activationOps, ...arithmeticOps, ...shapeOps, ...reductionOps, ...lossOps, ...noiseOps, ...transformerOps];

const calls = new Map<string, CallOp>();
const operators = new Map<string, OperatorOp>();
const noises = new Map<string, NoiseOp>();
const byNode = new Map<string, LangOp>();
for (const op of all) {
  const table: Map<string, LangOp> = op.syntax === 'call' ? calls : op.syntax === 'operator' ? operators : noises;
  if (table.has(op.name)) throw new Error(`language op '${op.name}' (${op.syntax}) registered twice`);
  table.set(op.name, op);
  // One lowering per node op: records sharing a node (randn_like and `~ normal`) share it.
  const prev = byNode.get(op.node);
  if (prev && prev.lower !== op.lower) throw new Error(`checker node '${op.node}' has two different lowerings ('${prev.name}', '${op.name}')`);
  if (!prev) byNode.set(op.node, op);
}

export function allLangOps(): readonly LangOp[] {
  return all;
}

export function callOp(name: string): CallOp | undefined {
  return calls.get(name);
}

export function callOpNames(): string[] {
  return [...calls.keys()];
}

export function operatorOp(symbol: string): OperatorOp | undefined {
  return operators.get(symbol);
}

export function noiseOp(dist: string): NoiseOp | undefined {
  return noises.get(dist);
}

export function noiseNames(): string[] {
  return [...noises.keys()];
}

/** The record whose lowering handles checker nodes of this op. */
export function lowering(node: string): LangOp | undefined {
  return byNode.get(node);
}
