// The plan format's JSON round trip: real plans survive serialize + parse
// unchanged, and documents of another version or with a malformed field are
// refused with an error that names what is wrong.
import { beforeAll, describe, expect, it } from 'vitest';
import { buildGanSteps, type GanSteps } from '../../compiler/gan-step.ts';
import { checkFile } from '../../compiler/index.ts';
import { EW_PER_INVOCATION } from '../../compiler/kernels/fused.ts';
import { planLimits } from '../../compiler/plan/index.ts';
import { FormatError } from '../../runtime/format/validate.ts';
import { parseLayout, parsePlan, PLAN_FORMAT_VERSION, serializeLayout, serializePlan, type Plan } from '../../runtime/format/plan.ts';

let steps: GanSteps;

beforeAll(() => {
  const r = checkFile('models/ms-clip-gan.gan', { preset: 'tiny' });
  if (!r.model) throw new Error('ms-clip-gan tiny does not check');
  steps = buildGanSteps(r.model, 2, planLimits({}, ['subgroups']));
});

/** The d_step plan as parsed JSON, edited by `change`, serialized again. */
function edited(change: (p: Record<string, any>) => void): string {
  const p = JSON.parse(serializePlan(steps.dStep.plan));
  change(p);
  return JSON.stringify(p);
}

describe('plan format round trip', () => {
  it('every plan and the layout carry the format version', () => {
    expect(steps.dStep.plan.version).toBe(PLAN_FORMAT_VERSION);
    expect(steps.gStep.plan.version).toBe(PLAN_FORMAT_VERSION);
    expect(steps.layout.version).toBe(PLAN_FORMAT_VERSION);
  });

  it('parse(serialize(plan)) is the same plan, and serializes to the same bytes', () => {
    for (const plan of [steps.dStep.plan, steps.gStep.plan]) {
      const text = serializePlan(plan);
      const back: Plan = parsePlan(text, steps.layout);
      expect(back).toEqual(plan);
      expect(serializePlan(back)).toBe(text);
    }
    const text = serializeLayout(steps.layout);
    expect(parseLayout(text)).toEqual(steps.layout);
    expect(serializeLayout(parseLayout(text))).toBe(text);
  });

  it('keeps optional fields only where they were (noise on random dispatches, flops)', () => {
    const back = parsePlan(serializePlan(steps.dStep.plan));
    expect(back.steps.some((s) => s.op === 'dispatch' && s.noise !== undefined)).toBe(true);
    expect(back.steps.filter((s) => 'noise' in s).length).toBe(steps.dStep.plan.steps.filter((s) => 'noise' in s).length);
    expect(back.kernels.filter((k) => 'flops' in k).length).toBe(steps.dStep.plan.kernels.filter((k) => 'flops' in k).length);
  });

  it('a size-generic kernel serves launches of several sizes, each step with its own grid', () => {
    // Fused kernels read their output count from the binding, so the plan shares one kernel between
    // launches that differ only in size; a step whose grid differs from its kernel's says so.
    const plan = steps.dStep.plan;
    const own = plan.steps.filter((s) => s.op === 'dispatch' && s.workgroups !== undefined);
    expect(own.length).toBeGreaterThan(0);
    for (const s of own) {
      if (s.op !== 'dispatch') continue;
      expect(s.workgroups).not.toEqual(plan.kernels[s.kernel].workgroups);
      // Elementwise launches: 64 invocations per workgroup, EW_PER_INVOCATION elements each, cover exactly the output binding's floats.
      const out = s.args.at(-1)!.size / 4;
      const k = plan.kernels[s.kernel];
      if (/^fused_/.test(k.name) && !/_(sum|max|mean)/.test(k.name) && k.wgsl.includes('@workgroup_size(64)')) {
        const [x, y, z] = s.workgroups!;
        expect(x * y * z * 64 * EW_PER_INVOCATION).toBeGreaterThanOrEqual(out);
        expect((x * y * z - 1) * 64 * EW_PER_INVOCATION).toBeLessThan(out);
      }
    }
    const back = parsePlan(serializePlan(plan));
    expect(back.steps.filter((s) => s.op === 'dispatch' && s.workgroups !== undefined).length).toBe(own.length);
    const i = plan.steps.indexOf(own[0]);
    expect(() => parsePlan(edited((p) => (p.steps[i].workgroups = [1, 2])))).toThrow(/workgroups: expected three workgroup counts/);
    expect(() => parsePlan(edited((p) => (p.steps[i].flops = -1)))).toThrow(/steps\[\d+\]\.flops/);
  });
});

