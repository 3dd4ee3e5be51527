// matmul/linear through the GEMM template, against torch on seeded inputs.
import { afterAll, describe, expect, it } from 'vitest';
import { matmulKernel, type MatmulOptions } from '../../compiler/kernels/gemm.ts';
import { expectClose } from '../oracle/compare.ts';
import { randn } from '../oracle/random.ts';
import { startTorch, torchAvailable, torchStatus, type TorchOracle } from '../oracle/torch.ts';
import { runKernel } from './harness.ts';

// Sizes chosen to hit every edge: odd M/N/K not divisible by the 8x8 tile,
// vec4 and scalar lane loads, batches, tiny shapes.
const CASES: (MatmulOptions & { label: string })[] = [
  { label: 'square 64, vec4 over columns', M: 64, N: 64, K: 64 },
  { label: 'odd sizes, scalar lanes', M: 13, N: 7, K: 11 },
  { label: 'odd M/K, N % 4 == 0', M: 19, N: 36, K: 5 },
  { label: 'A transposed', M: 10, N: 12, K: 9, transposeA: true },
  { label: 'B transposed, K % 4 == 0 (linear weight)', M: 5, N: 33, K: 24, transposeB: true, bias: true },
  { label: 'B transposed, odd K', M: 9, N: 10, K: 7, transposeB: true },
  { label: 'both transposed, batched', M: 6, N: 20, K: 12, transposeA: true, transposeB: true, batch: 3 },
  { label: 'batched, bias, broadcast B', M: 17, N: 40, K: 16, batch: 2, bias: true, broadcastB: true },
  { label: 'accumulate', M: 8, N: 8, K: 8, accumulate: true },
  { label: 'single row (linear with batch 1)', M: 1, N: 256, K: 128, transposeB: true, bias: true },
];

describe.skipIf(!torchAvailable())(`matmul GEMM vs torch (${torchStatus()})`, () => {
  let torch: TorchOracle;
  afterAll(() => torch?.close());

  it.each(CASES)('$label', async (c) => {
    torch = await startTorch();
    const batch = c.batch ?? 1;
    const seed = c.M * 1000 + c.N * 10 + c.K;
    const aShape = [batch, ...(c.transposeA ? [c.K, c.M] : [c.M, c.K])];
    const bShape = [c.broadcastB ? 1 : batch, ...(c.transposeB ? [c.N, c.K] : [c.K, c.N])];
    const a = randn(aShape, seed);
    const b = randn(bShape, seed + 1);
    const bias = randn([c.N], seed + 2);
    const c0 = randn([batch, c.M, c.N], seed + 3);
    const { y } = await torch.run(
      `A = a.transpose(1, 2) if ta else a
B = b.transpose(1, 2) if tb else b
y = A @ B
if use_bias: y = y + bias
if acc: y = y + c0
out = {"y": y}`,
      { a, b, bias, c0 },
      { vars: { ta: !!c.transposeA, tb: !!c.transposeB, use_bias: !!c.bias, acc: !!c.accumulate } },
    );
    const spec = matmulKernel(c);
    const data: Record<string, Float32Array | number> = { a: a.data, b: b.data, c: c.accumulate ? c0.data : batch * c.M * c.N };
    if (c.bias) data.bias = bias.data;
    const out = await runKernel(spec, data);
    expectClose(out.c, y, 1e-5, spec.name);
  });
});

describe('size-generic matmul', () => {
  it('products of one layout and tiling share one WGSL and differ only in params and grid', () => {
    // Both pick 8x8 tiles in 8-lane workgroups; N % 4 == 0 and K % 4 == 0 in both (same vec4 loads).
    const a = matmulKernel({ M: 16, N: 32, K: 64, transposeB: true, bias: true });
    const b = matmulKernel({ M: 40, N: 48, K: 8, transposeB: true, bias: true });
    expect(a.wgsl).toBe(b.wgsl);
    expect(a.name).toBe(b.name);
    expect(a.params).not.toEqual(b.params);
    expect(a.workgroups).not.toEqual(b.workgroups);
    // A different layout (scalar lanes: K odd) is a different kernel.
    expect(matmulKernel({ M: 16, N: 32, K: 63, transposeB: true, bias: true }).wgsl).not.toBe(a.wgsl);
  });
});
