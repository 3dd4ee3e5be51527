// conv2d forward and both backward passes (implicit GEMM) against torch autograd.
import { afterAll, describe, expect, it } from 'vitest';
import { NO_FEATURES } from '../../compiler/kernels/target.ts';
import { getDevice } from '../../runtime/device.ts';
import {
  conv2dBackwardDataKernel,
  conv2dBackwardDataVariant,
  conv2dBackwardWeightKernel,
  conv2dBackwardWeightVariant,
  conv2dForwardKernel,
  conv2dForwardVariant,
  conv2dOutputSize,
  type BackwardDataVariant,
  type BackwardWeightVariant,
  type ForwardVariant,
  type Conv2dShape,
} from '../../compiler/kernels/conv.ts';
import { expectClose } from '../oracle/compare.ts';
import { randn } from '../oracle/random.ts';
import { startTorch, torchAvailable, torchStatus, type TorchOracle } from '../oracle/torch.ts';
import { runKernel } from './harness.ts';

type Case = Conv2dShape & {
  label: string;
  bias: boolean;
  weightVariant?: BackwardWeightVariant;
  forwardVariant?: ForwardVariant;
  dataVariant?: BackwardDataVariant;
};

// Small shapes that still cover each code path: vec4 and scalar lane loads
// (K or OH*OW divisible by 4 or not), odd sizes that leave partial tiles,
// strides with and without taps in every phase, and the StackGAN layer kinds.
const CASES: Case[] = [
  { label: 'k3 s1 p1, bias, odd 7x9, scalar lanes', batch: 2, inChannels: 5, outChannels: 6, height: 7, width: 9, kernel: 3, stride: 1, padding: 1, bias: true },
  { label: 'k3 s1 p1, vec4 lanes', batch: 2, inChannels: 4, outChannels: 16, height: 8, width: 8, kernel: 3, stride: 1, padding: 1, bias: false },
  { label: 'k4 s2 p1 (D downsampling)', batch: 2, inChannels: 3, outChannels: 16, height: 16, width: 16, kernel: 4, stride: 2, padding: 1, bias: false },
  { label: 'k4 s2 p1, odd 9x11, bias', batch: 3, inChannels: 4, outChannels: 5, height: 9, width: 11, kernel: 4, stride: 2, padding: 1, bias: true },
  { label: 'k4 s4 p0 (logit head, 1 channel)', batch: 3, inChannels: 8, outChannels: 1, height: 4, width: 4, kernel: 4, stride: 4, padding: 0, bias: true },
  { label: 'k3 s2 p1', batch: 2, inChannels: 6, outChannels: 12, height: 10, width: 10, kernel: 3, stride: 2, padding: 1, bias: false },
  { label: 'k1 s2 p0 (phases without taps)', batch: 1, inChannels: 3, outChannels: 4, height: 7, width: 7, kernel: 1, stride: 2, padding: 0, bias: false },
  // Rows a multiple of 8 wide take the windowed kernels (pixels on lanes).
  { label: 'windowed k3 s1 p1, bias, 16x16', batch: 2, inChannels: 5, outChannels: 7, height: 16, width: 16, kernel: 3, stride: 1, padding: 1, bias: true },
  { label: 'windowed k5 s1 p2, 6x16', batch: 2, inChannels: 3, outChannels: 9, height: 6, width: 16, kernel: 5, stride: 1, padding: 2, bias: false },
  { label: 'windowed k4 s2 p1, 32x16, bias', batch: 2, inChannels: 3, outChannels: 8, height: 32, width: 16, kernel: 4, stride: 2, padding: 1, bias: true },
  { label: 'windowed k1 s1 p0', batch: 3, inChannels: 6, outChannels: 10, height: 3, width: 8, kernel: 1, stride: 1, padding: 0, bias: false },
  { label: 'windowed backward-weight k4 s2 p1 (even Ci)', batch: 2, inChannels: 4, outChannels: 6, height: 32, width: 16, kernel: 4, stride: 2, padding: 1, bias: false },
  { label: 'windowed backward-weight k3 s1 p1 (even Ci), batch 3', batch: 3, inChannels: 6, outChannels: 5, height: 9, width: 16, kernel: 3, stride: 1, padding: 1, bias: true },
  { label: 'rectangular k3x5, stride 1x2, pad 1x2', batch: 2, inChannels: 4, outChannels: 9, height: 6, width: 11, kernel: [3, 5], stride: [1, 2], padding: [1, 2], bias: true },
  { label: 'windowed rectangular k3x5 s1 pad 0x2, 8x16', batch: 2, inChannels: 5, outChannels: 6, height: 8, width: 16, kernel: [3, 5], stride: 1, padding: [0, 2], bias: false },
  { label: 'windowed k3 s1 p1, 32 wide (4 lanes per row), bias', batch: 2, inChannels: 3, outChannels: 5, height: 5, width: 32, kernel: 3, stride: 1, padding: 1, bias: true },
  // Backward-weight variants (both are checked on every case; these pin the choice).
  { label: 'bwd-weight taps, 16-row tiles + partial, batch 1, odd 9x7, k3 s2 p1, 45 taps', batch: 1, inChannels: 5, outChannels: 20, height: 9, width: 7, kernel: 3, stride: 2, padding: 1, bias: false, weightVariant: 'taps' },
  { label: 'bwd-weight taps, vec4 stores, k4 s2 p1, Co 17, batch 1', batch: 1, inChannels: 3, outChannels: 17, height: 11, width: 10, kernel: 4, stride: 2, padding: 1, bias: false, weightVariant: 'taps' },
  { label: 'bwd-weight taps, Co 3, 27 taps, k3 s1 p1', batch: 2, inChannels: 3, outChannels: 3, height: 13, width: 12, kernel: 3, stride: 1, padding: 1, bias: true, weightVariant: 'taps' },
  { label: 'bwd-weight taps, Co 1, k3 s1 p1, 64 wide', batch: 2, inChannels: 4, outChannels: 1, height: 5, width: 64, kernel: 3, stride: 1, padding: 1, bias: false, weightVariant: 'taps' },
  { label: 'bwd-weight gemm (9 taps, 40 channels), batch 1, odd 11x9, k3 s1 p1', batch: 1, inChannels: 1, outChannels: 40, height: 11, width: 9, kernel: 3, stride: 1, padding: 1, bias: false, weightVariant: 'gemm' },
  { label: 'bwd-weight gemm (16 taps, 72 channels), k4 s2 p1', batch: 2, inChannels: 1, outChannels: 72, height: 8, width: 8, kernel: 4, stride: 2, padding: 1, bias: false, weightVariant: 'gemm' },
  // Forward / backward-data variants (every applicable one is checked on every case; these pin the choice).
  { label: 'pixels, batch 1, k4 s2 p1, odd 19x17 (out 9x8), bias, 16-row tiles + partial', batch: 1, inChannels: 5, outChannels: 20, height: 19, width: 17, kernel: 4, stride: 2, padding: 1, bias: true, forwardVariant: 'pixels', dataVariant: 'pixels' },
  { label: 'pixels, k3 s1 p1, odd 9x9, 27 taps, scalar stores', batch: 2, inChannels: 3, outChannels: 7, height: 9, width: 9, kernel: 3, stride: 1, padding: 1, bias: false, forwardVariant: 'pixels', dataVariant: 'pixels' },
  { label: 'pixels, 4x4 maps k3 s1 p1, vec4 stores, bias', batch: 4, inChannels: 6, outChannels: 18, height: 4, width: 4, kernel: 3, stride: 1, padding: 1, bias: true, forwardVariant: 'pixels', dataVariant: 'pixels' },
  { label: 'pixels with live taps only, 1x5 maps k3 s1 p1, batch 16', batch: 16, inChannels: 3, outChannels: 9, height: 1, width: 5, kernel: 3, stride: 1, padding: 1, bias: true, forwardVariant: 'pixels', dataVariant: 'pixels' },
  { label: 'gemm, live taps only, 1x5 maps k3 s1 p1, 27 taps', batch: 2, inChannels: 3, outChannels: 10, height: 1, width: 5, kernel: 3, stride: 1, padding: 1, bias: false, forwardVariant: 'gemm', dataVariant: 'gemm' },
  { label: '1x1 map k3 s1 p1 (centre tap only), bias, dense backward-data', batch: 4, inChannels: 6, outChannels: 10, height: 1, width: 1, kernel: 3, stride: 1, padding: 1, bias: true, forwardVariant: 'gemm', dataVariant: 'dense' },
  { label: '2x2 map k4 s2 p1 (out 1x1, middle 2x2 taps), bias, batch 3', batch: 3, inChannels: 5, outChannels: 9, height: 2, width: 2, kernel: 4, stride: 2, padding: 1, bias: true, forwardVariant: 'gemm', dataVariant: 'dense' },
  { label: 'gemm, 2x2 map k3 s1 p1, batch 1, 36 taps', batch: 1, inChannels: 4, outChannels: 12, height: 2, width: 2, kernel: 3, stride: 1, padding: 1, bias: true, forwardVariant: 'gemm', dataVariant: 'gemm' },
  { label: 'gemm, 3x3 map k4 s2 p1 (out 1x1 via dense), batch 1, odd channels', batch: 1, inChannels: 3, outChannels: 5, height: 3, width: 3, kernel: 4, stride: 2, padding: 1, bias: false, forwardVariant: 'gemm', dataVariant: 'dense' },
];

