// StackGAN-v2 building blocks at small widths vs the same blocks in PyTorch
// with identical weights: outputs, every param gradient, the input gradient
// and BatchNorm running statistics after one training-mode forward.
import { afterAll, describe, expect, it } from 'vitest';
import { grad, paramGrads } from '../../compiler/autodiff.ts';
import { GraphBuilder } from '../../compiler/ir/builder.ts';
import type { Value } from '../../compiler/ir/graph.ts';
import { batchNorm } from '../../compiler/ops/batchnorm.ts';
import { glu } from '../../compiler/ops/composite.ts';
import { conv2d } from '../../compiler/ops/conv.ts';
import { bce, klNormal } from '../../compiler/ops/losses.ts';
import { linear } from '../../compiler/ops/matmul.ts';
import { tile } from '../../compiler/ops/shape.ts';
import { compileProgram, layoutState } from '../../compiler/plan/index.ts';
import { Runtime } from '../../runtime/executor.ts';
import { relErr } from '../oracle/compare.ts';
import { randn } from '../oracle/random.ts';
import type { HostTensor } from '../oracle/tensor.ts';
import { startTorch, torchAvailable } from '../oracle/torch.ts';
import { PLAN_TARGETS, planTarget } from '../helpers/plan-targets.ts';

type Vals = Record<string, Value>;

interface Block {
  name: string;
  params: Record<string, number[]>;
  inputs: Record<string, number[]>;
  /** BatchNorm layers: prefix -> channels (weight/bias params and running stats are created). */
  bns?: Record<string, number>;
  build(b: GraphBuilder, p: Vals, x: Vals, bn: (prefix: string, v: Value) => Value): { y: Value; extra?: Vals };
  /** Python: params and inputs bound by name ('/' and '.' become '_'), bn(prefix, x) available; assigns y (and extras). */
  torch: string;
  extra?: string[];
  /** Inputs whose gradient is compared. */
  gradInputs?: string[];
}

const py = (n: string) => n.replace(/[/.]/g, '_');

