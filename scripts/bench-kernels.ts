// Times single conv kernels on given shapes (median of runs, one submit each),
// for choosing between kernel variants:
//   npx tsx scripts/bench-kernels.ts
import { conv2dBackwardWeightKernel, conv2dBackwardDataKernel, conv2dForwardKernel, convGeometry, type Conv2dShape } from '../compiler/kernels/conv.ts';
import type { KernelSpec } from '../runtime/format/kernel.ts';
import { createStorageBuffer } from '../runtime/buffers.ts';
import { getDevice } from '../runtime/device.ts';
import { pipelineCache } from '../runtime/pipelines.ts';

const { device } = await getDevice();
const cache = pipelineCache(device);
const filled = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.731 + seed) * 0.5);

async function time(spec: KernelSpec, sizes: Record<string, number>, iters = 7): Promise<number> {
  await cache.prepare([spec]);
  const buffers = spec.bindings.map((b, i) => createStorageBuffer(device, filled(sizes[b.name], i), b.name));
  const run = async () => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    cache.dispatch(pass, spec, buffers);
    pass.end();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  await run();
  await run();
  const ts: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t = performance.now();
    await run();
    ts.push(performance.now() - t);
  }
  for (const b of buffers) b.destroy();
  cache.clearBindGroups();
  return ts.sort((a, b) => a - b)[iters >> 1];
}

const shapes: Conv2dShape[] = [
  { batch: 4, inChannels: 24, outChannels: 16, height: 32, width: 32, kernel: 3, stride: 1, padding: 1 },
  { batch: 4, inChannels: 64, outChannels: 128, height: 8, width: 8, kernel: 4, stride: 2, padding: 1 },
  { batch: 4, inChannels: 8, outChannels: 8, height: 64, width: 64, kernel: 3, stride: 1, padding: 1 },
  { batch: 4, inChannels: 256, outChannels: 512, height: 2, width: 2, kernel: 4, stride: 2, padding: 1 },
  { batch: 4, inChannels: 128, outChannels: 128, height: 4, width: 4, kernel: 3, stride: 1, padding: 1 },
  { batch: 4, inChannels: 4, outChannels: 3, height: 64, width: 64, kernel: 3, stride: 1, padding: 1 },
  { batch: 4, inChannels: 16, outChannels: 32, height: 8, width: 8, kernel: 4, stride: 2, padding: 1 },
];
const variants = (process.env.VARIANTS ?? 'bwd_weight').split(',');
for (const s of shapes) {
  const g = convGeometry(s);
  const sizes = { x: g.N * g.Ci * g.H * g.W, dy: g.N * g.Co * g.OH * g.OW, y: g.N * g.Co * g.OH * g.OW, w: g.Co * g.Ci * g.KH * g.KW, dw: g.Co * g.Ci * g.KH * g.KW, dx: g.N * g.Ci * g.H * g.W };
  const line: string[] = [];
  for (const v of variants) {
    const spec = v === 'fwd' ? conv2dForwardKernel(s) : v === 'bwd_data' ? conv2dBackwardDataKernel(s) : conv2dBackwardWeightKernel(s);
    const ms = await time(spec, sizes);
    line.push(`${v} ${ms.toFixed(2)} ms ${((spec.flops ?? 0) / ms / 1e6).toFixed(2)} GFLOP/s [${spec.name.replace(/^conv2d_/, '')} wg ${spec.workgroups.join('x')}]`);
  }
  console.log(line.join(' | '));
}
