// The whole-training-step rows of `npm run bench`: one D step + one G step of
// models/ms-clip-gan.gan at a preset (and --set overrides) on the current
// adapter. Reports the median step time, the GEMM-class FLOPs per step and
// their rate, dispatches, distinct pipelines, the compile time of this process
// (warm or cold shader cache, whichever it met), and where the time goes per
// kernel family (from a per-dispatch profile, GPU timestamps around each
// dispatch where the adapter has them; see Runtime.profile).
//
// Run alone to time only the compile with the shader cache off (the bench's
// cold-compile figure runs this in a child process):
//   MESA_SHADER_CACHE_DISABLE=true npx tsx scripts/bench-step.ts --compile-only tiny
import { execFileSync } from 'node:child_process';
import { buildGanSteps } from '../compiler/gan-step.ts';
import { checkFile } from '../compiler/index.ts';
import { planLimits } from '../compiler/plan/index.ts';
import { find } from '../runtime/format/step.ts';
import { getDevice } from '../runtime/device.ts';
import { Runtime } from '../runtime/executor.ts';
import { createOptimizer } from '../runtime/optim.ts';
import type { KernelSpec } from '../runtime/format/kernel.ts';
import type { Plan } from '../runtime/format/plan.ts';

/** A model setting the bench trains one step of. */
export interface StepCase {
  label: string;
  preset: string;
  set: string[];
  batch: number;
  /** The same architecture and widths for scripts/torch-step.py. */
  torchArgs: string[];
}

export const STEP_CASES: StepCase[] = [
  { label: 'tiny', preset: 'tiny', set: [], batch: 4, torchArgs: ['--res', '64', '--ngf', '4', '--ndf', '4', '--batch', '4'] },
  { label: 'mid (ngf = ndf = 16)', preset: 'tiny', set: ['ngf=16', 'ndf=16'], batch: 4, torchArgs: ['--res', '64', '--ngf', '16', '--ndf', '16', '--batch', '4'] },
];

