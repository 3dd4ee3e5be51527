// Fused Adam / SGD over a param group vs torch.optim on a small linear layer:
// six steps on six different batches (so the gradients vary from step to step),
// with the optimizer built from its `train` setting as the checker writes it.
// Compared: the params' total update (not the params: a wrong step hides in
// the initial values' scale), every moment buffer torch keeps, and the losses.
import { afterAll, describe, expect, it } from 'vitest';
import { paramGrads } from '../../compiler/autodiff.ts';
import { GraphBuilder } from '../../compiler/ir/builder.ts';
import { mse } from '../../compiler/ops/losses.ts';
import { linear } from '../../compiler/ops/matmul.ts';
import { compileProgram, layoutState } from '../../compiler/plan/index.ts';
import { Runtime } from '../../runtime/executor.ts';
import { createOptimizer, type OptimizerSettings } from '../../runtime/optim.ts';
import { relErr } from '../oracle/compare.ts';
import { randn } from '../oracle/random.ts';
import type { HostTensor } from '../oracle/tensor.ts';
import { startTorch, torchAvailable } from '../oracle/torch.ts';

function model() {
  const b = new GraphBuilder();
  const x = b.input('x', [4, 6]);
  const t = b.input('t', [4, 3]);
  const w = b.param('fc/weight', [3, 6], { kind: 'normal', mean: 0, std: 0.5 }, 'G');
  const bias = b.param('fc/bias', [3], { kind: 'normal', mean: 0, std: 0.5 }, 'G');
  b.param('other/weight', [5], { kind: 'ones' }, 'D');
  const loss = mse(b, linear(b, x, w, bias), t);
  const grads = paramGrads(b, loss, ['G']);
  const layout = layoutState(b.graph);
  const plan = compileProgram(b.graph, layout, { name: 'g_step', outputs: { loss }, grads, groups: ['G'] });
  return { layout, plan };
}

/** The same optimizer in torch, from the same setting. */
function torchOptimizer(s: OptimizerSettings): string {
  const py = (v: unknown) => (typeof v === 'boolean' ? (v ? 'True' : 'False') : Array.isArray(v) ? `(${v.join(', ')})` : String(v));
  const args = Object.entries(s)
    .filter(([k]) => k !== 'kind')
    .map(([k, v]) => `${k}=${py(v)}`)
    .join(', ');
  return `torch.optim.${s.kind === 'adam' ? 'Adam' : 'SGD'}(lin.parameters(), ${args})`;
}

const TORCH = `
lin = nn.Linear(6, 3)
with torch.no_grad():
    lin.weight.copy_(w0)
    lin.bias.copy_(b0)
opt = OPT
losses = []
for s in range(xs.shape[0]):
    opt.zero_grad()
    loss = F.mse_loss(lin(xs[s]), ts[s])
    loss.backward()
    opt.step()
    losses.append(loss.detach())
out = {"w": lin.weight, "b": lin.bias, "losses": torch.stack(losses)}
for name, p in (("fc/weight", lin.weight), ("fc/bias", lin.bias)):
    for k, v in opt.state[p].items():
        if torch.is_tensor(v) and v.dim() > 0:
            out[k + ":" + name] = v
`;

const STEPS = 6;
/**
 * Seen: updates within 2e-6, moments within 1.2e-7 of torch. Computing 1 - beta2
 * in float32 (off by 1.3e-5 relative for 0.999) already fails the moments.
 */
const UPDATE_TOL = 2e-5;
const MOMENT_TOL = 1e-6;

const CASES: OptimizerSettings[] = [
  { kind: 'adam', lr: 0.01, betas: [0.5, 0.999], eps: 1e-8 },
  { kind: 'adam', lr: 0.01, betas: [0.9, 0.999], eps: 1e-8 },
  { kind: 'adam', lr: 0.01, betas: [0.0, 0.99], eps: 1e-8 },
  { kind: 'adam', lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.5 },
  { kind: 'adam', lr: 0.01, betas: [0.9, 0.999], eps: 0.05 },
  { kind: 'sgd', lr: 0.1 },
  { kind: 'sgd', lr: 0.1, weight_decay: 0.5 },
  { kind: 'sgd', lr: 0.05, momentum: 0.9 },
  { kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true },
  { kind: 'sgd', lr: 0.05, momentum: 0.5, nesterov: true, weight_decay: 0.5 },
];

function sub(a: Float32Array, b: Float32Array): Float32Array {
  return a.map((x, i) => x - b[i]);
}

describe.skipIf(!torchAvailable())('optimizers vs torch.optim', () => {
  afterAll(async () => (await startTorch()).close());

  for (const setting of CASES) {
    it(`${JSON.stringify(setting)}: ${STEPS} steps on varying batches match`, async () => {
      const torch = await startTorch();
      const { layout, plan } = model();
      const rt = await Runtime.create(layout);
      rt.initState(3);
      const opt = createOptimizer(rt, 'G', setting);
      const prog = await rt.load(plan, [opt]);
      const batches = Array.from({ length: STEPS }, (_, s) => ({ x: randn([4, 6], 10 + s), t: randn([4, 3], 20 + s, 0.3) }));
      const stack = (k: 'x' | 't'): HostTensor => ({ shape: [STEPS, ...batches[0][k].shape], data: Float32Array.from(batches.flatMap((b) => [...b[k].data])) });
      const w0 = await rt.readParam('fc/weight');
      const b0 = await rt.readParam('fc/bias');
      const losses: number[] = [];
      for (const { x, t } of batches) losses.push((await rt.run(prog, { x: x.data, t: t.data }, { optimizers: [opt] })).loss[0]);
      const ref = await torch.run(TORCH.replace('OPT', torchOptimizer(setting)), { xs: stack('x'), ts: stack('t'), w0: { shape: [3, 6], data: w0 }, b0: { shape: [3], data: b0 } });

      expect(relErr(losses, ref.losses.data)).toBeLessThan(1e-5);
      expect(relErr(sub(await rt.readParam('fc/weight'), w0), sub(ref.w.data, w0))).toBeLessThan(UPDATE_TOL);
      expect(relErr(sub(await rt.readParam('fc/bias'), b0), sub(ref.b.data, b0))).toBeLessThan(UPDATE_TOL);
      const state = await opt.exportState();
      const refState = Object.keys(ref).filter((k) => k.includes(':'));
      expect(Object.keys(state.tensors).sort()).toEqual(refState.sort());
      for (const name of refState) expect(relErr(state.tensors[name] as Float32Array, ref[name].data), name).toBeLessThan(MOMENT_TOL);
      expect(state.scalars.steps).toBe(STEPS);
      // The D group is untouched by G's optimizer.
      expect([...(await rt.readParam('other/weight'))]).toEqual([1, 1, 1, 1, 1]);
      rt.destroy();
    });
  }
});
