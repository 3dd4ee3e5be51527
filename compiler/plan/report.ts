// What a plan costs in memory, and the text `gan check --memory` prints.
import type { MemoryReport, Plan, StateLayout } from '../../runtime/format/plan.ts';
import type { Homes } from './homes.ts';
import type { Transients } from './allocate.ts';

/** The memory a program needs: state (shared by all programs), its feeds and outputs, its transients. */
export function reportMemory(layout: StateLayout, homes: Homes, transients: Transients): MemoryReport {
  const stateBytes = Object.values(layout.buffers).reduce((s, b) => s + b, 0);
  const ioBytes = [...Object.values(homes.feeds).map((f) => f.slot.size), ...Object.values(homes.outputs).map((o) => o.slot.size)].reduce((s, b) => s + b, 0);
  const transientBytes = transients.sizes.reduce((s, b) => s + b, 0);
  return {
    stateBytes,
    ioBytes,
    transientBytes,
    liveBytes: transients.liveBytes,
    unsharedBytes: transients.unsharedBytes,
    peakBytes: stateBytes + ioBytes + transientBytes,
  };
}

/** Bytes of optimizer state for the given groups (Adam keeps 2 floats per param, SGD 0). */
export function optimizerStateBytes(layout: StateLayout, groups: readonly string[], floatsPerParam = 2): number {
  let bytes = 0;
  for (const g of groups) for (const c of layout.groups[g]?.chunks ?? []) bytes += c.bytes * floatsPerParam;
  return bytes;
}

/** Human-readable memory report, e.g. for `gan check --memory`. */
export function formatMemory(plan: Plan): string {
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;
  const m = plan.memory;
  return [
    `${plan.name}: peak ${mib(m.peakBytes)}`,
    `  params + grads + state  ${mib(m.stateBytes)}`,
    `  feeds + outputs         ${mib(m.ioBytes)}`,
    `  activations             ${mib(m.transientBytes)} in ${plan.transients.length} buffers (live peak ${mib(m.liveBytes)}, ${mib(m.unsharedBytes)} without reuse)`,
    `  ${plan.stats.dispatches} dispatches, ${plan.stats.kernels} distinct kernels, ${plan.stats.fusedNodes} ops fused away`,
  ].join('\n');
}
