// Random numbers from a counter-based generator (Philox 4x32-10), so a value
// depends only on (seed, step, stream, index): no generator state lives on the
// GPU and every step draws fresh numbers. The step seed comes from the runtime
// (binding "rng"); the builder gives each draw its own stream.
import { randnKernel, randUniformKernel } from '../kernels/random.ts';
import type { PrimitiveOp } from './op.ts';

export const randnOp: PrimitiveOp<{ shape: number[]; stream: number }> = {
  name: 'randn',
  doc: 'standard normal noise N(0, 1)',
  kind: 'kernel',
  arity: 0,
  random: true,
  shape: (_ins, a) => [...a.shape],
  grad: () => [],
  lower: ({ out, attrs }) => [{ spec: randnKernel(out, attrs.stream), args: ['rng', 'out'] }],
  // Not comparable element-wise with torch.randn: test/ops checks moments instead.
  parity: [{ name: 'moments', inputs: [], attrs: { shape: [64, 129], stream: 0 }, torch: 'torch.randn(64, 129)', grad: [] }],
};

export const randUniformOp: PrimitiveOp<{ shape: number[]; low: number; high: number; stream: number }> = {
  name: 'rand_uniform',
  doc: 'uniform noise U(low, high), half-open',
  kind: 'kernel',
  arity: 0,
  random: true,
  shape: (_ins, a) => {
    if (!(a.low < a.high)) throw new Error(`rand_uniform: low ${a.low} must be below high ${a.high}`);
    return [...a.shape];
  },
  grad: () => [],
  lower: ({ out, attrs }) => [{ spec: randUniformKernel(out, attrs.stream, attrs.low, attrs.high), args: ['rng', 'out'] }],
  // Not comparable element-wise with torch.rand: test/ops/random.test.ts checks its statistics.
  parity: [{ name: 'statistics', inputs: [], attrs: { shape: [64, 129], low: 2, high: 5, stream: 0 }, torch: '2 + 3 * torch.rand(64, 129)', grad: [] }],
};

export const randomOps = [randnOp, randUniformOp];
