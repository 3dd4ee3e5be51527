// Times single conv kernels on given shapes, variants side by side: per shape,
// each variant's shader is compiled (the time of cache.prepare is printed), then
// the variants run interleaved, one submit each, and the median is reported,
// so that load from other jobs hits every variant alike.
//   npx tsx scripts/bench-kernels.ts
//   VARIANTS=bw,bw:gemm,bw:taps,fwd,bwd_data SHAPES=small,big ITERS=9 npx tsx scripts/bench-kernels.ts
// Variants: fwd, bwd_data, bw (each pass's own choice), fwd:NAME, bwd_data:NAME,
// bw:NAME (one variant by name: ForwardVariant, BackwardDataVariant,
// BackwardWeightVariant), PASS:NAME:rROWS:lLANES (the same with its tile rows
// and/or lanes per workgroup overridden), e.g.
//   VARIANTS=fwd:gemm,fwd:pixels,fwd:pixels:r8 SHAPES=fwdsmall npx tsx scripts/bench-kernels.ts
import {
  conv2dBackwardDataKernel,
  conv2dBackwardWeightKernel,
  conv2dBackwardWeightVariant,
  conv2dBackwardDataVariant,
  conv2dForwardKernel,
  conv2dForwardVariant,
  convGeometry,
  type BackwardDataVariant,
  type BackwardWeightVariant,
  type ForwardVariant,
  type Conv2dShape,
} from '../compiler/kernels/conv.ts';
import type { GemmTiling } from '../compiler/kernels/gemm.ts';
import { paramBytes, type KernelSpec } from '../runtime/format/kernel.ts';
import { createStorageBuffer, createUniformBuffer } from '../runtime/buffers.ts';
import { getDevice } from '../runtime/device.ts';
import { pipelineCache } from '../runtime/pipelines.ts';

const { device, info } = await getDevice();
const target = { subgroups: info.features.includes('subgroups') };
const cache = pipelineCache(device);
const filled = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.731 + seed) * 0.5);
const ITERS = Number(process.env.ITERS ?? 7);

const conv = (batch: number, inChannels: number, outChannels: number, height: number, kernel: number, stride: number, padding: number): Conv2dShape => ({
  batch,
  inChannels,
  outChannels,
  height,
  width: height,
  kernel,
  stride,
  padding,
});
const SHAPES: Record<string, Conv2dShape[]> = {
  // The small training step's slow shapes (scripts/profile-step.ts).
  small: [
    conv(4, 24, 16, 32, 3, 1, 1),
    conv(4, 64, 128, 8, 4, 2, 1),
    conv(4, 8, 8, 64, 3, 1, 1),
    conv(4, 256, 512, 2, 4, 2, 1),
    conv(4, 128, 128, 4, 3, 1, 1),
    conv(4, 4, 3, 64, 3, 1, 1),
    conv(4, 16, 32, 8, 4, 2, 1),
  ],
  // Few taps (image-facing layers).
  edge: [conv(4, 1, 64, 32, 3, 1, 1), conv(4, 1, 32, 64, 4, 2, 1), conv(4, 2, 32, 32, 3, 1, 1), conv(4, 3, 64, 64, 4, 2, 1), conv(1, 3, 32, 15, 3, 2, 1)],
  // Non-windowed forward / backward-data on small maps (the small step's slowest after bw).
  fwdsmall: [
    conv(4, 64, 128, 8, 4, 2, 1),
    conv(4, 128, 128, 4, 3, 1, 1),
    conv(4, 144, 128, 1, 3, 1, 1),
    conv(4, 256, 128, 1, 3, 1, 1),
    conv(4, 256, 512, 2, 4, 2, 1),
    conv(4, 16, 32, 8, 4, 2, 1),
  ],
  // Around the pixels / gemm threshold: 16 and 32 output (or phase) pixels.
  threshold: [conv(4, 128, 128, 2, 3, 1, 1), conv(1, 128, 128, 4, 3, 1, 1), conv(2, 128, 128, 4, 3, 1, 1), conv(4, 128, 256, 4, 4, 2, 1), conv(2, 64, 64, 6, 3, 1, 1)],
  // Larger non-windowed (strided backward-data, odd widths) shapes of the bundled models.
  large: [conv(4, 3, 64, 64, 4, 2, 1), conv(4, 8, 16, 64, 4, 2, 1), conv(4, 4, 8, 128, 4, 2, 1), conv(4, 16, 32, 32, 4, 2, 1), conv(16, 256, 512, 8, 4, 2, 1), conv(16, 128, 256, 16, 4, 2, 1), conv(4, 64, 64, 15, 3, 1, 1)],
  // 1x1 outputs (logit heads).
  head: [conv(128, 512, 1, 4, 4, 4, 0), conv(4, 512, 1, 4, 4, 1, 0), conv(64, 256, 64, 2, 4, 2, 1)],
  // The tiny preset's skinny full-resolution convs (few channels at 128-256 px).
  skinny: [conv(4, 2, 2, 256, 3, 1, 1), conv(4, 1, 3, 256, 3, 1, 1), conv(4, 2, 4, 128, 3, 1, 1), conv(4, 3, 4, 256, 4, 2, 1)],
  // scripts/bench.ts CONVS.
  big: [conv(8, 64, 64, 32, 3, 1, 1), conv(8, 128, 128, 16, 3, 1, 1), conv(8, 64, 128, 32, 4, 2, 1)],
};

