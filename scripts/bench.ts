// `npm run bench`: GFLOP/s of our GEMM-class kernels on the current adapter,
// next to @tensorflow/tfjs-backend-webgpu running the same shapes on the same
// Dawn instance in the same process, and the ratio ours / tfjs.
//
// Timing: each measurement is one submit of one op followed by
// onSubmittedWorkDone, after warm-up runs (the first run of a shader pays
// its JIT compile); the median of the timed runs is reported.
// Every rate is also given as a share of the adapter's FMA ceiling, measured
// first in the same run (scripts/bench-ceiling.ts).
// Environment: BENCH_WARMUP (default 2), BENCH_ITERS (default 5),
// BENCH_SKIP_TFJS=1 to time only our kernels, BENCH_SKIP_STEP=1 to skip the
// training steps, BENCH_SKIP_COLD=1 to skip the cold-compile measurement (a
// child process compiling the tiny step with an empty shader cache, with and
// without the JIT helper device: minutes on lavapipe).
import { conv2dBackwardDataKernel, conv2dBackwardWeightKernel, conv2dForwardKernel, conv2dOutputSize, type Conv2dShape } from '../compiler/kernels/conv.ts';
import { matmulKernel } from '../compiler/kernels/gemm.ts';
import { paramBytes, type KernelSpec } from '../runtime/format/kernel.ts';
import { createStorageBuffer, createUniformBuffer } from '../runtime/buffers.ts';
import { getDevice, gpuInstance } from '../runtime/device.ts';
import { pipelineCache } from '../runtime/pipelines.ts';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmaCeiling } from './bench-ceiling.ts';
import { STEP_CASES, stepRow, torchStep, type StepRow } from './bench-step.ts';

const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const ITERS = Number(process.env.BENCH_ITERS ?? 5);
const SKIP_TFJS = process.env.BENCH_SKIP_TFJS === '1';

interface Row {
  op: string;
  shape: string;
  flops: number;
  oursMs: number;
  tfjsMs?: number;
  note?: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

type Runner = () => Promise<void>;

/**
 * Median wall time of each runner. Runs are interleaved (ours, tfjs, ours, ...)
 * so that load from other processes on a shared machine hits both alike.
 */
async function timeMedians(runners: Runner[]): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) for (const run of runners) await run();
  const times = runners.map(() => [] as number[]);
  for (let i = 0; i < ITERS; i++) {
    for (const [r, run] of runners.entries()) {
      const t0 = performance.now();
      await run();
      times[r].push(performance.now() - t0);
    }
  }
  return times.map(median);
}

/** Deterministic non-trivial data (values do not affect speed, but avoid denormals/zeros). */
function filled(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 0.731 + seed) * 0.5;
  return a;
}

/** A runner and its clean-up. */
interface Subject {
  run: Runner;
  dispose(): void;
}

// ---------------------------------------------------------------------------
// ours

async function oursSubject(spec: KernelSpec, sizes: Record<string, number>): Promise<Subject> {
  const { device } = await getDevice();
  const cache = pipelineCache(device);
  await cache.prepare([spec]);
  const buffers = spec.bindings.map((b, i) => (b.access === 'uniform' ? createUniformBuffer(device, paramBytes(spec.params ?? []), b.name) : createStorageBuffer(device, filled(sizes[b.name], i), b.name)));
  return {
    run: async () => {
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      cache.dispatch(pass, spec, buffers);
      pass.end();
      device.queue.submit([encoder.finish()]);
      await device.queue.onSubmittedWorkDone();
    },
    dispose: () => {
      for (const b of buffers) b.destroy();
      cache.clearBindGroups();
    },
  };
}

// ---------------------------------------------------------------------------
// tfjs-webgpu, sharing our Dawn instance (see shared/reference/machine-notes.md)

type Tf = typeof import('@tensorflow/tfjs');
type TfTensor = import('@tensorflow/tfjs').Tensor;
interface TfWebgpuBackend {
  endComputePassEncoder(): void;
  submitQueue(): void;
  device: GPUDevice;
}

async function loadTfjs(): Promise<Tf> {
  // tfjs reads navigator.gpu when its webgpu backend registers; Node 20 has no navigator.
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: gpuInstance() }, configurable: true, writable: true });
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: the webgpu backend failed to initialise');
  await tf.ready();
  return tf;
}

function tfjsSubject(tf: Tf, inputs: Record<string, number[]>, op: (t: Record<string, TfTensor>) => TfTensor): Subject {
  const backend = tf.backend() as unknown as TfWebgpuBackend;
  const tensors = Object.fromEntries(
    Object.entries(inputs).map(([name, shape], i) => [name, tf.tensor(filled(shape.reduce((a, b) => a * b, 1), i), shape)]),
  );
  return {
    run: async () => {
      const out = op(tensors);
      // tfjs keeps a compute pass open across ops: close it, submit, wait.
      backend.endComputePassEncoder();
      backend.submitQueue();
      await backend.device.queue.onSubmittedWorkDone();
      out.dispose();
    },
    dispose: () => {
      for (const t of Object.values(tensors)) t.dispose();
    },
  };
}

