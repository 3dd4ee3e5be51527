// conv2d forward and both backward passes on the shared GEMM skeleton in
// gemm.ts. Layouts: input/gradient NCHW, weight OIHW, all contiguous float32.
// Which variant a shape gets is decided here, in the three exported builders.
//
// Windowed passes (forward, and backward-data at stride 1), taken when
// destination rows are a multiple of 8 wide and source rows of 4:
//   uniform rows = destination channels, lanes = 8 consecutive pixels of one
//   destination row, k = (source channel, kh) with the KW taps unrolled. A lane
//   loads the source row segment under its pixels as aligned vec4s once per
//   (channel, kh) and every tap picks compile-time components of it; weights
//   are uniform scalar loads. Fastest measured layout (13-16 GFLOP/s). At
//   stride 1 neighbouring lanes share their window halos through subgroup
//   shuffles (needs the 'subgroups' feature; 15-17 GFLOP/s measured), and
//   backward-data walks dy forwards with a flipped weight, like the forward.
// Implicit-GEMM passes (every other shape), im2col on the uniform side:
//   forward       rows = output pixels (n, oh, ow)   cols = out channels   k = (ci, kh, kw)
//   backward-data rows = input pixels (n, ih, iw)    cols = in channels    k = (co, kh, kw)
//   backward-wgt  rows = out channels               cols = taps (ci, kh, kw) k = (n, oh, ow)
//                 (or rows = taps, cols = out channels, when taps are few; see backwardWeightVariant)
// Pixel decomposition happens once per tile row, padding checks are scalar,
// and lanes load weight / gradient rows; backward-weight with taps on the lanes
// gathers x with per-lane padding masks instead and reads dy as uniform scalars.
// Forward and backward-data have the same swap ('pixels' variants: channels
// uniform, pixels on the lanes gathering x / dy with per-lane masks), chosen
// wherever the pixels fill a SIMD vector of lanes (see forwardVariant), and
// backward-data of a 1x1 output is one plain GEMM ('dense').
// Backward-data of a strided conv is split into stride phases (ih % sh, iw % sw):
// within a phase only every sh-th kernel row can touch a pixel, so iterating
// just those taps avoids the (sh*sw - 1) / (sh*sw) of multiply-adds that a
// plain transposed-conv GEMM would spend on zeros.
// Maps smaller than the kernel (1x1 under k3 p1, 2x2 under k4 s2 p1) have taps
// that only ever read padding; the implicit-GEMM passes iterate only the live
// ones (exact; kernel names get `_live{rows}x{cols}`).
import { convOutSize } from '../ir/shape.ts';
import { chooseTiling, gemmKernel, kContiguousLane, TILE_COLS, type GemmProblem, type GemmTiling } from './gemm.ts';
import type { KernelSpec } from '../../runtime/format/kernel.ts';
import { SizeParams } from './sizes.ts';
import { NO_FEATURES, type KernelTarget } from './target.ts';

export interface Conv2dShape {
  batch: number;
  inChannels: number;
  outChannels: number;
  /** Input height and width. */
  height: number;
  width: number;
  /** Kernel size, stride and zero padding: one number for both axes, or [h, w]. */
  kernel: number | [number, number];
  stride?: number | [number, number];
  padding?: number | [number, number];
}

/** The fully resolved geometry every conv kernel builder works from. */
export interface ConvGeometry {
  N: number;
  Ci: number;
  Co: number;
  H: number;
  W: number;
  KH: number;
  KW: number;
  SH: number;
  SW: number;
  PH: number;
  PW: number;
  OH: number;
  OW: number;
}

function pair(v: number | [number, number] | undefined, fallback: number): [number, number] {
  if (v === undefined) return [fallback, fallback];
  return typeof v === 'number' ? [v, v] : v;
}

/** Resolves a Conv2dShape (output size by PyTorch's rule) and validates it. */
export function convGeometry(s: Conv2dShape): ConvGeometry {
  const [KH, KW] = pair(s.kernel, 1);
  const [SH, SW] = pair(s.stride, 1);
  const [PH, PW] = pair(s.padding, 0);
  const OH = convOutSize(s.height, KH, SH, PH);
  const OW = convOutSize(s.width, KW, SW, PW);
  const g = { N: s.batch, Ci: s.inChannels, Co: s.outChannels, H: s.height, W: s.width, KH, KW, SH, SW, PH, PW, OH, OW };
  for (const [k, v] of Object.entries(g)) {
    if (!Number.isInteger(v) || v < (k === 'PH' || k === 'PW' ? 0 : 1)) {
      throw new Error(`conv2d: invalid geometry, ${k} = ${v} (input ${s.height}x${s.width}, kernel ${KH}x${KW}, stride ${SH}x${SW}, padding ${PH}x${PW})`);
    }
  }
  return g;
}

/** Output spatial size [OH, OW] of a conv2d. */
export function conv2dOutputSize(s: Conv2dShape): [number, number] {
  const g = convGeometry(s);
  return [g.OH, g.OW];
}

/** Multiply-adds x 2 of one conv2d forward; the backward passes do the same useful work. */
export function conv2dFlops(g: ConvGeometry): number {
  return 2 * g.N * g.OH * g.OW * g.Co * g.Ci * g.KH * g.KW;
}

function u(n: number): string {
  return `${n}u`;
}
function i32(n: number): string {
  return `${n}i`;
}

function tag(g: ConvGeometry): string {
  return `n${g.N}_c${g.Ci}_${g.Co}_h${g.H}x${g.W}_k${g.KH}x${g.KW}_s${g.SH}x${g.SW}_p${g.PH}x${g.PW}`;
}

/**
 * The part of a geometry that shapes a kernel's code (kernel size, stride,
 * padding), for kernel names: every conv kernel is size-generic (batch,
 * channels and map sizes come from its params, sizes.ts), so its name must
 * describe every launch sharing its WGSL.
 */
function structure(g: ConvGeometry): string {
  return `k${g.KH}x${g.KW}_s${g.SH}x${g.SW}_p${g.PH}x${g.PW}`;
}

/** Storage declarations in binding order; `vec4Names` are bound as array<vec4<f32>>. */
function declare(bindings: KernelSpec['bindings'], vec4Names: string[] = []): string {
  return bindings
    .map((b, i) => {
      const type = vec4Names.includes(b.name) ? 'array<vec4<f32>>' : 'array<f32>';
      return `@group(0) @binding(${i}) var<storage, ${b.access === 'read' ? 'read' : 'read_write'}> ${b.name}: ${type};`;
    })
    .join('\n');
}

/** A zero-padded load: the index is only used when `ok`, so it never leaves the buffer. */
function paddedLoader(buffer: string): string {
  return `fn load_${buffer}(index: i32, ok: bool) -> f32 {
  return select(0.0, ${buffer}[select(0u, u32(index), ok)], ok);
}`;
}


/**
 * Kernel rows (or columns) that touch the input for some output position,
 * as [first, last + 1): every tap outside it reads only padding, for every
 * output, so iterating just these is exact (a 1x1 map under a k3 p1 kernel
 * has only its centre tap; 2x2 under k4 s2 p1 only the middle 2x2).
 * [0, 0) when no tap touches the input (the output is the bias alone).
 */
function liveTaps(K: number, S: number, P: number, inSize: number, outSize: number): [number, number] {
  let lo = K;
  let hi = 0;
  for (let k = 0; k < K; k++) {
    for (let o = 0; o < outSize; o++) {
      const i = o * S - P + k;
      if (i >= 0 && i < inSize) {
        lo = Math.min(lo, k);
        hi = k + 1;
        break;
      }
    }
  }
  return lo < hi ? [lo, hi] : [0, 0];
}

/**
 * Counters for k = (ci, kh, kw) over the live taps [kh0, kh1) x [kw0, kw1):
 * xOff = ci*H*W + kh*W + kw, wOff = ci*KH*KW + kh*KW + kw (and kh, kw themselves).
 */
function tapCounters(g: ConvGeometry, sz: SizeParams, [kh0, kh1]: [number, number], [kw0, kw1]: [number, number]): { init: string; advance: string } {
  const HW = g.H * g.W;
  const TH = kh1 - kh0;
  const TW = kw1 - kw0;
  return {
    init: `var kh = ${i32(kh0)};\nvar kw = ${i32(kw0)};\nvar xOff = ${i32(kh0)} * ${sz.i('W_I', g.W)} + ${i32(kw0)};\nvar wOff = ${u(kh0 * g.KW + kw0)};`,
    advance: `kw += 1i; xOff += 1i; wOff += 1u;
if (kw == ${i32(kw1)}) { kw = ${i32(kw0)}; kh += 1i; xOff += ${sz.i('X_ROW_NEXT', g.W - TW)}; wOff += ${u(g.KW - TW)};
  if (kh == ${i32(kh1)}) { kh = ${i32(kh0)}; xOff += ${sz.i('X_CH_NEXT', HW - TH * g.W)}; wOff += ${u(g.KH * g.KW - TH * g.KW)}; } }`,
  };
}

