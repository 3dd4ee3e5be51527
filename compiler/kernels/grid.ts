// 1-D work over a 2-D grid of workgroups: maxComputeWorkgroupsPerDimension is
// 65535, so large launches fold into y. Decided here, once, for every kernel.
export const WG = 64;
const MAX_DIM = 65535;

export interface Grid {
  size: number;
  workgroups: [number, number, number];
  /** WGSL expression for the flat invocation index, given the global_invocation_id name. */
  index(gid: string): string;
}

export function gridFor(invocations: number, size = WG): Grid {
  const groups = Math.max(1, Math.ceil(invocations / size));
  if (groups <= MAX_DIM) {
    return { size, workgroups: [groups, 1, 1], index: (gid) => `${gid}.x` };
  }
  const x = MAX_DIM;
  const y = Math.ceil(groups / x);
  return { size, workgroups: [x, y, 1], index: (gid) => `(${gid}.x + ${gid}.y * ${x * size}u)` };
}

/** Workgroup-per-item launches (reductions): the flat workgroup index. */
export function groupsFor(items: number): { workgroups: [number, number, number]; index(wid: string): string } {
  if (items <= MAX_DIM) return { workgroups: [items, 1, 1], index: (wid) => `${wid}.x` };
  const y = Math.ceil(items / MAX_DIM);
  return { workgroups: [MAX_DIM, y, 1], index: (wid) => `(${wid}.x + ${wid}.y * ${MAX_DIM}u)` };
}
