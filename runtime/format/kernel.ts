// A compute kernel as the compiler hands it to the runtime: WGSL (with shapes
// baked in, or read from its uniform binding: a size-generic kernel), its
// bindings in @binding order (all in @group(0)), and the dispatch size. The
// runtime caches pipelines by the WGSL text, so identical kernels are
// compiled once. Kernels travel inside plans (runtime/format/plan.ts),
// which carry the format version.
import { MAX_WORKGROUPS_PER_DIM } from './grid.ts';
import { array, count, fail, fields, FormatError, num, oneOf, str } from './validate.ts';

export type BindingAccess = 'read' | 'read_write' | 'uniform';

export const BINDING_ACCESS: readonly BindingAccess[] = ['read', 'read_write', 'uniform'];

export interface KernelSpec {
  /** Label for pipelines and profiling, e.g. 'gemm_m64_n64_k64'. */
  name: string;
  /** Complete WGSL source; the entry point is `main`. */
  wgsl: string;
  /** One entry per @group(0) @binding(i), in order. */
  bindings: { name: string; access: BindingAccess }[];
  /** Workgroup counts for dispatchWorkgroups. */
  workgroups: [number, number, number];
  /** Floating-point operations one dispatch performs (for GFLOP/s reports). */
  flops?: number;
  /**
   * The u32 words of the kernel's one 'uniform' binding (a size-generic
   * kernel reads its sizes there) for the launch it was built for; a plan's
   * dispatch step may carry its own (plan.ts, dispatchParams). Only kernels
   * with a uniform binding have them; callers binding buffers themselves
   * bind a uniform buffer holding these words (paramBytes pads them).
   */
  params?: number[];
}

/** A u32 word of a kernel's params. */
export function paramWord(x: unknown, path: string): number {
  const n = count(x, path);
  return n <= 0xffffffff ? n : fail(path, 'a u32 word (0 to 4294967295)', x);
}

/** The index of a kernel's one uniform binding, or -1; more than one is refused (plans bind one params buffer). */
export function paramsBinding(spec: KernelSpec): number {
  const at = spec.bindings.flatMap((b, i) => (b.access === 'uniform' ? [i] : []));
  if (at.length > 1) throw new Error(`kernel '${spec.name}' has ${at.length} uniform bindings; a plan kernel may have one (its params)`);
  return at.length ? at[0] : -1;
}

/** Params words as a uniform buffer's contents: padded with zeros to whole 16-byte rows (at least one). */
export function paramBytes(words: readonly number[]): Uint32Array {
  const out = new Uint32Array(Math.max(4, Math.ceil(words.length / 4) * 4));
  out.set(words);
  return out;
}

export function workgroupCount(x: unknown, path: string): number {
  const n = count(x, path);
  return n >= 1 && n <= MAX_WORKGROUPS_PER_DIM ? n : fail(path, `a workgroup count from 1 to ${MAX_WORKGROUPS_PER_DIM}`, x);
}

/** Reads a parsed KernelSpec (e.g. from a plan's JSON), or throws a FormatError naming `path`. */
export function readKernelSpec(x: unknown, path: string): KernelSpec {
  const o = fields(x, path, ['name', 'wgsl', 'bindings', 'workgroups'], ['flops', 'params']);
  const wgsl = str(o.wgsl, `${path}.wgsl`);
  if (!wgsl.trim()) fail(`${path}.wgsl`, 'WGSL source', wgsl);
  const workgroups = array(o.workgroups, `${path}.workgroups`, workgroupCount);
  if (workgroups.length !== 3) fail(`${path}.workgroups`, 'three workgroup counts [x, y, z]', o.workgroups);
  const spec: KernelSpec = {
    name: str(o.name, `${path}.name`),
    wgsl,
    bindings: array(o.bindings, `${path}.bindings`, (b, p) => {
      const f = fields(b, p, ['name', 'access']);
      return { name: str(f.name, `${p}.name`), access: oneOf(f.access, `${p}.access`, BINDING_ACCESS) };
    }),
    workgroups: workgroups as [number, number, number],
  };
  if (o.flops !== undefined) {
    const flops = num(o.flops, `${path}.flops`);
    spec.flops = flops >= 0 ? flops : fail(`${path}.flops`, 'a non-negative number', flops);
  }
  const uniforms = spec.bindings.filter((b) => b.access === 'uniform').length;
  if (uniforms > 1) fail(`${path}.bindings`, 'at most one uniform binding (the params)', o.bindings);
  if (o.params !== undefined) {
    if (!uniforms) throw new FormatError(`${path}.params: kernel '${spec.name}' has no uniform binding to hold params`);
    spec.params = array(o.params, `${path}.params`, paramWord);
  }
  return spec;
}
