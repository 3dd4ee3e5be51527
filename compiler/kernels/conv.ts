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
// Backward-data of a strided conv is split into stride phases (ih % sh, iw % sw):
// within a phase only every sh-th kernel row can touch a pixel, so iterating
// just those taps avoids the (sh*sw - 1) / (sh*sw) of multiply-adds that a
// plain transposed-conv GEMM would spend on zeros.
import { convOutSize } from '../ir/shape.ts';
import { chooseTiling, gemmKernel, kContiguousLane, TILE_COLS, type GemmTiling } from './gemm.ts';
import type { KernelSpec } from '../../runtime/format/kernel.ts';
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
 * y = conv2d(x, w) (+ bias). Bindings: x [N,Ci,H,W], w [Co,Ci,KH,KW], [bias [Co]], y [N,Co,OH,OW].
 */
export function conv2dForwardKernel(shape: Conv2dShape & { bias?: boolean }, target: KernelTarget = NO_FEATURES): KernelSpec {
  const g = convGeometry(shape);
  if (g.OW % TILE_COLS === 0 && g.W % 4 === 0) return forwardWindowed(g, !!shape.bias, target.subgroups);
  const K = g.Ci * g.KH * g.KW;
  const HW = g.H * g.W;
  const OHW = g.OH * g.OW;
  // Weight rows are contiguous along k = (ci, kh, kw): 4 taps per vec4 when K allows.
  const vectorised = K % 4 === 0;
  const step = vectorised ? 4 : 1;
  const bindings: KernelSpec['bindings'] = [
    { name: 'x', access: 'read' },
    { name: 'w', access: 'read' },
    ...(shape.bias ? [{ name: 'bias', access: 'read' as const }] : []),
    { name: 'y', access: 'read_write' },
  ];
  return gemmKernel({
    name: `conv2d_fwd_${tag(g)}${shape.bias ? '_bias' : ''}`,
    rows: g.N * OHW,
    cols: g.Co,
    groups: 1,
    bindings,
    declarations: `${declare(bindings, vectorised ? ['w'] : [])}\n${paddedLoader('x')}`,
    rowSetup: (i) => `let img${i} = row${i} / ${u(OHW)};
let pix${i} = row${i} % ${u(OHW)};
let ih${i} = i32(pix${i} / ${u(g.OW)} * ${u(g.SH)}) - ${i32(g.PH)};
let iw${i} = i32(pix${i} % ${u(g.OW)} * ${u(g.SW)}) - ${i32(g.PW)};
let xBase${i} = i32(img${i} * ${u(g.Ci * HW)}) + ih${i} * ${i32(g.W)} + iw${i};
let yBase${i} = img${i} * ${u(g.Co * OHW)} + pix${i};`,
    // Counters for k = (ci, kh, kw): xOff = ci*H*W + kh*W + kw.
    loop: {
      init: 'var kh = 0i;\nvar kw = 0i;\nvar xOff = 0i;',
      iterations: u(K / step),
      step,
      subAdvance: `kw += 1i; xOff += 1i;
if (kw == ${i32(g.KW)}) { kw = 0i; kh += 1i; xOff += ${i32(g.W - g.KW)};
  if (kh == ${i32(g.KH)}) { kh = 0i; xOff += ${i32(HW - g.KH * g.W)}; } }`,
      advance: '',
    },
    uniformAt: (i) => `load_x(xBase${i} + xOff, u32(ih${i} + kh) < ${u(g.H)} && u32(iw${i} + kw) < ${u(g.W)})`,
    lane: kContiguousLane((col) => `${col} * ${u(K)} + k`, step, vectorised, 'w'),
    store: (i, col, value) => `y[yBase${i} + ${col} * ${u(OHW)}] = ${value}${shape.bias ? ` + bias[${col}]` : ''};`,
    flops: conv2dFlops(g),
  });
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
  const colMasks = [...Array(windowVecs).keys()]
    .filter((v) => !alwaysInRow(v))
    .map((v) => `let colOk${v} = vec4<u32>(vec4<i32>(a0 + ${i32(4 * v)}) + vec4<i32>(0i, 1i, 2i, 3i)) < vec4<u32>(${u(p.srcW)});`)
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
  const windowLoad = (v: number) => `select(vec4<f32>(0.0), ${p.src}[min(u32(max(xv + ${i32(v)}, 0i)), ${u(lastVec)})], ${windowMask(v)})`;
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
    declarations: `${shuffle ? 'enable subgroups;\n' : ''}${declare(p.bindings, [p.src, p.dst])}`,
    entryParams: shuffle ? '@builtin(subgroup_size) sgSize: u32, @builtin(subgroup_invocation_id) sgId: u32' : undefined,
    // With subgroups of 8 or more the workgroup's 8 invocations are one subgroup:
    // number the lanes by subgroup id so shuffle neighbours are pixel neighbours.
    // sgOk is uniform (a constant on lavapipe, so the fallback folds away).
    laneIndex: shuffle ? 'select(lid.x, sgId, sgSize >= 8u)' : undefined,
    rowSetup: () => '',
    laneSetup: `let img = col0 / ${u(dstHW)};
let pix = col0 % ${u(dstHW)};
let sr0 = i32(pix / ${u(p.dstW)} * ${u(p.rs)}) + ${i32(p.r0)};
let a0 = i32(pix % ${u(p.dstW)} * ${u(p.cs)}) + ${i32(cMin - lead)};
let srcLane = i32(img * ${u(p.srcChannels * srcHW)}) + sr0 * ${i32(p.srcW)} + a0;
let dstLane = img * ${u(p.channels * dstHW)} + pix;
${colMasks}`,
    // One iteration per (source channel, kernel row kh), the KW taps unrolled.
    // (Unrolling all KH*KW taps per iteration was measured: slower, and 4-12 s of JIT.)
    // Counters: srcOff = source channel * srcH*srcW + rk * kh * srcW,
    // wOff = source channel * weightSrcStride + kh * KW.
    // A flipped weight walks its kernel rows backwards: wOff starts at the last
    // row and wraps (u32) below the channel's start before the channel advance.
    loop: {
      init: `var kh = 0i;\nvar srcOff = 0i;\nvar wOff = ${u(p.weightFlip ? KHW - g.KW : 0)};`,
      iterations: u(p.srcChannels * g.KH),
      step: g.KW,
      prelude: `let rowOk = u32(sr0 ${along} kh) < ${u(p.srcH)};\nlet xv = (srcLane + srcOff) / 4i;`,
      advance: `kh += 1i; srcOff ${along}= ${i32(p.srcW)}; wOff ${p.weightFlip ? '-' : '+'}= ${u(g.KW)};
if (kh == ${i32(g.KH)}) { kh = 0i; srcOff += ${i32(srcHW)} ${p.rk > 0 ? '-' : '+'} ${i32(g.KH * p.srcW)}; wOff += ${u(p.weightFlip ? p.weightSrcStride + KHW : p.weightSrcStride - KHW)}; }`,
    },
    uniformAt: (i, kw) => `w[row${i} * ${u(p.weightRowStride)} + wOff + ${u(p.weightFlip ? g.KW - 1 - kw : kw)}]`,
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
      `${p.dst}[(dstLane + row${i} * ${u(dstHW)}) / 4u + ${u(q)}] = ${value}${p.bias ? ` + vec4<f32>(bias[row${i}])` : ''};`,
    flops: conv2dFlops(g),
  });
}

