// Size-generic broadcasts: an elementwise kernel reading a per-channel
// operand (x * s + t, s and t [1, C, 1, 1]) takes the power-of-two divisors,
// moduli and strides of its broadcast index as shifts and masks from its
// Sizes uniform, so launches whose shapes differ only in such sizes share one
// WGSL, each dispatch step binding its own params; other sizes stay literals
// (a different kernel). Every result matches a float64 reference.
import { afterAll, describe, expect, it } from 'vitest';
import { Graph } from '../../compiler/ir/graph.ts';
import { fusedKernel } from '../../compiler/kernels/fused.ts';
import type { KernelSpec } from '../../runtime/format/kernel.ts';
import { Runtime } from '../../runtime/executor.ts';
import { parsePlan, serializePlan, type Plan } from '../../runtime/format/plan.ts';
import { dispatchPlan, EMPTY_LAYOUT } from '../helpers/dispatch-plan.ts';
import { expectClose } from '../oracle/compare.ts';
import { randn } from '../oracle/random.ts';


interface Case {
  name: string;
  x: number[]; // [N, C, H, W]
  /** Shape of s and t: [1, C, 1, 1] unless given. */
  ch?: number[];
}
const POW2: Case[] = [
  { name: 'a', x: [2, 4, 8, 8] },
  { name: 'b', x: [3, 8, 4, 16] },
];
const OTHER: Case = { name: 'c', x: [2, 3, 5, 5] };

/** y = x * s + t, the multiply inlined into the add's kernel; leaves x, s, t in that order. */
const chOf = (c: Case) => c.ch ?? [1, c.x[1], 1, 1];

/** Flat index into `from` (broadcast to `to`, same rank) of flat index i of `to`, in float64 arithmetic. */
function broadcastAt(from: number[], to: number[], i: number): number {
  let j = 0;
  let rest = i;
  let fstride = 1;
  for (let d = to.length - 1; d >= 0; d--) {
    const coord = rest % to[d];
    rest = Math.floor(rest / to[d]);
    if (from[d] !== 1) j += coord * fstride;
    fstride *= from[d];
  }
  return j;
}

function affineKernel(c: Case): KernelSpec {
  const g = new Graph();
  const ch = chOf(c);
  const x = g.newValue(c.x, 'input', { name: 'x' });
  const s = g.newValue(ch, 'input', { name: 's' });
  const t = g.newValue(ch, 'input', { name: 't' });
  const xs = g.addNode('mul', [x, s], {}, c.x);
  const y = g.addNode('add', [xs, t], {}, c.x);
  const fk = fusedKernel([y.node!], (v) => v === xs);
  expect(fk.leaves).toEqual([x, s, t]);
  return fk.spec;
}

function plan(cases: Case[]): Plan {
  return dispatchPlan(
    'broadcast_sizes',
    cases.map((c) => {
      const ch = chOf(c);
      return { spec: affineKernel(c), inputs: [[`x${c.name}`, c.x], [`s${c.name}`, ch], [`t${c.name}`, ch]], output: [c.name, c.x] };
    }),
  );
}

let rt: Runtime | undefined;
afterAll(() => rt?.destroy());

describe('size-generic broadcasts', () => {
  it('power-of-two shapes share one WGSL (shifts and masks from the uniform); others keep literals', () => {
    const [ka, kb] = POW2.map(affineKernel);
    expect(kb.wgsl).toBe(ka.wgsl);
    expect(ka.wgsl).toMatch(/>> sizes\./);
    expect(ka.wgsl).toMatch(/& sizes\./);
    expect(kb.params).not.toEqual(ka.params);
    const kc = affineKernel(OTHER);
    expect(kc.wgsl).not.toBe(ka.wgsl);
    expect(kc.wgsl).toMatch(/\/ 25u/);
  });

  it('one plan runs all three with two kernels, each step its own params, and matches the reference', async () => {
    const cases = [...POW2, OTHER];
    const p = parsePlan(serializePlan(plan(cases)));
    expect(p.kernels.length).toBe(2);
    rt = await Runtime.create(EMPTY_LAYOUT);
    const prog = await rt.load(p);
    const data: Record<string, Float32Array> = {};
    cases.forEach((c, k) => {
      data[`x${c.name}`] = randn(c.x, 10 * k + 1).data;
      data[`s${c.name}`] = randn([1, c.x[1], 1, 1], 10 * k + 2).data;
      data[`t${c.name}`] = randn([1, c.x[1], 1, 1], 10 * k + 3).data;
    });
    const out = await rt.run(prog, data);
    for (const c of cases) {
      const [, C, H, W] = c.x;
      const [x, s, t] = ['x', 's', 't'].map((v) => data[`${v}${c.name}`]);
      const ref = Float64Array.from(x, (v, i) => v * s[Math.floor(i / (H * W)) % C] + t[Math.floor(i / (H * W)) % C]);
      expectClose(out[c.name], ref, 1e-6, `x * s + t over ${JSON.stringify(c.x)}`);
    }
  });
});

