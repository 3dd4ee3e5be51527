// The training-step row of `npm run bench`: one D step + one G step of the
// tiny MS-CLIP-GAN (models/ms-clip-gan.gan --preset tiny) on the current
// adapter. Reports the median step time, dispatches per step, and the share
// of GPU time in GEMM-class kernels (matmul / conv, from a per-dispatch
// profile, which serialises dispatches and so only gives proportions).
import { buildGanSteps } from '../compiler/gan-step.ts';
import { checkFile } from '../compiler/index.ts';
import { planLimits } from '../compiler/plan/index.ts';
import { find } from '../runtime/format/step.ts';
import { getDevice } from '../runtime/device.ts';
import { Runtime } from '../runtime/executor.ts';
import { createOptimizer } from '../runtime/optim.ts';

export interface StepRow {
  op: string;
  shape: string;
  flops: number;
  oursMs: number;
  note?: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function noise(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 0.917 + seed) * 0.9;
  return a;
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Kernels of the tiled GEMM template (compiler/kernels/gemm.ts, conv.ts) are named for their op. */
function isGemmClass(kernel: string): boolean {
  return /^(matmul|conv2d)_/.test(kernel);
}

export async function tinyStepRows(iters: number, batch = 4): Promise<StepRow[]> {
  const r = checkFile('models/ms-clip-gan.gan', { preset: 'tiny' });
  if (!r.model) throw new Error('models/ms-clip-gan.gan --preset tiny does not check');
  const { info } = await getDevice();
  const steps = buildGanSteps(r.model, batch, planLimits(info.limits, info.features));
  const rt = await Runtime.create(steps.layout);
  rt.initState(0);
  // The typed optimizer settings (compiler/check/settings.ts) are the runtime's OptimizerSettings.
  const optG = createOptimizer(rt, steps.groups.g, r.model.train.g);
  const optD = steps.groups.d.map((d) => createOptimizer(rt, d, r.model!.train.d));
  const t0 = performance.now();
  const dProg = await rt.load(steps.dStep.plan, optD);
  const gProg = await rt.load(steps.gStep.plan, [optG]);
  const loadMs = performance.now() - t0;
  // Every d_step feed (text, noise, CA sample, real and wrong images) gets fixed data; g_step
  // takes the same text and noise, as one iteration's single G forward does.
  const feeds = Object.fromEntries(steps.dStep.feeds.map((f, i) => [f.name, noise(numel(f.shape), i + 1)]));
  const gFeeds = Object.fromEntries(steps.gStep.feeds.map((f) => [f.name, feeds[find(steps.dStep.feeds, f.role).name]]));
  const step = async () => {
    await rt.run(dProg, feeds, { optimizers: optD, read: false });
    await rt.run(gProg, gFeeds, { optimizers: [optG], read: false });
    await rt.idle();
  };
  await step(); // warm-up: first use of each pipeline
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    const s = performance.now();
    await step();
    times.push(performance.now() - s);
  }
  const prof = [...(await rt.profile(dProg, feeds)), ...(await rt.profile(gProg, gFeeds))];
  const total = prof.reduce((a, p) => a + p.ms, 0);
  const gemm = prof.filter((p) => isGemmClass(p.name));
  const gemmMs = gemm.reduce((a, p) => a + p.ms, 0);
  const flops = gemm.reduce((a, p) => a + p.flops, 0);
  const [dPlan, gPlan] = [steps.dStep.plan, steps.gStep.plan];
  const dispatches = dPlan.stats.dispatches + gPlan.stats.dispatches;
  const kernels = dPlan.kernels.length + gPlan.kernels.length;
  rt.destroy();
  return [
    {
      op: 'train step (D + G)',
      shape: `ms-clip-gan tiny, batch ${batch}`,
      flops,
      oursMs: median(times),
      note:
        `${dispatches} dispatches per step (${dPlan.stats.dispatches} D + ${gPlan.stats.dispatches} G), ${kernels} kernels compiled in ${(loadMs / 1000).toFixed(1)} s; ` +
        `GEMM-class kernels ${((100 * gemmMs) / total).toFixed(0)}% of profiled GPU time (${gemm.length} of ${prof.length} dispatches)` +
        (steps.unsupported.length ? `; not in the step: ${steps.unsupported.join(', ')}` : ''),
    },
  ];
}
