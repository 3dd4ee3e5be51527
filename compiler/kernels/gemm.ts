// The one GEMM skeleton behind matmul/linear and the three convolution passes.
//
// C[row, col] = sum_k U[row, k] * L[k, col], computed in tiles of
// TILE_ROWS x TILE_COLS outputs per invocation (register blocking).
//
// The two operands play different roles, and that is what makes it fast on
// lavapipe (llvmpipe runs an 8-wide SIMD vector of invocations per CPU core):
// - the "uniform" operand U is indexed only by the workgroup id and the k loop,
//   so every invocation of a workgroup reads the same U element; Mesa's
//   divergence analysis turns those into one scalar load and a broadcast, and
//   any index arithmetic on them (im2col decomposition, padding checks) runs
//   once per workgroup in scalar registers;
// - the "lane" operand L differs per invocation (each takes TILE_COLS
//   consecutive columns); where its layout allows, it is read as vec4s.
// Measured on lavapipe (1024^3 matmul): 8x8 per invocation with vec4 lane loads
// ~17-20 GFLOP/s; the same with scalar lane loads ~10; 4x8 or 16x4 blocks
// 12-14. Workgroup memory is not used: on a CPU it only adds copies.
//
// A GemmProblem says how U and L elements are addressed ("loaders"); this file
// owns the loop nest, the accumulators, the tile sizes and the dispatch shape.
import type { KernelSpec } from './kernel.ts';

/** How the lane operand is read; decides the k step and the load width. */
export type LaneLoadMode =
  /** `at(col)` is a vec4 of L[k, col..col+3] (cols multiple of 4, col 4-aligned). */
  | 'cols-vec4'
  /** `at(col)` is a vec4 of L[k..k+3, col] (depth multiple of 4; k steps by 4, and
   *  `at` sees the counters of the first of the 4). */
  | 'k-vec4'
  /** `at(col)` is the f32 L[k, col]. */
  | 'scalar';

export interface GemmProblem {
  /** Kernel name; tile sizes are appended. */
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
  /**
   * WGSL run once before the k loop for tile row i. In scope: `group: u32` and
   * `row{i}: u32`, the row index (clamped into range, so loads stay in bounds).
   */
  rowSetup(i: number): string;
  /** WGSL run once per invocation before the rows' set-up; `group: u32` in scope. */
  groupSetup?: string;
  /**
   * The reduction: `init` declares counters, `count` is the trip count (may use
   * `group`), `prelude` runs at each k before the uniform loads (its lets are
   * scoped to that k), `advance` moves the counters on by one k.
   */
  loop: { init: string; count: string; prelude?: string; advance: string };
  /**
   * WGSL f32 expression of U[row{i}, k] at the current counters; `k` is a WGSL
   * u32 expression of the flat reduction index (the loop variable plus the
   * sub-step when the lane loads cover 4 k at once).
   */
  uniformAt(i: number, k: string): string;
  /**
   * How L is read; `at(col)` gets a WGSL u32 column expression (clamped into
   * range) and may use `k`, `group` and the loop counters, not prelude lets.
   */
  lane: { mode: LaneLoadMode; at(col: string): string };
  /**
   * WGSL statement storing `value` (f32 expression) as C[row{i}, col]; it runs
   * only for rows and columns in range. In scope: `group`, `row{i}`.
   */
  store(i: number, col: string, value: string): string;
  /** Useful floating-point operations of one dispatch (2 per multiply-add). */
  flops: number;
}

/** Outputs per invocation and invocations per workgroup, decided here only. */
export interface GemmTiling {
  tileRows: number;
  tileCols: number;
  lanes: number;
}

/**
 * The tile policy: 8x8 outputs per invocation (best measured on lavapipe),
 * narrower on the lane side when there are few columns (a 1-channel head
 * would otherwise waste 7 of 8 lanes' work), and as many invocations per
 * workgroup as there are column tiles, between 1 SIMD vector (8) and 32.
 */
export function chooseTiling(rows: number, cols: number, mode: LaneLoadMode): GemmTiling {
  const tileRows = rows >= 8 ? 8 : rows >= 4 ? 4 : Math.max(1, rows);
  const tileCols = mode === 'cols-vec4' || cols >= 8 ? 8 : 4;
  const colTiles = Math.ceil(cols / tileCols);
  const lanes = Math.min(32, Math.max(8, 2 ** Math.ceil(Math.log2(colTiles))));
  return { tileRows, tileCols, lanes };
}

