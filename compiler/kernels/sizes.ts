// Run-time sizes of a size-generic kernel. Instead of baking a size (batch,
// channels, map sizes, strides derived from them, tile counts) into the WGSL
// as a literal, a kernel builder names it here and uses the WGSL expression it
// gets back; the kernel then declares one uniform binding (`sizes`, a struct
// of u32/i32 fields) and reads every size into a `let` at the top of `main`,
// and the launch carries the words (KernelSpec.params, see
// runtime/format/kernel.ts). Launches of different sizes then share one WGSL
// text, so one pipeline and one JIT compile. What shapes the code (tile sizes,
// kernel size, stride, padding, vector widths) stays a literal in the builder.
// Names are the WGSL identifiers of those `let`s: upper case by convention, so
// they never clash with a builder's lower-case locals.
import type { KernelSpec } from '../../runtime/format/kernel.ts';

export class SizeParams {
  private readonly fields = new Map<string, { type: 'u32' | 'i32'; value: number }>();

  /** The WGSL u32 expression of a run-time size `value` named `name`. */
  u(name: string, value: number): string {
    return this.add(name, 'u32', value);
  }

  /**
   * The same size read straight from the uniform (`sizes.NAME`), for helper
   * functions outside `main`, where the prologue's `let`s are not in scope.
   */
  field(name: string, value: number): string {
    return `sizes.${this.add(name, 'u32', value)}`;
  }

  /** The same as an i32 (a size used in signed index arithmetic, or a negative offset). */
  i(name: string, value: number): string {
    return this.add(name, 'i32', value);
  }

  private add(name: string, type: 'u32' | 'i32', value: number): string {
    const lo = type === 'u32' ? 0 : -(2 ** 31);
    const hi = type === 'u32' ? 2 ** 32 - 1 : 2 ** 31 - 1;
    if (!Number.isInteger(value) || value < lo || value > hi) throw new Error(`kernel size ${name} = ${value} is not a ${type}`);
    const had = this.fields.get(name);
    if (had && (had.type !== type || had.value !== value)) {
      throw new Error(`kernel size ${name}: declared as ${had.type} ${had.value}, then as ${type} ${value}`);
    }
    this.fields.set(name, { type, value });
    return name;
  }

  get empty(): boolean {
    return this.fields.size === 0;
  }

  /** The uniform struct and its binding (WGSL, outside `main`). */
  declaration(binding: number): string {
    const members = [...this.fields].map(([n, f]) => `  ${n}: ${f.type},`).join('\n');
    return `struct Sizes {\n${members}\n}\n@group(0) @binding(${binding}) var<uniform> sizes: Sizes;`;
  }

  /** Every size as a `let` (WGSL, first in `main`): loaded once, not in the loops. */
  prologue(): string {
    return [...this.fields.keys()].map((n) => `let ${n} = sizes.${n};`).join('\n');
  }

  /** The binding's words, in field order (i32 as their two's complement). */
  words(): number[] {
    return [...this.fields.values()].map((f) => f.value >>> 0);
  }

  /** A kernel's bindings with the sizes uniform appended, and its params: unchanged, and no params, when no size was named. */
  attach(bindings: KernelSpec['bindings']): Pick<KernelSpec, 'bindings' | 'params'> {
    return this.empty ? { bindings } : { bindings: [...bindings, { name: 'sizes', access: 'uniform' }], params: this.words() };
  }
}