/**
 * The forward kernels: `win` (windowed, pixels on the lanes, reading x rows as
 * vec4 windows), `gemm` (implicit GEMM, output pixels uniform, output channels
 * on the lanes) and `pixels` (output channels uniform, output pixels on the
 * lanes gathering x with per-lane padding masks).
 */
export type ForwardVariant = 'win' | 'gemm' | 'pixels';

/**
 * y = conv2d(x, w) (+ bias). Bindings: x [N,Ci,H,W], w [Co,Ci,KH,KW], [bias [Co]], y [N,Co,OH,OW].
 */
export function conv2dForwardKernel(shape: Conv2dShape & { bias?: boolean }, target: KernelTarget = NO_FEATURES): KernelSpec {
  return conv2dForwardVariant(shape, forwardVariant(convGeometry(shape)), target);
}

/** The windowed passes need whole 8-pixel destination row segments and 4-aligned source rows. */
function forwardWindowable(g: ConvGeometry): boolean {
  return g.OW % TILE_COLS === 0 && g.W % 4 === 0;
}

/**
 * The rule. Windowed wherever it applies (13-17 GFLOP/s); otherwise `pixels`
 * when there are at least 64 output pixels (batch x OH x OW), else `gemm`.
 * A lane computes 8 pixels, so 64 fill one 8-lane SIMD vector; with fewer,
 * lanes idle (n2 c128->128 h4 k3, 32 pixels: gemm 1.6 ms, pixels 2.5-3.0;
 * 16 pixels: gemm 1.35-2.3 vs pixels 1.3-1.6, a toss-up), while `gemm`
 * keeps the channels on its lanes. Interleaved medians of scripts/bench-kernels.ts
 * on lavapipe (2 shared cores, load 3-6; ms before -> after, two runs;
 * GFLOP/s count every tap, live or not):
 *   n4 c64->128 h8 k4 s2 (4x4 out):  3.6-6.2 -> 1.6-1.7  pixels
 *   n4 c128->128 h4 k3:              5.2-8.0 -> 1.8-2.3  pixels
 *   n4 c16->32 h8 k4 s2:            0.75-0.91 -> 0.31-0.41 pixels
 *   n4 c144->128 h1 k3 p1:          0.40-0.80 -> 0.16-0.30 gemm, live 1x1
 *   n4 c256->128 h1 k3 p1:          0.59-0.92 -> 0.19-0.23 gemm, live 1x1
 *   n4 c256->512 h2 k4 s2 (1x1 out): 3.7-8.0 -> 1.6-2.0  gemm, live 2x2
 *   n16 c256->512 h8 k4 s2:             383 -> 139       pixels
 *   n4 c64->64 h15 k3 (odd width):       22 -> 16        pixels
 *   n128 c512->1 h4 k4 s4 (logit head):  13 -> 4.6       pixels
 * 16-row tiles (laneGather) over 8: c64->128 h8 1.69 -> 1.50, n16 c256->512
 * 155 -> 146 (backward-data), c16->32 h32 bwd 4.6 -> 1.6; once the other way
 * (c128->128 h4 fwd 1.77 vs 3.26 in one run, 1.64 vs 1.47 in the next): noise.
 * Compile (cache.prepare) 10-220 ms per shader, as before.
 */
export function forwardVariant(g: ConvGeometry): ForwardVariant {
  if (forwardWindowable(g)) return 'win';
  return g.N * g.OH * g.OW >= PIXELS_MIN ? 'pixels' : 'gemm';
}

/** Output pixels (batch x OH x OW) from which the `pixels` variants are chosen: 8 lanes x 8 pixels. */
const PIXELS_MIN = 64;

/**
 * One forward variant by name, whatever the rule would pick, optionally with
 * its tiling overridden (for benches and tests; the planner calls conv2dForwardKernel).
 */
export function conv2dForwardVariant(
  shape: Conv2dShape & { bias?: boolean },
  variant: ForwardVariant,
  target: KernelTarget = NO_FEATURES,
  tiling: Partial<GemmTiling> = {},
): KernelSpec {
  const g = convGeometry(shape);
  const bias = !!shape.bias;
  if (variant === 'win') {
    if (!forwardWindowable(g)) throw new Error(`conv2d forward: no windowed kernel for ${tag(g)}`);
    return forwardWindowed(g, bias, target.subgroups);
  }
  const t = Object.keys(tiling).length
    ? { ...(variant === 'pixels' ? chooseTiling(g.Co, false, true) : chooseTiling(g.N * g.OH * g.OW)), ...tiling }
    : undefined;
  return variant === 'pixels' ? forwardPixels(g, bias, t) : forwardGemm(g, bias, t);
}

function forwardBindings(bias: boolean): KernelSpec['bindings'] {
  return [
    { name: 'x', access: 'read' },
    { name: 'w', access: 'read' },
    ...(bias ? [{ name: 'bias', access: 'read' as const }] : []),
    { name: 'y', access: 'read_write' },
  ];
}

/** Name suffix of a kernel iterating only its live taps. */
function liveTag(g: ConvGeometry, kh: [number, number], kw: [number, number]): string {
  return kh[1] - kh[0] < g.KH || kw[1] - kw[0] < g.KW ? `_live${kh[1] - kh[0]}x${kw[1] - kw[0]}` : '';
}

/**
 * Implicit GEMM: output pixels on the uniform side (scalar x loads with scalar
 * padding checks), output channels on the lanes (weight rows read along k, as
 * vec4s when all taps are live and Ci*KH*KW % 4 == 0).
 */
function forwardGemm(g: ConvGeometry, bias: boolean, tiling?: GemmTiling): KernelSpec {
  const K = g.Ci * g.KH * g.KW;
  const HW = g.H * g.W;
  const OHW = g.OH * g.OW;
  const kh = liveTaps(g.KH, g.SH, g.PH, g.H, g.OH);
  const kw = liveTaps(g.KW, g.SW, g.PW, g.W, g.OW);
  const trimmed = liveTag(g, kh, kw) !== '';
  // Weight rows are contiguous along k = (ci, kh, kw): 4 taps per vec4 when K allows.
  const vectorised = !trimmed && K % 4 === 0;
  const step = vectorised ? 4 : 1;
  const bindings = forwardBindings(bias);
  const sz = new SizeParams();
  const [H, W, OW, OHW_, K_] = [sz.u('H', g.H), sz.u('W', g.W), sz.u('OW', g.OW), sz.u('OHW', OHW), sz.u('K', K)];
  // Over the live taps only, a tap at a time, with a weight counter.
  const live = tapCounters(g, sz, kh, kw);
  return gemmKernel({
    name: `conv2d_fwd_${structure(g)}${bias ? '_bias' : ''}${liveTag(g, kh, kw)}${vectorised ? '_v4' : ''}`,
    rows: g.N * OHW,
    cols: g.Co,
    groups: 1,
    bindings,
    sizes: sz,
    declarations: `${declare(bindings, vectorised ? ['w'] : [])}\n${paddedLoader('x')}`,
    rowSetup: (i) => `let img${i} = row${i} / ${OHW_};
let pix${i} = row${i} % ${OHW_};
let ih${i} = i32(pix${i} / ${OW} * ${u(g.SH)}) - ${i32(g.PH)};
let iw${i} = i32(pix${i} % ${OW} * ${u(g.SW)}) - ${i32(g.PW)};
let xBase${i} = i32(img${i} * ${sz.u('CI_HW', g.Ci * HW)}) + ih${i} * ${sz.i('W_I', g.W)} + iw${i};
let yBase${i} = img${i} * ${sz.u('CO_OHW', g.Co * OHW)} + pix${i};`,
    // Counters for k = (ci, kh, kw): xOff = ci*H*W + kh*W + kw.
    loop: trimmed
      ? { init: live.init, iterations: sz.u('ITERS', g.Ci * (kh[1] - kh[0]) * (kw[1] - kw[0])), step: 1, advance: live.advance }
      : {
          init: 'var kh = 0i;\nvar kw = 0i;\nvar xOff = 0i;',
          iterations: sz.u('ITERS', K / step),
          step,
          subAdvance: `kw += 1i; xOff += 1i;
if (kw == ${i32(g.KW)}) { kw = 0i; kh += 1i; xOff += ${sz.i('X_ROW_NEXT', g.W - g.KW)};
  if (kh == ${i32(g.KH)}) { kh = 0i; xOff += ${sz.i('X_CH_NEXT', HW - g.KH * g.W)}; } }`,
          advance: '',
        },
    uniformAt: (i) => `load_x(xBase${i} + xOff, u32(ih${i} + kh) < ${H} && u32(iw${i} + kw) < ${W})`,
    lane: trimmed
      ? { loads: [...Array(TILE_COLS).keys()].map((j) => ({ expr: `w[col${j} * ${K_} + wOff]`, at: 0 })), element: (j) => `lv${j}` }
      : kContiguousLane((col) => `${col} * ${K_} + k`, step, vectorised, 'w'),
    store: (i, col, value) => `y[yBase${i} + ${col} * ${OHW_}] = ${value}${bias ? ` + bias[${col}]` : ''};`,
    flops: conv2dFlops(g),
  }, tiling);
}

