// A WebGPU adapter and device as the runtime uses them, with no Node modules:
// the facts the planner and the reports read (DeviceInfo), and the device
// descriptor (the adapter's own limits, the optional features we use).
// runtime/device.ts opens one through Dawn in Node; runtime/device-browser.ts
// through navigator.gpu.

export interface DeviceInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  backend: string;
  software: boolean;
  limits: Record<string, number>;
  features: string[];
}

export interface GpuContext {
  adapter: GPUAdapter;
  device: GPUDevice;
  info: DeviceInfo;
}

export function isSoftware(adapter: GPUAdapter): boolean {
  const i = adapter.info;
  const text = `${i.vendor} ${i.architecture} ${i.device} ${i.description}`.toLowerCase();
  return /llvmpipe|lavapipe|swiftshader|software|warp/.test(text) || (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
}

const LIMIT_KEYS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxBindGroups',
] as const;

export function describeAdapter(adapter: GPUAdapter): DeviceInfo {
  const i = adapter.info;
  const limits: Record<string, number> = {};
  for (const k of LIMIT_KEYS) limits[k] = Number(adapter.limits[k]);
  const desc = i.description ?? '';
  // Dawn on Linux only ships the Vulkan backend; the description names the driver.
  const backend = (i as { backendType?: string }).backendType ?? 'vulkan';
  return {
    vendor: i.vendor,
    architecture: i.architecture,
    device: i.device,
    description: desc,
    backend,
    software: isSoftware(adapter),
    limits,
    features: [...adapter.features].map(String).sort(),
  };
}

/** The device descriptor: the adapter's own limits and the optional features it has that we use. */
export function deviceDescriptor(adapter: GPUAdapter): GPUDeviceDescriptor {
  const requiredLimits: Record<string, number> = {};
  for (const k of LIMIT_KEYS) requiredLimits[k] = Number(adapter.limits[k]);
  const requiredFeatures = (['timestamp-query', 'shader-f16', 'subgroups'] as GPUFeatureName[]).filter((f) => adapter.features.has(f));
  return { requiredLimits, requiredFeatures };
}
