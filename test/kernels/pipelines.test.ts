// The runtime's pipeline cache and buffer helpers: dedup by WGSL content,
// compile errors that name the kernel, bind-group reuse, read-back.
import { describe, expect, it } from 'vitest';
import type { KernelSpec } from '../../runtime/format/kernel.ts';
import { createStorageBuffer, readBuffer } from '../../runtime/buffers.ts';
import { getDevice } from '../../runtime/device.ts';
import { KernelCompileError, PipelineCache, wgslHash } from '../../runtime/pipelines.ts';

function scaleKernel(name: string, factor: number): KernelSpec {
  return {
    name,
    wgsl: `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x < arrayLength(&x)) { y[id.x] = x[id.x] * ${factor.toFixed(1)}; }
}`,
    bindings: [
      { name: 'x', access: 'read' },
      { name: 'y', access: 'read_write' },
    ],
    workgroups: [1, 1, 1],
  };
}

describe('PipelineCache', () => {
  it('compiles identical WGSL once and runs it', async () => {
    const { device } = await getDevice();
    const cache = new PipelineCache(device);
    const a = scaleKernel('scale_a', 2);
    const b = { ...scaleKernel('scale_b', 2) }; // same WGSL, other name
    await cache.prepare([a, b, scaleKernel('scale_c', 3)]);
    expect(cache.size).toBe(2);
    expect(cache.pipeline(a)).toBe(cache.pipeline(b));

    const x = createStorageBuffer(device, new Float32Array([1, 2, 3]));
    const y = createStorageBuffer(device, 3);
    expect(cache.bindGroup(a, [x, y])).toBe(cache.bindGroup(b, [x, y]));
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    cache.dispatch(pass, a, [x, y]);
    pass.end();
    device.queue.submit([encoder.finish()]);
    expect([...(await readBuffer(device, y))]).toEqual([2, 4, 6]);
    x.destroy();
    y.destroy();
  });

  it('turns a WGSL error into a KernelCompileError naming the kernel and line', async () => {
    const { device } = await getDevice();
    const cache = new PipelineCache(device);
    const broken: KernelSpec = { ...scaleKernel('broken_kernel', 1), wgsl: scaleKernel('x', 1).wgsl.replace('x[id.x] * 1.0', 'x[id.x] * undefined_name') };
    const err = await cache.prepare([broken]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KernelCompileError);
    expect((err as Error).message).toMatch(/kernel 'broken_kernel' failed to compile/);
    expect((err as Error).message).toMatch(/line 5:.*undefined_name/s);
  });

  it('refuses to record a kernel that was not prepared, and checks the buffer count', async () => {
    const { device } = await getDevice();
    const cache = new PipelineCache(device);
    const k = scaleKernel('unprepared', 5);
    expect(() => cache.pipeline(k)).toThrow(/not compiled yet/);
    expect(() => cache.bindGroup(k, [])).toThrow(/takes 2 buffers \(x, y\), got 0/);
  });

  it('hashes content, not names', () => {
    expect(wgslHash('a')).toBe(wgslHash('a'));
    expect(wgslHash('a')).not.toBe(wgslHash('b'));
  });
});
