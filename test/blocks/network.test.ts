// Network-level parity (issue 3, section 6): a reduced StackGAN-style network
// (conditioning augmentation + stage G0 at 16x16 + a D64-style discriminator at
// 16x16, small widths, batch 4) lowered from .gan text to the IR and run on the
// device, against the same network written plainly with torch.nn modules in
// test/blocks/stage0_d64.py, from identical weights (exported through a
// safetensors file), inputs and noise.
//
// One training step, in BatchNorm training mode:
//   fake = G0(c_hat, z);  uncond, cond = D(fake, detach(mu))
//   lossD = BCE(cond, 1) + BCE(uncond, 1)    -> gradients of D's params
//   lossG = BCE(cond, 1) + 2 * KL(mu, logvar) -> gradients of G's params (through D)
// (lossD is "errD-like": it reuses the fake forward so one D pass serves both
// losses, which is what makes a single program comparable; targets are not what
// a real D step would use, but every D op and its backward is exercised.)
// Then one Adam step per network (lr 2e-4, betas 0.5/0.999). Compared: forward
// outputs and losses, every param gradient, every param after the step, and the
// BatchNorm running statistics after the step.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { paramGrads } from '../../compiler/autodiff.ts';
import type { Value } from '../../compiler/ir/graph.ts';
import { lowerNetwork } from '../../compiler/lower.ts';
import { bce } from '../../compiler/ops/losses.ts';
import { compileProgram, layoutState, type PlanLimits } from '../../compiler/plan/index.ts';
import { Runtime } from '../../runtime/executor.ts';
import { Adam } from '../../runtime/optim.ts';
import { checkText, errors, miniGan } from '../helpers/gan.ts';
import { relErr } from '../oracle/compare.ts';
import { randn } from '../oracle/random.ts';
import type { HostTensor } from '../oracle/tensor.ts';
import { startTorch, torchAvailable } from '../oracle/torch.ts';
import { writeSafetensors } from '../../runtime/format/safetensors.ts';
import { PLAN_TARGETS, planTarget } from '../helpers/plan-targets.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const BATCH = 4;

// The helper's mini GAN at the widths of test/blocks/stage0_d64.py, with a D64-style discriminator.
const GAN = miniGan({
  text: 12,
  z: 6,
  caOut: 16,
  ngf: 4,
  ndf: 4,
  discriminator: `  f = image |> conv(ndf, k = 4, stride = 2) |> leaky_relu(0.2)
        |> conv(ndf * 2, k = 4, stride = 2) |> batchnorm |> leaky_relu(0.2)
  head uncond = f |> conv(1, k = 4, stride = 4, bias = true) |> reshape(1)
  head cond = concat(tile(mu, 4), f) |> conv(ndf * 2, k = 3) |> batchnorm |> leaky_relu(0.2)
        |> conv(1, k = 4, stride = 4, bias = true)
`,
});

const TORCH = `
import sys
sys.path.insert(0, here)
import importlib, stage0_d64
importlib.reload(stage0_d64)
out = stage0_d64.step(path, text, z, eps)
`;

/** G and D lowered into one builder: D reads G's image and a detached mu. */
function build(limits: PlanLimits) {
  const r = checkText(GAN);
  expect(errors(r)).toEqual([]);
  const model = r.model!;
  const gNet = model.networks.find((n) => n.kind === 'generator')!;
  const dNet = model.networks.find((n) => n.kind === 'discriminator')!;
  const G = lowerNetwork(gNet, { batch: BATCH, training: true });
  const b = G.builder;
  const { mu, logvar } = G.exports;
  const image = G.outputs['g0.image'];
  const D = lowerNetwork(dNet, { batch: BATCH, training: true, bind: { image, mu: b.detach(mu) } }, b);
  const { uncond, cond } = D.outputs;
  const kl = G.outputs.kl;
  const lossD = b.add(bce(b, cond, 1), bce(b, uncond, 1));
  const lossG = b.add(bce(b, cond, 1), b.mul(kl, 2));
  const grads = new Map<string, Value | null>([...paramGrads(b, lossG, ['G']), ...paramGrads(b, lossD, ['d0'])]);
  const layout = layoutState(b.graph);
  const outputs = { image, mu, logvar, uncond, cond, kl, lossD, lossG };
  const plan = compileProgram(b.graph, layout, { name: 'network_step', outputs, grads, groups: ['G', 'd0'] }, limits);
  return { layout, plan, grads };
}

