// Batch splitting at plan level (compiler/plan/split.ts): chunk sizes, the
// windows a split plan binds, its JSON round trip, and what is still refused.
// test/blocks/batch-split.test.ts runs a split plan on the device.
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../compiler/ir/builder.ts';
import { compileProgram, DEFAULT_LIMITS, layoutState, type PlanLimits } from '../../compiler/plan/index.ts';
import { chooseChunk } from '../../compiler/plan/split.ts';
import { parsePlan, serializePlan, type Plan, type Slot } from '../../runtime/format/plan.ts';
import { SPLIT_BATCH, SPLIT_LIMITS, splitNet } from '../helpers/split-net.ts';

const KiB = 1024;

describe('chooseChunk', () => {
  const limits = (binding: number, align = 256): PlanLimits => ({ ...DEFAULT_LIMITS, maxStorageBufferBindingSize: binding, minStorageBufferOffsetAlignment: align });

  it('takes the fewest chunks that fit, balanced', () => {
    // 240 MiB at batch 24 under 128 MiB: 2 chunks of 12 (not 13 + 11).
    expect(chooseChunk(24, [10 * 2 ** 20], limits(128 * 2 ** 20))).toBe(12);
    // 12 samples of 8 KiB fit 100 KiB: 25 needs 3 chunks, balanced as 9 + 9 + 7.
    expect(chooseChunk(25, [8 * KiB], limits(100 * KiB))).toBe(9);
    // The largest sample decides.
    expect(chooseChunk(8, [4 * KiB, 8 * KiB], limits(20 * KiB))).toBe(2);
  });

  it('keeps every window offset aligned, or gives up', () => {
    // 3 + 3 samples of 128 bytes: 384 is not a multiple of 256; 4 + 2 is.
    expect(chooseChunk(6, [128], limits(600))).toBe(4);
    // 28-byte samples start aligned every 64 samples: 128 + 128 + 44 (the balanced 100 is not aligned).
    expect(chooseChunk(300, [28], limits(4096))).toBe(128);
    // 48-byte samples never start a chunk at a multiple of 256 below 200 bytes.
    expect(chooseChunk(6, [48], limits(200))).toBeNull();
    // With 16-byte alignment (lavapipe) they do: 4 samples = 192 bytes.
    expect(chooseChunk(6, [48], limits(200, 16))).toBe(3);
  });
});

/** Every dispatch argument, with the sizes of the buffers they lie in. */
function dispatchArgs(plan: Plan): Slot[] {
  return plan.steps.flatMap((s) => (s.op === 'dispatch' ? s.args : []));
}