/**
 * Output channels on the uniform side (weight rows as uniform scalar loads,
 * contiguous along k), output pixels (n, oh, ow) on the lanes: each lane
 * gathers x under its 8 pixels with per-lane padding masks and stores 8
 * pixels of one channel (vec4s when OH*OW % 4 == 0). Live taps only.
 */
function forwardPixels(g: ConvGeometry, bias: boolean, tiling?: GemmTiling): KernelSpec {
  const K = g.Ci * g.KH * g.KW;
  const HW = g.H * g.W;
  const OHW = g.OH * g.OW;
  const kh = liveTaps(g.KH, g.SH, g.PH, g.H, g.OH);
  const kw = liveTaps(g.KW, g.SW, g.PW, g.W, g.OW);
  const vecStore = OHW % 4 === 0;
  const bindings = forwardBindings(bias);
  const sz = new SizeParams();
  const [H, W, OW, OHW_] = [sz.u('H', g.H), sz.u('W', g.W), sz.u('OW', g.OW), sz.u('OHW', OHW)];
  const live = tapCounters(g, sz, kh, kw);
  const laneSetup = [...Array(TILE_COLS).keys()]
    .map((j) => `let pimg${j} = col${j} / ${OHW_};
let ppix${j} = col${j} % ${OHW_};
let pih${j} = i32(ppix${j} / ${OW} * ${u(g.SH)}) - ${i32(g.PH)};
let piw${j} = i32(ppix${j} % ${OW} * ${u(g.SW)}) - ${i32(g.PW)};
let px${j} = i32(pimg${j} * ${sz.u('CI_HW', g.Ci * HW)}) + pih${j} * ${sz.i('W_I', g.W)} + piw${j};
let py${j} = pimg${j} * ${sz.u('CO_OHW', g.Co * OHW)} + ppix${j};`)
    .join('\n');
  return gemmKernel({
    name: `conv2d_fwd_${structure(g)}${bias ? '_bias' : ''}${liveTag(g, kh, kw)}${vecStore ? '_v4' : ''}_pixels`,
    rows: g.Co,
    cols: g.N * OHW,
    groups: 1,
    laneGather: true,
    bindings,
    sizes: sz,
    declarations: `${declare(bindings, vecStore ? ['y'] : [])}\n${paddedLoader('x')}`,
    rowSetup: (i) => `let wRow${i} = row${i} * ${sz.u('K', K)};`,
    laneSetup,
    loop: { init: live.init, iterations: sz.u('ITERS', g.Ci * (kh[1] - kh[0]) * (kw[1] - kw[0])), step: 1, advance: live.advance },
    uniformAt: (i) => `w[wRow${i} + wOff]`,
    lane: {
      loads: [...Array(TILE_COLS).keys()].map((j) => ({
        expr: `load_x(px${j} + xOff, u32(pih${j} + kh) < ${H} && u32(piw${j} + kw) < ${W})`,
        at: 0,
      })),
      element: (j) => `lv${j}`,
    },
    store: (i, _col, value, j) => `y[py${j} + row${i} * ${OHW_}] = ${value}${bias ? ` + bias[row${i}]` : ''};`,
    storeVec4: vecStore
      ? (i, q, value) => `y[(py${4 * q} + row${i} * ${OHW_}) / 4u] = ${value}${bias ? ` + vec4<f32>(bias[row${i}])` : ''};`
      : undefined,
    flops: conv2dFlops(g),
  }, tiling);
}

/**
 * A convolution-shaped pass with destination pixels on the lanes ("windowed"):
 * each invocation computes 8 uniform-side channels x 8 consecutive pixels of
 * one destination row. One GEMM iteration reads one source channel (or one
 * source row of it when the kernel is large): per kernel row, the lane loads
 * the source row segment under its 8 pixels, all KW taps, as aligned vec4s,
 * and each tap is a sub-step picking compile-time components of that window.
 * Weights are uniform scalar loads. The source position of destination pixel
 * (r, c) and tap (kh, kw) is (r * rs + r0 + rk * kh, c * cs + c0 + ck * kw).
 * Needs destination rows % 8 == 0 (8 pixels never straddle rows) and source
 * rows % 4 == 0 (rows start 4-aligned, so a window's offset into its first
 * vec4 is a constant).
 */
interface WindowedPass {
  name: string;
  /** The device has the 'subgroups' feature: neighbouring lanes may share halos by shuffles. */
  subgroups: boolean;
  g: ConvGeometry;
  bindings: KernelSpec['bindings'];
  /** Binding names: source (read as vec4 windows), destination (written as vec4s). */
  src: string;
  dst: string;
  /** Uniform-side channels (rows of the GEMM) and source channels (the reduction). */
  channels: number;
  srcChannels: number;
  /** Source and destination spatial sizes. */
  srcH: number;
  srcW: number;
  dstH: number;
  dstW: number;
  rs: number;
  r0: number;
  rk: 1 | -1;
  cs: number;
  c0: number;
  ck: 1 | -1;
  /** Weight index of (row channel i, tap) = row{i} * weightRowStride + wOff + tap; wOff += weightSrcStride per source channel. */
  weightRowStride: number;
  weightSrcStride: number;
  /** Taps read the weight flipped: tap (kh, kw) uses w[.., KH-1-kh, KW-1-kw] (transposed convs). */
  weightFlip?: boolean;
  bias: boolean;
}

