// IR, autodiff and planning without running anything on the GPU.
import { describe, expect, it } from 'vitest';
import { grad, paramGrads } from '../../compiler/autodiff.ts';
import { GraphBuilder } from '../../compiler/ir/builder.ts';
import { batchNorm } from '../../compiler/ops/batchnorm.ts';
import { glu } from '../../compiler/ops/composite.ts';
import { conv2d } from '../../compiler/ops/conv.ts';
import { bce } from '../../compiler/ops/losses.ts';
import { linear } from '../../compiler/ops/matmul.ts';
import { topoSort } from '../../compiler/ir/graph.ts';
import { printGraph } from '../../compiler/ir/printer.ts';
import { evaluate } from '../../compiler/ir/reference.ts';
import { compileProgram, formatMemory, layoutState } from '../../compiler/plan/index.ts';

function tinyGan() {
  const b = new GraphBuilder();
  const z = b.noise('z', 'randn', { shape: [4, 8] });
  const real = b.input('real', [4, 6]);
  const wg = b.param('g/fc/weight', [6, 8], { kind: 'orthogonal', gain: 1 }, 'G');
  const wd = b.param('d/fc/weight', [1, 6], { kind: 'normal', mean: 0, std: 0.02 }, 'D');
  const fake = b.tanh(linear(b, z, wg));
  const d = (x: ReturnType<typeof b.input>) => linear(b, x, wd);
  const lossD = b.add(bce(b, d(real), 1), bce(b, d(b.detach(fake)), 0));
  const lossG = bce(b, d(fake), 1);
  return { b, z, real, wg, wd, fake, lossD, lossG };
}

describe('IR', () => {
  it('prints one op per line with shapes, leaves first', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [2, 3]);
    const w = b.param('fc/weight', [4, 3], { kind: 'normal', mean: 0, std: 0.02 }, 'G');
    b.output('y', b.tanh(linear(b, x, w)));
    const text = printGraph(b.graph);
    expect(text).toBe(
      [
        'input   %0 : f32[2,3]  x',
        'param   %1 : f32[4,3]  fc/weight  (G, normal(0, 0.02))',
        '%2 : f32[2,4] = matmul %0 %1  transA=false transB=true',
        '%3 : f32[2,4] = tanh %2',
        'output  y = %3',
      ].join('\n'),
    );
  });

  it('shape errors name the op and both shapes', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [2, 3]);
    const w = b.param('w', [4, 5]);
    expect(() => b.matmul(x, w)).toThrow(/matmul: inner dimensions differ \(3 vs 4\).*\[2,3\], \[4,5\]/);
    expect(() => b.add(x, b.input('y', [2, 4]))).toThrow(/add: shapes do not broadcast.*\[2,3\], \[2,4\]/);
    expect(() => b.conv2d(b.input('img', [1, 3, 8, 8]), b.param('k', [4, 2, 3, 3]))).toThrow(/input has 3 channels, weight expects 2/);
  });

  it('autodiff computes only what is asked: the D step never touches G', () => {
    const { b, wg, wd, lossD } = tinyGan();
    const [gG, gD] = grad(b, lossD, [wg, wd]);
    expect(gG).toBeNull(); // detach blocks the path to G
    expect(gD!.shape).toEqual([1, 6]);
    // Forward: G's matmul and D on real and fake; backward: one weight-gradient
    // matmul per D application, and no input gradient anywhere.
    const ops = topoSort([gD!]).map((n) => n.op);
    expect(ops.filter((o) => o === 'matmul').length).toBe(3 + 2);
  });

  it('the G step differentiates through D but stores only G gradients', () => {
    const { b, lossG } = tinyGan();
    const grads = paramGrads(b, lossG, ['G']);
    expect([...grads.keys()]).toEqual(['g/fc/weight']);
    const layout = layoutState(b.graph);
    const plan = compileProgram(b.graph, layout, { name: 'g_step', outputs: { lossG }, grads, groups: ['G'] });
    expect(plan.grads).toEqual(['g/fc/weight']);
    expect(plan.feeds.z.kind).toBe('noise');
    const dArena = layout.params['d/fc/weight'].grad!.buffer;
    const writes = plan.steps.flatMap((s) => (s.op === 'dispatch' ? [s.args[s.args.length - 1].buffer] : []));
    expect(writes).not.toContain(dArena);
  });

  it('x * 1 is x when the 1 does not broadcast x, and still a product when it does', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [4, 3]);
    expect(b.mul(x, 1)).toBe(x);
    expect(b.mul(b.scalar(1, [1, 3]), x)).toBe(x);
    const wider = b.mul(x, b.scalar(1, [2, 4, 3]));
    expect(wider.node?.op).toBe('mul');
    expect(wider.shape).toEqual([2, 4, 3]);
    expect(b.mul(x, 2).node?.op).toBe('mul');
  });

  it('a broadcast of a broadcast is one broadcast of the original', () => {
    const b = new GraphBuilder();
    const c = b.input('c', [1, 3, 1, 1]);
    const twice = b.expand(b.expand(c, [2, 3, 1, 1]), [2, 3, 4, 4]);
    expect(twice.node?.op).toBe('expand');
    expect(twice.node?.inputs[0]).toBe(c);
    expect(twice.shape).toEqual([2, 3, 4, 4]);
  });

  it('detach passes values and blocks gradients', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [3]);
    const y = b.add(b.mul(x, x), b.detach(b.mul(x, 5)));
    const [gx] = grad(b, b.sum(y), [x]);
    // d/dx (x^2) only: mul + mul, no contribution through the detached branch.
    expect(topoSort([gx!]).some((n) => n.op === 'detach')).toBe(false);
    // Values, by the float64 reference interpreter: y = x^2 + 5x, dy/dx = 2x (not 2x + 5).
    const xs = Float64Array.from([-1.5, 0.25, 3]);
    const got = evaluate([y, gx!], new Map([[x.id, xs]]));
    expect([...got.get(y.id)!]).toEqual([...xs].map((v) => v * v + 5 * v));
    expect([...got.get(gx!.id)!]).toEqual([...xs].map((v) => 2 * v));
  });
});

