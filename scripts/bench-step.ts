// The training-step row of `npm run bench`: one D step + one G step of the
// tiny MS-CLIP-GAN (models/ms-clip-gan.gan --preset tiny) on the current
// adapter. Reports the median step time, dispatches per step, and the share
// of GPU time in GEMM-class kernels (matmul / conv, from a per-dispatch
// profile, which serialises dispatches and so only gives proportions).
import { buildGanSteps } from '../compiler/gan-step.ts';
import { checkFile } from '../compiler/index.ts';
import { planLimits } from '../compiler/plan/index.ts';
import { getDevice } from '../runtime/device.ts';
import { Runtime } from '../runtime/executor.ts';
import { createOptimizer, type OptimizerSettings } from '../runtime/optim.ts';

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
  const optG = createOptimizer(rt, steps.groups.g, r.model.train.g as OptimizerSettings);
  const optD = steps.groups.d.map((d) => createOptimizer(rt, d, r.model!.train.d as OptimizerSettings));
  const t0 = performance.now();
  const dProg = await rt.load(steps.dStep, optD);
  const gProg = await rt.load(steps.gStep, [optG]);
  const loadMs = performance.now() - t0;
  const feeds: Record<string, Float32Array> = {};
  for (const [name, f] of Object.entries(steps.dStep.feeds)) {
    if (steps.gStep.feeds[name] === undefined && !name.startsWith('real.') && !name.startsWith('wrong.')) continue;
    feeds[name] = noise(f.slot.size / 4, name.length);
  }
  const gFeeds = Object.fromEntries(Object.keys(steps.gStep.feeds).map((k) => [k, feeds[k]]).filter(([, v]) => v));
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
  const dispatches = steps.dStep.stats.dispatches + steps.gStep.stats.dispatches;
  const kernels = steps.dStep.kernels.length + steps.gStep.kernels.length;
  rt.destroy();
  return [
    {
      op: 'train step (D + G)',
      shape: `ms-clip-gan tiny, batch ${batch}`,
      flops,
      oursMs: median(times),
      note:
        `${dispatches} dispatches per step (${steps.dStep.stats.dispatches} D + ${steps.gStep.stats.dispatches} G), ${kernels} kernels compiled in ${(loadMs / 1000).toFixed(1)} s; ` +
        `GEMM-class kernels ${((100 * gemmMs) / total).toFixed(0)}% of profiled GPU time (${gemm.length} of ${prof.length} dispatches)` +
        (steps.unsupported.length ? `; not in the step: ${steps.unsupported.join(', ')}` : ''),
    },
  ];
}