function windowedPass(p: WindowedPass): KernelSpec {
  const { g } = p;
  const KHW = g.KH * g.KW;
  const srcHW = p.srcH * p.srcW;
  const dstHW = p.dstH * p.dstW;
  // Window: source columns ws + [0, span); ws = c * cs + cMin with c a multiple of 8,
  // so ws mod 4 == cMin mod 4 =: lead, and the window starts lead floats into the
  // aligned vec4 at a0 = ws - lead.
  const cMin = p.c0 + Math.min(0, p.ck * (g.KW - 1));
  const lead = ((cMin % 4) + 4) % 4;
  const span = (TILE_COLS - 1) * p.cs + g.KW;
  const windowVecs = Math.ceil((lead + span) / 4);
  const lastVec = (g.N * p.srcChannels * srcHW) / 4 - 1;
  // Loop-invariant validity of the window's 4-column groups; a group that is
  // inside the row for every lane (first lane's start >= 0, last lane's end
  // < srcW) needs only the row check.
  const firstA0 = cMin - lead;
  const lastA0 = (p.dstW - TILE_COLS) * p.cs + cMin - lead;
  const alwaysInRow = (v: number) => firstA0 + 4 * v >= 0 && lastA0 + 4 * v + 3 < p.srcW;
  // Sizes come from the params (size-generic); which masks exist is code, but
  // depends on the sizes only through the padding and stride (the source and
  // destination widths are tied by them), so launches of one structure share it.
  const sz = new SizeParams();
  const colMasks = [...Array(windowVecs).keys()]
    .filter((v) => !alwaysInRow(v))
    .map((v) => `let colOk${v} = vec4<u32>(vec4<i32>(a0 + ${i32(4 * v)}) + vec4<i32>(0i, 1i, 2i, 3i)) < vec4<u32>(${sz.u('SRC_W', p.srcW)});`)
    .join('\n');
  const windowMask = (v: number) => (alwaysInRow(v) ? 'vec4<bool>(rowOk)' : `colOk${v} & vec4<bool>(rowOk)`);
  // Halo sharing through subgroup shuffles (lavapipe: per-lane vec4 loads are
  // gathers and dominate; sharing halves them, measured 8-15% faster for the
  // 3x3 passes). With stride 1 and a 4-vec4 window that starts one vec4 before
  // the lane's 8 pixels, the window's first / last vec4 are exactly the
  // previous / next lane's own middle vec4s whenever they lie inside the row
  // (those lanes then cover the same source row); outside the row they are
  // masked to zero anyway. Needs rows that never straddle a workgroup
  // (64 % dstW == 0) and a row's last lane whose right halo lies outside the
  // row (srcW <= dstW). Relies on the workgroup's 8 invocations forming one
  // subgroup when the subgroup size is >= 8 (lanes are then numbered by
  // subgroup id); smaller subgroups run a second copy of the loop that loads
  // the halo itself. Kernels using it need the 'subgroups' device feature.
  const shuffle = p.subgroups && p.cs === 1 && windowVecs === 4 && cMin - lead === -4 && 64 % p.dstW === 0 && p.srcW <= p.dstW
    && !alwaysInRow(0) && !alwaysInRow(3);
  const LAST_VEC = sz.u('LAST_VEC', lastVec);
  const [DST_HW, DST_W, SRC_CH_HW, SRC_W_I] = [sz.u('DST_HW', dstHW), sz.u('DST_W', p.dstW), sz.u('SRC_CH_HW', p.srcChannels * srcHW), sz.i('SRC_W_I', p.srcW)];
  const windowLoad = (v: number) => `select(vec4<f32>(0.0), ${p.src}[min(u32(max(xv + ${i32(v)}, 0i)), ${LAST_VEC})], ${windowMask(v)})`;
  // Window vec4 v lives in lv{lvOf[v]} (own vec4s are loaded first, the shuffled halo after).
  const lvOf = shuffle ? [2, 0, 1, 3] : [...Array(windowVecs).keys()];
  const plainOrder = shuffle ? [1, 2, 0, 3] : [...Array(windowVecs).keys()];
  const laneLoads = plainOrder.map(windowLoad);
  const sharedHalo = shuffle
    ? {
        when: 'sgSize >= 8u',
        loads: [windowLoad(1), windowLoad(2), `select(vec4<f32>(0.0), subgroupShuffleUp(lv1, 1u), ${windowMask(0)})`, `select(vec4<f32>(0.0), subgroupShuffleDown(lv0, 1u), ${windowMask(3)})`].map((expr) => ({ expr, at: 0 })),
      }
    : undefined;
  const along = p.rk > 0 ? '+' : '-';
  return gemmKernel({
    name: shuffle ? `${p.name}_sg` : p.name,
    laneWindow: true,
    rows: p.channels,
    cols: g.N * dstHW,
    groups: 1,
    bindings: p.bindings,
    sizes: sz,
    declarations: `${shuffle ? 'enable subgroups;\n' : ''}${declare(p.bindings, [p.src, p.dst])}`,
    entryParams: shuffle ? '@builtin(subgroup_size) sgSize: u32, @builtin(subgroup_invocation_id) sgId: u32' : undefined,
    // With subgroups of 8 or more the workgroup's 8 invocations are one subgroup:
    // number the lanes by subgroup id so shuffle neighbours are pixel neighbours.
    // sgOk is uniform (a constant on lavapipe, so the fallback folds away).
    laneIndex: shuffle ? 'select(lid.x, sgId, sgSize >= 8u)' : undefined,
    rowSetup: () => '',
    laneSetup: `let img = col0 / ${DST_HW};
let pix = col0 % ${DST_HW};
let sr0 = i32(pix / ${DST_W} * ${u(p.rs)}) + ${i32(p.r0)};
let a0 = i32(pix % ${DST_W} * ${u(p.cs)}) + ${i32(cMin - lead)};
let srcLane = i32(img * ${SRC_CH_HW}) + sr0 * ${SRC_W_I} + a0;
let dstLane = img * ${sz.u('DST_CH_HW', p.channels * dstHW)} + pix;
${colMasks}`,
    // One iteration per (source channel, kernel row kh), the KW taps unrolled.
    // (Unrolling all KH*KW taps per iteration was measured: slower, and 4-12 s of JIT.)
    // Counters: srcOff = source channel * srcH*srcW + rk * kh * srcW,
    // wOff = source channel * weightSrcStride + kh * KW.
    // A flipped weight walks its kernel rows backwards: wOff starts at the last
    // row and wraps (u32) below the channel's start before the channel advance.
    loop: {
      init: `var kh = 0i;\nvar srcOff = 0i;\nvar wOff = ${u(p.weightFlip ? KHW - g.KW : 0)};`,
      iterations: sz.u('ITERS', p.srcChannels * g.KH),
      step: g.KW,
      prelude: `let rowOk = u32(sr0 ${along} kh) < ${sz.u('SRC_H', p.srcH)};\nlet xv = (srcLane + srcOff) / 4i;`,
      advance: `kh += 1i; srcOff ${along}= ${SRC_W_I}; wOff ${p.weightFlip ? '-' : '+'}= ${u(g.KW)};
if (kh == ${i32(g.KH)}) { kh = 0i; srcOff += ${sz.i('SRC_NEXT', srcHW + (p.rk > 0 ? -1 : 1) * g.KH * p.srcW)}; wOff += ${sz.u('W_NEXT', p.weightFlip ? p.weightSrcStride + KHW : p.weightSrcStride - KHW)}; }`,
    },
    uniformAt: (i, kw) => `w[row${i} * ${sz.u('W_ROW', p.weightRowStride)} + wOff + ${u(p.weightFlip ? g.KW - 1 - kw : kw)}]`,
    lane: {
      loads: laneLoads.map((expr) => ({ expr, at: 0 })),
      alternative: sharedHalo,
      element: (j, kw) => {
        const e = lead + j * p.cs + (p.c0 + p.ck * kw - cMin);
        return `lv${lvOf[e >> 2]}[${e & 3}]`;
      },
    },
    store: () => '',
    storeVec4: (i, q, value) =>
      `${p.dst}[(dstLane + row${i} * ${DST_HW}) / 4u + ${u(q)}] = ${value}${p.bias ? ` + vec4<f32>(bias[row${i}])` : ''};`,
    flops: conv2dFlops(g),
  });
}

/** Forward as a windowed pass: y rows on the lanes, x windows, w[co, ci, kh, kw]. */
function forwardWindowed(g: ConvGeometry, bias: boolean, subgroups: boolean): KernelSpec {
  const KHW = g.KH * g.KW;
  return windowedPass({
    name: `conv2d_fwd_${structure(g)}${bias ? '_bias' : ''}_win`,
    subgroups,
    g,
    bindings: [
      { name: 'x', access: 'read' },
      { name: 'w', access: 'read' },
      ...(bias ? [{ name: 'bias', access: 'read' as const }] : []),
      { name: 'y', access: 'read_write' },
    ],
    src: 'x',
    dst: 'y',
    channels: g.Co,
    srcChannels: g.Ci,
    srcH: g.H,
    srcW: g.W,
    dstH: g.OH,
    dstW: g.OW,
    rs: g.SH,
    r0: -g.PH,
    rk: 1,
    cs: g.SW,
    c0: -g.PW,
    ck: 1,
    weightRowStride: g.Ci * KHW,
    weightSrcStride: KHW,
    bias,
  });
}

/**
 * The backward-data kernels: `win` (stride 1, windowed, input pixels on the
 * lanes), `gemm` (stride phases, input pixels uniform, input channels on the
 * lanes) and `pixels` (stride phases, input channels uniform, input pixels on
 * the lanes gathering dy with per-lane masks) and `dense` (a 1x1 output:
 * one plain GEMM over all input pixels, no phases).
 */
export type BackwardDataVariant = 'win' | 'gemm' | 'pixels' | 'dense';

/**
 * dx = conv2d_input_grad(dy, w), overwriting dx. Bindings: dy [N,Co,OH,OW], w [Co,Ci,KH,KW], dx [N,Ci,H,W].
 */
export function conv2dBackwardDataKernel(shape: Conv2dShape, target: KernelTarget = NO_FEATURES): KernelSpec {
  return conv2dBackwardDataVariant(shape, backwardDataVariant(convGeometry(shape)), target);
}

function backwardDataWindowable(g: ConvGeometry): boolean {
  return g.SH === 1 && g.SW === 1 && g.W % TILE_COLS === 0 && g.OW % 4 === 0;
}

/**
 * The rule: windowed wherever it applies; `dense` for a 1x1 output; otherwise
 * `pixels` when a stride phase has at least 64 input pixels (batch x
 * ceil(H / SH) x ceil(W / SW), as for the forward), else `gemm`.
 * Interleaved medians (ms before -> after, two runs, as for forwardVariant):
 *   n4 c64->128 h8 k4 s2:          1.9-2.7 -> 1.6-1.8  pixels
 *   n4 c128->128 h4 k3:            4.2-6.9 -> 3.3-4.0  pixels
 *   n4 c16->32 h8 k4 s2:          0.87-0.97 -> 0.35-0.54 pixels
 *   n4 c144->128 h1 k3 p1:        0.59-0.92 -> 0.16-0.28 dense
 *   n4 c256->128 h1 k3 p1:        0.62-0.90 -> 0.21-0.30 dense
 *   n4 c256->512 h2 k4 s2:         4.9-10.0 -> 0.95 (load 3.7; 8.0 at load 6) dense
 *   n128 c512->1 h4 k4 s4:              2.4 -> 1.1      dense
 *   n4 c3->64 h64 k4 s2:                 81 -> 12.5     pixels
 *   n4 c8->16 h64 k4 s2:                 23 -> 2.2      pixels
 *   n4 c16->32 h32 k4 s2:                12 -> 1.6      pixels
 *   n8 c64->128 h32 k4 s2 (bench.ts):   126 -> 92       pixels
 *   n16 c128->256 h16 k4 s2:            202 -> 154      pixels
 *   n4 c64->64 h15 k3 (odd width):     13.6 -> 14.3, 17.1 -> 18.9: a toss-up
 * Below 64 pixels `gemm` (n1 c128->128 h4 k3, 16 pixels: 0.79 vs 1.7-2.7
 * pixels). `dense` beats both phase variants on every 1x1 output measured
 * (c256->512 h2: 3.4 gemm -> 0.89, n64 c256->64 h2: 1.6 -> 0.86).
 */