describe('a network planned over the binding limit', () => {
  const { b, spec } = splitNet();
  const layout = layoutState(b.graph, SPLIT_LIMITS);
  const whole = compileProgram(b.graph, layout, spec, DEFAULT_LIMITS);
  const split = compileProgram(b.graph, layout, spec, SPLIT_LIMITS);

  it('refused nothing and binds every window within the limit at aligned offsets', () => {
    expect(Math.max(...split.transients)).toBeGreaterThan(SPLIT_LIMITS.maxStorageBufferBindingSize);
    for (const a of dispatchArgs(split)) {
      expect(a.size).toBeLessThanOrEqual(SPLIT_LIMITS.maxStorageBufferBindingSize);
      expect(a.offset % SPLIT_LIMITS.minStorageBufferOffsetAlignment).toBe(0);
    }
    // The unsplit plan binds whole values bigger than 20 KiB.
    expect(Math.max(...dispatchArgs(whole).map((a) => a.size))).toBeGreaterThan(SPLIT_LIMITS.maxStorageBufferBindingSize);
  });

  it('dispatches per chunk, with chunk-sized kernels, and accumulates reductions over the batch', () => {
    expect(split.stats.dispatches).toBeGreaterThan(whole.stats.dispatches);
    const names = split.kernels.map((k) => k.name);
    // Convs at 2 samples of 8 (the hidden activation: 8 KiB a sample under 20 KiB): more
    // dispatches, each over a chunk (conv kernels are size-generic: the chunk size is in the params).
    const convSteps = (p: typeof split, prefix: string) => p.steps.filter((s) => s.op === 'dispatch' && p.kernels[s.kernel].name.startsWith(prefix));
    for (const prefix of ['conv2d_fwd_', 'conv2d_bwd_data_']) {
      expect(convSteps(split, prefix).length).toBeGreaterThan(convSteps(whole, prefix).length);
    }
    // Weight gradients: one writing kernel, one adding (4 chunks: 1 + 3 dispatches).
    const bw = split.steps.filter((s) => s.op === 'dispatch' && split.kernels[s.kernel].name.startsWith('conv2d_bwd_weight'));
    expect(bw.map((s) => (s.op === 'dispatch' && split.kernels[s.kernel].name.includes('_acc') ? 'acc' : 'write'))).toEqual(['write', 'acc', 'acc', 'acc', 'write', 'acc', 'acc', 'acc']);
    // The bias gradient (sum over batch and pixels) folds its chunks in.
    expect(names.some((n) => n.startsWith('fused_sum') && n.endsWith('_acc'))).toBe(true);
    // Chunks of one value tile it: same buffer, consecutive windows.
    const bwSteps = bw.slice(0, 4).map((s) => (s.op === 'dispatch' ? s.args[0] : null)!);
    expect(new Set(bwSteps.map((a) => a.buffer)).size).toBe(1);
    bwSteps.forEach((a, k) => expect(a.offset).toBe(bwSteps[0].offset + k * a.size));
    // x (4 channels) or the hidden activation (8), whole.
    expect([4, 8].map((c) => SPLIT_BATCH * c * 16 * 16 * 4)).toContain(bwSteps.reduce((p, a) => p + a.size, 0));
  });

  it('round-trips through JSON and validates against its layout', () => {
    expect(parsePlan(serializePlan(split), layout)).toEqual(split);
  });
});

describe('what is still refused', () => {
  const low: PlanLimits = { ...DEFAULT_LIMITS, maxStorageBufferBindingSize: 4 * KiB, maxBufferSize: 64 * KiB };

  it('a kernel op that declares no batch axis (matmul)', () => {
    const b = new GraphBuilder();
    const y = b.matmul(b.input('x', [64, 32]), b.param('w', [32, 32]));
    expect(() => compileProgram(b.graph, layoutState(b.graph, low), { name: 'mm', outputs: { y } }, low)).toThrow(
      /'matmul' output \[64,32\] needs 8192 bytes \(0\.0 MiB\), more than the adapter's maxStorageBufferBindingSize of 4096 bytes \(0\.0 MiB\) and cannot be split by batch \('matmul' declares no batch axis\)/,
    );
  });

  it('slicing along the batch axis', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [16, 128]);
    const y = b.tanh(b.slice(x, 0, 0, 8));
    expect(() => compileProgram(b.graph, layoutState(b.graph, low), { name: 's', outputs: { y } }, low)).toThrow(/cannot be split by batch \('slice' works along the batch axis\)/);
  });

  it('a batch of 1, or samples that never start at an aligned offset', () => {
    const b = new GraphBuilder();
    const y = b.tanh(b.input('x', [1, 2048]));
    expect(() => compileProgram(b.graph, layoutState(b.graph, low), { name: 'one', outputs: { y } }, low)).toThrow(/\[1,2048\] needs 8192 bytes .* cannot be split by batch \(the batch is 1\)/);
    const b2 = new GraphBuilder();
    // 68-byte samples: aligned every 64 samples, and 64 of them are over 4 KiB.
    const y2 = b2.tanh(b2.input('x', [300, 17]));
    expect(() => compileProgram(b2.graph, layoutState(b2.graph, low), { name: 'odd', outputs: { y: y2 } }, low)).toThrow(
      /cannot be split by batch \(no batch chunk of it fits one binding at offsets aligned to 256 bytes\)/,
    );
  });

  it('a value over maxBufferSize', () => {
    const b = new GraphBuilder();
    const y = b.tanh(b.input('x', [64, 1024]));
    expect(() => compileProgram(b.graph, layoutState(b.graph, low), { name: 'b', outputs: { y } }, low)).toThrow(/'tanh' output \[64,1024\] needs 262144 bytes \(0\.3 MiB\), more than the adapter's maxBufferSize of 65536 bytes/);
  });
});