describe('plan', () => {
  it('reuses activation buffers from liveness and reports peak memory', () => {
    const b = new GraphBuilder();
    let h = b.input('x', [16, 64]);
    for (let i = 0; i < 8; i++) h = b.matmul(h, b.param(`w${i}`, [64, 64]));
    const layout = layoutState(b.graph);
    const plan = compileProgram(b.graph, layout, { name: 'chain', outputs: { y: h } });
    expect(plan.transients.length).toBeLessThanOrEqual(2);
    expect(plan.memory.transientBytes).toBeLessThan(plan.memory.unsharedBytes);
    expect(plan.memory.peakBytes).toBe(plan.memory.stateBytes + plan.memory.ioBytes + plan.memory.transientBytes);
    expect(formatMemory(plan)).toMatch(/chain: peak \d+\.\d\d MiB/);
  });

  it('deduplicates identical kernels', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [8, 8]);
    let h = x;
    for (let i = 0; i < 4; i++) h = b.tanh(b.matmul(h, b.param(`w${i}`, [8, 8])));
    const plan = compileProgram(b.graph, layoutState(b.graph), { name: 'dedup', outputs: { y: h } });
    expect(plan.stats.dispatches).toBe(8);
    expect(plan.kernels.length).toBe(2);
  });

  it('fuses bias + BatchNorm apply + GLU into one kernel', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [2, 4, 4, 4]);
    const w = b.param('w', [8, 4, 3, 3]);
    const y = glu(b, batchNorm(b, conv2d(b, x, w, { pad: 1, bias: b.param('bias', [8]) }), { weight: b.param('g', [8]), bias: b.param('beta', [8]), training: true }));
    const plan = compileProgram(b.graph, layoutState(b.graph), { name: 'up', outputs: { y } });
    // conv, batch mean, batch variance, then everything else in one pass.
    expect(plan.stats.dispatches).toBe(4);
  });

  it('refuses a tensor larger than the binding limit at plan time, with sizes', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [512, 256]);
    const y = b.matmul(x, b.param('w', [256, 1024]));
    const limits = { maxStorageBufferBindingSize: 1 << 20, minStorageBufferOffsetAlignment: 256 };
    expect(() => compileProgram(b.graph, layoutState(b.graph, limits), { name: 'big', outputs: { y } }, limits)).toThrow(
      /\[512,1024\] needs 2097152 bytes \(2\.0 MiB\), more than the adapter's maxStorageBufferBindingSize of 1048576 bytes/,
    );
    expect(() => layoutState(b.graph, { ...limits, maxStorageBufferBindingSize: 1 << 19 })).toThrow(/param 'w' \[256,1024\]/);
  });

  it('packs a group into arena chunks no larger than one binding, 256-byte aligned', () => {
    const b = new GraphBuilder();
    for (let i = 0; i < 5; i++) b.param(`p${i}`, [100, 100], { kind: 'zeros' }, 'G');
    const layout = layoutState(b.graph, { maxStorageBufferBindingSize: 100_000, minStorageBufferOffsetAlignment: 256 });
    expect(layout.groups.G.chunks.length).toBe(3);
    for (const p of Object.values(layout.params)) expect(p.offset % 256).toBe(0);
    for (const c of layout.groups.G.chunks) expect(c.bytes).toBeLessThanOrEqual(100_000);
  });
});

