// Which kernels a training step compiles: distinct WGSL per family, and how
// many would stay distinct if every u32 literal (a size, stride or count), or
// every numeric literal (ALLNUM=1), came from a uniform instead. Needs no
// device (default limits).
//   npx tsx scripts/kernel-census.ts [--preset tiny] [--set k=v ...] [--batch 4]
// With a device (run with MESA_SHADER_CACHE_DISABLE=true, or a fresh
// MESA_SHADER_CACHE_DIR, for cold figures):
//   --compile       each kernel's pipeline creation timed alone, per family
//   --jit           lavapipe's JIT (at first dispatch) timed per family
//   --helper-first  the JIT helper compiles everything first, then the main
//                   device loads: does it find the helper's work in the cache?
import { buildGanSteps } from '../compiler/gan-step.ts';
import { checkFile } from '../compiler/index.ts';
import { DEFAULT_LIMITS } from '../compiler/plan/limits.ts';
import { kernelFamily } from './bench-step.ts';

const args = process.argv.slice(2);
const opt = (k: string, d: string) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
const set = args.flatMap((a, i) => (args[i - 1] === '--set' ? [a] : []));
const r = checkFile('models/ms-clip-gan.gan', { preset: opt('--preset', 'tiny'), set });
if (!r.model) throw new Error('model does not check');
const steps = buildGanSteps(r.model, Number(opt('--batch', '4')), DEFAULT_LIMITS);
const kernels = [...steps.dStep.plan.kernels, ...steps.gStep.plan.kernels];
const fam = new Map<string, { wgsl: Set<string>; generic: Set<string> }>();
for (const k of kernels) {
  const f = kernelFamily(k.name);
  if (!fam.has(f)) fam.set(f, { wgsl: new Set(), generic: new Set() });
  fam.get(f)!.wgsl.add(k.wgsl);
  fam.get(f)!.generic.add(process.env.ALLNUM ? k.wgsl.replace(/\b\d+(\.\d+)?(e[-+]?\d+)?[uif]?\b/g, "N") : k.wgsl.replace(/\b\d+u\b/g, "U"));
}
let a = 0, b = 0;
for (const [f, s] of [...fam].sort((x, y) => y[1].wgsl.size - x[1].wgsl.size)) {
  console.log(`${f.padEnd(22)} ${String(s.wgsl.size).padStart(4)} distinct, ${String(s.generic.size).padStart(4)} without u32 literals`);
  a += s.wgsl.size; b += s.generic.size;
}
console.log(`total ${a} distinct, ${b} without u32 literals; dispatches ${steps.dStep.plan.stats.dispatches + steps.gStep.plan.stats.dispatches}`);

/** Per-family totals of per-kernel times: count, sum, and the slowest kernel. */
class FamilyTimes {
  private readonly by = new Map<string, { n: number; ms: number; max: number; maxName: string }>();
  add(name: string, ms: number): void {
    const f = kernelFamily(name);
    const e = this.by.get(f) ?? { n: 0, ms: 0, max: 0, maxName: '' };
    e.n++;
    e.ms += ms;
    if (ms > e.max) [e.max, e.maxName] = [ms, name];
    this.by.set(f, e);
  }
  /** One line per family, slowest first, then the total. */
  print(what: string, totalNote: string): void {
    let total = 0;
    for (const [f, e] of [...this.by].sort((x, y) => y[1].ms - x[1].ms)) {
      total += e.ms;
      console.log(`${f.padEnd(22)} ${String(e.n).padStart(4)} kernels ${(e.ms / 1000).toFixed(1).padStart(6)} s ${what}  mean ${(e.ms / e.n).toFixed(0)} ms  max ${e.max.toFixed(0)} ms (${e.maxName})`);
    }
    console.log(`${what} total ${(total / 1000).toFixed(1)} s ${totalNote}`);
  }
}

// --compile: each distinct kernel compiled alone, one after another, timed per
// family (run with MESA_SHADER_CACHE_DISABLE=true for the cold figure).
if (args.includes('--compile')) {
  const { getDevice } = await import('../runtime/device.ts');
  const { device } = await getDevice();
  const times = new FamilyTimes();
  for (const k of new Map(kernels.map((k) => [k.wgsl, k])).values()) {
    const t = performance.now();
    const module = device.createShaderModule({ code: k.wgsl });
    await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    times.add(k.name, performance.now() - t);
  }
  times.print('compile', '(serial)');
  process.exit(0);
}

// --jit: lavapipe JIT-compiles a pipeline at its first dispatch, not at
// creation; time each dispatch twice (first = JIT + run, second = run) and
// charge the difference per family. Run with MESA_SHADER_CACHE_DISABLE=true.
if (args.includes('--jit')) {
  const { loadGanStep } = await import('./bench-step.ts');
  const s = await loadGanStep(r.model, Number(opt('--batch', '4')), { warm: false });
  // Host clock: the JIT may run outside a pass's GPU timestamps.
  const first = await s.profile('wall');
  const second = await s.profile('wall');
  // Only a kernel's first dispatch pays its JIT (a kernel serves several launches).
  const times = new FamilyTimes();
  const seen = new Set<string>();
  first.forEach((p, i) => {
    if (seen.has(p.name)) return;
    seen.add(p.name);
    times.add(p.name, p.ms - second[i].ms);
  });
  times.print('JIT', '(first dispatches minus second)');
  s.destroy();
  process.exit(0);
}

// --helper-first: the JIT helper warms every kernel to completion, then the
// main device loads the step: does the main device find the helper's compiles
// in the shader cache? (Run with a fresh MESA_SHADER_CACHE_DIR.)
if (args.includes('--helper-first')) {
  const { getDevice } = await import('../runtime/device.ts');
  const { warmOnHelper } = await import('../runtime/jit-helper.ts');
  const { Runtime } = await import('../runtime/executor.ts');
  const ctx = await getDevice();
  const distinct = [...new Map(kernels.map((k) => [k.wgsl, k])).values()];
  if (args.includes('--create-first')) {
    const { pipelineCache } = await import('../runtime/pipelines.ts');
    await pipelineCache(ctx.device).prepare(distinct);
    console.log('main device created its pipelines before the helper ran');
  }
  let t = performance.now();
  const job = await warmOnHelper(ctx, distinct);
  await job?.done;
  console.log(`helper: ${distinct.length} kernels in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  process.env.GAN_JIT_HELPER = '0';
  t = performance.now();
  const rt = await Runtime.create(steps.layout);
  await rt.load(steps.dStep.plan);
  await rt.load(steps.gStep.plan);
  console.log(`main after helper: ${((performance.now() - t) / 1000).toFixed(1)} s`);
  process.exit(0);
}