function kernelFor(v: string, s: Conv2dShape): KernelSpec {
  if (v === 'fwd') return conv2dForwardKernel(s, target);
  if (v === 'bwd_data') return conv2dBackwardDataKernel(s, target);
  if (v === 'bw') return conv2dBackwardWeightKernel(s);
  // PASS:NAME[:rROWS][:lLANES], e.g. bw:taps:r16:l8 overrides the tile rows and lanes per workgroup.
  const [pass, name, ...opts] = v.split(':');
  const tiling: Partial<GemmTiling> = {};
  for (const o of opts) {
    if (o[0] === 'r') tiling.tileRows = Number(o.slice(1));
    else if (o[0] === 'l') tiling.lanes = Number(o.slice(1));
    else throw new Error(`unknown variant option '${o}' in '${v}'`);
  }
  if (pass === 'bw') return conv2dBackwardWeightVariant(s, name as BackwardWeightVariant, tiling);
  if (pass === 'fwd') return conv2dForwardVariant(s, name as ForwardVariant, target, tiling);
  if (pass === 'bwd_data') return conv2dBackwardDataVariant(s, name as BackwardDataVariant, target, tiling);
  throw new Error(`unknown variant '${v}'`);
}

const variants = (process.env.VARIANTS ?? 'bw').split(',');
// SHAPES: names of the sets above, or indices into them (small.2).
const shapes = (process.env.SHAPES ?? 'small').split(',').flatMap((k) => {
  const [set, i] = k.split('.');
  return i === undefined ? (SHAPES[set] ?? []) : [SHAPES[set][Number(i)]];
});
for (const s of shapes) {
  const g = convGeometry(s);
  const sizes: Record<string, number> = {
    x: g.N * g.Ci * g.H * g.W,
    dy: g.N * g.Co * g.OH * g.OW,
    y: g.N * g.Co * g.OH * g.OW,
    w: g.Co * g.Ci * g.KH * g.KW,
    dw: g.Co * g.Ci * g.KH * g.KW,
    dx: g.N * g.Ci * g.H * g.W,
  };
  const subjects = [];
  for (const v of variants) {
    const spec = kernelFor(v, s);
    const t0 = performance.now();
    await cache.prepare([spec]);
    const compileMs = performance.now() - t0;
    const buffers = spec.bindings.map((b, i) => (b.access === 'uniform' ? createUniformBuffer(device, paramBytes(spec.params ?? []), b.name) : createStorageBuffer(device, filled(sizes[b.name], i), b.name)));
    subjects.push({ v, spec, buffers, compileMs, ts: [] as number[] });
  }
  const run = async (spec: KernelSpec, buffers: GPUBuffer[]) => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    cache.dispatch(pass, spec, buffers);
    pass.end();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  for (const x of subjects) await run(x.spec, x.buffers);
  for (let i = 0; i < ITERS; i++) {
    for (const x of subjects) {
      const t = performance.now();
      await run(x.spec, x.buffers);
      x.ts.push(performance.now() - t);
    }
  }
  console.log(`n${g.N} c${g.Ci}->${g.Co} h${g.H}x${g.W} k${g.KH} s${g.SH} p${g.PH} (out ${g.OH}x${g.OW}):`);
  for (const x of subjects) {
    const ms = x.ts.sort((a, b) => a - b)[ITERS >> 1];
    const name = x.spec.name.replace(/^conv2d_/, '').replace(/_n\d+_c\d+_\d+_h\d+x\d+_k\dx\d_s\dx\d_p\dx\d/, '');
    console.log(
      `  ${x.v.padEnd(10)} ${ms.toFixed(2).padStart(7)} ms ${((x.spec.flops ?? 0) / ms / 1e6).toFixed(2).padStart(6)} GFLOP/s  compile ${x.compileMs.toFixed(0).padStart(5)} ms  [${name} wg ${x.spec.workgroups.join('x')}]`,
    );
    for (const b of x.buffers) b.destroy();
  }
  cache.clearBindGroups();
}
