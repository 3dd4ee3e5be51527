// Small readers for checking parsed JSON against the plan and kernel formats.
// Each takes the value and its path in the document (e.g.
// "plan 'd_step'.steps[3].args[0].offset") and either returns it, typed, or
// throws a FormatError that names the path, what was expected and what was
// found. Objects are read field by field into fresh objects, and keys the
// format does not know are refused, so a typo or a plan from another format
// version fails here and not as a wrong dispatch later.

/** A serialized plan, layout or kernel that does not follow the format. */
export class FormatError extends Error {
  override name = 'FormatError';
}

function describe(x: unknown): string {
  if (x === undefined) return 'nothing';
  if (Array.isArray(x)) return `an array of ${x.length}`;
  if (x === null) return 'null';
  if (typeof x === 'object') return 'an object';
  const text = JSON.stringify(x);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

export function fail(path: string, expected: string, got: unknown): never {
  throw new FormatError(`${path}: expected ${expected}, got ${describe(got)}`);
}

export function str(x: unknown, path: string): string {
  return typeof x === 'string' ? x : fail(path, 'a string', x);
}

export function num(x: unknown, path: string): number {
  return typeof x === 'number' && Number.isFinite(x) ? x : fail(path, 'a finite number', x);
}

/** A non-negative integer (sizes, offsets, indices, counts). */
export function count(x: unknown, path: string): number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x : fail(path, 'a non-negative integer', x);
}

export function oneOf<T extends string>(x: unknown, path: string, values: readonly T[]): T {
  return values.includes(x as T) ? (x as T) : fail(path, `one of ${values.map((v) => `'${v}'`).join(', ')}`, x);
}

export function array<T>(x: unknown, path: string, item: (x: unknown, path: string) => T): T[] {
  if (!Array.isArray(x)) fail(path, 'an array', x);
  return x.map((v, i) => item(v, `${path}[${i}]`));
}

/** A JSON object used as a map from names to `item`s. */
export function record<T>(x: unknown, path: string, item: (x: unknown, path: string) => T): Record<string, T> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) fail(path, 'an object', x);
  const out: Record<string, T> = {};
  for (const [k, v] of Object.entries(x)) out[k] = item(v, `${path}.${k}`);
  return out;
}

/**
 * A JSON object with exactly the `required` keys and possibly the `optional`
 * ones; returns it for field-by-field reading.
 */
export function fields(x: unknown, path: string, required: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) fail(path, 'an object', x);
  const o = x as Record<string, unknown>;
  for (const k of required) if (!(k in o)) throw new FormatError(`${path}: missing '${k}'`);
  for (const k of Object.keys(o)) {
    if (!required.includes(k) && !optional.includes(k)) throw new FormatError(`${path}: unknown field '${k}'`);
  }
  return o;
}

/** Parses JSON text, naming the document when it is not JSON at all. */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}