/** The variant a kernel is, by its name. */
const variantOf = (name: string): BackwardWeightVariant => (/_taps_t\d+x\d+_w\d+$/.test(name) ? 'taps' : 'gemm');
const forwardVariantOf = (name: string): ForwardVariant => (/_win(_sg)?_t\d+x\d+_w\d+$/.test(name) ? 'win' : /_pixels_t\d+x\d+_w\d+$/.test(name) ? 'pixels' : 'gemm');
const dataVariantOf = (name: string): BackwardDataVariant => (/_dense_t\d+x\d+_w\d+$/.test(name) ? 'dense' : forwardVariantOf(name));

describe('conv2d backward-weight variant choice', () => {
  const shape = (Ci: number, Co: number, k: number): Conv2dShape => ({ batch: 4, inChannels: Ci, outChannels: Co, height: 32, width: 32, kernel: k, stride: 1, padding: 1 });
  it.each([
    [shape(24, 16, 3), 'taps'],
    [shape(4, 3, 3), 'taps'],
    [shape(256, 512, 4), 'taps'],
    [shape(2, 32, 3), 'taps'],
    [shape(1, 32, 4), 'taps'],
    [shape(1, 64, 3), 'gemm'],
    [shape(1, 8, 1), 'gemm'],
  ] as [Conv2dShape, BackwardWeightVariant][])('%o -> %s', (s, v) => {
    expect(variantOf(conv2dBackwardWeightKernel(s).name)).toBe(v);
    expect(variantOf(conv2dBackwardWeightVariant(s, v === 'gemm' ? 'taps' : 'gemm').name)).not.toBe(v);
  });
  for (const c of CASES.filter((c) => c.weightVariant)) {
    it(`${c.label} -> ${c.weightVariant}`, () => expect(variantOf(conv2dBackwardWeightKernel(c).name)).toBe(c.weightVariant));
  }
});

