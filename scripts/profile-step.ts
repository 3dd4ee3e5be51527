// Where a training step's time goes: one D step + one G step of a model, timed
// whole, then profiled dispatch by dispatch and summed per kernel family.
//
//   npx tsx scripts/profile-step.ts models/ms-clip-gan.gan --preset cpu --set res=16 --batch 4
//
// The per-dispatch profile (Runtime.profile) reads GPU timestamps around each
// dispatch where the adapter has them (lavapipe does): its sum is then about
// the step's GPU time. Without them each dispatch is submitted and awaited
// alone, which adds a submit and a wait to each: read the shares, not the
// sum. Compile time is printed as measured (cold or warm shader cache,
// whichever this machine has).
import { parseArgs } from 'node:util';
import { checkFile } from '../compiler/index.ts';
import { kernelFamily, loadGanStep } from './bench-step.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    preset: { type: 'string' },
    set: { type: 'string', multiple: true },
    batch: { type: 'string' },
    iters: { type: 'string', default: '5' },
    reps: { type: 'string', default: '1' },
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
const run = await loadGanStep(model, batch);
const times = (await run.time(Number(values.iters))).sort((a, b) => a - b);
// A dispatch timed alone is at the mercy of other jobs on the machine: with
// --reps R each dispatch's time is the median of R profiles.
const reps = Number(values.reps);
const profiles: Awaited<ReturnType<typeof run.profile>>[] = [];
for (let k = 0; k < reps; k++) profiles.push(await run.profile());
const prof = profiles[0].map((p, i) => ({ ...p, ms: profiles.map((q) => q[i].ms).sort((a, b) => a - b)[reps >> 1] }));
const byFamily = new Map<string, { n: number; ms: number; flops: number }>();
for (const p of prof) {
  const k = kernelFamily(p.name);
  const e = byFamily.get(k) ?? { n: 0, ms: 0, flops: 0 };
  e.n++;
  e.ms += p.ms;
  e.flops += p.flops;
  byFamily.set(k, e);
}
const total = prof.reduce((a, p) => a + p.ms, 0);
const [dPlan, gPlan] = [run.steps.dStep.plan, run.steps.gStep.plan];
console.log(`${file} ${values.preset ? `--preset ${values.preset} ` : ''}${(values.set ?? []).map((s) => `--set ${s} `).join('')}batch ${batch} on ${run.info.description}`);
console.log(`compile ${(run.compileMs / 1000).toFixed(1)} s, ${dPlan.kernels.length + gPlan.kernels.length} kernels (${dPlan.kernels.length} D + ${gPlan.kernels.length} G, ${run.kernels} distinct)`);
console.log(`step median ${times[times.length >> 1].toFixed(0)} ms (min ${times[0].toFixed(0)}), ${run.dispatches} dispatches`);
console.log(`profile sum ${total.toFixed(0)} ms over ${prof.length} dispatches`);
console.log('family                          n      ms   share   GFLOP/s');
for (const [k, e] of [...byFamily].sort((a, b) => b[1].ms - a[1].ms)) {
  const gf = e.flops ? (e.flops / e.ms / 1e6).toFixed(2) : '';
  console.log(`${k.padEnd(28)} ${String(e.n).padStart(4)} ${e.ms.toFixed(1).padStart(7)} ${((100 * e.ms) / total).toFixed(1).padStart(6)}%  ${gf.padStart(8)}`);
}
run.destroy();
// PROFILE_TOP=N: the N slowest dispatches, where they ran; PROFILE_WGSL=K: the WGSL of the K slowest.
const slowest = [...prof].sort((a, b) => b.ms - a.ms);
if (process.env.PROFILE_TOP) {
  console.log(`\nslowest ${process.env.PROFILE_TOP} dispatches`);
  for (const p of slowest.slice(0, Number(process.env.PROFILE_TOP))) {
    console.log(`${p.name.padEnd(60)} ${p.ms.toFixed(2).padStart(7)} ms ${(p.flops / 1e6).toFixed(2).padStart(8)} MFLOP ${(p.flops / p.ms / 1e6).toFixed(2).padStart(6)} GFLOP/s  ${p.program}#${p.step} wg ${p.workgroups.join('x')}${p.params ? ` params ${p.params.join(',')}` : ''}`);
  }
}
for (const p of slowest.slice(0, Number(process.env.PROFILE_WGSL ?? 0))) {
  console.log(`\n// ${p.program}#${p.step} ${p.name} ${p.ms.toFixed(2)} ms\n${p.wgsl}`);
}
// PROFILE_NAMES=N: the N kernel names that take the most time in all, with their dispatch counts.
if (process.env.PROFILE_NAMES) {
  const byName = new Map<string, { n: number; ms: number }>();
  for (const p of prof) {
    const e = byName.get(p.name) ?? { n: 0, ms: 0 };
    e.n++;
    e.ms += p.ms;
    byName.set(p.name, e);
  }
  console.log(`\nkernels by total time`);
  for (const [name, e] of [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, Number(process.env.PROFILE_NAMES))) {
    console.log(`${name.slice(0, 90).padEnd(90)} ${String(e.n).padStart(4)} ${e.ms.toFixed(1).padStart(7)} ms`);
  }
}
