// The JIT helper device (runtime/jit-helper.ts): when it is used, and that a
// kernel it warmed (so the main device may take its compiled code from Mesa's
// shader cache) still computes the right answer on the main device.
import { afterEach, describe, expect, it } from 'vitest';
import { createStorageBuffer, readBuffer } from '../../runtime/buffers.ts';
import { getDevice } from '../../runtime/device.ts';
import type { KernelSpec } from '../../runtime/format/kernel.ts';
import { jitHelperWanted, warmOnHelper } from '../../runtime/jit-helper.ts';
import { pipelineCache } from '../../runtime/pipelines.ts';

/** out[i] = in[i] * k + c, with c unique per call so the shader is new to this process and to the cache. */
function affine(k: number, c: number, n: number): KernelSpec {
  return {
    name: `jit_helper_affine_${c}`,
    wgsl: `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= ${n}u) { return; }
  y[i] = x[i] * ${k.toFixed(1)} + ${c.toFixed(6)};
}
`,
    bindings: [
      { name: 'x', access: 'read' },
      { name: 'y', access: 'read_write' },
    ],
    workgroups: [Math.ceil(n / 64), 1, 1],
  };
}

const saved = { helper: process.env.GAN_JIT_HELPER, cache: process.env.MESA_SHADER_CACHE_DISABLE };
afterEach(() => {
  for (const [k, v] of [['GAN_JIT_HELPER', saved.helper], ['MESA_SHADER_CACHE_DISABLE', saved.cache]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe('JIT helper device', () => {
  it('is used only on software adapters, unless GAN_JIT_HELPER=0 or the shader cache is off', async () => {
    const ctx = await getDevice();
    delete process.env.GAN_JIT_HELPER;
    delete process.env.MESA_SHADER_CACHE_DISABLE;
    expect(jitHelperWanted(ctx)).toBe(ctx.info.software);
    expect(jitHelperWanted({ ...ctx, info: { ...ctx.info, software: false } })).toBe(false);
    process.env.GAN_JIT_HELPER = '0';
    expect(jitHelperWanted(ctx)).toBe(false);
    delete process.env.GAN_JIT_HELPER;
    process.env.MESA_SHADER_CACHE_DISABLE = 'true';
    expect(jitHelperWanted(ctx)).toBe(false);
  });

  it('a kernel the helper warmed computes the same on the main device', async () => {
    const ctx = await getDevice();
    const n = 300;
    const c = Math.random();
    const spec = affine(3, c, n);
    const job = await warmOnHelper(ctx, [spec]);
    expect(job !== null).toBe(ctx.info.software);
    await job?.done;

    const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
    const xb = createStorageBuffer(ctx.device, x);
    const yb = createStorageBuffer(ctx.device, n);
    const cache = pipelineCache(ctx.device);
    await cache.prepare([spec]);
    const enc = ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    cache.dispatch(pass, spec, [xb, yb]);
    pass.end();
    ctx.device.queue.submit([enc.finish()]);
    const y = await readBuffer(ctx.device, yb, n);
    for (let i = 0; i < n; i += 37) expect(y[i]).toBeCloseTo(x[i] * 3 + Number(c.toFixed(6)), 5);
    xb.destroy();
    yb.destroy();
  });

  it('stops within a chunk when told to', async () => {
    const ctx = await getDevice();
    const specs = Array.from({ length: 40 }, (_, i) => affine(2, 1000 + i + Math.random(), 64));
    const job = await warmOnHelper(ctx, specs);
    if (!job) return; // no helper on this adapter: the first test pins when that is
    job.stop();
    await job.done; // settles without compiling all 40
  });
});