const blocks: Block[] = [
  {
    name: 'upBlock: upsample x2, conv3x3, BN, GLU',
    params: { 'up/conv/weight': [8, 8, 3, 3] },
    inputs: { x: [2, 8, 4, 4] },
    bns: { 'up/bn': 8 },
    build: (b, p, x, bn) => ({ y: glu(b, bn('up/bn', b.conv2d(b.upsample2x(x.x), p['up/conv/weight'], { pad: 1 }))) }),
    torch: 'y = F.glu(bn("up/bn", F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), up_conv_weight, padding=1)), 1)',
    gradInputs: ['x'],
  },
  {
    name: 'ResBlock: x + BN(conv(GLU(BN(conv(x)))))',
    params: { 'res/c1/weight': [8, 4, 3, 3], 'res/c2/weight': [4, 4, 3, 3] },
    inputs: { x: [2, 4, 8, 8] },
    bns: { 'res/bn1': 8, 'res/bn2': 4 },
    build: (b, p, x, bn) => {
      const h = glu(b, bn('res/bn1', b.conv2d(x.x, p['res/c1/weight'], { pad: 1 })));
      return { y: b.add(x.x, bn('res/bn2', b.conv2d(h, p['res/c2/weight'], { pad: 1 }))) };
    },
    torch: [
      'h = F.glu(bn("res/bn1", F.conv2d(x, res_c1_weight, padding=1)), 1)',
      'y = x + bn("res/bn2", F.conv2d(h, res_c2_weight, padding=1))',
    ].join('\n'),
    gradInputs: ['x'],
  },
  {
    name: 'D trunk: conv k4 s2 p1 + LeakyReLU, then conv + BN + LeakyReLU',
    params: { 'd/c0/weight': [4, 3, 4, 4], 'd/c1/weight': [8, 4, 4, 4], 'd/c2/weight': [16, 8, 4, 4] },
    inputs: { image: [2, 3, 16, 16] },
    bns: { 'd/bn1': 8, 'd/bn2': 16 },
    build: (b, p, x, bn) => {
      let h = b.leakyRelu(b.conv2d(x.image, p['d/c0/weight'], { stride: 2, pad: 1 }), 0.2);
      h = b.leakyRelu(bn('d/bn1', b.conv2d(h, p['d/c1/weight'], { stride: 2, pad: 1 })), 0.2);
      h = b.leakyRelu(bn('d/bn2', b.conv2d(h, p['d/c2/weight'], { stride: 2, pad: 1 })), 0.2);
      return { y: h };
    },
    torch: [
      'h = F.leaky_relu(F.conv2d(image, d_c0_weight, stride=2, padding=1), 0.2)',
      'h = F.leaky_relu(bn("d/bn1", F.conv2d(h, d_c1_weight, stride=2, padding=1)), 0.2)',
      'y = F.leaky_relu(bn("d/bn2", F.conv2d(h, d_c2_weight, stride=2, padding=1)), 0.2)',
    ].join('\n'),
    gradInputs: ['image'],
  },
  {
    name: 'CA: linear, GLU, split, reparameterise with fixed noise, KL',
    params: { 'ca/fc/weight': [16, 12], 'ca/fc/bias': [16] },
    inputs: { text: [3, 12], eps: [3, 4] },
    build: (b, p, x) => {
      const [mu, logvar] = b.split(glu(b, linear(b, x.text, p['ca/fc/weight'], p['ca/fc/bias'])), 1, 2);
      const cHat = b.add(mu, b.mul(b.exp(b.mul(logvar, 0.5)), x.eps));
      return { y: cHat, extra: { kl: klNormal(b, mu, logvar) } };
    },
    torch: [
      'mu, logvar = F.glu(F.linear(text, ca_fc_weight, ca_fc_bias), 1).chunk(2, 1)',
      'y = mu + torch.exp(0.5 * logvar) * eps',
      'kl = -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())',
    ].join('\n'),
    extra: ['kl'],
    gradInputs: ['text'],
  },
  {
    name: 'D cond head: cat(tile(c), f), conv3x3, BN, LeakyReLU, conv k4 s4 + bias, BCE',
    params: { 'head/c/weight': [8, 12, 3, 3], 'head/logit/weight': [1, 8, 4, 4], 'head/logit/bias': [1] },
    inputs: { f: [2, 8, 4, 4], c: [2, 4] },
    bns: { 'head/bn': 8 },
    build: (b, p, x, bn) => {
      const h = b.concat([tile(b, x.c, 4, 4), x.f], 1);
      const a = b.leakyRelu(bn('head/bn', b.conv2d(h, p['head/c/weight'], { pad: 1 })), 0.2);
      const logit = conv2d(b, a, p['head/logit/weight'], { stride: 4, bias: p['head/logit/bias'] });
      return { y: logit, extra: { bce: bce(b, logit, 0.9) } };
    },
    torch: [
      'h = torch.cat([c[:, :, None, None].repeat(1, 1, 4, 4), f], 1)',
      'a = F.leaky_relu(bn("head/bn", F.conv2d(h, head_c_weight, padding=1)), 0.2)',
      'y = F.conv2d(a, head_logit_weight, head_logit_bias, stride=4)',
      'bce = F.binary_cross_entropy_with_logits(y, torch.full_like(y, 0.9))',
    ].join('\n'),
    extra: ['bce'],
    gradInputs: ['f', 'c'],
  },
];

const PRELUDE = `
running = {}
def bn(prefix, x):
    rm = running[prefix + "/rm"]
    rv = running[prefix + "/rv"]
    return F.batch_norm(x, rm, rv, globals()[prefix.replace("/", "_") + "_weight"], globals()[prefix.replace("/", "_") + "_bias"], training=True, momentum=0.1, eps=1e-5)
`;

