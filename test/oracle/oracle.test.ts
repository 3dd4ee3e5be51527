import { afterAll, describe, expect, it } from 'vitest';
import { expectClose, relErr, relErrNorm } from './compare.ts';
import { randn } from './random.ts';
import { hostTensor } from './tensor.ts';
import { startTorch, torchAvailable, torchStatus, type TorchOracle } from './torch.ts';

describe('seeded inputs and comparisons (no torch needed)', () => {
  it('randn is reproducible and roughly standard normal', () => {
    const a = randn([4096], 7);
    const b = randn([4096], 7);
    expect(a.data).toEqual(b.data);
    expect(randn([4096], 8).data).not.toEqual(a.data);
    const mean = a.data.reduce((s, x) => s + x, 0) / a.data.length;
    const variance = a.data.reduce((s, x) => s + (x - mean) ** 2, 0) / a.data.length;
    expect(Math.abs(mean)).toBeLessThan(0.06);
    expect(Math.abs(variance - 1)).toBeLessThan(0.1);
  });

  it('relErr is max-abs based, relErrNorm is L2 based', () => {
    expect(relErr([1, 2, 4], [1, 2, 5])).toBeCloseTo(0.2);
    expect(relErrNorm([0, 0, 3], [0, 0, 4])).toBeCloseTo(0.25);
    expect(relErr([NaN], [1])).toBe(Infinity);
    expect(() => expectClose([1, 2], [1, 3], 1e-3, 'y')).toThrow(/y: relative error .*worst at flat index 1/);
  });
});

describe.skipIf(!torchAvailable())(`PyTorch oracle (${torchStatus()})`, () => {
  let torch: TorchOracle;
  afterAll(() => torch?.close());

  it('computes a matmul of known matrices', async () => {
    torch = await startTorch();
    const a = hostTensor([2, 3], [1, 2, 3, 4, 5, 6]);
    const b = hostTensor([3, 2], [7, 8, 9, 10, 11, 12]);
    const { y } = await torch.run('out = {"y": a @ b}', { a, b });
    expect(y.shape).toEqual([2, 2]);
    expect([...y.data]).toEqual([58, 64, 139, 154]);
  });

  it('returns gradients for inputs marked grad, and binds vars', async () => {
    torch = await startTorch();
    const x = hostTensor([3], [1, -2, 3]);
    const { g, s } = await torch.run('y = (k * x * x).sum()\ny.backward()\nout = {"g": x.grad, "s": y}', { x }, { grad: ['x'], vars: { k: 2 } });
    expect([...g.data]).toEqual([4, -8, 12]);
    expect(s.shape).toEqual([]);
    expect(s.data[0]).toBe(28);
  });

  it('reports Python errors with the traceback', async () => {
    torch = await startTorch();
    await expect(torch.run('out = {"y": undefined_name}')).rejects.toThrow(/NameError/);
    // The process survives a failing snippet.
    const { y } = await torch.run('out = {"y": torch.ones(2)}');
    expect([...y.data]).toEqual([1, 1]);
  });
});
