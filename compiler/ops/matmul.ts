// matmul: op(A) @ op(B) with optional transposes, 2-D or batched 3-D (a stack
// of independent products, as attention's heads need), lowered to the shared
// GEMM template (kernels/gemm.ts). Transposes make the gradient rule closed:
//   C = A B      dA = dC B^T     dB = A^T dC   (with the flags folded in),
// per batch entry alike.
// linear (nn.Linear's x @ w^T + bias) is the composite built on it.
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/graph.ts';
import { fmtShape } from '../ir/shape.ts';
import { matmulKernel } from '../kernels/gemm.ts';
import { shapeError, type CompositeOp, type PrimitiveOp } from './op.ts';

export interface MatmulAttrs {
  transA: boolean;
  transB: boolean;
}

export const matmulOp: PrimitiveOp<MatmulAttrs> = {
  name: 'matmul',
  doc: 'op(a) @ op(b), op = optional transpose of the last two axes; 2-D, or 3-D with the same leading batch',
  kind: 'kernel',
  arity: 2,
  shape: (ins, { transA, transB }) => {
    const [a, b] = ins;
    const rank = a.length;
    if ((rank !== 2 && rank !== 3) || b.length !== rank) throw shapeError('matmul', 'expects two 2-D operands, or two 3-D operands (a batch of products)', ins);
    if (rank === 3 && a[0] !== b[0]) throw shapeError('matmul', `batch sizes differ (${a[0]} vs ${b[0]})`, ins);
    const [a0, a1] = a.slice(-2);
    const [b0, b1] = b.slice(-2);
    const [m, ka] = transA ? [a1, a0] : [a0, a1];
    const [kb, n] = transB ? [b1, b0] : [b0, b1];
    if (ka !== kb) throw shapeError('matmul', `inner dimensions differ (${ka} vs ${kb})`, ins);
    return rank === 3 ? [a[0], m, n] : [m, n];
  },
  lower: ({ ins, out, attrs }) => {
    const { batch, M, N, K } = dims(ins, out, attrs);
    const spec = matmulKernel({ M, N, K, batch, transposeA: attrs.transA, transposeB: attrs.transB });
    return [{ spec, args: [0, 1, 'out'] }];
  },
  ref: ([a, bm], { ins, out, attrs }) => {
    const { batch, M, N, K } = dims(ins, out, attrs);
    const r = new Float64Array(batch * M * N);
    for (let g = 0; g < batch; g++) {
      const [ao, bo, co] = [g * M * K, g * K * N, g * M * N];
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let acc = 0;
          for (let k = 0; k < K; k++) acc += (attrs.transA ? a[ao + k * M + i] : a[ao + i * K + k]) * (attrs.transB ? bm[bo + j * K + k] : bm[bo + k * N + j]);
          r[co + i * N + j] = acc;
        }
      }
    }
    return r;
  },
  grad: ({ b, gy, x, attrs, needs }) => {
    const [A, B] = x;
    const { transA: ta, transB: tb } = attrs;
    // C = op(A) op(B).  d op(A) = dC op(B)^T ;  d op(B) = op(A)^T dC.
    const dA = !needs[0] ? null : ta ? b.matmul(B, gy, { transA: tb, transB: true }) : b.matmul(gy, B, { transB: !tb });
    const dB = !needs[1] ? null : tb ? b.matmul(gy, A, { transA: true, transB: ta }) : b.matmul(A, gy, { transA: !ta });
    return [dA, dB];
  },
  parity: [
    { name: 'nn', inputs: [[5, 7], [7, 6]], attrs: { transA: false, transB: false }, torch: 'x0 @ x1' },
    { name: 'nt', inputs: [[5, 8], [6, 8]], attrs: { transA: false, transB: true }, torch: 'x0 @ x1.t()' },
    { name: 'tn', inputs: [[7, 5], [7, 6]], attrs: { transA: true, transB: false }, torch: 'x0.t() @ x1' },
    { name: 'tt', inputs: [[7, 5], [6, 7]], attrs: { transA: true, transB: true }, torch: 'x0.t() @ x1.t()' },
    // Batched, as attention uses it: scores q k^T, then weights @ v.
    { name: 'batched-nt', inputs: [[3, 5, 4], [3, 6, 4]], attrs: { transA: false, transB: true }, torch: 'x0 @ x1.transpose(1, 2)' },
    { name: 'batched-nn', inputs: [[2, 5, 6], [2, 6, 7]], attrs: { transA: false, transB: false }, torch: 'x0 @ x1' },
    { name: 'batched-tn', inputs: [[2, 6, 5], [2, 6, 3]], attrs: { transA: true, transB: false }, torch: 'x0.transpose(1, 2) @ x1' },
  ],
};

/** Batch count and the product's M, N, K (batch 1 for 2-D operands). */
function dims(ins: readonly (readonly number[])[], out: readonly number[], { transA }: MatmulAttrs) {
  const batched = out.length === 3;
  const a = ins[0].slice(-2);
  return { batch: batched ? out[0] : 1, M: out[out.length - 2], N: out[out.length - 1], K: transA ? a[0] : a[1] };
}

export const linearOp: CompositeOp = {
  name: 'linear',
  kind: 'composite',
  doc: 'x @ w^T + bias, w in [out, in] (nn.Linear); inputs x, w and optionally bias',
  arity: -1,
  expand: (b, ins) => {
    const [x, w, bias] = ins;
    if (ins.length < 2 || ins.length > 3) throw new Error(`linear: expects x, w and an optional bias, got ${ins.length} inputs`);
    if (x.shape.length !== 2 || w.shape.length !== 2 || x.shape[1] !== w.shape[1]) {
      throw new Error(`linear: input ${fmtShape(x.shape)} does not match weight ${fmtShape(w.shape)} ([out, in])`);
    }
    const y = b.matmul(x, w, { transB: true });
    return bias ? b.add(y, bias) : y;
  },
  parity: [
    { name: 'bias', inputs: [[4, 6], [5, 6], [5]], torch: 'F.linear(x0, x1, x2)' },
    { name: 'nobias', inputs: [[3, 7], [2, 7]], torch: 'F.linear(x0, x1)' },
  ],
};

/** x [N, in] @ w[out, in]^T + bias[out] (PyTorch nn.Linear layout). */
export function linear(b: GraphBuilder, x: Value, w: Value, bias?: Value): Value {
  return b.apply('linear', bias ? [x, w, bias] : [x, w]);
}
