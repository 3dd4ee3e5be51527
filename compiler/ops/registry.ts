// The op registry: every op the IR knows, enumerable. test/ops/registry.test.ts
// walks it and fails if an op lacks a gradient rule, a lowering or parity cases.
import type { CompositeOp, OpDef, PrimitiveOp } from './op.ts';
import { binaryOps, expandOp, fillOp, unaryOps } from './elementwise.ts';
import { concatOp, padOp, reshapeOp, sliceOp, sumPool2xOp, upsample2xOp } from './shape.ts';
import { sumOp } from './reduce.ts';
import { matmulOp } from './matmul.ts';
import { convOps } from './conv.ts';
import { randnOp } from './random.ts';
import { compositeOps } from './composite.ts';
import { batchNormOps } from './batchnorm.ts';
import { lossOps } from './losses.ts';

const all: OpDef[] = [
  ...unaryOps,
  ...binaryOps,
  fillOp,
  expandOp,
  reshapeOp,
  concatOp,
  sliceOp,
  padOp,
  upsample2xOp,
  sumPool2xOp,
  sumOp,
  matmulOp,
  ...convOps,
  randnOp,
  ...compositeOps,
  ...batchNormOps,
  ...lossOps,
];

const byName = new Map<string, OpDef>();
for (const op of all) {
  if (byName.has(op.name)) throw new Error(`op '${op.name}' registered twice`);
  byName.set(op.name, op);
}

export function allOps(): readonly OpDef[] {
  return all;
}

export function primitive(name: string): PrimitiveOp<any> {
  const op = byName.get(name);
  if (!op) throw new Error(`unknown op '${name}'`);
  if (op.kind === 'composite') throw new Error(`op '${name}' is a composite; build it through GraphBuilder`);
  return op;
}

export function composite(name: string): CompositeOp {
  const op = byName.get(name);
  if (!op || op.kind !== 'composite') throw new Error(`unknown composite op '${name}'`);
  return op;
}