describe.skipIf(!torchAvailable())('block parity with PyTorch', () => {
  afterAll(async () => (await startTorch()).close());

  it.each(blocks.flatMap((bl) => PLAN_TARGETS.map((t) => [bl.name, t, bl] as const)))('%s (%s plan)', async (_n, target, bl) => {
    const torch = await startTorch();
    const b = new GraphBuilder();
    const P: Vals = {};
    const X: Vals = {};
    const host: Record<string, HostTensor> = {};
    let seed = 11;
    for (const [n, s] of Object.entries(bl.params)) {
      P[n] = b.param(n, s, { kind: 'normal', mean: 0, std: 0.3 }, 'net');
      host[n] = randn(s, seed++, 0.3);
    }
    const stats: string[] = [];
    for (const [prefix, c] of Object.entries(bl.bns ?? {})) {
      for (const k of ['weight', 'bias']) {
        const n = `${prefix}/${k}`;
        P[n] = b.param(n, [c], { kind: 'zeros' }, 'net');
        host[n] = randn([c], seed++, 0.2);
        if (k === 'weight') host[n].data.forEach((v, i, a) => (a[i] = 1 + v));
      }
      b.buffer(`${prefix}/rm`, [c], { kind: 'zeros' });
      b.buffer(`${prefix}/rv`, [c], { kind: 'ones' });
      stats.push(`${prefix}/rm`, `${prefix}/rv`);
    }
    for (const [n, s] of Object.entries(bl.inputs)) {
      X[n] = n === 'eps' ? b.noise(n, 'randn', { shape: s }) : b.input(n, s);
      host[n] = randn(s, seed++);
    }
    const bnFn = (prefix: string, v: Value) =>
      batchNorm(b, v, {
        weight: P[`${prefix}/weight`],
        bias: P[`${prefix}/bias`],
        runningMean: b.graph.leaf(`${prefix}/rm`),
        runningVar: b.graph.leaf(`${prefix}/rv`),
        training: true,
      });
    const { y, extra = {} } = bl.build(b, P, X, bnFn);
    const gy = randn([...y.shape], 99);
    const gyv = b.input('gy', y.shape);
    let loss = b.sum(b.mul(y, gyv));
    for (const e of Object.values(extra)) loss = b.add(loss, e);
    const grads = paramGrads(b, loss, ['net']);
    const gIn = grad(b, loss, (bl.gradInputs ?? []).map((n) => X[n]));
    const outputs: Vals = { y, ...extra };
    (bl.gradInputs ?? []).forEach((n, i) => (outputs[`grad_${n}`] = gIn[i]!));
    const layout = layoutState(b.graph);
    const plan = compileProgram(b.graph, layout, { name: 'block', outputs, grads, groups: ['net'] }, await planTarget(target));
    const rt = await Runtime.create(layout);
    rt.initState(0);
    for (const n of Object.keys(P)) rt.writeParam(n, host[n].data);
    const prog = await rt.load(plan);
    const feeds = Object.fromEntries([...Object.keys(X).map((n) => [n, host[n].data]), ['gy', gy.data]]);
    const out = await rt.run(prog, feeds);

    const inputs = Object.fromEntries(Object.entries(host).map(([n, t]) => [py(n), t]));
    const gradNames = [...Object.keys(P), ...(bl.gradInputs ?? [])].map(py);
    const statLines = Object.entries(bl.bns ?? {}).map(([p, c]) => `running["${p}/rm"] = torch.zeros(${c}); running["${p}/rv"] = torch.ones(${c})`);
    const code = [
      PRELUDE,
      ...statLines,
      bl.torch,
      `loss = (y * gy).sum() ${(bl.extra ?? []).map((e) => `+ ${e}`).join(' ')}`,
      'loss.backward()',
      `out = {"y": y, ${(bl.extra ?? []).map((e) => `"${e}": ${e}, `).join('')}}`,
      ...gradNames.map((n) => `out["grad_${n}"] = ${n}.grad`),
      ...stats.map((s) => `out["${s}"] = running["${s}"]`),
    ].join('\n');
    const ref = await torch.run(code, { ...inputs, gy }, { grad: gradNames });

    const errs: Record<string, number> = { y: relErr(out.y, ref.y.data) };
    for (const e of bl.extra ?? []) errs[e] = relErr(out[e], ref[e].data);
    for (const n of Object.keys(P)) errs[`grad ${n}`] = relErr(await rt.readGrad(n), ref[`grad_${py(n)}`].data);
    for (const n of bl.gradInputs ?? []) errs[`grad ${n}`] = relErr(out[`grad_${n}`], ref[`grad_${n}`].data);
    for (const s of stats) errs[s] = relErr(await rt.readState(s), ref[s].data);
    rt.destroy();
    if (process.env.PARITY_VERBOSE) console.log(bl.name, JSON.stringify(Object.fromEntries(Object.entries(errs).map(([k, v]) => [k, v.toExponential(1)]))));
    for (const [k, v] of Object.entries(errs)) {
      const tol = k === 'y' || bl.extra?.includes(k) || stats.includes(k) ? 1e-5 : 1e-4;
      expect(v, `${bl.name}: ${k} rel err ${v.toExponential(2)}`).toBeLessThan(tol);
    }
  });
});
