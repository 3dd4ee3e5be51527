// The one GEMM skeleton behind matmul/linear and the three convolution passes.
//
// C[row, col] = sum_k U[row, k] * L[k, col], computed in tiles of tileRows x 8
// outputs per invocation (register blocking), accumulators as vec4s.
//
// The two operands play different roles, and that is what makes it fast on
// lavapipe (llvmpipe runs an 8-wide SIMD vector of invocations per CPU core):
// - the "uniform" operand U is indexed only by the workgroup id and the k loop,
//   so every invocation of a workgroup reads the same U element; Mesa's
//   divergence analysis turns those into one scalar load and a broadcast, and
//   index arithmetic on them (im2col decomposition, padding checks) is scalar;
// - the "lane" operand L differs per invocation (each takes 8 consecutive
//   columns); where its layout allows, it is read as vec4s.
// Workgroup memory is not used: on a CPU it only adds copies.
//
// What was measured on lavapipe (Mesa 25, 2 Zen 5 cores) and shaped this file:
// - 8x8 per invocation, vec4 lane loads along columns: matmul 1024^3 at
//   16-20 GFLOP/s (tfjs-webgpu: 4-5). Scalar lane loads: about half that.
// - vec4 lane loads along k (L stored [col, k], as a transposed B or an OIHW
//   weight read by output channel) then regrouped per column: ~3x slower than
//   along columns, so convolutions prefer layouts with pixels on the lanes.
// - Storing the accumulators component by component made matmul 2x slower:
//   the epilogue stores whole vec4s wherever 4 output columns are contiguous.
// - Unrolling 16-60 k sub-steps per iteration made LLVM's JIT take 4-60 s per
//   shader and ran no faster; sub-steps stay at 1-4 with counters for addressing.
//
// A GemmProblem says how U and L elements are addressed ("loaders"); this file
// owns the loop nest, the accumulators, the tile sizes and the dispatch shape.
import { MAX_WORKGROUPS_PER_DIM as MAX_GROUPS_PER_DIM } from '../../runtime/format/grid.ts';
import type { KernelSpec } from '../../runtime/format/kernel.ts';
import { SizeParams } from './sizes.ts';

