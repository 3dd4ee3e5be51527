// The two ways a program is planned: portable (DEFAULT_LIMITS: no optional
// features, so no subgroup kernels) and with the adapter's own limits and
// features, as `gan train` and the bench plan. End-to-end parity tests run
// both, since they choose different kernels (e.g. subgroup-shuffle convs).
import { DEFAULT_LIMITS, planLimits, type PlanLimits } from '../../compiler/plan/index.ts';
import { getDevice } from '../../runtime/device.ts';

export interface PlanTarget {
  name: 'portable' | 'adapter';
  limits: PlanLimits;
}

export async function planTargets(): Promise<PlanTarget[]> {
  const { info } = await getDevice();
  return [
    { name: 'portable', limits: DEFAULT_LIMITS },
    { name: 'adapter', limits: planLimits(info.limits, info.features) },
  ];
}

/** The names only, for it.each before the device exists. */
export const PLAN_TARGETS = ['portable', 'adapter'] as const;

export async function planTarget(name: PlanTarget['name']): Promise<PlanLimits> {
  return (await planTargets()).find((t) => t.name === name)!.limits;
}