describe('broadcasts in runs', () => {
  // Adjacent kept dims index as one run (one shift, mask and multiply), so a
  // per-sample-per-channel operand [N, C, 1, 1] reads through the same WGSL as
  // a per-channel one; a kept-broadcast-kept pattern [N, 1, H, W] is two runs.
  const cases: Case[] = [
    { name: 'nc', x: [2, 4, 8, 8], ch: [2, 4, 1, 1] },
    { name: 'c', x: [4, 8, 4, 4], ch: [1, 8, 1, 1] },
    { name: 'nhw', x: [2, 4, 8, 8], ch: [2, 1, 8, 8] },
    { name: 'chw', x: [2, 4, 8, 8], ch: [1, 4, 8, 8] },
  ];

  it('[N, C, 1, 1] and [1, C, 1, 1] share one WGSL; [N, 1, H, W] has two terms', () => {
    const [nc, c, nhw, chw] = cases.map(affineKernel);
    expect(nc.wgsl).toBe(c.wgsl);
    expect(chw.wgsl).toBe(c.wgsl);
    expect(nhw.wgsl).not.toBe(c.wgsl);
  });

  it('each matches the float64 reference', async () => {
    const p = parsePlan(serializePlan(plan(cases)));
    expect(p.kernels.length).toBe(2);
    rt ??= await Runtime.create(EMPTY_LAYOUT);
    const data: Record<string, Float32Array> = {};
    cases.forEach((c, k) => {
      data[`x${c.name}`] = randn(c.x, 10 * k + 4).data;
      data[`s${c.name}`] = randn(chOf(c), 10 * k + 5).data;
      data[`t${c.name}`] = randn(chOf(c), 10 * k + 6).data;
    });
    const out = await rt.run(await rt.load(p), data);
    for (const c of cases) {
      const [x, s, t] = ['x', 's', 't'].map((v) => data[`${v}${c.name}`]);
      const ref = Float64Array.from(x, (v, i) => v * s[broadcastAt(chOf(c), c.x, i)] + t[broadcastAt(chOf(c), c.x, i)]);
      expectClose(out[c.name], ref, 1e-6, `x * s + t over ${JSON.stringify(c.x)}, s and t ${JSON.stringify(chOf(c))}`);
    }
  });
});

describe('run-time constants', () => {
  it('kernels differing only in a constant (x * c) share one WGSL; the constant travels in the params as f32 bits', () => {
    const scaled = (c: number): KernelSpec => {
      const g = new Graph();
      const x = g.newValue([4, 8], 'input', { name: 'x' });
      const k = g.addNode('fill', [], { value: c, shape: [] }, []);
      const y = g.addNode('mul', [x, k], {}, [4, 8]);
      return fusedKernel([y.node!], (v) => v === k).spec;
    };
    const [a, b] = [scaled(0.25), scaled(-3)];
    expect(b.wgsl).toBe(a.wgsl);
    expect(a.wgsl).not.toMatch(/0\.25/);
    expect(a.params).toContain(new Uint32Array(Float32Array.of(0.25).buffer)[0]);
    expect(b.params).toContain(new Uint32Array(Float32Array.of(-3).buffer)[0]);
  });

  it('one constant read twice renders like two constants that differ (equal fills are one node after hash-consing)', () => {
    const twoScaled = (c1: number, c2: number): KernelSpec => {
      const g = new Graph();
      const x = g.newValue([4, 8], 'input', { name: 'x' });
      const z = g.newValue([4, 8], 'input', { name: 'z' });
      const k1 = g.addNode('fill', [], { value: c1, shape: [] }, []);
      const k2 = c2 === c1 ? k1 : g.addNode('fill', [], { value: c2, shape: [] }, []);
      const xk = g.addNode('mul', [x, k1], {}, [4, 8]);
      const zk = g.addNode('mul', [z, k2], {}, [4, 8]);
      const y = g.addNode('add', [xk, zk], {}, [4, 8]);
      return fusedKernel([y.node!], (v) => [k1, k2, xk, zk].includes(v)).spec;
    };
    const shared = twoScaled(0.3, 0.3);
    const apart = twoScaled(0.3, 0.7);
    expect(shared.wgsl).toBe(apart.wgsl);
    const bits = (v: number) => new Uint32Array(Float32Array.of(v).buffer)[0];
    expect(shared.params!.filter((w) => w === bits(0.3))).toHaveLength(2);
    expect(apart.params).toContain(bits(0.7));
  });
});
