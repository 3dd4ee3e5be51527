// Gradient rules are written in IR ops, so a gradient can be differentiated
// again (e.g. for gradient penalties). Checked against torch.autograd.grad with
// create_graph=True.
import { afterAll, describe, expect, it } from 'vitest';
import { grad } from '../../compiler/autodiff.ts';
import { batchNorm } from '../../compiler/ops/batchnorm.ts';
import { relErr } from '../oracle/compare.ts';
import { randn } from '../oracle/random.ts';
import { startTorch, torchAvailable } from '../oracle/torch.ts';
import { runIr } from './harness.ts';

describe.skipIf(!torchAvailable())('double backward', () => {
  afterAll(async () => (await startTorch()).close());

  it('d/dw |d/dx sum(softplus(x @ w) * tanh(x @ w))|^2 matches torch', async () => {
    const torch = await startTorch();
    const x = randn([3, 4], 1);
    const w = randn([4, 5], 2);
    const { out, rt } = await runIr(
      [x, w],
      (b, [xv, wv]) => {
        const h = b.matmul(xv, wv);
        const f = b.sum(b.mul(b.softplus(h), b.tanh(h)));
        const [gx] = grad(b, f, [xv]);
        const pen = b.sum(b.mul(gx!, gx!));
        const [gw] = grad(b, pen, [wv]);
        return gw!; // d pen / d w, [4, 5]
      },
      [],
    );
    rt.destroy();
    const ref = await torch.run(
      [
        'h = x0 @ x1',
        'f = (F.softplus(h) * torch.tanh(h)).sum()',
        '(gx,) = torch.autograd.grad(f, x0, create_graph=True)',
        'pen = (gx * gx).sum()',
        '(gw,) = torch.autograd.grad(pen, x1)',
        'out = {"y": gw}',
      ].join('\n'),
      { x0: x, x1: w },
      { grad: ['x0', 'x1'] },
    );
    expect(relErr(out.y, ref.y.data)).toBeLessThan(1e-4);
  });
  // BatchNorm's variance is written so that its first-order backward is cheap
  // (compiler/ops/batchnorm.ts); its second derivative must still be the
  // variance's: a gradient penalty through a BatchNorm layer.
  it('d/dw |d/dx sum(batchnorm(x) * g)|^2 (training mode, affine) matches torch', async () => {
    const torch = await startTorch();
    const x = randn([4, 3, 3, 3], 3);
    const w = randn([3], 4);
    const bias = randn([3], 5);
    const gy = randn([4, 3, 3, 3], 6);
    const { out, rt } = await runIr(
      [x, w, bias, gy],
      (b, [xv, wv, bv, gv]) => {
        const y = batchNorm(b, xv, { weight: wv, bias: bv, training: true });
        const f = b.sum(b.mul(b.tanh(y), gv));
        const [gx] = grad(b, f, [xv]);
        const pen = b.sum(b.mul(gx!, gx!));
        const [gw] = grad(b, pen, [wv]);
        return gw!;
      },
      [],
    );
    rt.destroy();
    const ref = await torch.run(
      [
        'y = F.batch_norm(x0, None, None, x1, x2, training=True)',
        'f = (torch.tanh(y) * x3).sum()',
        '(gx,) = torch.autograd.grad(f, x0, create_graph=True)',
        'pen = (gx * gx).sum()',
        '(gw,) = torch.autograd.grad(pen, x1)',
        'out = {"y": gw}',
      ].join('\n'),
      { x0: x, x1: w, x2: bias, x3: gy },
      { grad: ['x0', 'x1'] },
    );
    expect(relErr(out.y, ref.y.data)).toBeLessThan(1e-4);
  });
});