/** Dawn's limit on workgroups per dispatch dimension. */
const MAX_GROUPS_PER_DIM = 65535;

function u(n: number): string {
  return `${n}u`;
}

/** Renders the GEMM skeleton for a problem into a KernelSpec. */
export function gemmKernel(p: GemmProblem, tiling: GemmTiling = chooseTiling(p.rows, p.cols, p.lane.mode)): KernelSpec {
  const { tileRows: TM, tileCols: TN, lanes } = tiling;
  if (TN % 4 !== 0) throw new Error(`gemm '${p.name}': tileCols must be a multiple of 4, got ${TN}`);
  if (p.lane.mode === 'cols-vec4' && p.cols % 4 !== 0) throw new Error(`gemm '${p.name}': cols-vec4 needs cols % 4 == 0 (cols ${p.cols})`);
  const vecs = TN / 4;
  const step = p.lane.mode === 'k-vec4' ? 4 : 1;
  const rowTiles = Math.ceil(p.rows / TM);
  const colTiles = Math.ceil(p.cols / TN);
  const gridX = Math.ceil(colTiles / lanes);
  // Uniform-side tiles of all groups, spread over y and z past the per-dimension limit.
  const uniformTiles = rowTiles * p.groups;
  const gridY = Math.min(uniformTiles, MAX_GROUPS_PER_DIM);
  const gridZ = Math.ceil(uniformTiles / gridY);

  const lines: string[] = [];
  const emit = (s: string, indent = 1) => {
    for (const l of s.split('\n')) if (l.trim()) lines.push('  '.repeat(indent) + l.trim());
  };

  // Per-invocation set-up: which group and rows (uniform), which columns (per lane).
  emit(`let tile = wid.y + wid.z * ${u(gridY)};`);
  emit(`if (tile >= ${u(uniformTiles)}) { return; }`);
  emit(`let group = tile / ${u(rowTiles)};`);
  emit(`let firstRow = (tile % ${u(rowTiles)}) * ${u(TM)};`);
  emit(p.groupSetup ?? '');
  emit(`let firstCol = (wid.x * ${u(lanes)} + lid.x) * ${u(TN)};`);
  for (let i = 0; i < TM; i++) {
    emit(`let row${i} = min(firstRow + ${u(i)}, ${u(p.rows - 1)});`);
    emit(p.rowSetup(i));
  }
  // Lane columns, clamped so loads stay in range; stores check the real column.
  if (p.lane.mode === 'cols-vec4') {
    for (let q = 0; q < vecs; q++) emit(`let colv${q} = min(firstCol + ${u(4 * q)}, ${u(p.cols - 4)});`);
  } else {
    for (let j = 0; j < TN; j++) emit(`let col${j} = min(firstCol + ${u(j)}, ${u(p.cols - 1)});`);
  }
  for (let i = 0; i < TM; i++) for (let q = 0; q < vecs; q++) emit(`var acc${i}_${q} = vec4<f32>(0.0);`);

  // The reduction loop. Each k sub-step is its own block so loaders' per-k
  // `prelude` lets can be redeclared; the lane loads of a 4-k step come first.
  emit(p.loop.init);
  emit(`let depth = ${p.loop.count};`);
  emit(`for (var k = 0u; k < depth; k += ${u(step)}) {`);
  if (p.lane.mode === 'cols-vec4') {
    for (let q = 0; q < vecs; q++) emit(`let lane${q} = ${p.lane.at(`colv${q}`)};`, 2);
  } else {
    for (let j = 0; j < TN; j++) emit(`let lane${j} = ${p.lane.at(`col${j}`)};`, 2);
  }
  for (let s = 0; s < step; s++) {
    emit('{', 2);
    emit(p.loop.prelude ?? '', 3);
    // The lane operand of this k as vec4s over 4 adjacent columns.
    for (let q = 0; q < vecs; q++) {
      const cols = [0, 1, 2, 3].map((c) => `lane${4 * q + c}${step === 4 ? `[${s}]` : ''}`);
      const value = p.lane.mode === 'cols-vec4' ? `lane${q}` : `vec4<f32>(${cols.join(', ')})`;
      emit(`let b${q} = ${value};`, 3);
    }
    for (let i = 0; i < TM; i++) {
      emit(`let a${i} = ${p.uniformAt(i, s === 0 ? 'k' : `(k + ${u(s)})`)};`, 3);
      for (let q = 0; q < vecs; q++) emit(`acc${i}_${q} = fma(vec4<f32>(a${i}), b${q}, acc${i}_${q});`, 3);
    }
    emit(p.loop.advance, 3);
    emit('}', 2);
  }
  emit('}');

  // Epilogue: rows are uniform (one branch per workgroup), columns per lane.
  for (let i = 0; i < TM; i++) {
    emit(`if (firstRow + ${u(i)} < ${u(p.rows)}) {`);
    for (let j = 0; j < TN; j++) {
      emit(`if (firstCol + ${u(j)} < ${u(p.cols)}) {`, 2);
      emit(p.store(i, `(firstCol + ${u(j)})`, `acc${i}_${j >> 2}[${j & 3}]`), 3);
      emit('}', 2);
    }
    emit('}');
  }

  const wgsl = `// ${p.name}: ${p.groups} x [${p.rows} x ${p.cols}], tile ${TM}x${TN}, ${lanes} lanes, lane loads ${p.lane.mode}
${p.declarations.trim()}

@compute @workgroup_size(${lanes})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
${lines.join('\n')}
}
`;
  return {
    name: `${p.name}_t${TM}x${TN}`,
    wgsl,
    bindings: p.bindings,
    workgroups: [gridX, gridY, gridZ],
    flops: p.flops,
  };
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
 */
export function matmulKernel(o: MatmulOptions): KernelSpec {
  const { M, N, K } = o;
  const batch = o.batch ?? 1;
  const mode: LaneLoadMode = o.transposeB ? (K % 4 === 0 ? 'k-vec4' : 'scalar') : N % 4 === 0 ? 'cols-vec4' : 'scalar';
  const aIndex = (i: number, k: string) => (o.transposeA ? `aBase + ${k} * ${u(M)} + row${i}` : `aBase + row${i} * ${u(K)} + ${k}`);
  const bBase = o.broadcastB ? '0u' : `group * ${u(K * N)}`;
  const bDecl = mode === 'scalar' ? 'array<f32>' : 'array<vec4<f32>>';
  const laneAt = (col: string): string => {
    if (mode === 'cols-vec4') return `b[(${bBase} + k * ${u(N)} + ${col}) / 4u]`;
    if (mode === 'k-vec4') return `b[(${bBase} + ${col} * ${u(K)} + k) / 4u]`;
    return o.transposeB ? `b[${bBase} + ${col} * ${u(K)} + k]` : `b[${bBase} + k * ${u(N)} + ${col}]`;
  };
  const bindings: KernelSpec['bindings'] = [
    { name: 'a', access: 'read' },
    { name: 'b', access: 'read' },
    ...(o.bias ? [{ name: 'bias', access: 'read' as const }] : []),
    { name: 'c', access: 'read_write' },
  ];
  const decls = bindings
    .map((b, i) => `@group(0) @binding(${i}) var<storage, ${b.access === 'read' ? 'read' : 'read_write'}> ${b.name}: ${b.name === 'b' ? bDecl : 'array<f32>'};`)
    .join('\n');
  const tag = `${o.transposeA ? 't' : 'n'}${o.transposeB ? 't' : 'n'}${o.bias ? '_bias' : ''}${o.accumulate ? '_acc' : ''}`;
  return gemmKernel({
    name: o.name ?? `matmul_${tag}_b${batch}_m${M}_n${N}_k${K}`,
    rows: M,
    cols: N,
    groups: batch,
    bindings,
    declarations: decls,
    rowSetup: (i) => (i === 0 ? `let aBase = group * ${u(M * K)};\nlet cBase = group * ${u(M * N)};` : ''),
    loop: { init: '', count: u(K), advance: '' },
    uniformAt: (i, k) => `a[${aIndex(i, k)}]`,
    lane: { mode, at: laneAt },
    store: (i, col, value) => {
      const idx = `cBase + row${i} * ${u(N)} + ${col}`;
      const v = o.bias ? `${value} + bias[${col}]` : value;
      return o.accumulate ? `c[${idx}] += ${v};` : `c[${idx}] = ${v};`;
    },
    flops: 2 * batch * M * N * K,
  });
}