export interface GemmProblem {
  /** Kernel name; tile sizes (and for a size-generic kernel the workgroup size) are appended. */
  name: string;
  /** Extent of the uniform side (rows of C) in each group. */
  rows: number;
  /** Extent of the lane side (columns of C). */
  cols: number;
  /** Independent GEMMs in one dispatch (matmul batch, conv phases); `group` in WGSL. */
  groups: number;
  /** Bindings, in @binding order, and the WGSL declaring them plus any constants/helpers. */
  bindings: KernelSpec['bindings'];
  declarations: string;
  /** WGSL run once per invocation before the rows' set-up; `group: u32` in scope. */
  groupSetup?: string;
  /**
   * WGSL run once before the k loop for tile row i. In scope: `group: u32` and
   * `row{i}: u32`, the row index (clamped into range, so loads stay in bounds).
   * Anything loop-invariant belongs here (LLVM hoists the rest when it can).
   */
  rowSetup(i: number): string;
  /**
   * The reduction, `step` values of k per iteration (the sub-steps are unrolled,
   * so a loader can make each one's addressing a compile-time constant, e.g. one
   * per conv tap). `init` declares counters, `iterations` is the trip count (may
   * use `group`), `prelude` runs at the top of each iteration, `subAdvance`
   * after each sub-step, `advance` at the end of the iteration. In scope in the
   * loop: `it` (iteration) and `k = it * step`.
   * Measured on lavapipe: keep `step` small (1, or 4 for vec4 lane loads) and
   * walk addressing with counters; unrolling conv taps into 16-36 sub-steps
   * made LLVM's JIT take 10-60 s per shader and ran no faster.
   */
  loop: { init: string; iterations: string; step: number; prelude?: string; subAdvance?: string; advance: string };
  /** Lanes read a row window shared by their sub-steps (conv windowed passes); picks narrower tiles. */
  laneWindow?: boolean;
  /** Lanes gather scalars (conv backward-weight with taps on the lanes); picks taller tiles. */
  laneGather?: boolean;
  /** Extra entry-point parameters (builtins), e.g. `@builtin(subgroup_size) sgSize: u32`. */
  entryParams?: string;
  /** WGSL u32 expression numbering the invocations of a workgroup 0..lanes-1 (default `lid.x`). */
  laneIndex?: string;
  /** WGSL run once per invocation after `firstCol` and `col{j}` are set (loop-invariant lane values). */
  laneSetup?: string;
  /** WGSL f32 expression of U[row{i}, k + s] for sub-step s of the current iteration. */
  uniformAt(i: number, s: number): string;
  /**
   * The lane operand: `loads` are WGSL expressions evaluated once per iteration
   * into `lv0, lv1, ...`, each just before sub-step `at` (vec4s where the layout
   * allows: on lavapipe one vec4 load costs far less than four scalar ones);
   * `element(j, s)` is the WGSL f32
   * expression of L[k + s, col{j}] in terms of them. In scope: `col{j}` (column
   * j of this invocation, clamped into range), `firstCol` (unclamped), the
   * loop counters and prelude values, `k`, `group`.
   */
  lane: {
    loads: LaneLoad[];
    element(j: number, s: number): string;
    /** Other loads for the same `lv` values, used when the uniform WGSL condition `when` holds (the loop is emitted twice). */
    alternative?: { when: string; loads: LaneLoad[] };
  };
  /**
   * WGSL statement storing `value` (f32 expression) as C[row{i}, col]; it runs
   * only for rows and columns in range. In scope: `group`, `row{i}`.
   */
  store(i: number, col: string, value: string, j: number): string;
  /**
   * Optional faster epilogue: WGSL statement storing the vec4 `value` as
   * C[row{i}, firstCol + 4q .. + 3], for layouts where those 4 columns are
   * contiguous and 16-byte aligned (needs cols % 4 == 0). Measured on lavapipe:
   * storing accumulators component by component made a whole matmul 2x slower.
   */
  storeVec4?(i: number, q: number, value: string): string;
  /** Useful floating-point operations of one dispatch (2 per multiply-add). */
  flops: number;
  /**
   * A size-generic kernel: the sizes its loaders named here, to which the
   * skeleton adds its own (rows, columns, tile counts) instead of baking
   * them in; the kernel gets a uniform binding after `bindings` and carries
   * the words as its params (sizes.ts).
   */
  sizes?: SizeParams;
}

/** One lane-side load per iteration: a WGSL expression, emitted before sub-step `at`. */
export interface LaneLoad {
  expr: string;
  at: number;
}

/** Outputs per invocation and invocations per workgroup, decided here only. */
export interface GemmTiling {
  tileRows: number;
  tileCols: number;
  lanes: number;
}

/**
 * The tile policy, the one place tile sizes are chosen: 8x8 outputs per
 * invocation (best measured on lavapipe; 8 columns = 2 vec4s), 4 rows when
 * there are fewer than 16 (1-3 rows too: the clamped extra rows repeat the
 * last one, cheap at that size, and the kernel is then the same WGSL as the
 * 4-row problems' instead of one more pipeline to compile; 8-15 rows: the
 * tiny preset's 8-channel convs measured the same step time with 4-row tiles
 * as with 8, three alternating pairs, and need 3 fewer pipelines), and 8
 * invocations per workgroup (one SIMD vector on lavapipe). Measured against
 * 8-32 invocations chosen by the column tiles (the previous policy): equal or
 * faster on every bench shape (conv 3x3 64->64 @32x32 backward-weight 44 ms
 * against 53-62 ms; the big GEMMs and the rest within noise), 1-2% faster for
 * the cpu preset's training step, and one WGSL per tile shape instead of three.
 * Problems whose lanes read a shared row window (the windowed conv passes)
 * get 4-row tiles in workgroups of 8: measured 1.3-1.8x faster for them,
 * while plain GEMMs lose about 20% with that shape.
 * Problems whose lanes gather scalar operands (conv backward-weight, taps on
 * the lanes) get 16-row tiles when there are 16 rows, so that each gathered
 * value feeds twice the multiply-adds: measured 1.3-1.6x faster than 8 rows
 * on lavapipe (figures in conv.ts); 32 rows ran slower, up to 6x.
 * Loaders may rely on tileCols being 8.
 */