describe.skipIf(!torchAvailable())('network parity: CA + stage G0 + D64 at small widths vs torch.nn', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gan-network-'));
  afterAll(async () => {
    (await startTorch()).close();
    rmSync(dir, { recursive: true, force: true });
  });

  // One torch run serves both plans: the weights come from the same seeded init.
  let reference: Promise<Record<string, HostTensor>> | undefined;

  it.each(PLAN_TARGETS)('outputs, losses, every gradient, Adam-updated params and BN running stats match after one step (%s plan)', async (target) => {
    const torchP = startTorch();
    const { layout, plan, grads } = build(await planTarget(target));
    const rt = await Runtime.create(layout);
    rt.initState(7);
    const hyper = { lr: 2e-4, betas: [0.5, 0.999] as [number, number], eps: 1e-8 };
    const optG = new Adam(rt, 'G', hyper);
    const optD = new Adam(rt, 'd0', hyper);
    let t0 = performance.now();
    const prog = await rt.load(plan, [optG, optD]);
    const tLoad = performance.now() - t0;

    // Export the initial weights and BN buffers exactly as the device holds them.
    const params = Object.keys(layout.params);
    const states = Object.keys(layout.state);
    const weights: Record<string, HostTensor> = {};
    for (const k of params) weights[k] = { shape: layout.params[k].shape, data: await rt.readParam(k) };
    for (const k of states) weights[k] = { shape: layout.state[k].shape, data: await rt.readState(k) };
    const path = join(dir, 'weights.safetensors');
    writeSafetensors(path, weights);

    const text = randn([BATCH, 12], 11);
    const z = randn([BATCH, 6], 12);
    const eps = randn([BATCH, 4], 13);
    expect(Object.keys(plan.feeds).sort()).toEqual(['ca/randn.0', 'text', 'z']);
    t0 = performance.now();
    const out = await rt.run(prog, { text: text.data, z: z.data, 'ca/randn.0': eps.data }, { optimizers: [optG, optD] });

    const tRun = performance.now() - t0;
    t0 = performance.now();
    reference ??= torchP.then((torch) => torch.run(TORCH, { text, z, eps }, { vars: { path, here: HERE } }));
    const ref = await reference;
    const tTorch = performance.now() - t0;
    console.log(`[network, ${target} plan] ${plan.stats.dispatches} dispatches, ${plan.kernels.length} kernels: load ${tLoad.toFixed(0)} ms, step ${tRun.toFixed(0)} ms, torch ${tTorch.toFixed(0)} ms`);
    const errs: Record<string, number> = {};
    const check = (label: string, got: Float32Array, want: HostTensor, tol: number) => {
      expect(got.length, label).toBe(want.data.length);
      // A tensor of zeros on both sides would compare equal and prove nothing.
      expect(Math.max(...want.data.map(Math.abs)), `${label} is all zeros`).toBeGreaterThan(0);
      const e = relErr(got, want.data);
      errs[label] = e;
      expect(e, label).toBeLessThan(tol);
    };
    // Forward values and losses: float32 everywhere, same op order up to reductions.
    for (const k of Object.keys(plan.outputs)) check(`out/${k}`, out[k], ref[`out/${k}`], 1e-4);
    // Gradients: every param of both networks has one (nothing silently null).
    expect([...grads].filter(([, g]) => g === null).map(([k]) => k)).toEqual([]);
    expect(params.length).toBe(23);
    for (const k of params) check(`grad/${k}`, await rt.readGrad(k), ref[`grad/${k}`], 1e-3);
    // After one Adam step: the first step moves each element by about lr * sign(g),
    // so compare with an absolute tolerance well below lr.
    for (const k of params) {
      const got = await rt.readParam(k);
      const want = ref[`param/${k}`].data;
      let d = 0;
      for (let i = 0; i < got.length; i++) d = Math.max(d, Math.abs(got[i] - want[i]));
      errs[`param/${k}`] = d;
      expect(d, `param/${k}`).toBeLessThan(1e-5);
    }
    for (const k of states) check(`state/${k}`, await rt.readState(k), ref[`state/${k}`], 1e-4);

    const worst = (prefix: string) => Math.max(...Object.entries(errs).filter(([k]) => k.startsWith(prefix)).map(([, e]) => e));
    console.log(
      `[network] max rel err: outputs ${worst('out/').toExponential(2)}, grads ${worst('grad/').toExponential(2)}, ` +
        `running stats ${worst('state/').toExponential(2)}; max abs err of Adam-updated params ${worst('param/').toExponential(2)}`,
    );
    console.log(Object.entries(errs).map(([k, e]) => `  ${k}: ${e.toExponential(2)}`).join('\n'));
    rt.destroy();
  });
});
