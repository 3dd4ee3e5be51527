// A compute kernel as the compiler hands it to the runtime: WGSL with shapes
// baked in, its bindings in @binding order (all in @group(0)), and the dispatch
// size. The runtime caches pipelines by the WGSL text, so identical kernels
// are compiled once.
export type BindingAccess = 'read' | 'read_write' | 'uniform';

export interface KernelSpec {
  /** Label for pipelines and profiling, e.g. 'gemm_m64_n64_k64'. */
  name: string;
  /** Complete WGSL source; the entry point is `main`. */
  wgsl: string;
  /** One entry per @group(0) @binding(i), in order. */
  bindings: { name: string; access: BindingAccess }[];
  /** Workgroup counts for dispatchWorkgroups. */
  workgroups: [number, number, number];
  /** Floating-point operations one dispatch performs (for GFLOP/s reports). */
  flops?: number;
}

/**
 * Optional device features a kernel builder may use. Kernels are portable by
 * default; the runtime passes what the adapter offers (see planLimits).
 */
export interface KernelTarget {
  /** WGSL `enable subgroups;` (subgroup shuffles) is available. */
  subgroups: boolean;
}

export const NO_FEATURES: KernelTarget = { subgroups: false };
