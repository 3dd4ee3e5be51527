// Fused Adam / SGD over a param group vs torch.optim on a small linear layer.
import { afterAll, describe, expect, it } from 'vitest';
import { paramGrads } from '../../compiler/autodiff.ts';
import { GraphBuilder } from '../../compiler/ir/builder.ts';
import { compileProgram, layoutState } from '../../compiler/plan.ts';
import { Runtime } from '../../runtime/executor.ts';
import { Adam, SGD } from '../../runtime/optim.ts';
import { relErr } from '../oracle/compare.ts';
import { randn } from '../oracle/random.ts';
import { startTorch, torchAvailable } from '../oracle/torch.ts';

function model() {
  const b = new GraphBuilder();
  const x = b.input('x', [4, 6]);
  const t = b.input('t', [4, 3]);
  const w = b.param('fc/weight', [3, 6], { kind: 'normal', mean: 0, std: 0.5 }, 'G');
  const bias = b.param('fc/bias', [3], { kind: 'zeros' }, 'G');
  const other = b.param('other/weight', [5], { kind: 'ones' }, 'D');
  const loss = b.mse(b.linear(x, w, bias), t);
  const grads = paramGrads(b, loss, ['G']);
  const layout = layoutState(b.graph);
  const plan = compileProgram(b.graph, layout, { name: 'g_step', outputs: { loss }, grads, groups: ['G'] });
  return { layout, plan, other };
}

const TORCH = `
lin = nn.Linear(6, 3)
with torch.no_grad():
    lin.weight.copy_(w0)
    lin.bias.copy_(b0)
opt = (OPT)(lin.parameters())
for _ in range(STEPS):
    opt.zero_grad()
    loss = F.mse_loss(lin(x), t)
    loss.backward()
    opt.step()
out = {"w": lin.weight, "b": lin.bias, "loss": loss}
`;

describe.skipIf(!torchAvailable())('optimizers vs torch.optim', () => {
  afterAll(async () => (await startTorch()).close());

  for (const kind of ['adam', 'sgd'] as const) {
    it(`${kind}: three steps on a linear layer match`, async () => {
      const torch = await startTorch();
      const { layout, plan } = model();
      const rt = await Runtime.create(layout);
      rt.initState(3);
      const opt = kind === 'adam' ? new Adam(rt, 'G', { lr: 0.01, betas: [0.5, 0.999], eps: 1e-8 }) : new SGD(rt, 'G', { lr: 0.1 });
      const prog = await rt.load(plan, [opt]);
      const x = randn([4, 6], 1);
      const t = randn([4, 3], 2);
      const w0 = { shape: [3, 6], data: await rt.readParam('fc/weight') };
      const b0 = { shape: [3], data: await rt.readParam('fc/bias') };
      const steps = 3;
      let loss = 0;
      for (let s = 0; s < steps; s++) loss = (await rt.run(prog, { x: x.data, t: t.data }, { optimizers: [opt] })).loss[0];
      const code = TORCH.replace('OPT', kind === 'adam' ? 'lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.5, 0.999), eps=1e-8)' : 'lambda p: torch.optim.SGD(p, lr=0.1)').replace('STEPS', String(steps));
      const ref = await torch.run(code, { x, t, w0, b0 });
      expect(relErr(await rt.readParam('fc/weight'), ref.w.data)).toBeLessThan(1e-5);
      expect(relErr(await rt.readParam('fc/bias'), ref.b.data)).toBeLessThan(1e-5);
      expect(relErr([loss], ref.loss.data)).toBeLessThan(1e-5);
      // The D group is untouched by G's optimizer.
      expect([...(await rt.readParam('other/weight'))]).toEqual([1, 1, 1, 1, 1]);
      rt.destroy();
    });
  }
});