/** Forward as a windowed pass: y rows on the lanes, x windows, w[co, ci, kh, kw]. */
function forwardWindowed(g: ConvGeometry, bias: boolean, subgroups: boolean): KernelSpec {
  const KHW = g.KH * g.KW;
  return windowedPass({
    name: `conv2d_fwd_${tag(g)}${bias ? '_bias' : ''}_win`,
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
 * dx = conv2d_input_grad(dy, w), overwriting dx. Bindings: dy [N,Co,OH,OW], w [Co,Ci,KH,KW], dx [N,Ci,H,W].
 */
export function conv2dBackwardDataKernel(shape: Conv2dShape, target: KernelTarget = NO_FEATURES): KernelSpec {
  const g = convGeometry(shape);
  if (g.SH === 1 && g.SW === 1 && g.W % TILE_COLS === 0 && g.OW % 4 === 0) return backwardDataWindowed(g, target.subgroups);
  return backwardData(g);
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
    name: `conv2d_bwd_data_${tag(g)}_win`,
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
 * Stride > 1: split into stride phases (ih % SH, iw % SW), one GEMM group each.
 * Within a phase only kernel rows kh = kh0, kh0 + SH, ... reach a pixel, at
 * oh = ihq + dh with dh = (ph + PH - kh) / SH exact, so iterating just those
 * taps skips the (SH*SW - 1) / (SH*SW) of multiply-adds a transposed-conv GEMM
 * would spend on zeros. The taps depend on the phase (a runtime-uniform value),
 * so they are walked by counters, one tap per iteration.
 */
function backwardData(g: ConvGeometry): KernelSpec {
  const HW = g.H * g.W;
  const OHW = g.OH * g.OW;
  const KHW = g.KH * g.KW;
  // Pixels of one phase: a grid of ceil(H / SH) x ceil(W / SW) (phase 0 is the largest;
  // rows past a smaller phase's edge are computed and not stored).
  const HQ = Math.ceil(g.H / g.SH);
  const WQ = Math.ceil(g.W / g.SW);
  const groupSetup = `let ph = group / ${u(g.SW)};
let pw = group % ${u(g.SW)};
let kh0 = (ph + ${u(g.PH)}) % ${u(g.SH)};
let kw0 = (pw + ${u(g.PW)}) % ${u(g.SW)};
let dh0 = i32((ph + ${u(g.PH)} - kh0) / ${u(g.SH)});
let dw0 = i32((pw + ${u(g.PW)} - kw0) / ${u(g.SW)});
let tapsH = select(0u, (${u(g.KH)} - kh0 + ${u(g.SH - 1)}) / ${u(g.SH)}, kh0 < ${u(g.KH)});
let tapsW = select(0u, (${u(g.KW)} - kw0 + ${u(g.SW - 1)}) / ${u(g.SW)}, kw0 < ${u(g.KW)});`;
  return gemmKernel({
    name: `conv2d_bwd_data_${tag(g)}`,
    rows: g.N * HQ * WQ,
    cols: g.Ci,
    groups: g.SH * g.SW,
    bindings: BWD_DATA_BINDINGS,
    declarations: `${declare(BWD_DATA_BINDINGS)}\n${paddedLoader('dy')}`,
    groupSetup,
    rowSetup: (i) => `let img${i} = row${i} / ${u(HQ * WQ)};
let ihq${i} = i32(row${i} % ${u(HQ * WQ)} / ${u(WQ)});
let iwq${i} = i32(row${i} % ${u(WQ)});
let ih${i} = u32(ihq${i}) * ${u(g.SH)} + ph;
let iw${i} = u32(iwq${i}) * ${u(g.SW)} + pw;
let dyBase${i} = i32(img${i} * ${u(g.Co * OHW)}) + ihq${i} * ${i32(g.OW)} + iwq${i};
let dxBase${i} = img${i} * ${u(g.Ci * HW)} + ih${i} * ${u(g.W)} + iw${i};`,
    loop: {
      init: 'var co = 0u;\nvar kh = kh0;\nvar kw = kw0;\nvar dh = dh0;\nvar dw = dw0;',
      iterations: `${u(g.Co)} * tapsH * tapsW`,
      step: 1,
      prelude: `let dyOff = i32(co * ${u(OHW)}) + dh * ${i32(g.OW)} + dw;\nlet wOff = co * ${u(g.Ci * KHW)} + kh * ${u(g.KW)} + kw;`,
      advance: `kw += ${u(g.SW)}; dw -= 1i;
if (kw >= ${u(g.KW)}) { kw = kw0; dw = dw0; kh += ${u(g.SH)}; dh -= 1i;
  if (kh >= ${u(g.KH)}) { kh = kh0; dh = dh0; co += 1u; } }`,
    },
    uniformAt: (i) => `load_dy(dyBase${i} + dyOff, u32(ihq${i} + dh) < ${u(g.OH)} && u32(iwq${i} + dw) < ${u(g.OW)})`,
    lane: {
      loads: [...Array(TILE_COLS).keys()].map((j) => ({ expr: `w[wOff + col${j} * ${u(KHW)}]`, at: 0 })),
      element: (j) => `lv${j}`,
    },
    store: (i, col, value) => `if (ih${i} < ${u(g.H)} && iw${i} < ${u(g.W)}) { dx[dxBase${i} + ${col} * ${u(HW)}] = ${value}; }`,
    flops: conv2dFlops(g),
  });
}

/** The backward-weight kernels: `gemm` (taps on the uniform side) and `taps` (output channels uniform, taps on the lanes). */
export type BackwardWeightVariant = 'gemm' | 'taps';

/**
 * dw = conv2d_weight_grad(x, dy), overwriting dw (with `accumulate`, adding to
 * it: a batch split over several dispatches sums its chunks' products into dw;
 * each dw element is stored by one invocation, so the add does not race).
 * Bindings: x [N,Ci,H,W], dy [N,Co,OH,OW], dw [Co,Ci,KH,KW].
 */
export function conv2dBackwardWeightKernel(shape: Conv2dShape, opts: { accumulate?: boolean } = {}): KernelSpec {
  const g = convGeometry(shape);
  return conv2dBackwardWeightVariant(shape, backwardWeightVariant(g), {}, opts);
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
  opts: { accumulate?: boolean } = {},
): KernelSpec {
  const g = convGeometry(shape);
  const taps = g.Ci * g.KH * g.KW;
  const gather = variant === 'taps';
  // Overrides go on top of the skeleton's own choice (chooseTiling, as gemmKernel would call it).
  const t = Object.keys(tiling).length ? { ...(gather ? chooseTiling(g.Co, taps, false, true) : chooseTiling(taps, g.Co)), ...tiling } : undefined;
  const acc = opts.accumulate === true;
  return gather ? backwardWeightTaps(g, acc, t) : backwardWeightGemm(g, acc, t);
}

const BWD_WEIGHT_BINDINGS: KernelSpec['bindings'] = [
  { name: 'x', access: 'read' },
  { name: 'dy', access: 'read' },
  { name: 'dw', access: 'read_write' },
];

/**
 * Counters for k = (n, oh, ow), advanced once per k: ihs = oh*SH, iws = ow*SW,
 * xOff = n*Ci*H*W + ihs*W + iws, dyOff = n*Co*OH*OW + oh*OW + ow.
 */
function pixelCounters(g: ConvGeometry): { init: string; advance: string } {
  const HW = g.H * g.W;
  const OHW = g.OH * g.OW;
  return {
    init: 'var ow = 0u;\nvar oh = 0u;\nvar ihs = 0i;\nvar iws = 0i;\nvar xOff = 0i;\nvar dyOff = 0u;',
    advance: `ow += 1u; iws += ${i32(g.SW)}; xOff += ${i32(g.SW)}; dyOff += 1u;
if (ow == ${u(g.OW)}) { ow = 0u; iws = 0i; oh += 1u; ihs += ${i32(g.SH)}; xOff += ${i32(g.SH * g.W - g.OW * g.SW)};
  if (oh == ${u(g.OH)}) { oh = 0u; ihs = 0i; xOff += ${i32(g.Ci * HW - g.OH * g.SH * g.W)}; dyOff += ${u((g.Co - 1) * OHW)}; } }`,
  };
}

/**
 * Output channels on the uniform side (dy rows are contiguous along k and
 * need no padding checks), taps (ci, kh, kw) on the lanes: each lane gathers
 * x under its 8 taps with per-lane padding masks, and stores 8 contiguous dw
 * elements (vec4s when Ci*KH*KW % 4 == 0).
 */
function backwardWeightTaps(g: ConvGeometry, accumulate: boolean, tiling?: GemmTiling): KernelSpec {
  const HW = g.H * g.W;
  const OHW = g.OH * g.OW;
  const KHW = g.KH * g.KW;
  const taps = g.Ci * KHW;
  const vecStore = taps % 4 === 0;
  const counters = pixelCounters(g);
  const laneSetup = [...Array(TILE_COLS).keys()]
    .map((j) => `let tci${j} = col${j} / ${u(KHW)};
let tkh${j} = i32(col${j} % ${u(KHW)} / ${u(g.KW)}) - ${i32(g.PH)};
let tkw${j} = i32(col${j} % ${u(g.KW)}) - ${i32(g.PW)};
let tx${j} = i32(tci${j} * ${u(HW)}) + tkh${j} * ${i32(g.W)} + tkw${j};`)
    .join('\n');
  return gemmKernel({
    name: `conv2d_bwd_weight_${tag(g)}_taps${accumulate ? '_acc' : ''}`,
    rows: g.Co,
    cols: taps,
    groups: 1,
    // 16-row tiles where Co >= 16 (chooseTiling). Measured (ms, 8 -> 16 rows):
    // c24->16 h32 4.0-5.3 -> 2.5-3.9, c64->128 h8 1.7 -> 1.3, c128->128 h4 2.2 -> 1.7,
    // n8 c64->64 h32 176 -> 125, n8 c128->128 h16 147 -> 105, n8 c64->128 h32 156 -> 108.
    laneGather: true,
    bindings: BWD_WEIGHT_BINDINGS,
    declarations: `${declare(BWD_WEIGHT_BINDINGS, vecStore ? ['dw'] : [])}\n${paddedLoader('x')}`,
    rowSetup: (i) => `let dyRow${i} = row${i} * ${u(OHW)};`,
    laneSetup,
    loop: { init: counters.init, iterations: u(g.N * OHW), step: 1, advance: counters.advance },
    uniformAt: (i) => `dy[dyRow${i} + dyOff]`,
    lane: {
      loads: [...Array(TILE_COLS).keys()].map((j) => ({
        expr: `load_x(tx${j} + xOff, u32(ihs + tkh${j}) < ${u(g.H)} && u32(iws + tkw${j}) < ${u(g.W)})`,
        at: 0,
      })),
      element: (j) => `lv${j}`,
    },
    store: (i, col, value) => `dw[row${i} * ${u(taps)} + ${col}] ${accumulate ? '+=' : '='} ${value};`,
    storeVec4: vecStore ? (i, q, value) => `dw[(row${i} * ${u(taps)} + firstCol) / 4u + ${u(q)}] ${accumulate ? '+=' : '='} ${value};` : undefined,
    flops: conv2dFlops(g),
  }, tiling);
}

/**
 * Taps (ci, kh, kw) on the uniform side (scalar x loads with scalar padding
 * checks), output channels on the lanes (dy read as vec4s along k).
 */
function backwardWeightGemm(g: ConvGeometry, accumulate: boolean, tiling?: GemmTiling): KernelSpec {
  const HW = g.H * g.W;
  const OHW = g.OH * g.OW;
  const KHW = g.KH * g.KW;
  // dy rows are contiguous along k = (n, oh, ow) within an image: 4 pixels per vec4
  // when an image holds a multiple of 4, so 4 consecutive k never straddle images.
  const vectorised = OHW % 4 === 0;
  const step = vectorised ? 4 : 1;
  const bindings = BWD_WEIGHT_BINDINGS;
  const counters = pixelCounters(g);
  return gemmKernel({
    name: `conv2d_bwd_weight_${tag(g)}${accumulate ? '_acc' : ''}`,
    rows: g.Ci * KHW,
    cols: g.Co,
    groups: 1,
    bindings,
    declarations: `${declare(bindings, vectorised ? ['dy'] : [])}\n${paddedLoader('x')}`,
    rowSetup: (i) => `let ci${i} = row${i} / ${u(KHW)};
let kh${i} = i32(row${i} % ${u(KHW)} / ${u(g.KW)}) - ${i32(g.PH)};
let kw${i} = i32(row${i} % ${u(g.KW)}) - ${i32(g.PW)};
let xBase${i} = i32(ci${i} * ${u(HW)}) + kh${i} * ${i32(g.W)} + kw${i};`,
    // The lane loads read dyOff at the first of 4 k.
    loop: {
      init: counters.init,
      iterations: u((g.N * OHW) / step),
      step,
      subAdvance: counters.advance,
      advance: '',
    },
    uniformAt: (i) => `load_x(xBase${i} + xOff, u32(ihs + kh${i}) < ${u(g.H)} && u32(iws + kw${i}) < ${u(g.W)})`,
    lane: kContiguousLane((col) => `dyOff + ${col} * ${u(OHW)}`, step, vectorised, 'dy'),
    store: (i, col, value) => `dw[${col} * ${u(g.Ci * KHW)} + row${i}] ${accumulate ? '+=' : '='} ${value};`,
    flops: conv2dFlops(g),
  }, tiling);
}