describe('plan: state updates', () => {
  it('applies only the BatchNorm updates whose statistics the program computes', () => {
    const b = new GraphBuilder();
    const bn = (name: string, x: ReturnType<typeof b.input>) =>
      batchNorm(b, x, { runningMean: b.buffer(`${name}/rm`, [3]), runningVar: b.buffer(`${name}/rv`, [3], { kind: 'ones' }), training: true });
    const a = bn('a', b.input('xa', [4, 3]));
    bn('b', b.input('xb', [4, 3]));
    const layout = layoutState(b.graph);
    const only = compileProgram(b.graph, layout, { name: 'a', outputs: { a } });
    expect(Object.keys(only.feeds)).toEqual(['xa']);
    const copies = only.steps.filter((s) => s.op === 'copy').map((s) => (s.op === 'copy' ? s.dst.offset : -1));
    expect(copies.sort()).toEqual([layout.state['a/rm'].offset, layout.state['a/rv'].offset].sort());
    const all = compileProgram(b.graph, layout, { name: 'all', outputs: { a }, updates: 'all' });
    expect(Object.keys(all.feeds).sort()).toEqual(['xa', 'xb']);
  });
});

describe('plan: fusion bounds', () => {
  it('stops inlining when recomputation would blow up (x^(2^n) by repeated squaring)', () => {
    const b = new GraphBuilder();
    let h = b.input('x', [4]);
    for (let i = 0; i < 12; i++) h = b.mul(h, h);
    const plan = compileProgram(b.graph, layoutState(b.graph), { name: 'sq', outputs: { y: h } });
    expect(plan.stats.dispatches).toBeGreaterThan(1);
    for (const k of plan.kernels) expect(k.wgsl.length).toBeLessThan(4000);
  });

  it('labels intermediates in the listing', () => {
    const b = new GraphBuilder();
    const y = b.label(b.tanh(b.input('x', [2])), 'g0/image');
    b.output('image', y);
    expect(printGraph(b.graph)).toContain('%1 : f32[2] = tanh %0  # g0/image');
  });
});

describe('plan: horizontal fusion', () => {
  it('computes sibling sums over the same axes in one dispatch with two outputs', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [4, 3, 5, 5]);
    const y = b.input('y', [4, 3, 5, 5]);
    const s1 = b.sum(b.mul(x, y), [0, 2, 3]);
    const s2 = b.sum(x, [0, 2, 3]);
    const plan = compileProgram(b.graph, layoutState(b.graph), { name: 'h', outputs: { s1, s2 } });
    expect(plan.stats.dispatches).toBe(1);
    expect(plan.kernels[0].bindings.map((k) => k.name)).toEqual(['in0', 'in1', 'out0', 'out1', 'sizes']);
    expect(plan.kernels[0].bindings.at(-1)!.access).toBe('uniform');
  });

  it('writes an elementwise value and its elementwise consumer from one kernel', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [64, 64, 32]);
    const h = b.add(b.mul(x, 2), 1); // needed by itself (an output) and by tanh
    const y = b.tanh(h);
    const plan = compileProgram(b.graph, layoutState(b.graph), { name: 'v', outputs: { h, y } });
    expect(plan.stats.dispatches).toBe(1);
    expect(plan.kernels[0].bindings.map((k) => k.name)).toEqual(['in0', 'out0', 'out1']);
  });

  it('leaves independent elementwise siblings in launches of their own (each mix would be another pipeline)', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [8]);
    const y = b.input('y', [8]);
    const plan = compileProgram(b.graph, layoutState(b.graph), { name: 'e', outputs: { p: b.mul(x, 3), q: b.add(y, 1) } });
    expect(plan.stats.dispatches).toBe(2);
  });

  it('never merges a sum with one that reads its result', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [4, 6]);
    const m = b.mean(x, [0], true);
    const v = b.mean(b.mul(b.sub(x, m), b.sub(x, m)), [0], true);
    const plan = compileProgram(b.graph, layoutState(b.graph), { name: 'mv', outputs: { v } });
    // sum(x); sum((x - m)^2) with m inlined; the final 1/n scale of the output.
    expect(plan.kernels.map((k) => k.name.split('_')[0])).toEqual(['fused', 'fused', 'fused']);
  });
});
