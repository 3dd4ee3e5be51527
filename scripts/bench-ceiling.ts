// The adapter's FMA ceiling: GFLOP/s of a kernel that does nothing but
// independent vec4 fused multiply-adds in registers, on enough workgroups to
// fill every core. Every other bench figure is also reported as a share of it,
// so a row reads the same on a noisy 2-core machine and on a real GPU.
import type { KernelSpec } from '../runtime/format/kernel.ts';
import { createStorageBuffer } from '../runtime/buffers.ts';
import { getDevice } from '../runtime/device.ts';
import { pipelineCache } from '../runtime/pipelines.ts';

// 8 independent accumulators hide the FMA latency; the loop is long enough that
// set-up and the final store are noise. Values stay bounded (|a| < 1, b < 1).
const CHAINS = 8;
const ITERS = 4096;
const WORKGROUP = 64;

function ceilingKernel(workgroups: number): KernelSpec {
  const accs = [...Array(CHAINS).keys()];
  const wgsl = `@group(0) @binding(0) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let seed = f32(gid.x) * 1e-7;
  let b = vec4<f32>(0.999, 0.998, 0.997, 0.996);
  let c = vec4<f32>(1e-4 + seed);
${accs.map((k) => `  var a${k} = vec4<f32>(${(0.1 + k * 0.01).toFixed(2)}) + c;`).join('\n')}
  for (var i = 0u; i < ${ITERS}u; i++) {
${accs.map((k) => `    a${k} = fma(a${k}, b, c);`).join('\n')}
  }
  out[gid.x] = ${accs.map((k) => `a${k}`).join(' + ')};
}
`;
  return {
    name: `fma_ceiling_${workgroups}`,
    wgsl,
    bindings: [{ name: 'out', access: 'read_write' }],
    workgroups: [workgroups, 1, 1],
    flops: 2 * 4 * CHAINS * ITERS * WORKGROUP * workgroups,
  };
}

/** Median GFLOP/s of the pure-FMA kernel over `iters` timed runs (after one warm-up). */
export async function fmaCeiling(iters = 5): Promise<{ gflops: number; ms: number; workgroups: number }> {
  const { device } = await getDevice();
  const cache = pipelineCache(device);
  // 256 workgroups of 64: far more than the cores of a CPU adapter, enough to occupy a GPU's SMs.
  const workgroups = 256;
  const spec = ceilingKernel(workgroups);
  await cache.prepare([spec]);
  const out = createStorageBuffer(device, new Float32Array(4 * WORKGROUP * workgroups), 'fma_out');
  const run = async () => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    cache.dispatch(pass, spec, [out]);
    pass.end();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  await run();
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t = performance.now();
    await run();
    times.push(performance.now() - t);
  }
  out.destroy();
  cache.clearBindGroups();
  const ms = [...times].sort((a, b) => a - b)[times.length >> 1];
  return { gflops: spec.flops! / ms / 1e6, ms, workgroups };
}
