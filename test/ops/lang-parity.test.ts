// Every language-op example that names a PyTorch expression (every keyword of
// every op has one off its default: test/compiler/op-coverage.test.ts), run
// check -> lower -> GPU against PyTorch: forward values, the gradient of every
// input it reads and of every parameter it creates, and its state buffers
// after the step (BatchNorm running statistics). One program per example, in
// BatchNorm training mode at batch 4.
import { afterAll, describe, expect, it } from 'vitest';
import { grad } from '../../compiler/autodiff.ts';
import type { Value } from '../../compiler/ir/graph.ts';
import { compileProgram, layoutState } from '../../compiler/plan/index.ts';
import { Runtime } from '../../runtime/executor.ts';
import { allCases, checkCase, INPUTS, lowerCase } from '../compiler/op-cases.ts';
import { relErr } from '../oracle/compare.ts';
import { randn } from '../oracle/random.ts';
import type { HostTensor } from '../oracle/tensor.ts';
import { startTorch, torchAvailable } from '../oracle/torch.ts';
import { randomInput } from './harness.ts';

const BATCH = 4;
const FWD_TOL = 1e-5;
const GRAD_TOL = 1e-4;

const leafOf = (name: string) => name.slice(name.lastIndexOf('/') + 1);

describe.skipIf(!torchAvailable())('language ops vs PyTorch (check -> lower -> GPU)', () => {
  afterAll(async () => (await startTorch()).close());

  const cases = allCases().filter((c) => c.ex.torch);

  it.each(cases.map((c) => [c.label, c] as const))('%s', async (label, { op, ex }) => {
    const torch = await startTorch();
    const c = checkCase(op, ex);
    const { lowered } = lowerCase(c, BATCH);
    const b = lowered.builder;
    const seed = [...label].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) >>> 0, 5);

    // y_k = the example's results; loss = sum_k sum(y_k * gy_k) seeds every gradient.
    const ys = c.results.map((n) => lowered.values.get(n.id)!);
    const gys = ys.map((y, k) => b.input(`gy${k}`, y.shape));
    const loss = ys.map((y, k) => b.sum(b.mul(y, gys[k]))).reduce((s, t) => b.add(s, t));
    const inputs = c.reads.map((k) => lowered.inputs[k]);
    const params = lowered.params;
    const gs = grad(b, loss, [...inputs, ...params]);
    const outputs: Record<string, Value> = {};
    ys.forEach((y, k) => (outputs[`y${k}`] = y));
    [...inputs, ...params].forEach((v, i) => (outputs[`grad/${v.name}`] = gs[i] ?? b.expand(b.scalar(0), v.shape)));

    const layout = layoutState(b.graph);
    const plan = compileProgram(b.graph, layout, { name: 'lang_case', outputs });
    const rt = await Runtime.create(layout);
    rt.initState(seed);
    const prog = await rt.load(plan);

    const host: Record<string, HostTensor> = {};
    c.reads.forEach((k, i) => (host[k] = randomInput([BATCH, ...INPUTS[k].shape], INPUTS[k].domain, seed + i)));
    ys.forEach((y, k) => (host[`gy${k}`] = randn([...y.shape], seed + 100 + k)));
    // The device's initial parameters and buffers, bound in torch by leaf name.
    for (const p of params) host[leafOf(p.name!)] = { shape: [...p.shape], data: await rt.readParam(p.name!) };
    const states = Object.keys(layout.state);
    for (const s of states) host[leafOf(s)] = { shape: layout.state[s].shape, data: await rt.readState(s) };

    const feeds = Object.fromEntries(Object.entries(host).filter(([k]) => k in plan.feeds).map(([k, t]) => [k, t.data]));
    const out = await rt.run(prog, feeds);
    const stateAfter = Object.fromEntries(await Promise.all(states.map(async (s) => [s, await rt.readState(s)] as const)));
    rt.destroy();

    const withGrad = [...c.reads, ...params.map((p) => leafOf(p.name!))];
    const code = [
      ex.torch!,
      'ys = list(y) if isinstance(y, (tuple, list)) else [y]',
      `gys = [${ys.map((_, k) => `gy${k}`).join(', ')}]`,
      'pairs = [(t, g) for t, g in zip(ys, gys) if t.requires_grad]',
      'if pairs: torch.autograd.backward([t for t, _ in pairs], [g for _, g in pairs])',
      'out = {f"y{k}": t for k, t in enumerate(ys)}',
      ...withGrad.map((k) => `out["grad/${k}"] = ${k}.grad if ${k}.grad is not None else torch.zeros_like(${k})`),
      ...states.map((s) => `out["state/${leafOf(s)}"] = ${leafOf(s)}`),
    ].join('\n');
    const ref = await torch.run(code, host, { grad: withGrad });

    const errs: string[] = [];
    const compare = (name: string, got: Float32Array, want: HostTensor, tol: number) => {
      expect(got.length, `${name}: size`).toBe(want.data.length);
      const e = relErr(got, want.data);
      errs.push(`${name}=${e.toExponential(1)}`);
      expect(e, `${label} ${name}: rel err ${e.toExponential(2)} > ${tol}`).toBeLessThan(tol);
    };
    ys.forEach((_, k) => compare(`y${k}`, out[`y${k}`], ref[`y${k}`], FWD_TOL));
    c.reads.forEach((k, i) => compare(`grad/${k}`, out[`grad/${inputs[i].name}`], ref[`grad/${k}`], GRAD_TOL));
    for (const p of params) compare(`grad/${leafOf(p.name!)}`, out[`grad/${p.name}`], ref[`grad/${leafOf(p.name!)}`], GRAD_TOL);
    for (const s of states) compare(`state/${leafOf(s)}`, stateAfter[s], ref[`state/${leafOf(s)}`], FWD_TOL);
    if (process.env.PARITY_VERBOSE) console.log(label, errs.join(' '));
  });
});