export function chooseTiling(rows: number, laneWindow = false, laneGather = false): GemmTiling {
  const tileRows = laneGather && rows >= 16 ? 16 : rows >= 16 ? 8 : 4;
  const tileCols = 8;
  const lanes = 8;
  return { tileRows: laneWindow ? Math.min(tileRows, 4) : tileRows, tileCols, lanes };
}

/** Columns each invocation computes (fixed: loaders lay out their vec4 loads for it). */
export const TILE_COLS = 8;

function u(n: number): string {
  return `${n}u`;
}

/** Renders the GEMM skeleton for a problem into a KernelSpec. */
export function gemmKernel(p: GemmProblem, tiling: GemmTiling = chooseTiling(p.rows, p.laneWindow, p.laneGather)): KernelSpec {
  const { tileRows: TM, tileCols: TN, lanes } = tiling;
  if (TN !== TILE_COLS) throw new Error(`gemm '${p.name}': tileCols must be ${TILE_COLS}, got ${TN}`);
  const vecs = TN / 4;
  const step = p.loop.step;
  const rowTiles = Math.ceil(p.rows / TM);
  const colTiles = Math.ceil(p.cols / TN);
  const gridX = Math.ceil(colTiles / lanes);
  if (gridX > MAX_GROUPS_PER_DIM) {
    throw new Error(
      `gemm '${p.name}': ${p.cols} columns need ${gridX} workgroups along x, over the limit of ${MAX_GROUPS_PER_DIM}; split the batch`,
    );
  }
  // Uniform-side tiles of all groups, spread over y and z past the per-dimension limit.
  const uniformTiles = rowTiles * p.groups;
  const gridY = Math.min(uniformTiles, MAX_GROUPS_PER_DIM);
  const gridZ = Math.ceil(uniformTiles / gridY);
  // Windowed conv passes put the uniform tiles on x, the fastest-varying
  // workgroup index (llvmpipe walks workgroups in x-major order), so the
  // workgroups sharing one lane-side window run back to back while it is in
  // cache: measured 3-7% faster on lavapipe for the 3x3 convs.
  const rowsFast = !!p.laneWindow && gridZ === 1;

  // Sizes that only index: literals, or run-time values of a size-generic kernel.
  const sz = p.sizes;
  const ROWS = sz ? sz.u('ROWS', p.rows) : u(p.rows);
  const COLS = sz ? sz.u('COLS', p.cols) : u(p.cols);
  const ROWS_LAST = sz ? `${ROWS} - 1u` : u(p.rows - 1);
  const COLS_LAST = sz ? `${COLS} - 1u` : u(p.cols - 1);
  const ROW_TILES = sz ? sz.u('ROW_TILES', rowTiles) : u(rowTiles);
  const TILES = sz ? sz.u('TILES', uniformTiles) : u(uniformTiles);
  const GRID_Y = sz && !rowsFast ? sz.u('GRID_Y', gridY) : u(gridY);

  const lines: string[] = [];
  const emit = (s: string, indent = 1) => {
    for (const l of s.split('\n')) if (l.trim()) lines.push('  '.repeat(indent) + l.trim());
  };

  // Per-invocation set-up: which group and rows (uniform), which columns (per lane).
  emit(rowsFast ? 'let tile = wid.x;' : `let tile = wid.y + wid.z * ${GRID_Y};`);
  emit(`if (tile >= ${TILES}) { return; }`);
  emit(`let group = tile / ${ROW_TILES};`);
  emit(`let firstRow = (tile % ${ROW_TILES}) * ${u(TM)};`);
  emit(`let firstCol = (${rowsFast ? 'wid.y' : 'wid.x'} * ${u(lanes)} + ${p.laneIndex ?? 'lid.x'}) * ${u(TN)};`);
  emit(p.groupSetup ?? '');
  for (let i = 0; i < TM; i++) {
    emit(`let row${i} = min(firstRow + ${u(i)}, ${ROWS_LAST});`);
    emit(p.rowSetup(i));
  }
  // Columns clamped so loads stay in range; stores check the real column.
  for (let j = 0; j < TN; j++) emit(`let col${j} = min(firstCol + ${u(j)}, ${COLS_LAST});`);
  emit(p.laneSetup ?? '');
  for (let i = 0; i < TM; i++) for (let q = 0; q < vecs; q++) emit(`var acc${i}_${q} = vec4<f32>(0.0);`);

  // The reduction loop, sub-steps unrolled. Each lane load is emitted just
  // before its first use: loading a whole iteration's lane values up front
  // keeps them all live at once, and LLVM's JIT time on lavapipe explodes
  // (tens of seconds) on the resulting register pressure.
  const emitLoop = (loads: LaneLoad[]) => {
  emit(p.loop.init);
  emit(`let iterations = ${p.loop.iterations};`);
  emit('for (var it = 0u; it < iterations; it++) {');
  emit(`let k = it * ${u(step)};`, 2);
  emit(p.loop.prelude ?? '', 2);
  for (let s = 0; s < step; s++) {
    loads.forEach((load, v) => {
      if (load.at === s) emit(`let lv${v} = ${load.expr};`, 2);
    });
    for (let q = 0; q < vecs; q++) {
      const cols = [0, 1, 2, 3].map((c) => p.lane.element(4 * q + c, s));
      emit(`let b${s}_${q} = vec4<f32>(${cols.join(', ')});`, 2);
    }
    for (let i = 0; i < TM; i++) {
      emit(`let a${s}_${i} = ${p.uniformAt(i, s)};`, 2);
      for (let q = 0; q < vecs; q++) emit(`acc${i}_${q} = fma(vec4<f32>(a${s}_${i}), b${s}_${q}, acc${i}_${q});`, 2);
    }
    emit(p.loop.subAdvance ?? '', 2);
  }
  emit(p.loop.advance, 2);
  emit('}');
  };
  if (p.lane.alternative) {
    // Two copies of the loop behind a uniform branch, so neither pays for the other's loads.
    emit(`if (${p.lane.alternative.when}) {`);
    emitLoop(p.lane.alternative.loads);
    emit('} else {');
    emitLoop(p.lane.loads);
    emit('}');
  } else {
    emitLoop(p.lane.loads);
  }

  // Epilogue: rows are uniform (one branch per workgroup), columns per lane.
  if (p.storeVec4 && p.cols % 4 !== 0) throw new Error(`gemm '${p.name}': storeVec4 needs cols % 4 == 0 (cols ${p.cols})`);
  for (let i = 0; i < TM; i++) {
    emit(`if (firstRow + ${u(i)} < ${ROWS}) {`);
    for (let q = 0; q < vecs; q++) {
      if (p.storeVec4) {
        emit(`if (firstCol + ${u(4 * q)} < ${COLS}) {`, 2);
        emit(p.storeVec4(i, q, `acc${i}_${q}`), 3);
        emit('}', 2);
        continue;
      }
      for (let j = 4 * q; j < 4 * q + 4; j++) {
        emit(`if (firstCol + ${u(j)} < ${COLS}) {`, 2);
        emit(p.store(i, `(firstCol + ${u(j)})`, `acc${i}_${q}[${j & 3}]`, j), 3);
        emit('}', 2);
      }
    }
    emit('}');
  }

  // A size-generic kernel's header names no size (its text serves every launch).
  const shape = sz ? '' : `${p.groups} x [${p.rows} x ${p.cols}], `;
  const prologue = sz ? sz.prologue().split('\n').map((l) => `  ${l}`) : [];
  const wgsl = `// ${p.name}: ${shape}tile ${TM}x${TN}, ${lanes} lanes, k step ${step}
${p.declarations.trim()}${sz ? `\n${sz.declaration(p.bindings.length)}` : ''}

@compute @workgroup_size(${lanes})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>${p.entryParams ? `, ${p.entryParams}` : ''}) {
${[...prologue, ...lines].join('\n')}
}
`;
  const attached = sz ? sz.attach(p.bindings) : { bindings: p.bindings, params: undefined };
  return {
    // A size-generic kernel serves launches whose tilings pick different workgroup sizes: the name says which.
    name: `${p.name}_t${TM}x${TN}${sz ? `_w${lanes}` : ''}`,
    wgsl,
    bindings: attached.bindings,
    workgroups: rowsFast ? [gridY, gridX, 1] : [gridX, gridY, gridZ],
    flops: p.flops,
    ...(attached.params ? { params: attached.params } : {}),
  };
}