describe('conv2d forward / backward-data variant choice', () => {
  const conv = (N: number, Ci: number, Co: number, h: number, k: number, s: number, p: number): Conv2dShape => ({
    batch: N, inChannels: Ci, outChannels: Co, height: h, width: h, kernel: k, stride: s, padding: p,
  });
  // The small step's shapes (scripts/bench-kernels.ts SHAPES=fwdsmall) and bench.ts CONVS.
  it.each([
    [conv(4, 64, 128, 8, 4, 2, 1), 'pixels', 'pixels'],
    [conv(4, 128, 128, 4, 3, 1, 1), 'pixels', 'pixels'],
    [conv(4, 144, 128, 1, 3, 1, 1), 'gemm', 'dense'],
    [conv(4, 256, 512, 2, 4, 2, 1), 'gemm', 'dense'],
    [conv(4, 16, 32, 8, 4, 2, 1), 'pixels', 'pixels'],
    [conv(4, 128, 256, 4, 4, 2, 1), 'gemm', 'gemm'],
    [conv(8, 64, 64, 32, 3, 1, 1), 'win', 'win'],
    [conv(8, 128, 128, 16, 3, 1, 1), 'win', 'win'],
    [conv(8, 64, 128, 32, 4, 2, 1), 'win', 'pixels'],
  ] as [Conv2dShape, ForwardVariant, BackwardDataVariant][])('%o -> %s, %s', (s, f, d) => {
    expect(forwardVariantOf(conv2dForwardKernel(s).name)).toBe(f);
    expect(dataVariantOf(conv2dBackwardDataKernel(s).name)).toBe(d);
  });
  it('names kernels that skip dead taps', () => {
    expect(conv2dForwardKernel(conv(4, 144, 128, 1, 3, 1, 1)).name).toMatch(/_live1x1_/);
    expect(conv2dForwardKernel(conv(4, 256, 512, 2, 4, 2, 1)).name).toMatch(/_live2x2_/);
    expect(conv2dForwardKernel(conv(4, 128, 128, 4, 3, 1, 1)).name).not.toMatch(/_live/);
  });
  it('refuses variants that do not apply', () => {
    expect(() => conv2dForwardVariant(conv(4, 64, 128, 8, 4, 2, 1), 'win')).toThrow(/no windowed/);
    expect(() => conv2dBackwardDataVariant(conv(4, 64, 128, 8, 4, 2, 1), 'dense')).toThrow(/no dense/);
  });
  for (const c of CASES.filter((c) => c.forwardVariant || c.dataVariant)) {
    it(`${c.label} -> ${c.forwardVariant}, ${c.dataVariant}`, () => {
      if (c.forwardVariant) expect(forwardVariantOf(conv2dForwardKernel(c).name)).toBe(c.forwardVariant);
      if (c.dataVariant) expect(dataVariantOf(conv2dBackwardDataKernel(c).name)).toBe(c.dataVariant);
    });
  }
});

