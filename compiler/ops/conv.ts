// Placeholder until kernels/conv.ts lands.
import type { PrimitiveOp } from './op.ts';
export const convOps: PrimitiveOp<any>[] = [];