export function backwardDataVariant(g: ConvGeometry): BackwardDataVariant {
  if (backwardDataWindowable(g)) return 'win';
  if (g.OH === 1 && g.OW === 1) return 'dense';
  return g.N * Math.ceil(g.H / g.SH) * Math.ceil(g.W / g.SW) >= PIXELS_MIN ? 'pixels' : 'gemm';
}

/** One backward-data variant by name, optionally with its tiling overridden (benches and tests). */
export function conv2dBackwardDataVariant(
  shape: Conv2dShape,
  variant: BackwardDataVariant,
  target: KernelTarget = NO_FEATURES,
  tiling: Partial<GemmTiling> = {},
): KernelSpec {
  const g = convGeometry(shape);
  if (variant === 'win') {
    if (!backwardDataWindowable(g)) throw new Error(`conv2d backward-data: no windowed kernel for ${tag(g)}`);
    return backwardDataWindowed(g, target.subgroups);
  }
  if (variant === 'dense') {
    if (g.OH !== 1 || g.OW !== 1) throw new Error(`conv2d backward-data: no dense kernel for ${tag(g)} (output not 1x1)`);
    return backwardDataDense(g, Object.keys(tiling).length ? { ...chooseTiling(g.N), ...tiling } : undefined);
  }
  const phasePixels = g.N * Math.ceil(g.H / g.SH) * Math.ceil(g.W / g.SW);
  const t = Object.keys(tiling).length
    ? { ...(variant === 'pixels' ? chooseTiling(g.Ci, false, true) : chooseTiling(phasePixels)), ...tiling }
    : undefined;
  return variant === 'pixels' ? backwardDataPixels(g, t) : backwardData(g, t);
}

const BWD_DATA_BINDINGS: KernelSpec['bindings'] = [
  { name: 'dy', access: 'read' },
  { name: 'w', access: 'read' },
  { name: 'dx', access: 'read_write' },
];

/**
 * Stride-1 backward-data as a windowed pass: dx[ih, iw] gathers
 * dy[ih + PH - kh, iw + PW - kw] over co, with w[co, ci, kh, kw]. Written as a
 * forward conv of dy with the flipped weight (tap t reads dy[ih + PH - KH + 1 + t]
 * and w[.., KH-1-t]), so dy windows are walked forwards exactly like x in
 * the forward pass; measured ~6-8% faster on lavapipe than walking dy
 * backwards (rk = ck = -1) with the weight unflipped.
 */
function backwardDataWindowed(g: ConvGeometry, subgroups: boolean): KernelSpec {
  const KHW = g.KH * g.KW;
  return windowedPass({
    name: `conv2d_bwd_data_${structure(g)}_win`,
    subgroups,
    g,
    bindings: BWD_DATA_BINDINGS,
    src: 'dy',
    dst: 'dx',
    channels: g.Ci,
    srcChannels: g.Co,
    srcH: g.OH,
    srcW: g.OW,
    dstH: g.H,
    dstW: g.W,
    rs: 1,
    r0: g.PH - (g.KH - 1),
    rk: 1,
    cs: 1,
    c0: g.PW - (g.KW - 1),
    ck: 1,
    weightRowStride: KHW,
    weightSrcStride: g.Ci * KHW,
    weightFlip: true,
    bias: false,
  });
}

/**
 * The live taps of each stride phase p (input positions i = iq * S + p) along
 * one axis: kernel positions k = k0, k0 + S, ... (taps of them), reaching
 * output o = iq + d with d = d0, d0 - 1, ...; only those that reach an output
 * for some input position of the phase, so a phase whose taps all fall in
 * padding (a 1x1 or 2x2 map under a larger kernel) iterates none of them.
 */
function phaseTaps(K: number, S: number, P: number, inSize: number, outSize: number): { k0: number; d0: number; taps: number }[] {
  return [...Array(S).keys()].map((p) => {
    const inPhase = Math.ceil((inSize - p) / S);
    const live = [...Array(K).keys()].filter((k) => {
      if ((((p + P - k) % S) + S) % S !== 0) return false;
      const d = (p + P - k) / S;
      return inPhase > 0 && d <= outSize - 1 && d + inPhase - 1 >= 0;
    });
    if (!live.length) return { k0: 0, d0: 0, taps: 0 };
    return { k0: live[0], d0: (p + P - live[0]) / S, taps: (live[live.length - 1] - live[0]) / S + 1 };
  });
}

/** A uniform value per phase: a constant, or a select chain on the phase index. */
function perPhase(values: number[], index: string, suffix: 'u' | 'i'): string {
  if (values.every((v) => v === values[0])) return `${values[0]}${suffix}`;
  return values.slice(1).reduce((acc, v, p) => `select(${acc}, ${v}${suffix}, ${index} == ${u(p + 1)})`, `${values[0]}${suffix}`);
}

/**
 * The stride phases' shared set-up and tap loop (both phase variants): group
 * = phase (ph, pw); per phase, kh0 / kw0 its first tap, dh0 / dw0 where that
 * tap reaches, tapsH / tapsW how many; the loop walks k = (co, kh, kw) with
 * dyOff = co*OH*OW + dh*OW + dw and wOff = co*Ci*KH*KW + kh*KW + kw.
 * Where every tap of the phase's stride class is live, the per-phase values are
 * computed in WGSL as before; else (maps smaller than the kernel) they come
 * from tables of the live taps, and the name gets `_live`.
 */
function phaseLoop(g: ConvGeometry, sz: SizeParams): { groupSetup: string; loop: GemmProblem['loop']; live: string } {
  const OHW = g.OH * g.OW;
  const KHW = g.KH * g.KW;
  const th = phaseTaps(g.KH, g.SH, g.PH, g.H, g.OH);
  const tw = phaseTaps(g.KW, g.SW, g.PW, g.W, g.OW);
  // What the plain formula gives: every tap of the phase's class, live or not.
  const all = (K: number, S: number, P: number) =>
    [...Array(S).keys()].map((p) => {
      const k0 = (p + P) % S;
      return { k0, d0: (p + P - k0) / S, taps: k0 < K ? Math.ceil((K - k0) / S) : 0 };
    });
  const same = (a: { k0: number; d0: number; taps: number }[], b: typeof a) => a.every((x, p) => x.taps === b[p].taps && (!x.taps || (x.k0 === b[p].k0 && x.d0 === b[p].d0)));
  const trimmed = !same(th, all(g.KH, g.SH, g.PH)) || !same(tw, all(g.KW, g.SW, g.PW));
  const loop = {
    init: 'var co = 0u;\nvar kh = kh0;\nvar kw = kw0;\nvar dh = dh0;\nvar dw = dw0;',
    iterations: `${sz.u('CO', g.Co)} * tapsH * tapsW`,
    step: 1,
    prelude: `let dyOff = i32(co * ${sz.u('OHW', OHW)}) + dh * ${sz.i('OW_I', g.OW)} + dw;\nlet wOff = co * ${sz.u('CI_KHW', g.Ci * KHW)} + kh * ${u(g.KW)} + kw;`,
    advance: `kw += ${u(g.SW)}; dw -= 1i;
if (kw >= ${trimmed ? 'kwEnd' : u(g.KW)}) { kw = kw0; dw = dw0; kh += ${u(g.SH)}; dh -= 1i;
  if (kh >= ${trimmed ? 'khEnd' : u(g.KH)}) { kh = kh0; dh = dh0; co += 1u; } }`,
  };
  if (!trimmed) {
    return {
      live: '',
      loop,
      groupSetup: `let ph = group / ${u(g.SW)};
let pw = group % ${u(g.SW)};
let kh0 = (ph + ${u(g.PH)}) % ${u(g.SH)};
let kw0 = (pw + ${u(g.PW)}) % ${u(g.SW)};
let dh0 = i32((ph + ${u(g.PH)} - kh0) / ${u(g.SH)});
let dw0 = i32((pw + ${u(g.PW)} - kw0) / ${u(g.SW)});
let tapsH = select(0u, (${u(g.KH)} - kh0 + ${u(g.SH - 1)}) / ${u(g.SH)}, kh0 < ${u(g.KH)});
let tapsW = select(0u, (${u(g.KW)} - kw0 + ${u(g.SW - 1)}) / ${u(g.SW)}, kw0 < ${u(g.KW)});`,
    };
  }
  const most = (t: { taps: number }[]) => Math.max(...t.map((x) => x.taps));
  return {
    live: `_live${most(th)}x${most(tw)}`,
    loop,
    groupSetup: `let ph = group / ${u(g.SW)};
let pw = group % ${u(g.SW)};
let kh0 = ${perPhase(th.map((x) => x.k0), 'ph', 'u')};
let kw0 = ${perPhase(tw.map((x) => x.k0), 'pw', 'u')};
let dh0 = ${perPhase(th.map((x) => x.d0), 'ph', 'i')};
let dw0 = ${perPhase(tw.map((x) => x.d0), 'pw', 'i')};
let tapsH = ${perPhase(th.map((x) => x.taps), 'ph', 'u')};
let tapsW = ${perPhase(tw.map((x) => x.taps), 'pw', 'u')};
let khEnd = kh0 + tapsH * ${u(g.SH)};
let kwEnd = kw0 + tapsW * ${u(g.SW)};`,
  };
}

