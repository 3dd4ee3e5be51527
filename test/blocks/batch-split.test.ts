// Batch splitting end to end: the split-net (test/helpers/split-net.ts: conv ->
// BatchNorm -> leaky_relu -> conv with bias -> mean loss, forward and
// backward) planned with a 20 KiB binding limit, so every activation is bound
// in 2-4 batch windows and the weight and bias gradients accumulate over the
// chunks, runs on the device and matches the same network planned without
// the limit: outputs, every parameter gradient and the BatchNorm running
// statistics. Both plan targets: portable limits (256-byte offsets, no
// subgroups) and the adapter's (lavapipe: 16-byte offsets, subgroup convs),
// each with the binding limit lowered to SPLIT_LIMITS'.
import { describe, expect, it } from 'vitest';
import { compileProgram, layoutState } from '../../compiler/plan/index.ts';
import { Runtime } from '../../runtime/executor.ts';
import type { Plan } from '../../runtime/format/plan.ts';
import { relErr } from '../oracle/compare.ts';
import { randn } from '../oracle/random.ts';
import { PLAN_TARGETS, planTarget } from '../helpers/plan-targets.ts';
import { SPLIT_BATCH, SPLIT_LIMITS, splitNet } from '../helpers/split-net.ts';

describe('a network split by batch over the binding limit', () => {
  it.each(PLAN_TARGETS)('matches the unsplit plan: outputs, gradients, running statistics (%s limits)', async (target) => {
    const { b, spec, params } = splitNet();
    const limits = await planTarget(target);
    const low = { ...limits, maxStorageBufferBindingSize: SPLIT_LIMITS.maxStorageBufferBindingSize };
    const layout = layoutState(b.graph, low);
    const plans = { whole: compileProgram(b.graph, layout, spec, limits), split: compileProgram(b.graph, layout, spec, low) };
    expect(plans.split.stats.dispatches).toBeGreaterThan(plans.whole.stats.dispatches);
    const rt = await Runtime.create(layout);
    const x = randn([SPLIT_BATCH, 4, 16, 16], 1);
    const gy = randn([SPLIT_BATCH, 4, 16, 16], 2);
    const run = async (plan: Plan) => {
      rt.initState(7);
      const prog = await rt.load(plan);
      const out = await rt.run(prog, { x: x.data, gy: gy.data });
      for (const p of params) out[`grad ${p.name}`] = await rt.readGrad(p.name!);
      for (const s of Object.keys(layout.state)) out[`state ${s}`] = await rt.readState(s);
      return out;
    };
    const whole = await run(plans.whole);
    const split = await run(plans.split);
    rt.destroy();
    expect(Object.keys(split).length).toBe(2 + params.length + 2);
    const errs = Object.fromEntries(Object.keys(whole).map((k) => [k, relErr(split[k], whole[k])]));
    if (process.env.PARITY_VERBOSE) console.log(errs);
    for (const [k, e] of Object.entries(errs)) expect(e, `${k}: rel err ${e.toExponential(2)}`).toBeLessThan(1e-5);
    // Not trivially equal: the gradients are not all zero.
    expect(Math.max(...whole['grad w1'].map(Math.abs))).toBeGreaterThan(1e-4);
  });
});