/**
 * Lane loads for an operand contiguous along k: L[k + s, col] at index
 * `start(col) + s` for the sub-steps s of an iteration. Per column that is
 * `step / 4` vec4s when the caller guarantees start(col) is a multiple of 4,
 * else `step` scalars.
 * `array` is the binding, declared array<vec4<f32>> when vectorised.
 */
export function kContiguousLane(start: (col: string) => string, step: number, vectorised: boolean, array: string): GemmProblem['lane'] {
  const loads: LaneLoad[] = [];
  if (vectorised) {
    if (step % 4 !== 0) throw new Error(`kContiguousLane: vectorised loads need a k step divisible by 4, got ${step}`);
    for (let j = 0; j < TILE_COLS; j++) {
      for (let v = 0; v < step / 4; v++) loads.push({ expr: `${array}[(${start(`col${j}`)}) / 4u + ${u(v)}]`, at: 4 * v });
    }
    return { loads, element: (j, s) => `lv${j * (step / 4) + (s >> 2)}[${s & 3}]` };
  }
  for (let j = 0; j < TILE_COLS; j++) for (let s = 0; s < step; s++) loads.push({ expr: `${array}[${start(`col${j}`)} + ${u(s)}]`, at: s });
  return { loads, element: (j, s) => `lv${j * step + s}` };
}