/**
 * Split into stride phases (ih % SH, iw % SW), one GEMM group each.
 * Within a phase only kernel rows kh = kh0, kh0 + SH, ... reach a pixel, at
 * oh = ihq + dh with dh = (ph + PH - kh) / SH exact, so iterating just those
 * taps skips the (SH*SW - 1) / (SH*SW) of multiply-adds a transposed-conv GEMM
 * would spend on zeros. The taps depend on the phase (a runtime-uniform value),
 * so they are walked by counters, one tap per iteration.
 * Input pixels of the phase on the uniform side (scalar dy loads, scalar
 * bounds checks), input channels on the lanes (scalar weight loads, stride KH*KW).
 */
function backwardData(g: ConvGeometry, tiling?: GemmTiling): KernelSpec {
  const HW = g.H * g.W;
  const OHW = g.OH * g.OW;
  const KHW = g.KH * g.KW;
  // Pixels of one phase: a grid of ceil(H / SH) x ceil(W / SW) (phase 0 is the largest;
  // rows past a smaller phase's edge are computed and not stored).
  const HQ = Math.ceil(g.H / g.SH);
  const WQ = Math.ceil(g.W / g.SW);
  const sz = new SizeParams();
  const phases = phaseLoop(g, sz);
  const [HQWQ, WQ_, OH, OW, H, W] = [sz.u('HQWQ', HQ * WQ), sz.u('WQ', WQ), sz.u('OH', g.OH), sz.u('OW', g.OW), sz.u('H', g.H), sz.u('W', g.W)];
  return gemmKernel({
    name: `conv2d_bwd_data_${structure(g)}${phases.live}`,
    rows: g.N * HQ * WQ,
    cols: g.Ci,
    groups: g.SH * g.SW,
    bindings: BWD_DATA_BINDINGS,
    sizes: sz,
    declarations: `${declare(BWD_DATA_BINDINGS)}\n${paddedLoader('dy')}`,
    groupSetup: phases.groupSetup,
    rowSetup: (i) => `let img${i} = row${i} / ${HQWQ};
let ihq${i} = i32(row${i} % ${HQWQ} / ${WQ_});
let iwq${i} = i32(row${i} % ${WQ_});
let ih${i} = u32(ihq${i}) * ${u(g.SH)} + ph;
let iw${i} = u32(iwq${i}) * ${u(g.SW)} + pw;
let dyBase${i} = i32(img${i} * ${sz.u('CO_OHW', g.Co * OHW)}) + ihq${i} * ${sz.i('OW_I', g.OW)} + iwq${i};
let dxBase${i} = img${i} * ${sz.u('CI_HW', g.Ci * HW)} + ih${i} * ${W} + iw${i};`,
    loop: phases.loop,
    uniformAt: (i) => `load_dy(dyBase${i} + dyOff, u32(ihq${i} + dh) < ${OH} && u32(iwq${i} + dw) < ${OW})`,
    lane: {
      loads: [...Array(TILE_COLS).keys()].map((j) => ({ expr: `w[wOff + col${j} * ${u(KHW)}]`, at: 0 })),
      element: (j) => `lv${j}`,
    },
    store: (i, col, value) => `if (ih${i} < ${H} && iw${i} < ${W}) { dx[dxBase${i} + ${col} * ${sz.u('HW', HW)}] = ${value}; }`,
    flops: conv2dFlops(g),
  }, tiling);
}

/**
 * Stride phases as in backwardData, with the roles swapped: input channels on
 * the uniform side (weights as uniform scalar loads), the phase's input pixels
 * on the lanes, each gathering dy under its 8 pixels with per-lane masks;
 * vec4 stores where the 8 pixels are contiguous in dx (stride 1, H*W % 4 == 0).
 */
function backwardDataPixels(g: ConvGeometry, tiling?: GemmTiling): KernelSpec {
  const HW = g.H * g.W;
  const OHW = g.OH * g.OW;
  const KHW = g.KH * g.KW;
  const HQ = Math.ceil(g.H / g.SH);
  const WQ = Math.ceil(g.W / g.SW);
  const vecStore = g.SH === 1 && g.SW === 1 && HW % 4 === 0;
  const sz = new SizeParams();
  const phases = phaseLoop(g, sz);
  const [HQWQ, WQ_, OH, OW, H, W, HW_] = [sz.u('HQWQ', HQ * WQ), sz.u('WQ', WQ), sz.u('OH', g.OH), sz.u('OW', g.OW), sz.u('H', g.H), sz.u('W', g.W), sz.u('HW', HW)];
  const laneSetup = [...Array(TILE_COLS).keys()]
    .map((j) => `let pimg${j} = col${j} / ${HQWQ};
let pihq${j} = i32(col${j} % ${HQWQ} / ${WQ_});
let piwq${j} = i32(col${j} % ${WQ_});
let pih${j} = u32(pihq${j}) * ${u(g.SH)} + ph;
let piw${j} = u32(piwq${j}) * ${u(g.SW)} + pw;
let pdy${j} = i32(pimg${j} * ${sz.u('CO_OHW', g.Co * OHW)}) + pihq${j} * ${sz.i('OW_I', g.OW)} + piwq${j};
let pdx${j} = pimg${j} * ${sz.u('CI_HW', g.Ci * HW)} + pih${j} * ${W} + piw${j};`)
    .join('\n');
  return gemmKernel({
    name: `conv2d_bwd_data_${structure(g)}${phases.live}${vecStore ? '_v4' : ''}_pixels`,
    rows: g.Ci,
    cols: g.N * HQ * WQ,
    groups: g.SH * g.SW,
    laneGather: true,
    bindings: BWD_DATA_BINDINGS,
    sizes: sz,
    declarations: `${declare(BWD_DATA_BINDINGS, vecStore ? ['dx'] : [])}\n${paddedLoader('dy')}`,
    groupSetup: phases.groupSetup,
    rowSetup: (i) => `let wRow${i} = row${i} * ${u(KHW)};`,
    laneSetup,
    loop: phases.loop,
    uniformAt: (i) => `w[wRow${i} + wOff]`,
    lane: {
      loads: [...Array(TILE_COLS).keys()].map((j) => ({
        expr: `load_dy(pdy${j} + dyOff, u32(pihq${j} + dh) < ${OH} && u32(piwq${j} + dw) < ${OW})`,
        at: 0,
      })),
      element: (j) => `lv${j}`,
    },
    store: (i, _col, value, j) => `if (pih${j} < ${H} && piw${j} < ${W}) { dx[pdx${j} + row${i} * ${HW_}] = ${value}; }`,
    storeVec4: vecStore ? (i, q, value) => `dx[(pdx${4 * q} + row${i} * ${HW_}) / 4u] = ${value};` : undefined,
    flops: conv2dFlops(g),
  }, tiling);
}

/**
 * A 1x1 output: dx[n, ci, ih, iw] = sum_co dy[n, co] * w[co, ci, ih + PH, iw + PW]
 * (zero where that tap is outside the kernel), one plain GEMM with rows =
 * images (dy as uniform scalars), cols = (ci, ih, iw) (w gathered at a
 * loop-invariant per-lane offset, stored as vec4s when Ci*H*W % 4 == 0),
 * k = co. Unlike the phase split, each weight cache line is read once: the
 * phases of a small map under a large kernel each touch a different tap of
 * every line (c256->512 h2 k4 s2 streamed its 8 MB weight four times).
 */
