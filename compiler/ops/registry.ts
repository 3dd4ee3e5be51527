// The op registry: every op the IR knows, enumerable. test/ops/registry.test.ts
// walks it and fails if an op lacks a gradient rule, a lowering or parity cases.
import type { OpDef, PrimitiveOp } from './op.ts';
import { binaryOps, expandOp, fillOp, unaryOps } from './elementwise.ts';
import { shapeOps } from './shape.ts';
import { reduceOps } from './reduce.ts';
import { linearOp, matmulOp } from './matmul.ts';
import { convOps } from './conv.ts';
import { randomOps } from './random.ts';
import { compositeOps } from './composite.ts';
import { batchNormOp, bnNormalizeOp } from './batchnorm.ts';
import { lossOps } from './losses.ts';
import { gatherOps } from './gather.ts';
import { transformerOps } from './transformer.ts';
import { resizeOps } from './resize.ts';

const all: OpDef[] = [
  ...unaryOps,
  ...binaryOps,
  fillOp,
  expandOp,
  ...shapeOps,
  ...reduceOps,
  matmulOp,
  linearOp,
  ...convOps,
  ...randomOps,
  ...compositeOps,
  batchNormOp,
  bnNormalizeOp,
  ...lossOps,
  ...gatherOps,
  ...transformerOps,
  ...resizeOps,
];

const byName = new Map<string, OpDef>();
for (const op of all) {
  if (byName.has(op.name)) throw new Error(`op '${op.name}' registered twice`);
  byName.set(op.name, op);
}

export function allOps(): readonly OpDef[] {
  return all;
}

/** Any op, primitive or composite. */
export function opDef(name: string): OpDef {
  const op = byName.get(name);
  if (!op) throw new Error(`unknown op '${name}'`);
  return op;
}

export function primitive(name: string): PrimitiveOp<any> {
  const op = opDef(name);
  if (op.kind === 'composite') throw new Error(`op '${name}' is a composite; it expands into primitives through GraphBuilder.apply`);
  return op;
}
