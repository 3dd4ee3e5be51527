// Runs one KernelSpec on the shared device with host data bound by name, and
// reads back the read_write bindings. For tests only: it allocates per call.
import type { KernelSpec } from '../../runtime/format/kernel.ts';
import { createStorageBuffer, createUniformBuffer, readBuffer } from '../../runtime/buffers.ts';
import { paramBytes } from '../../runtime/format/kernel.ts';
import { getDevice } from '../../runtime/device.ts';
import { pipelineCache } from '../../runtime/pipelines.ts';

/**
 * `data` gives each binding's initial contents (a Float32Array), or for an
 * output its length in floats (zero-filled); a uniform binding gets the
 * kernel's params (size-generic kernels). Returns the read_write bindings.
 */
export async function runKernel(spec: KernelSpec, data: Record<string, Float32Array | number>): Promise<Record<string, Float32Array>> {
  const { device } = await getDevice();
  const cache = pipelineCache(device);
  await cache.prepare([spec]);
  const buffers = spec.bindings.map((b) => {
    if (b.access === 'uniform') {
      if (!spec.params) throw new Error(`kernel '${spec.name}': uniform binding '${b.name}' but no params`);
      return createUniformBuffer(device, paramBytes(spec.params), b.name);
    }
    const init = data[b.name];
    if (init === undefined) throw new Error(`kernel '${spec.name}': no data for binding '${b.name}'`);
    return createStorageBuffer(device, init, b.name);
  });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  cache.dispatch(pass, spec, buffers);
  pass.end();
  device.queue.submit([encoder.finish()]);
  const out: Record<string, Float32Array> = {};
  for (const [i, b] of spec.bindings.entries()) {
    if (b.access !== 'read_write') continue;
    const init = data[b.name];
    out[b.name] = await readBuffer(device, buffers[i], typeof init === 'number' ? init : init.length);
  }
  for (const buf of buffers) buf.destroy();
  cache.clearBindGroups();
  return out;
}