function backwardDataDense(g: ConvGeometry, tiling?: GemmTiling): KernelSpec {
  const HW = g.H * g.W;
  const KHW = g.KH * g.KW;
  const cols = g.Ci * HW;
  const vecStore = cols % 4 === 0;
  const sz = new SizeParams();
  const [HW_, W, CO, COLS] = [sz.u('HW', HW), sz.u('W', g.W), sz.u('CO', g.Co), sz.u('CI_HW', cols)];
  const laneSetup = [...Array(TILE_COLS).keys()]
    .map((j) => `let dkh${j} = col${j} % ${HW_} / ${W} + ${u(g.PH)};
let dkw${j} = col${j} % ${W} + ${u(g.PW)};
let dok${j} = dkh${j} < ${u(g.KH)} && dkw${j} < ${u(g.KW)};
let dw${j} = select(0u, col${j} / ${HW_} * ${u(KHW)} + dkh${j} * ${u(g.KW)} + dkw${j}, dok${j});`)
    .join('\n');
  return gemmKernel({
    name: `conv2d_bwd_data_${structure(g)}${vecStore ? '_v4' : ''}_dense`,
    rows: g.N,
    cols,
    groups: 1,
    bindings: BWD_DATA_BINDINGS,
    sizes: sz,
    declarations: declare(BWD_DATA_BINDINGS, vecStore ? ['dx'] : []),
    rowSetup: (i) => `let dyRow${i} = row${i} * ${CO};`,
    laneSetup,
    loop: { init: 'var wOff = 0u;', iterations: CO, step: 1, advance: `wOff += ${sz.u('CI_KHW', g.Ci * KHW)};` },
    uniformAt: (i) => `dy[dyRow${i} + k]`,
    lane: {
      loads: [...Array(TILE_COLS).keys()].map((j) => ({ expr: `select(0.0, w[wOff + dw${j}], dok${j})`, at: 0 })),
      element: (j) => `lv${j}`,
    },
    store: (i, col, value) => `dx[row${i} * ${COLS} + ${col}] = ${value};`,
    storeVec4: vecStore ? (i, q, value) => `dx[(row${i} * ${COLS} + firstCol) / 4u + ${u(q)}] = ${value};` : undefined,
    flops: conv2dFlops(g),
  }, tiling);
}

/** The backward-weight kernels: `gemm` (taps on the uniform side) and `taps` (output channels uniform, taps on the lanes). */
export type BackwardWeightVariant = 'gemm' | 'taps';

/**
 * dw = conv2d_weight_grad(x, dy), overwriting dw (with `accumulate`, adding to
 * it: a batch split over several dispatches sums its chunks' products into dw;
 * each dw element is stored by one invocation, so the add does not race).
 * Bindings: x [N,Ci,H,W], dy [N,Co,OH,OW], dw [Co,Ci,KH,KW].
 */
export function conv2dBackwardWeightKernel(shape: Conv2dShape, opts: BackwardWeightOptions = {}): KernelSpec {
  const g = convGeometry(shape);
  return conv2dBackwardWeightVariant(shape, backwardWeightVariant(g), {}, opts);
}

export interface BackwardWeightOptions {
  /** Add into dw instead of overwriting it (a later batch chunk). */
  accumulate?: boolean;
  /**
   * Split-K: dw becomes [splits, Co, Ci, KH, KW], split s holding the products
   * of dy rows (n, oh) s * R .. s * R + R - 1, R = bwdWeightSplitRows(...);
   * their sum over axis 0 is dw.
   */
  splits?: number;
}

/** Workgroups a split backward-weight aims at: enough for every core here, and a start on a GPU. */
const SPLIT_TARGET_WORKGROUPS = 16;
/** Fewest dy pixels a split reduces, so that a split's fixed cost stays small beside its loop. */
const SPLIT_MIN_PIXELS = 1024;

/**
 * dy rows per split: a multiple of the rows that keep each split's first pixel
 * a multiple of 4 (so the vec4 loads of the gemm variant never straddle
 * splits), covering N * OH rows in `splits` splits.
 */
export function bwdWeightSplitRows(N: number, OH: number, OW: number, splits: number): number {
  const unit = OW % 4 === 0 ? 1 : OW % 2 === 0 ? 2 : 4;
  return Math.ceil(Math.ceil((N * OH) / splits) / unit) * unit;
}

/**
 * How many splits the backward-weight of a conv takes (1: none). Its output
 * has only Co x Ci*KH*KW elements, so a small-channel conv over big maps is
 * one or two workgroups looping over every pixel: one core busy on lavapipe,
 * a sliver of a GPU. Measured on lavapipe (cpu preset, whose g2 convs ran on
 * one workgroup): the backward-weight family 201-224 ms -> 173-194 ms per step
 * (README, Performance).
 */
export function backwardWeightSplits(shape: Conv2dShape): number {
  const g = convGeometry(shape);
  const [x, y, z] = conv2dBackwardWeightKernel(shape).workgroups;
  const base = x * y * z;
  if (base >= SPLIT_TARGET_WORKGROUPS) return 1;
  const rows = g.N * g.OH;
  const want = Math.min(Math.ceil(SPLIT_TARGET_WORKGROUPS / base), Math.floor((rows * g.OW) / SPLIT_MIN_PIXELS), rows);
  if (want <= 1) return 1;
  return Math.ceil(rows / bwdWeightSplitRows(g.N, g.OH, g.OW, want));
}

/**
 * The rule, from interleaved medians of scripts/bench-kernels.ts on lavapipe
 * (2 cores shared with other jobs; ms gemm -> taps, first at load 5-6, then
 * in a quieter run at load 2):
 *   n4 c24->16 h32 k3:        48 -> 2.5-3.9;   35 -> 5.8
 *   n4 c8->8 h64 k3:       56-72 -> 4.6-6.3;   42 -> 5.5
 *   n4 c4->3 h64 k3:       36-43 -> 1.0-1.2;   23 -> 2.1
 *   n4 c256->512 h2 k4 s2: 37-47 -> 4.3-11;    22 -> 4.2
 *   n4 c64->128 h8 k4 s2:   9-13 -> 1.3;      6.5 -> 2.8
 *   n4 c128->128 h4 k3:     8-12 -> 1.7;      4.6 -> 2.1
 *   n8 c64->64 h32 k3:   267-353 -> 104-125;  115 -> 81
 *   n8 c128->128 h16 k3: 285-307 -> 98-105;   114 -> 54
 *   n8 c64->128 h32 k4 s2:   315 -> 108;      106 -> 47
 * `taps` wins except where the taps are far fewer than the output channels,
 * so that they leave most of an 8-lane group idle while `gemm` fills it:
 * n4 c1->64 h32 k3 (9 taps) 1.8-2.0 ms gemm vs 6.1 taps. Near the threshold
 * it is a toss-up within the noise: c2->32 k3 (18 taps) 5.6-6.6 -> 2.0-2.1 and
 * 3.0 -> 2.0; c1->32 k4 s2 (16 taps) 2.7-6.3 -> 1.3-1.5 but 0.98 -> 1.37.
 */
export function backwardWeightVariant(g: ConvGeometry): BackwardWeightVariant {
  return 4 * g.Ci * g.KH * g.KW < g.Co ? 'gemm' : 'taps';
}

/**
 * One backward-weight variant by name, whatever the shape, optionally with its
 * tiling overridden (for benches and tests; kernels choose via conv2dBackwardWeightKernel).
 */
export function conv2dBackwardWeightVariant(
  shape: Conv2dShape,
  variant: BackwardWeightVariant,
  tiling: Partial<GemmTiling> = {},
  opts: BackwardWeightOptions = {},
): KernelSpec {
  const g = convGeometry(shape);
  const taps = g.Ci * g.KH * g.KW;
  const gather = variant === 'taps';
  // Overrides go on top of the skeleton's own choice (chooseTiling, as gemmKernel would call it).
  const t = Object.keys(tiling).length ? { ...(gather ? chooseTiling(g.Co, false, true) : chooseTiling(taps)), ...tiling } : undefined;
  const acc = opts.accumulate === true;
  const splits = opts.splits ?? 1;
  if (!Number.isInteger(splits) || splits < 1) throw new Error(`conv2d_bwd_weight: splits must be a positive integer, got ${splits}`);
  return gather ? backwardWeightTaps(g, acc, splits, t) : backwardWeightGemm(g, acc, splits, t);
}

const BWD_WEIGHT_BINDINGS: KernelSpec['bindings'] = [
  { name: 'x', access: 'read' },
  { name: 'dy', access: 'read' },
  { name: 'dw', access: 'read_write' },
];

/**
 * WGSL defining `r0` and `r1`, the dy rows [r0, r1) of this workgroup's split
 * (`group`). Every backward-weight kernel is written as a split one (one split
 * when unsplit: a division and a multiply once per invocation), so split and
 * unsplit launches of one tiling share a WGSL, a pipeline and a JIT compile.
 */