describe.skipIf(!torchAvailable())(`conv2d implicit GEMM vs torch (${torchStatus()})`, () => {
  let torch: TorchOracle;
  afterAll(() => torch?.close());

  it.each(CASES)('$label', async (c) => {
    torch = await startTorch();
    const [OH, OW] = conv2dOutputSize(c);
    const k = typeof c.kernel === 'number' ? [c.kernel, c.kernel] : c.kernel;
    const seed = c.inChannels * 7919 + c.outChannels * 104729 + c.height;
    const x = randn([c.batch, c.inChannels, c.height, c.width], seed);
    const w = randn([c.outChannels, c.inChannels, k[0], k[1]], seed + 1, 0.3);
    const bias = randn([c.outChannels], seed + 2);
    const dy = randn([c.batch, c.outChannels, OH, OW], seed + 3);
    const ref = await torch.run(
      `y = F.conv2d(x, w, bias if use_bias else None, stride=stride, padding=padding)
y.backward(dy)
out = {"y": y, "dx": x.grad, "dw": w.grad}`,
      { x, w, bias, dy },
      { grad: ['x', 'w'], vars: { use_bias: c.bias, stride: c.stride ?? 1, padding: c.padding ?? 0 } },
    );

    // The portable kernels, and the subgroup-shuffle variants where the device has the feature.
    const { info } = await getDevice();
    const targets = [NO_FEATURES, ...(info.features.includes('subgroups') ? [{ subgroups: true }] : [])];
    // The chosen kernels per target (only the windowed ones differ), then the
    // other variants that apply to the shape.
    const fwdKernels = targets.map((t) => conv2dForwardKernel(c, t));
    const dataKernels = targets.map((t) => conv2dBackwardDataKernel(c, t));
    if (c.forwardVariant) expect(forwardVariantOf(fwdKernels[0].name)).toBe(c.forwardVariant);
    if (c.dataVariant) expect(dataVariantOf(dataKernels[0].name)).toBe(c.dataVariant);
    for (const v of ['gemm', 'pixels'] as const) {
      if (forwardVariantOf(fwdKernels[0].name) !== v) fwdKernels.push(conv2dForwardVariant(c, v));
    }
    for (const v of ['gemm', 'pixels', ...(OH === 1 && OW === 1 ? ['dense' as const] : [])] as const) {
      if (dataVariantOf(dataKernels[0].name) !== v) dataKernels.push(conv2dBackwardDataVariant(c, v));
    }
    for (const fwd of fwdKernels) {
      // y starts as garbage: the kernel must overwrite every element.
      const fwdData: Record<string, Float32Array | number> = { x: x.data, w: w.data, y: randn(ref.y.shape, 97).data };
      if (c.bias) fwdData.bias = bias.data;
      expectClose((await runKernel(fwd, fwdData)).y, ref.y, 1e-5, fwd.name);
    }
    for (const bwdData of dataKernels) {
      // dx starts as garbage: the kernel must overwrite every element.
      const dx0 = randn(x.shape, 99).data;
      expectClose((await runKernel(bwdData, { dy: dy.data, w: w.data, dx: dx0 })).dx, ref.dx, 1e-4, bwdData.name);
    }

    // The chosen backward-weight kernel, then every variant (dw starts as garbage).
    const chosen = conv2dBackwardWeightKernel(c);
    if (c.weightVariant) expect(variantOf(chosen.name)).toBe(c.weightVariant);
    for (const bwdWeight of [chosen, conv2dBackwardWeightVariant(c, 'gemm'), conv2dBackwardWeightVariant(c, 'taps')]) {
      expectClose((await runKernel(bwdWeight, { x: x.data, dy: dy.data, dw: randn(w.shape, 98).data })).dw, ref.dw, 1e-4, bwdWeight.name);
    }
  });
});