/** Times ours (and tfjs when loaded) on one shape. */
async function measure(op: string, shape: string, spec: KernelSpec, sizes: Record<string, number>, tfjs: Subject | undefined): Promise<Row> {
  const ours = await oursSubject(spec, sizes);
  const subjects = tfjs ? [ours, tfjs] : [ours];
  const [oursMs, tfjsMs] = await timeMedians(subjects.map((s) => s.run));
  for (const s of subjects) s.dispose();
  return { op, shape, flops: spec.flops ?? 0, oursMs, tfjsMs };
}

// ---------------------------------------------------------------------------
// cases

interface ConvCase {
  label: string;
  shape: Conv2dShape;
}

const CONVS: ConvCase[] = [
  { label: 'G 3x3, 64->64 @32x32', shape: { batch: 8, inChannels: 64, outChannels: 64, height: 32, width: 32, kernel: 3, stride: 1, padding: 1 } },
  { label: 'G 3x3, 128->128 @16x16', shape: { batch: 8, inChannels: 128, outChannels: 128, height: 16, width: 16, kernel: 3, stride: 1, padding: 1 } },
  { label: 'D 4x4 s2, 64->128 @32x32', shape: { batch: 8, inChannels: 64, outChannels: 128, height: 32, width: 32, kernel: 4, stride: 2, padding: 1 } },
];

async function gemmRows(tf: Tf | undefined): Promise<Row[]> {
  const rows: Row[] = [];
  for (const n of [512, 1024]) {
    const spec = matmulKernel({ M: n, N: n, K: n });
    const tfjs = tf && tfjsSubject(tf, { a: [n, n], b: [n, n] }, (t) => tf.matMul(t.a, t.b));
    rows.push(await measure('matmul', `${n}x${n}x${n}`, spec, { a: n * n, b: n * n, c: n * n }, tfjs));
  }
  return rows;
}

async function convRows(tf: Tf | undefined): Promise<Row[]> {
  const rows: Row[] = [];
  // Use what the adapter offers (subgroup shuffles in the windowed conv passes).
  const { info } = await getDevice();
  const target = { subgroups: info.features.includes('subgroups') };
  for (const { label, shape: s } of CONVS) {
    const [OH, OW] = conv2dOutputSize(s);
    const k = s.kernel as number;
    const stride = s.stride as number;
    const pad = s.padding as number;
    const xSize = s.batch * s.inChannels * s.height * s.width;
    const wSize = s.outChannels * s.inChannels * k * k;
    const ySize = s.batch * s.outChannels * OH * OW;
    // tfjs in its native NHWC / HWIO layouts, with the same explicit padding.
    const xNhwc = [s.batch, s.height, s.width, s.inChannels];
    const wHwio = [k, k, s.inChannels, s.outChannels];
    const yNhwc = [s.batch, OH, OW, s.outChannels];
    const tfConvAttrs = { strides: [stride, stride], pad, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined };

    const runKernel = (name: string, inputs: Record<string, TfTensor>, attrs: object) =>
      tf!.engine().runKernel(name, inputs, { ...tfConvAttrs, ...attrs } as never) as TfTensor;
    rows.push(
      await measure('conv2d fwd', label, conv2dForwardKernel(s, target), { x: xSize, w: wSize, y: ySize },
        tf && tfjsSubject(tf, { x: xNhwc, w: wHwio }, (t) => tf.conv2d(t.x as never, t.w as never, stride, pad))),
    );
    rows.push(
      await measure('conv2d bwd data', label, conv2dBackwardDataKernel(s, target), { dy: ySize, w: wSize, dx: xSize },
        tf && tfjsSubject(tf, { dy: yNhwc, w: wHwio }, (t) => runKernel('Conv2DBackpropInput', { dy: t.dy, filter: t.w }, { inputShape: xNhwc }))),
    );
    rows.push(
      await measure('conv2d bwd weight', label, conv2dBackwardWeightKernel(s), { x: xSize, dy: ySize, dw: wSize },
        tf && tfjsSubject(tf, { x: xNhwc, dy: yNhwc }, (t) => runKernel('Conv2DBackpropFilter', { x: t.x, dy: t.dy }, { filterShape: wHwio }))),
    );
  }
  return rows;
}

