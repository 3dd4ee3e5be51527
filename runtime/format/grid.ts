// Dispatch sizes of 1-D work, shared by every kernel (the compiler's and the
// runtime's own optimizer kernels). WebGPU allows at most 65535 workgroups per
// dispatch dimension, so large launches fold into y; the kernel then rebuilds
// the flat index from the WGSL expression `index` returns. Decided here, once.
export const WG = 64;

/** WebGPU's maxComputeWorkgroupsPerDimension (the default limit, and Dawn's everywhere). */
export const MAX_WORKGROUPS_PER_DIM = 65535;

export interface Grid {
  size: number;
  workgroups: [number, number, number];
  /** WGSL expression for the flat invocation index, given the global_invocation_id name. */
  index(gid: string): string;
}

/** `invocations` threads in workgroups of `size`. */
export function gridFor(invocations: number, size = WG): Grid {
  const groups = Math.max(1, Math.ceil(invocations / size));
  if (groups <= MAX_WORKGROUPS_PER_DIM) {
    return { size, workgroups: [groups, 1, 1], index: (gid) => `${gid}.x` };
  }
  const x = MAX_WORKGROUPS_PER_DIM;
  const y = Math.ceil(groups / x);
  return { size, workgroups: [x, y, 1], index: (gid) => `(${gid}.x + ${gid}.y * ${x * size}u)` };
}

/** Workgroup-per-item launches (reductions): the flat workgroup index. */
export function groupsFor(items: number): { workgroups: [number, number, number]; index(wid: string): string } {
  if (items <= MAX_WORKGROUPS_PER_DIM) return { workgroups: [items, 1, 1], index: (wid) => `${wid}.x` };
  const y = Math.ceil(items / MAX_WORKGROUPS_PER_DIM);
  return { workgroups: [MAX_WORKGROUPS_PER_DIM, y, 1], index: (wid) => `(${wid}.x + ${wid}.y * ${MAX_WORKGROUPS_PER_DIM}u)` };
}