// A batch split over dispatches (compiler/plan/split.ts) sums dw over its
// chunks: the first writes, later ones add. Checked against the overwriting
// form, which the torch cases above check: acc(dw0) = dw0 + write.
describe('conv2d backward-weight accumulate form', () => {
  it.each([
    ['gemm', { batch: 2, inChannels: 1, outChannels: 40, height: 11, width: 9, kernel: 3, stride: 1, padding: 1 }],
    ['taps', { batch: 2, inChannels: 4, outChannels: 6, height: 9, width: 16, kernel: 3, stride: 1, padding: 1 }],
  ] as [BackwardWeightVariant, Conv2dShape][])('%s: adds the product to dw', async (variant, c) => {
    const [OH, OW] = conv2dOutputSize(c);
    const x = randn([c.batch, c.inChannels, c.height, c.width], 5);
    const dy = randn([c.batch, c.outChannels, OH, OW], 6);
    const wShape = [c.outChannels, c.inChannels, 3, 3];
    const dw0 = randn(wShape, 7).data;
    const write = conv2dBackwardWeightVariant(c, variant);
    const acc = conv2dBackwardWeightVariant(c, variant, {}, { accumulate: true });
    expect(acc.name).toContain('_acc');
    const product = (await runKernel(write, { x: x.data, dy: dy.data, dw: randn(wShape, 8).data })).dw;
    const sum = (await runKernel(acc, { x: x.data, dy: dy.data, dw: dw0 })).dw;
    expectClose(sum, { shape: wShape, data: dw0.map((v, i) => v + product[i]) }, 1e-5, acc.name);
  });
});
