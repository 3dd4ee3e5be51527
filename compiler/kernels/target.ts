// Optional device features a kernel builder may use. Kernels are portable by
// default; the planner passes what the adapter offers (see planLimits). The
// kernels themselves are in the runtime's format (runtime/format/kernel.ts).
export interface KernelTarget {
  /** WGSL `enable subgroups;` (subgroup shuffles) is available. */
  subgroups: boolean;
}

export const NO_FEATURES: KernelTarget = { subgroups: false };