// ---------------------------------------------------------------------------
// matmul / linear

export interface MatmulOptions {
  /** C = A x B with A [M, K] (or [K, M] when transposeA) and B [K, N] (or [N, K] when transposeB). */
  M: number;
  N: number;
  K: number;
  /** Independent products; A, B and C are stacked along a leading batch axis. */
  batch?: number;
  transposeA?: boolean;
  transposeB?: boolean;
  /** Adds bias[N] to every row (binding `bias`). */
  bias?: boolean;
  /** B is shared by every batch entry (e.g. a linear layer's weight). */
  broadcastB?: boolean;
  /** C += A x B instead of C = A x B (gradient accumulation). */
  accumulate?: boolean;
  name?: string;
}

/**
 * Batched matmul C[b] = op(A[b]) x op(B[b]) (+ bias) as one GEMM dispatch.
 * Bindings: a (read), b (read), [bias (read)], c (read_write); row-major, contiguous.
 * The uniform side is A's rows (any layout is cheap there); B decides the lane loads:
 * vec4 over columns when B is [K, N] with N % 4 == 0, vec4 over k when B is
 * transposed ([N, K], e.g. a linear weight) with K % 4 == 0, scalar otherwise.
 * Speed on lavapipe: the transposed-B forms run at about a third of the plain
 * one (see the header); for a large linear layer, materialising W^T once per
 * step and using transposeB = false is cheaper than paying it in every product.
 */
