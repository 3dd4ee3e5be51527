// randn: standard normal numbers from a counter-based generator (Philox 4x32-10
// + Box-Muller), so a value depends only on (seed, step, stream, index): no
// generator state lives on the GPU and every step draws fresh numbers.
import { randnKernel } from '../kernels/random.ts';
import type { PrimitiveOp } from './op.ts';

export const randnOp: PrimitiveOp<{ shape: number[]; stream: number }> = {
  name: 'randn',
  doc: 'standard normal noise; the step seed comes from the runtime (binding "rng")',
  kind: 'kernel',
  arity: 0,
  random: true,
  shape: (_ins, a) => [...a.shape],
  grad: () => [],
  lower: ({ out, attrs }) => [{ spec: randnKernel(out, attrs.stream), args: ['rng', 'out'] }],
  // Not comparable element-wise with torch.randn: the suite checks moments instead.
  parity: [{ name: 'moments', inputs: [], attrs: { shape: [64, 129], stream: 0 }, torch: 'torch.randn(64, 129)', grad: [] }],
};
