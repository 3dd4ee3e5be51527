// The registry is the single list of ops: every primitive must have a gradient
// rule, a lowering, float64 reference semantics and parity cases; every
// composite must expand through its own record and have parity cases.
import { describe, expect, it } from 'vitest';
import { allOps } from '../../compiler/ops/registry.ts';

describe('op registry', () => {
  const ops = allOps();

  it('lists the ops the reference models need', () => {
    const names = new Set(ops.map((o) => o.name));
    const needed = [
      'matmul', 'linear', 'conv2d', 'conv2d_bias', 'conv2d_bwd_data', 'conv2d_bwd_weight',
      'batchnorm', 'glu', 'relu', 'leaky_relu', 'tanh', 'sigmoid', 'softplus', 'exp', 'log', 'sqrt',
      'add', 'sub', 'mul', 'div', 'concat', 'slice', 'reshape', 'tile', 'upsample2x',
      'sum', 'mean', 'cosine', 'randn', 'detach',
      'bce', 'kl_normal', 'mse', 'l1',
    ];
    expect(needed.filter((n) => !names.has(n))).toEqual([]);
  });

  it.each(ops.map((o) => [o.name, o] as const))('%s has parity cases and a gradient rule and a lowering, or an expansion', (_name, op) => {
    expect(op.parity.length, `${op.name} has no parity case`).toBeGreaterThan(0);
    for (const c of op.parity) expect(c.torch.length).toBeGreaterThan(0);
    expect(op.doc.length).toBeGreaterThan(0);
    if (op.kind === 'composite') {
      expect(typeof op.expand, `${op.name} is a composite without an expansion`).toBe('function');
      return;
    }
    expect(typeof op.grad, `${op.name} has no gradient rule`).toBe('function');
    expect(typeof op.shape).toBe('function');
    if (op.kind === 'fusible') expect(typeof op.fn, `${op.name} is fusible but has no fn`).toBe('function');
    if (op.kind === 'kernel') expect(typeof op.lower, `${op.name} has no lowering`).toBe('function');
    if (op.kind === 'reduce') {
      // Rendered from the algebra, so a new reduction needs nothing in the kernel code.
      expect(op.reduce, `${op.name} is a reduction without identity and combine step`).toBeDefined();
      expect(op.reduce!.js(op.reduce!.identity, 2.5)).toBe(2.5);
    }
    // Reference semantics for the float64 finite-difference check (random numbers are not a function of inputs).
    if (!op.random) expect(typeof op.ref, `${op.name} has no reference semantics`).toBe('function');
  });
});
