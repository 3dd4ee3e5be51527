// From groups to kernels: each group becomes one launch of one or more
// kernels (a GEMM-class op lowers to its own kernels; an elementwise or
// reduce group to one fused kernel), and each launch to dispatch steps over
// the values' homes. Identical kernels (same WGSL) are stored once. A launch
// binding a value too big for one binding is split by batch (split.ts).
import type { KernelSpec } from '../../runtime/format/kernel.ts';
import type { Slot, Step } from '../../runtime/format/plan.ts';
import { bytesOf, type Value } from '../ir/graph.ts';
import { fusedKernel } from '../kernels/fused.ts';
import { primitive } from '../ops/registry.ts';
import type { Fusion } from './fuse.ts';
import type { Group } from './group.ts';
import type { PlanLimits } from './limits.ts';
import { splitLaunch, type LaunchArg } from './split.ts';

export interface Launch {
  /** The values the launch writes. */
  outputs: Value[];
  /** Its kernels in order, each with the values, batch windows of values (split.ts) or the random-number state bound to its bindings. */
  kernels: { spec: KernelSpec; args: LaunchArg[] }[];
}

/** The random-number state every random kernel binds. */
const RNG_SLOT: Slot = { buffer: 'rng', offset: 0, size: 16 };

/** Lowers each group to the kernels that compute it. */
export function lowerLaunches(groups: Group[], fusion: Fusion, limits: PlanLimits): Launch[] {
  const tooBig = (v: Value) => bytesOf(v) > limits.maxStorageBufferBindingSize;
  return groups.map(({ roots }) => {
    const node = roots[0];
    const def = primitive(node.op);
    const over = def.kind === 'kernel' ? [node.output, ...node.inputs].find(tooBig) : undefined;
    if (over) return { outputs: [node.output], kernels: splitLaunch(roots, fusion, limits, over) };
    if (def.kind === 'kernel') {
      const lowered = def.lower!({ node, ins: node.inputs.map((v) => v.shape), out: node.output.shape, attrs: node.attrs, target: { subgroups: limits.subgroups === true } });
      return {
        outputs: [node.output],
        kernels: lowered.map((k) => ({ spec: k.spec, args: k.args.map((a) => (a === 'out' ? node.output : a === 'rng' ? 'rng' : node.inputs[a])) })),
      };
    }
    const fk = fusedKernel(roots, (v) => fusion.inline.has(v.id));
    const outs = roots.map((r) => r.output);
    const big = [...fk.leaves, ...outs].find(tooBig);
    if (big) return { outputs: outs, kernels: splitLaunch(roots, fusion, limits, big) };
    return { outputs: outs, kernels: [{ spec: fk.spec, args: [...fk.leaves, ...outs] }] };
  });
}

/** The distinct kernels and one dispatch step per launched kernel, binding each value's home. */
export function emitDispatches(launches: Launch[], home: ReadonlyMap<number, Slot>): { kernels: KernelSpec[]; steps: Step[] } {
  const slotOf = (v: Value): Slot => {
    const s = home.get(v.id);
    if (!s) throw new Error(`internal: value %${v.id} has no storage`);
    return s;
  };
  const kernelIndex = new Map<string, number>();
  const kernels: KernelSpec[] = [];
  const steps: Step[] = [];
  for (const l of launches) {
    const v = l.outputs[0];
    for (const k of l.kernels) {
      let ki = kernelIndex.get(k.spec.wgsl);
      if (ki === undefined) {
        ki = kernels.length;
        kernels.push(k.spec);
        kernelIndex.set(k.spec.wgsl, ki);
      }
      const args = k.args.map((a): Slot => {
        if (a === 'rng') return RNG_SLOT;
        if (!('value' in a)) return slotOf(a);
        const s = slotOf(a.value);
        return { buffer: s.buffer, offset: s.offset + a.offset, size: a.size };
      });
      const shared = kernels[ki];
      const grid = shared.workgroups.some((n, i) => n !== k.spec.workgroups[i]) ? { workgroups: k.spec.workgroups } : {};
      const flops = (shared.flops ?? 0) !== (k.spec.flops ?? 0) ? { flops: k.spec.flops ?? 0 } : {};
      // A size-generic kernel reads its sizes from params: a launch of another size carries its own.
      const params = k.spec.params && k.spec.params.join(',') !== (shared.params ?? []).join(',') ? { params: k.spec.params } : {};
      steps.push({ op: 'dispatch', kernel: ki, args, ...(v.kind === 'noise' ? { noise: v.name } : {}), ...grid, ...flops, ...params });
    }
  }
  return { kernels, steps };
}
