// What the planner needs to know about the device: binding sizes and counts,
// offset alignment, optional features. Portable defaults unless the caller
// passes the adapter's own limits (planLimits).
import { fmtShape, numel } from '../ir/shape.ts';

export interface PlanLimits {
  maxStorageBufferBindingSize: number;
  minStorageBufferOffsetAlignment: number;
  /** Bindings one kernel may use (WebGPU's default is 8; lavapipe offers 16). */
  maxStorageBuffersPerShaderStage?: number;
  /** The device offers the 'subgroups' feature (faster conv kernels); off by default for portability. */
  subgroups?: boolean;
}

export const DEFAULT_LIMITS: PlanLimits = { maxStorageBufferBindingSize: 128 * 1024 * 1024, minStorageBufferOffsetAlignment: 256 };

/** Limits of a device (from runtime/device.ts DeviceInfo.limits) as the planner needs them. */
export function planLimits(limits: Record<string, number>, features: readonly string[] = []): PlanLimits {
  return {
    subgroups: features.includes('subgroups'),
    maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize ?? DEFAULT_LIMITS.maxStorageBufferBindingSize,
    minStorageBufferOffsetAlignment: limits.minStorageBufferOffsetAlignment ?? 256,
    maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage ?? 8,
  };
}

/** Inputs a fused kernel may read: the adapter's storage bindings minus the output. */
export function maxKernelInputs(limits: PlanLimits): number {
  return Math.max(2, (limits.maxStorageBuffersPerShaderStage ?? 8) - 1);
}

/** The error for a tensor larger than one binding may be. */
export function tooBig(what: string, shape: readonly number[], limits: PlanLimits): Error {
  const bytes = numel(shape) * 4;
  return new Error(
    `${what} ${fmtShape(shape)} needs ${bytes} bytes (${(bytes / 2 ** 20).toFixed(1)} MiB), more than the adapter's ` +
      `maxStorageBufferBindingSize of ${limits.maxStorageBufferBindingSize} bytes (${(limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(1)} MiB); ` +
      `reduce the batch size or the layer width`,
  );
}
