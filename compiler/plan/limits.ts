// What the planner needs to know about the device: binding sizes and counts,
// offset alignment, optional features. Portable defaults unless the caller
// passes the adapter's own limits (planLimits).
import { fmtShape, numel } from '../ir/shape.ts';

export interface PlanLimits {
  maxStorageBufferBindingSize: number;
  /**
   * Largest buffer (WebGPU's default is 256 MiB; lavapipe offers 4 GiB). A value
   * over maxStorageBufferBindingSize but within this lives in one buffer, and the
   * launches binding it are split into batch chunks (split.ts).
   */
  maxBufferSize?: number;
  minStorageBufferOffsetAlignment: number;
  /** Bindings one kernel may use (WebGPU's default is 8; lavapipe offers 16). */
  maxStorageBuffersPerShaderStage?: number;
  /** The device offers the 'subgroups' feature (faster conv kernels); off by default for portability. */
  subgroups?: boolean;
}

export const DEFAULT_LIMITS: PlanLimits = { maxStorageBufferBindingSize: 128 * 1024 * 1024, minStorageBufferOffsetAlignment: 256, maxBufferSize: 256 * 1024 * 1024 };

/** WebGPU's default maxBufferSize, for limits that do not say. */
export function maxBufferSize(limits: PlanLimits): number {
  return Math.max(limits.maxBufferSize ?? 256 * 1024 * 1024, limits.maxStorageBufferBindingSize);
}

/** Limits of a device (from runtime/device.ts DeviceInfo.limits) as the planner needs them. */
export function planLimits(limits: Record<string, number>, features: readonly string[] = []): PlanLimits {
  return {
    subgroups: features.includes('subgroups'),
    maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize ?? DEFAULT_LIMITS.maxStorageBufferBindingSize,
    maxBufferSize: limits.maxBufferSize ?? DEFAULT_LIMITS.maxBufferSize,
    minStorageBufferOffsetAlignment: limits.minStorageBufferOffsetAlignment ?? 256,
    maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage ?? 8,
  };
}

/** Inputs a fused kernel may read: the adapter's storage bindings minus the output. */
export function maxKernelInputs(limits: PlanLimits): number {
  return Math.max(2, (limits.maxStorageBuffersPerShaderStage ?? 8) - 1);
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/**
 * The error for a tensor larger than one binding may be (and that cannot be
 * split by batch: `why` says why), or, with `limit` 'maxBufferSize', larger
 * than one buffer may be.
 */
export function tooBig(what: string, shape: readonly number[], limits: PlanLimits, why?: string, limit: 'maxStorageBufferBindingSize' | 'maxBufferSize' = 'maxStorageBufferBindingSize'): Error {
  const bytes = numel(shape) * 4;
  const max = limit === 'maxBufferSize' ? maxBufferSize(limits) : limits.maxStorageBufferBindingSize;
  return new Error(
    `${what} ${fmtShape(shape)} needs ${bytes} bytes (${mib(bytes)}), more than the adapter's ${limit} of ${max} bytes (${mib(max)})` +
      `${why ? ` and ${why}` : ''}; reduce the batch size or the layer width`,
  );
}