function splitRows(g: ConvGeometry, sz: SizeParams, splits: number): string {
  const rps = sz.u('SPLIT_ROWS', bwdWeightSplitRows(g.N, g.OH, g.OW, splits));
  const rows = sz.u('DY_ROWS', g.N * g.OH);
  // A batch chunk (compiler/plan/split.ts) may leave a split no rows: it then stores zeros.
  return `let r0 = min(group * ${rps}, ${rows});\nlet r1 = min(r0 + ${rps}, ${rows});`;
}

/**
 * Counters for k = (n, oh, ow), advanced once per k: ihs = oh*SH, iws = ow*SW,
 * xOff = n*Ci*H*W + ihs*W + iws, dyOff = n*Co*OH*OW + oh*OW + ow; they start
 * at the split's first row r0 (splitRows, in the group set-up).
 */
function pixelCounters(g: ConvGeometry, sz: SizeParams): { init: string; advance: string } {
  const HW = g.H * g.W;
  const OHW = g.OH * g.OW;
  // A split starts at dy row r0 = (n0, oh0): one division, once.
  const init = `var ow = 0u;
var oh = r0 % ${sz.u('OH', g.OH)};
let n0 = r0 / ${sz.u('OH', g.OH)};
var ihs = i32(oh) * ${i32(g.SH)};
var iws = 0i;
var xOff = i32(n0 * ${sz.u('CI_HW', g.Ci * HW)}) + ihs * ${sz.i('W_I', g.W)};
var dyOff = n0 * ${sz.u('CO_OHW', g.Co * OHW)} + oh * ${sz.u('OW', g.OW)};`;
  return {
    init,
    advance: `ow += 1u; iws += ${i32(g.SW)}; xOff += ${i32(g.SW)}; dyOff += 1u;
if (ow == ${sz.u('OW', g.OW)}) { ow = 0u; iws = 0i; oh += 1u; ihs += ${i32(g.SH)}; xOff += ${sz.i('X_ROW_NEXT', g.SH * g.W - g.OW * g.SW)};
  if (oh == ${sz.u('OH', g.OH)}) { oh = 0u; ihs = 0i; xOff += ${sz.i('X_IMG_NEXT', g.Ci * HW - g.OH * g.SH * g.W)}; dyOff += ${sz.u('DY_IMG_NEXT', (g.Co - 1) * OHW)}; } }`,
  };
}

/**
 * Output channels on the uniform side (dy rows are contiguous along k and
 * need no padding checks), taps (ci, kh, kw) on the lanes: each lane gathers
 * x under its 8 taps with per-lane padding masks, and stores 8 contiguous dw
 * elements (vec4s when Ci*KH*KW % 4 == 0).
 */
function backwardWeightTaps(g: ConvGeometry, accumulate: boolean, splits: number, tiling?: GemmTiling): KernelSpec {
  const HW = g.H * g.W;
  const OHW = g.OH * g.OW;
  const KHW = g.KH * g.KW;
  const taps = g.Ci * KHW;
  const vecStore = taps % 4 === 0;
  const sz = new SizeParams();
  const counters = pixelCounters(g, sz);
  // Split s writes dw[s]: its partial over its rows (dw itself when unsplit).
  const dwBase = `group * ${sz.u('DW_SIZE', g.Co * taps)} + `;
  const [H, W, TAPS] = [sz.u('H', g.H), sz.u('W', g.W), sz.u('TAPS', taps)];
  const laneSetup = [...Array(TILE_COLS).keys()]
    .map((j) => `let tci${j} = col${j} / ${u(KHW)};
let tkh${j} = i32(col${j} % ${u(KHW)} / ${u(g.KW)}) - ${i32(g.PH)};
let tkw${j} = i32(col${j} % ${u(g.KW)}) - ${i32(g.PW)};
let tx${j} = i32(tci${j} * ${sz.u('HW', HW)}) + tkh${j} * ${sz.i('W_I', g.W)} + tkw${j};`)
    .join('\n');
  return gemmKernel({
    name: `conv2d_bwd_weight_${structure(g)}${vecStore ? '_v4' : ''}_taps${accumulate ? '_acc' : ''}`,
    rows: g.Co,
    cols: taps,
    groups: splits,
    groupSetup: splitRows(g, sz, splits),
    // 16-row tiles where Co >= 16 (chooseTiling). Measured (ms, 8 -> 16 rows):
    // c24->16 h32 4.0-5.3 -> 2.5-3.9, c64->128 h8 1.7 -> 1.3, c128->128 h4 2.2 -> 1.7,
    // n8 c64->64 h32 176 -> 125, n8 c128->128 h16 147 -> 105, n8 c64->128 h32 156 -> 108.
    laneGather: true,
    bindings: BWD_WEIGHT_BINDINGS,
    sizes: sz,
    declarations: `${declare(BWD_WEIGHT_BINDINGS, vecStore ? ['dw'] : [])}\n${paddedLoader('x')}`,
    rowSetup: (i) => `let dyRow${i} = row${i} * ${sz.u('OHW', OHW)};`,
    laneSetup,
    loop: { init: counters.init, iterations: `(r1 - r0) * ${sz.u('OW', g.OW)}`, step: 1, advance: counters.advance },
    uniformAt: (i) => `dy[dyRow${i} + dyOff]`,
    lane: {
      loads: [...Array(TILE_COLS).keys()].map((j) => ({
        expr: `load_x(tx${j} + xOff, u32(ihs + tkh${j}) < ${H} && u32(iws + tkw${j}) < ${W})`,
        at: 0,
      })),
      element: (j) => `lv${j}`,
    },
    store: (i, col, value) => `dw[${dwBase}row${i} * ${TAPS} + ${col}] ${accumulate ? '+=' : '='} ${value};`,
    storeVec4: vecStore ? (i, q, value) => `dw[(${dwBase}row${i} * ${TAPS} + firstCol) / 4u + ${u(q)}] ${accumulate ? '+=' : '='} ${value};` : undefined,
    flops: conv2dFlops(g),
  }, tiling);
}

/**
 * Taps (ci, kh, kw) on the uniform side (scalar x loads with scalar padding
 * checks), output channels on the lanes (dy read as vec4s along k).
 */
function backwardWeightGemm(g: ConvGeometry, accumulate: boolean, splits: number, tiling?: GemmTiling): KernelSpec {
  const HW = g.H * g.W;
  const OHW = g.OH * g.OW;
  const KHW = g.KH * g.KW;
  // dy rows are contiguous along k = (n, oh, ow) within an image: 4 pixels per vec4
  // when an image holds a multiple of 4, so 4 consecutive k never straddle images.
  const vectorised = OHW % 4 === 0;
  const step = vectorised ? 4 : 1;
  const bindings = BWD_WEIGHT_BINDINGS;
  const sz = new SizeParams();
  // A split's rows start on a multiple of 4 pixels (bwdWeightSplitRows), so its vec4 loads stay aligned.
  const counters = pixelCounters(g, sz);
  const [H, W, OHW_] = [sz.u('H', g.H), sz.u('W', g.W), sz.u('OHW', OHW)];
  const dwBase = `group * ${sz.u('DW_SIZE', g.Co * g.Ci * KHW)} + `;
  return gemmKernel({
    name: `conv2d_bwd_weight_${structure(g)}${vectorised ? '_v4' : ''}${accumulate ? '_acc' : ''}`,
    rows: g.Ci * KHW,
    cols: g.Co,
    groups: splits,
    groupSetup: splitRows(g, sz, splits),
    bindings,
    sizes: sz,
    declarations: `${declare(bindings, vectorised ? ['dy'] : [])}\n${paddedLoader('x')}`,
    rowSetup: (i) => `let ci${i} = row${i} / ${u(KHW)};
let kh${i} = i32(row${i} % ${u(KHW)} / ${u(g.KW)}) - ${i32(g.PH)};
let kw${i} = i32(row${i} % ${u(g.KW)}) - ${i32(g.PW)};
let xBase${i} = i32(ci${i} * ${sz.u('HW', HW)}) + kh${i} * ${sz.i('W_I', g.W)} + kw${i};`,
    // The lane loads read dyOff at the first of 4 k.
    loop: {
      init: counters.init,
      iterations: `(r1 - r0) * ${sz.u('OW', g.OW)} / ${u(step)}`,
      step,
      subAdvance: counters.advance,
      advance: '',
    },
    uniformAt: (i) => `load_x(xBase${i} + xOff, u32(ihs + kh${i}) < ${H} && u32(iws + kw${i}) < ${W})`,
    lane: kContiguousLane((col) => `dyOff + ${col} * ${OHW_}`, step, vectorised, 'dy'),
    store: (i, col, value) => `dw[${dwBase}${col} * ${sz.u('TAPS', g.Ci * KHW)} + row${i}] ${accumulate ? '+=' : '='} ${value};`,
    flops: conv2dFlops(g),
  }, tiling);
}
