// A device from a browser's WebGPU (navigator.gpu), for generated modules in a
// web page: pass it as `ctx` to Runtime.create / Generator.create. No Node
// modules here or in what the generator path imports (test/runtime/browser-bundle.test.ts).
import { describeAdapter, deviceDescriptor, type GpuContext } from './gpu-context.ts';

/** Raised where a page has no usable WebGPU; its message says what to do. */
export class NoWebGpuError extends Error {
  override name = 'NoWebGpuError';
}

export async function browserDevice(gpu: GPU | undefined = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu): Promise<GpuContext> {
  if (!gpu) throw new NoWebGpuError('this browser has no WebGPU (navigator.gpu is undefined): use a recent Chrome, Edge or Safari, over https or on localhost');
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new NoWebGpuError('this browser has WebGPU but offers no adapter (no supported GPU, or WebGPU is disabled or blocklisted for it)');
  const device = await adapter.requestDevice(deviceDescriptor(adapter));
  // A WGSL or validation error would otherwise pass unseen: say it on the console (the page's test fails on it).
  device.addEventListener('uncapturederror', (ev) => console.error(`gan: WebGPU error: ${(ev as GPUUncapturedErrorEvent).error.message}`));
  return { adapter, device, info: describeAdapter(adapter) };
}
