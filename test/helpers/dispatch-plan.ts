// A hand-built plan for runtime tests: one dispatch step per launch, each
// binding its input feeds then its output. Launches whose kernels have the
// same WGSL share one plan kernel; a later one carries its own grid, FLOPs and
// params on its step, as the compiler's plans do (runtime/format/plan.ts).
import type { KernelSpec } from '../../runtime/format/kernel.ts';
import { PLAN_FORMAT_VERSION, type Plan, type Slot, type StateLayout } from '../../runtime/format/plan.ts';

/** The layout of a plan without params or state. */
export const EMPTY_LAYOUT: StateLayout = { version: PLAN_FORMAT_VERSION, params: {}, state: {}, buffers: {}, groups: {} };

export interface Launch {
  spec: KernelSpec;
  /** Feed name and shape per input binding, in binding order. */
  inputs: [string, number[]][];
  /** The output's name and shape (the binding after the inputs). */
  output: [string, number[]];
}

const bytes = (shape: number[]) => shape.reduce((p, d) => p * d, 4);

export function dispatchPlan(name: string, launches: Launch[]): Plan {
  const kernels: KernelSpec[] = [];
  const feeds: Plan['feeds'] = {};
  const outputs: Plan['outputs'] = {};
  const steps: Plan['steps'] = launches.map(({ spec, inputs, output }) => {
    let ki = kernels.findIndex((k) => k.wgsl === spec.wgsl);
    const own = ki >= 0 ? { workgroups: spec.workgroups, flops: spec.flops, params: spec.params } : {};
    if (ki < 0) ki = kernels.push(spec) - 1;
    const args: Slot[] = inputs.map(([feed, shape]) => {
      feeds[feed] = { slot: { buffer: `in:${feed}`, offset: 0, size: bytes(shape) }, shape, kind: 'input' };
      return feeds[feed].slot;
    });
    const [out, shape] = output;
    outputs[out] = { slot: { buffer: `out:${out}`, offset: 0, size: bytes(shape) }, shape };
    args.push(outputs[out].slot);
    return { op: 'dispatch' as const, kernel: ki, args, ...own };
  });
  return {
    version: PLAN_FORMAT_VERSION,
    name,
    kernels,
    steps,
    transients: [],
    feeds,
    outputs,
    grads: [],
    memory: { stateBytes: 0, ioBytes: 0, transientBytes: 0, liveBytes: 0, unsharedBytes: 0, peakBytes: 0 },
    stats: { nodes: launches.length, dispatches: launches.length, kernels: kernels.length, fusedNodes: 0 },
  };
}