/** Whole D + G training steps (scripts/bench-step.ts); GFLOP/s counts their GEMM-class work. */
async function trainingStepRows(): Promise<StepRow[]> {
  if (process.env.BENCH_SKIP_STEP === '1') return [];
  const rows: StepRow[] = [];
  for (const c of STEP_CASES) {
    const row = await stepRow(c, ITERS);
    const torch = torchStep(c, ITERS);
    row.torch = 'error' in torch ? torch.error : `PyTorch ${torch.ms.toFixed(0)} ms on ${torch.threads} CPU thread(s): ours / PyTorch = ${(torch.ms / row.oursMs).toFixed(2)}x speed`;
    rows.push(row);
  }
  return rows;
}

interface ColdCompile {
  /** With the JIT helper device (runtime/jit-helper.ts), as a first run on a fresh machine gets it. */
  helper: { compileMs: number; pipelines: number };
  /** The same without it (GAN_JIT_HELPER=0). */
  alone: { compileMs: number; pipelines: number };
}

/**
 * Compile time of the tiny step on a fresh machine: in a child process with an
 * empty Mesa shader cache of its own (so nothing compiled earlier is reused,
 * while the JIT helper's compiles still reach the main device through it),
 * with and without the JIT helper.
 */
function coldCompile(): ColdCompile | undefined {
  if (process.env.BENCH_SKIP_COLD === '1' || process.env.BENCH_SKIP_STEP === '1') return undefined;
  const once = (helper: boolean) => {
    const dir = mkdtempSync(join(tmpdir(), 'gan-bench-cold-'));
    try {
      const out = execFileSync(process.execPath, ['--import', 'tsx', 'scripts/bench-step.ts', '--compile-only', 'tiny'], {
        env: { ...process.env, MESA_SHADER_CACHE_DIR: dir, MESA_SHADER_CACHE_DISABLE: 'false', GAN_JIT_HELPER: helper ? '1' : '0' },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      return JSON.parse(out.trim().split('\n').at(-1)!);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  return { helper: once(true), alone: once(false) };
}

function gflops(flops: number, ms: number | undefined): string {
  return ms === undefined || flops === 0 ? '-' : (flops / ms / 1e6).toFixed(2);
}

function share(flops: number, ms: number, ceiling: number): string {
  return flops === 0 ? '-' : `${((100 * flops) / ms / 1e6 / ceiling).toFixed(1)}%`;
}

function printTable(rows: Row[], ceiling: number): void {
  const header = ['op', 'shape', 'ours ms', 'ours GFLOP/s', 'of FMA ceiling', 'tfjs-webgpu ms', 'tfjs GFLOP/s', 'ours / tfjs'];
  const body = rows.map((r) => [
    r.op,
    r.shape,
    r.oursMs.toFixed(2),
    gflops(r.flops, r.oursMs),
    share(r.flops, r.oursMs, ceiling),
    r.tfjsMs === undefined ? '-' : r.tfjsMs.toFixed(2),
    gflops(r.flops, r.tfjsMs),
    r.tfjsMs === undefined ? '-' : `${(r.tfjsMs / r.oursMs).toFixed(2)}x`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const b of body) console.log(line(b));
  for (const r of rows) if (r.note) console.log(`  ${r.op} ${r.shape}: ${r.note}`);
}

function stepNote(r: StepRow, cold?: ColdCompile): string {
  const top = r.families.slice(0, 6).map((f) => `${f.family} ${(100 * f.share).toFixed(0)}%`).join(', ');
  return (
    `${r.dispatches} dispatches, ${r.pipelines} distinct step kernels, compile ${(r.compileMs / 1000).toFixed(1)} s in this process` +
    (cold
      ? ` (cold, empty shader cache: ${(cold.helper.compileMs / 1000).toFixed(0)} s for ${cold.helper.pipelines} with the JIT helper device, ` +
        `${(cold.alone.compileMs / 1000).toFixed(0)} s without: ${(cold.alone.compileMs / cold.helper.compileMs).toFixed(2)}x)`
      : '') +
    `; GEMM-class ${(100 * r.gemmShare).toFixed(0)}% of profiled time; by family: ${top}` +
    (r.torch ? `; same step in ${r.torch}` : '')
  );
}

async function main(): Promise<void> {
  const { info } = await getDevice();
  console.log(`adapter: ${info.description || info.device} (${info.vendor}, ${info.backend}); warm-up ${WARMUP}, median of ${ITERS}`);
  const ceiling = await fmaCeiling(ITERS);
  console.log(`FMA ceiling: ${ceiling.gflops.toFixed(2)} GFLOP/s (independent vec4 FMAs in registers, ${ceiling.workgroups} workgroups of 64)`);
  const tf = SKIP_TFJS ? undefined : await loadTfjs();
  const rows: Row[] = [...(await gemmRows(tf)), ...(await convRows(tf))];
  const steps = await trainingStepRows();
  const cold = coldCompile();
  for (const [i, r] of steps.entries()) rows.push({ ...r, note: stepNote(r, i === 0 ? cold : undefined) });
  printTable(rows, ceiling.gflops);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