/** The same step in PyTorch on this CPU (scripts/torch-step.py through Debian's /usr/bin/python3), or why not. */
export function torchStep(c: StepCase, iters: number): { ms: number; gflop: number; threads: number } | { error: string } {
  try {
    const out = execFileSync('/usr/bin/python3', ['scripts/torch-step.py', ...c.torchArgs, '--iters', String(iters)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return JSON.parse(out.trim().split('\n').at(-1)!);
  } catch (e) {
    return { error: ((e as { stderr?: string }).stderr ?? String(e)).trim().split('\n').at(-1) ?? 'failed' };
  }
}

export interface StepRow {
  op: string;
  shape: string;
  /** GEMM-class (matmul / conv) floating-point operations of one D + G step. */
  flops: number;
  oursMs: number;
  dispatches: number;
  pipelines: number;
  compileMs: number;
  /** Share of profiled time per kernel family, largest first. */
  families: { family: string; share: number }[];
  gemmShare: number;
  /** The PyTorch comparison, filled by the bench. */
  torch?: string;
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

/** conv2d_bwd_weight_n4_... -> conv2d bwd weight; fused_add_mul -> elementwise; adam_... -> adam. */
export function kernelFamily(kernel: string): string {
  const conv = /^conv2d_(fwd|bwd_data|bwd_weight)/.exec(kernel);
  if (conv) return `conv2d ${conv[1].replace('_', ' ')}`;
  if (kernel.startsWith('matmul_')) return 'matmul';
  if (/^fused.*_(sum|max|mean)/.test(kernel)) return 'reductions';
  if (kernel.startsWith('fused')) return 'elementwise';
  return kernel.replace(/_.*$/, '');
}

type CheckedModel = NonNullable<ReturnType<typeof checkFile>['model']>;

/**
 * One model's D and G step programs compiled on the current adapter, with fixed
 * feeds: every d_step feed (text, noise, CA sample, real and wrong images) gets
 * deterministic data, and g_step takes the same text and noise, as one
 * iteration's single G forward does. Shared by the bench and scripts/profile-step.ts.
 */
export async function loadGanStep(model: CheckedModel, batch: number, opts: { warm?: boolean } = {}) {
  const { info } = await getDevice();
  const steps = buildGanSteps(model, batch, planLimits(info.limits, info.features));
  const rt = await Runtime.create(steps.layout);
  rt.initState(0);
  const optG = createOptimizer(rt, steps.groups.g, model.train.g);
  const optD = steps.groups.d.map((d) => createOptimizer(rt, d, model.train.d));
  const t0 = performance.now();
  const dProg = await rt.load(steps.dStep.plan, optD, opts);
  const gProg = await rt.load(steps.gStep.plan, [optG], opts);
  const compileMs = performance.now() - t0;
  const feeds = Object.fromEntries(steps.dStep.feeds.map((f, i) => [f.name, noise(numel(f.shape), i + 1)]));
  const gFeeds = Object.fromEntries(steps.gStep.feeds.map((f) => [f.name, feeds[find(steps.dStep.feeds, f.role).name]]));
  return {
    steps,
    info,
    compileMs,
    /** Distinct kernels of the two programs, from the plans (the per-process pipeline cache would undercount a later case). */
    kernels: new Set([...steps.dStep.plan.kernels, ...steps.gStep.plan.kernels].map((k) => k.wgsl)).size,
    dispatches: steps.dStep.plan.stats.dispatches + steps.gStep.plan.stats.dispatches,
    /** One D + G iteration, awaited. */
    step: async () => {
      await rt.run(dProg, feeds, { optimizers: optD, read: false });
      await rt.run(gProg, gFeeds, { optimizers: [optG], read: false });
      await rt.idle();
    },
    /** The ms of each of `iters` iterations, after one warm-up (the first use of each pipeline). */
    async time(iters: number): Promise<number[]> {
      await this.step();
      const times: number[] = [];
      for (let i = 0; i < iters; i++) {
        const s = performance.now();
        await this.step();
        times.push(performance.now() - s);
      }
      return times;
    },
    /** Every dispatch of both programs timed (see Runtime.profile: GPU timestamps, or each alone on the host clock). */
    profile: async (clock?: 'gpu' | 'wall') => [
      ...(await rt.profile(dProg, feeds, { clock })).map((r) => ({ ...r, program: 'd_step', wgsl: kernelAt(steps.dStep.plan, r.step).wgsl })),
      ...(await rt.profile(gProg, gFeeds, { clock })).map((r) => ({ ...r, program: 'g_step', wgsl: kernelAt(steps.gStep.plan, r.step).wgsl })),
    ],
    destroy: () => {
      for (const o of [...optD, optG]) o.destroy();
      rt.destroy();
    },
  };
}

/** The kernel a dispatch step of a plan runs. */
function kernelAt(plan: Plan, step: number): KernelSpec {
  const s = plan.steps[step];
  if (s.op !== 'dispatch') throw new Error(`internal: step ${step} is not a dispatch`);
  return plan.kernels[s.kernel];
}

function checkCase(c: StepCase): CheckedModel {
  const r = checkFile('models/ms-clip-gan.gan', { preset: c.preset, set: c.set });
  if (!r.model) throw new Error(`models/ms-clip-gan.gan --preset ${c.preset} ${c.set.join(' ')} does not check`);
  return r.model;
}

export async function stepRow(c: StepCase, iters: number): Promise<StepRow> {
  const s = await loadGanStep(checkCase(c), c.batch);
  const times = await s.time(iters);
  const prof = await s.profile();
  const total = prof.reduce((a, p) => a + p.ms, 0);
  const byFamily = new Map<string, number>();
  for (const p of prof) byFamily.set(kernelFamily(p.name), (byFamily.get(kernelFamily(p.name)) ?? 0) + p.ms);
  const gemm = prof.filter((p) => isGemmClass(p.name));
  s.destroy();
  return {
    op: 'train step (D + G)',
    shape: `ms-clip-gan ${c.label}, batch ${c.batch}`,
    flops: gemm.reduce((a, p) => a + p.flops, 0),
    oursMs: median(times),
    dispatches: s.dispatches,
    pipelines: s.kernels,
    compileMs: s.compileMs,
    families: [...byFamily].map(([f, ms]) => ({ family: f, share: ms / total })).sort((a, b) => b.share - a.share),
    gemmShare: gemm.reduce((a, p) => a + p.ms, 0) / total,
  };
}

/** Compile time only (for a child process with the shader cache disabled). */
export async function compileOnly(c: StepCase): Promise<{ compileMs: number; pipelines: number }> {
  const s = await loadGanStep(checkCase(c), c.batch);
  s.destroy();
  return { compileMs: s.compileMs, pipelines: s.kernels };
}

if (process.argv[2] === '--compile-only') {
  const c = STEP_CASES.find((x) => x.label.split(' ')[0] === process.argv[3]);
  if (!c) throw new Error(`no step case '${process.argv[3]}' (cases: ${STEP_CASES.map((x) => x.label.split(' ')[0]).join(', ')})`);
  const r = await compileOnly(c);
  console.log(JSON.stringify(r));
  process.exit(0);
}
