// The runtime's saveable state: what a checkpoint writes and what resuming
// needs to continue a run bit for bit. Runtime.exportState gives params,
// state buffers (e.g. BatchNorm running statistics) and the noise generator's
// words; each optimizer's exportState gives its moments and step count.
//
// Tensors are flat typed arrays by name (a safetensors file holds them as is);
// scalars are small JSON values (a checkpoint's metadata).

export type StateTensor = Float32Array | Uint32Array;

export interface SavedState {
  tensors: Record<string, StateTensor>;
  scalars: Record<string, number | string | boolean>;
}

/** What importState expects of each tensor. */
export interface TensorSpec {
  type: 'f32' | 'u32';
  length: number;
}

/**
 * Throws unless `s` holds exactly the expected tensors with their element type
 * and length: restoring a checkpoint of another model (or another optimizer)
 * must fail loudly, not half-load.
 */
export function checkTensors(what: string, s: SavedState, expected: Record<string, TensorSpec>): void {
  const missing = Object.keys(expected).filter((k) => !(k in s.tensors));
  const unknown = Object.keys(s.tensors).filter((k) => !(k in expected));
  const list = (names: string[]) => names.slice(0, 5).map((n) => `'${n}'`).join(', ') + (names.length > 5 ? `, ... (${names.length} in all)` : '');
  if (missing.length) throw new Error(`${what}: saved state lacks ${list(missing)}`);
  if (unknown.length) throw new Error(`${what}: saved state has unknown tensors ${list(unknown)}`);
  for (const [name, spec] of Object.entries(expected)) {
    const t = s.tensors[name];
    const type = t instanceof Float32Array ? 'f32' : t instanceof Uint32Array ? 'u32' : typeof t;
    if (type !== spec.type || t.length !== spec.length) {
      throw new Error(`${what}: tensor '${name}' must be ${spec.type}[${spec.length}], got ${type}[${t.length}]`);
    }
  }
}

/** Throws unless the scalar `key` of `s` equals `want` (e.g. the optimizer kind). */
export function checkScalar(what: string, s: SavedState, key: string, want: number | string | boolean): void {
  if (s.scalars[key] !== want) throw new Error(`${what}: saved state has ${key} = ${JSON.stringify(s.scalars[key])}, expected ${JSON.stringify(want)}`);
}
