// Where a training step's time goes: one D step + one G step of a model, timed
// whole, then profiled dispatch by dispatch and summed per kernel family.
//
//   npx tsx scripts/profile-step.ts models/ms-clip-gan.gan --preset cpu --set res=16 --batch 4
//
// The per-dispatch profile submits and awaits each dispatch alone, so its
// total exceeds the real step (it adds a submit and a wait per dispatch); read
// its shares, not its sum. Compile time is printed as measured (cold or warm
// shader cache, whichever this machine has).
import { parseArgs } from 'node:util';
import { buildGanSteps } from '../compiler/gan-step.ts';
import { checkFile } from '../compiler/index.ts';
import { planLimits } from '../compiler/plan/index.ts';
import { find } from '../runtime/format/step.ts';
import { getDevice } from '../runtime/device.ts';
import { Runtime } from '../runtime/executor.ts';
import { createOptimizer } from '../runtime/optim.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    preset: { type: 'string' },
    set: { type: 'string', multiple: true },
    batch: { type: 'string' },
    iters: { type: 'string', default: '5' },
  },
});
const file = positionals[0] ?? 'models/ms-clip-gan.gan';
const r = checkFile(file, { preset: values.preset, set: values.set ?? [] });
if (!r.model) {
  console.error(r.diagnostics.map((d) => d.message).join('\n'));
  process.exit(1);
}
const model = r.model;
const batch = Number(values.batch ?? model.train.batch);
const { info } = await getDevice();
const steps = buildGanSteps(model, batch, planLimits(info.limits, info.features));
const rt = await Runtime.create(steps.layout);
rt.initState(0);
const optG = createOptimizer(rt, steps.groups.g, model.train.g);
const optD = steps.groups.d.map((d) => createOptimizer(rt, d, model.train.d));
let t = performance.now();
const dProg = await rt.load(steps.dStep.plan, optD);
const gProg = await rt.load(steps.gStep.plan, [optG]);
const compileMs = performance.now() - t;

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
const fill = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.917 + seed) * 0.9);
const feeds = Object.fromEntries(steps.dStep.feeds.map((f, i) => [f.name, fill(numel(f.shape), i + 1)]));
const gFeeds = Object.fromEntries(steps.gStep.feeds.map((f) => [f.name, feeds[find(steps.dStep.feeds, f.role).name]]));
const step = async () => {
  await rt.run(dProg, feeds, { optimizers: optD, read: false });
  await rt.run(gProg, gFeeds, { optimizers: [optG], read: false });
  await rt.idle();
};
await step();
const times: number[] = [];
for (let i = 0; i < Number(values.iters); i++) {
  t = performance.now();
  await step();
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);

const prof = [...(await rt.profile(dProg, feeds)), ...(await rt.profile(gProg, gFeeds))];
const family = (name: string) => name.replace(/_?\d.*$/, '').replace(/_(f|b|fwd|bwd)$/, '');
const byFamily = new Map<string, { n: number; ms: number; flops: number }>();
for (const p of prof) {
  const k = family(p.name);
  const e = byFamily.get(k) ?? { n: 0, ms: 0, flops: 0 };
  e.n++;
  e.ms += p.ms;
  e.flops += p.flops;
  byFamily.set(k, e);
}
const total = prof.reduce((a, p) => a + p.ms, 0);
const [dPlan, gPlan] = [steps.dStep.plan, steps.gStep.plan];
console.log(`${file} ${values.preset ? `--preset ${values.preset} ` : ''}${(values.set ?? []).map((s) => `--set ${s} `).join('')}batch ${batch} on ${info.description}`);
console.log(`compile ${(compileMs / 1000).toFixed(1)} s, ${dPlan.kernels.length + gPlan.kernels.length} kernels (${dPlan.kernels.length} D + ${gPlan.kernels.length} G)`);
console.log(`step median ${times[times.length >> 1].toFixed(0)} ms (min ${times[0].toFixed(0)}), ${dPlan.stats.dispatches + gPlan.stats.dispatches} dispatches`);
console.log(`profile sum ${total.toFixed(0)} ms over ${prof.length} dispatches (each submitted alone)`);
console.log('family                          n      ms   share   GFLOP/s');
for (const [k, e] of [...byFamily].sort((a, b) => b[1].ms - a[1].ms)) {
  const gf = e.flops ? (e.flops / e.ms / 1e6).toFixed(2) : '';
  console.log(`${k.padEnd(28)} ${String(e.n).padStart(4)} ${e.ms.toFixed(1).padStart(7)} ${((100 * e.ms) / total).toFixed(1).padStart(6)}%  ${gf.padStart(8)}`);
}
for (const o of [...optD, optG]) o.destroy();
rt.destroy();
if (process.env.PROFILE_TOP) {
  console.log(`\nslowest ${process.env.PROFILE_TOP} dispatches`);
  for (const p of [...prof].sort((a, b) => b.ms - a.ms).slice(0, Number(process.env.PROFILE_TOP))) {
    console.log(`${p.name.padEnd(60)} ${p.ms.toFixed(2).padStart(7)} ms ${(p.flops / 1e6).toFixed(2).padStart(8)} MFLOP ${(p.flops / p.ms / 1e6).toFixed(2).padStart(6)} GFLOP/s`);
  }
}