describe('params of size-generic kernels (format 3)', () => {
  const plan = () => steps.dStep.plan;
  const uniform = (k: number) => plan().kernels[k].bindings.some((b) => b.access === 'uniform');

  it('a kernel with a uniform binding carries the params of its first launch; steps of other sizes their own', () => {
    const generic = plan().kernels.filter((_, k) => uniform(k));
    expect(generic.length).toBeGreaterThan(0);
    for (const k of generic) expect(k.params?.length).toBeGreaterThan(0);
    const own = plan().steps.filter((s) => s.op === 'dispatch' && s.params !== undefined);
    expect(own.length).toBeGreaterThan(0);
    for (const s of own) if (s.op === 'dispatch') expect(s.params).not.toEqual(plan().kernels[s.kernel].params);
    // The uniform binding takes the params, not a slot.
    for (const s of plan().steps) if (s.op === 'dispatch' && uniform(s.kernel)) expect(s.args.length).toBe(plan().kernels[s.kernel].bindings.length - 1);
    const back = parsePlan(serializePlan(plan()), steps.layout);
    expect(back.steps.filter((s) => s.op === 'dispatch' && s.params !== undefined).length).toBe(own.length);
    expect(back.kernels.filter((k) => k.params !== undefined).length).toBe(generic.length);
  });

  it('refuses params that are not u32 words, on kernels without a uniform binding, or missing', () => {
    const steps_ = plan().steps;
    const own = steps_.findIndex((s) => s.op === 'dispatch' && s.params !== undefined);
    expect(() => parsePlan(edited((p) => (p.steps[own].params = [1, -1])))).toThrow(new RegExp(`steps\\[${own}\\]\\.params\\[1\\]: expected a non-negative integer, got -1`));
    expect(() => parsePlan(edited((p) => (p.steps[own].params = [2 ** 32])))).toThrow(new RegExp(`steps\\[${own}\\]\\.params\\[0\\]: expected a u32 word`));
    const plain = steps_.findIndex((s) => s.op === 'dispatch' && !uniform(s.kernel));
    expect(() => parsePlan(edited((p) => (p.steps[plain].params = [1])))).toThrow(new RegExp(`steps\\[${plain}\\]\\.params: kernel '.+' has no uniform binding`));
    const k = (steps_[plain] as { kernel: number }).kernel;
    expect(() => parsePlan(edited((p) => (p.kernels[k].params = [1])))).toThrow(new RegExp(`kernels\\[${k}\\]\\.params: kernel '.+' has no uniform binding`));
    // A step without its own params uses its kernel's: with neither, it cannot run.
    const shared = steps_.findIndex((s) => s.op === 'dispatch' && uniform(s.kernel) && s.params === undefined);
    const g = (steps_[shared] as { kernel: number }).kernel;
    expect(() => parsePlan(edited((p) => delete p.kernels[g].params))).toThrow(new RegExp(`steps\\[${shared}\\]: kernel '.+' reads params, and neither the step nor the kernel has them`));
    // A slot for the uniform binding is one too many.
    expect(() => parsePlan(edited((p) => p.steps[shared].args.push(p.steps[shared].args[0])))).toThrow(/takes \d+ buffers, the step gives/);
  });
});