export function matmulKernel(o: MatmulOptions): KernelSpec {
  const { M, N, K } = o;
  const batch = o.batch ?? 1;
  // Size-generic: M, N, K and the batch come from the sizes uniform, so the
  // products of one layout and tiling share one WGSL (one JIT compile on
  // lavapipe, about 1 s each); what shapes the code (transposes, vec4 lane
  // loads and stores, bias, accumulate) stays in the text.
  const sz = new SizeParams();
  const [M_, N_, K_] = [sz.u('M', M), sz.u('N', N), sz.u('K', K)];
  const bBase = o.broadcastB ? '0u' : `group * ${sz.u('KN', K * N)}`;
  // B's layout decides the lane loads: [K, N] rows are contiguous along the
  // columns (2 vec4s per k when N % 4 == 0); a transposed [N, K] B is
  // contiguous along k (vec4s over 4 k when K % 4 == 0); scalars otherwise.
  let lane: GemmProblem['lane'];
  let step = 1;
  let bVec4: boolean;
  if (!o.transposeB) {
    bVec4 = N % 4 === 0;
    lane = bVec4
      ? {
          loads: [0, 4].map((c) => ({ expr: `b[(${bBase} + k * ${N_} + min(firstCol + ${u(c)}, ${sz.u('N_LAST4', N - 4)})) / 4u]`, at: 0 })),
          element: (j) => `lv${j >> 2}[${j & 3}]`,
        }
      : { loads: [...Array(TILE_COLS).keys()].map((j) => ({ expr: `b[${bBase} + k * ${N_} + col${j}]`, at: 0 })), element: (j) => `lv${j}` };
  } else {
    bVec4 = K % 4 === 0;
    step = bVec4 ? 4 : 1;
    lane = kContiguousLane((col) => `${bBase} + ${col} * ${K_} + k`, step, bVec4, 'b');
  }
  const bindings: KernelSpec['bindings'] = [
    { name: 'a', access: 'read' },
    { name: 'b', access: 'read' },
    ...(o.bias ? [{ name: 'bias', access: 'read' as const }] : []),
    { name: 'c', access: 'read_write' },
  ];
  // C rows (and bias) are read/written as vec4s when N % 4 == 0.
  const cVec4 = N % 4 === 0;
  const vec4Bindings = new Set([...(bVec4 ? ['b'] : []), ...(cVec4 ? ['c', 'bias'] : [])]);
  const decls = bindings
    .map((b, i) => `@group(0) @binding(${i}) var<storage, ${b.access === 'read' ? 'read' : 'read_write'}> ${b.name}: ${vec4Bindings.has(b.name) ? 'array<vec4<f32>>' : 'array<f32>'};`)
    .join('\n');
  const aAt = (i: number, k: string) => (o.transposeA ? `a[aBase + (${k}) * ${M_} + row${i}]` : `a[aBase + row${i} * ${K_} + ${k}]`);
  const tag = `${o.transposeA ? 't' : 'n'}${o.transposeB ? 't' : 'n'}${o.bias ? '_bias' : ''}${o.broadcastB ? '_bcast' : ''}${o.accumulate ? '_acc' : ''}${bVec4 ? '_bv4' : ''}${cVec4 ? '_cv4' : ''}`;
  return gemmKernel({
    name: o.name ?? `matmul_${tag}`,
    rows: M,
    cols: N,
    groups: batch,
    bindings,
    sizes: sz,
    declarations: decls,
    groupSetup: `let aBase = group * ${sz.u('MK', M * K)};\nlet cBase = group * ${sz.u('MN', M * N)};`,
    rowSetup: () => '',
    loop: { init: '', iterations: step === 1 ? K_ : sz.u('K_STEPS', K / step), step, advance: '' },
    uniformAt: (i, s) => aAt(i, s === 0 ? 'k' : `k + ${u(s)}`),
    lane,
    store: (i, col, value) => {
      const idx = `cBase + row${i} * ${N_} + ${col}`;
      const v = o.bias ? `${value} + bias[${col}]` : value;
      return o.accumulate ? `c[${idx}] += ${v};` : `c[${idx}] = ${v};`;
    },
    storeVec4: cVec4
      ? (i, q, value) => {
          const idx = `(cBase + row${i} * ${N_} + firstCol) / 4u + ${u(q)}`;
          const v = o.bias ? `${value} + bias[firstCol / 4u + ${u(q)}]` : value;
          return o.accumulate ? `c[${idx}] += ${v};` : `c[${idx}] = ${v};`;
        }
      : undefined,
    flops: 2 * batch * M * N * K,
  });
}