describe('plan format refuses what it cannot run', () => {
  it('another format version, or no version at all', () => {
    expect(() => parsePlan(edited((p) => (p.version = PLAN_FORMAT_VERSION + 1)))).toThrow(
      new RegExp(`plan 'd_step': format version ${PLAN_FORMAT_VERSION + 1} is not supported \\(this runtime reads version ${PLAN_FORMAT_VERSION}\\)`),
    );
    expect(() => parsePlan(edited((p) => delete p.version))).toThrow(/plan 'd_step': no 'version' field \(not a serialized plan\)/);
    expect(() => parsePlan('[1, 2]')).toThrow(/plan: no 'version' field/);
    expect(() => parseLayout(JSON.stringify({ ...steps.layout, version: 0 }))).toThrow(/state layout: format version 0 is not supported/);
  });

  it('text that is not JSON', () => {
    expect(() => parsePlan('{"version": 1,')).toThrow(FormatError);
    expect(() => parsePlan('{"version": 1,')).toThrow(/plan is not valid JSON/);
  });

  it('a field of the wrong type, named by its path', () => {
    const d = steps.dStep.plan.steps.findIndex((s) => s.op === 'dispatch');
    expect(() => parsePlan(edited((p) => (p.steps[d].args[0].offset = 'x')))).toThrow(
      new RegExp(`plan 'd_step'\\.steps\\[${d}\\]\\.args\\[0\\]\\.offset: expected a non-negative integer, got "x"`),
    );
    expect(() => parsePlan(edited((p) => (p.kernels[0].bindings[1].access = 'write')))).toThrow(/kernels\[0\]\.bindings\[1\]\.access: expected one of 'read', 'read_write', 'uniform', got "write"/);
    expect(() => parsePlan(edited((p) => (p.kernels[2].workgroups = [1, 1])))).toThrow(/kernels\[2\]\.workgroups: expected three workgroup counts/);
    expect(() => parsePlan(edited((p) => (p.kernels[2].workgroups = [70000, 1, 1])))).toThrow(/kernels\[2\]\.workgroups\[0\]: expected a workgroup count from 1 to 65535, got 70000/);
    expect(() => parsePlan(edited((p) => (p.feeds.z.kind = 'image')))).toThrow(/feeds\.z\.kind: expected one of 'input', 'noise'/);
    expect(() => parsePlan(edited((p) => (p.steps[0].op = 'jump')))).toThrow(/steps\[0\]\.op: expected one of 'dispatch', 'copy', 'clear', got "jump"/);
    expect(() => parsePlan(edited((p) => delete p.memory.peakBytes))).toThrow(/memory: missing 'peakBytes'/);
    expect(() => parsePlan(edited((p) => (p.stats.extra = 1)))).toThrow(/stats: unknown field 'extra'/);
  });

  it('steps that do not fit the plan: kernel index, binding count, buffer names and bounds', () => {
    const dispatch = steps.dStep.plan.steps.findIndex((s) => s.op === 'dispatch');
    expect(() => parsePlan(edited((p) => (p.steps[dispatch].kernel = p.kernels.length)))).toThrow(
      new RegExp(`steps\\[${dispatch}\\]\\.kernel: expected a kernel index below ${steps.dStep.plan.kernels.length}`),
    );
    expect(() => parsePlan(edited((p) => p.steps[dispatch].args.pop()))).toThrow(/steps\[\d+\]\.args: kernel '.+' takes \d+ buffers, the step gives \d+/);
    expect(() => parsePlan(edited((p) => (p.steps[dispatch].args[0].buffer = 'nowhere')))).toThrow(/args\[0\]\.buffer: unknown buffer 'nowhere'/);
    expect(() => parsePlan(edited((p) => (p.steps[dispatch].args[0] = { buffer: 't0', offset: 0, size: p.transients[0] + 4 })))).toThrow(/run past the end of 't0'/);
    expect(() => parsePlan(edited((p) => (p.transients = [])))).toThrow(/unknown buffer 't\d+'/);
    expect(() => parsePlan(edited((p) => (p.steps[dispatch].args[0].size = 6)))).toThrow(/size: expected a positive multiple of 4 bytes, got 6/);
    // Arena slots are checked against a layout when one is given.
    const arena = edited((p) => (p.steps[dispatch].args[0] = { buffer: 'param:nope:0', offset: 0, size: 4 }));
    expect(() => parsePlan(arena)).not.toThrow();
    expect(() => parsePlan(arena, steps.layout)).toThrow(/unknown buffer 'param:nope:0'/);
    expect(() => parsePlan(edited((p) => p.grads.push('no.such.param')), steps.layout)).toThrow(/grads\[\d+\]: no param 'no.such.param' in the state layout/);
  });

  it('a layout whose slots do not fit its buffers or shapes', () => {
    const layout = () => JSON.parse(serializeLayout(steps.layout));
    const [name] = Object.keys(steps.layout.params);
    const bad1 = layout();
    bad1.params[name].offset = bad1.buffers[bad1.params[name].buffer];
    expect(() => parseLayout(JSON.stringify(bad1))).toThrow(/run past the end of 'param:/);
    const bad2 = layout();
    bad2.params[name].shape = [3, 3, 3, 3, 3];
    expect(() => parseLayout(JSON.stringify(bad2))).toThrow(/shape \[3, 3, 3, 3, 3\] needs 972 bytes/);
    const bad3 = layout();
    bad3.params[name].init = { kind: 'normal', mean: 0 };
    expect(() => parseLayout(JSON.stringify(bad3))).toThrow(/init: missing 'std'/);
    const bad4 = layout();
    bad4.groups.G.params.push('ghost');
    expect(() => parseLayout(JSON.stringify(bad4))).toThrow(/groups\.G\.params\[\d+\]: no param 'ghost'/);
  });
});
