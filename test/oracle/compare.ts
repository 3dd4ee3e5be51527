// Comparing our results with the oracle's.
//
// relErr is the max-abs-based relative error: max_i |a_i - b_i| / max(max_i |b_i|, tiny).
// It is scale-aware (one big reference value sets the scale for the whole tensor)
// and, unlike an element-wise relative error, does not blow up on entries of b
// that are near zero. relErrNorm is the L2 variant ||a - b|| / ||b||, an average
// rather than a worst case; use it when a few elements are legitimately noisy.
import type { HostTensor } from './tensor.ts';

const TINY = 1e-30;

type Values = HostTensor | Float32Array | ArrayLike<number>;

function values(t: Values): ArrayLike<number> {
  return 'data' in t && !(t instanceof Float32Array) ? (t as HostTensor).data : (t as ArrayLike<number>);
}

function checkLengths(a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
}

/** max|a - b| / max(max|b|, 1e-30); NaN anywhere gives Infinity. `b` is the reference. */
export function relErr(actual: Values, expected: Values): number {
  const a = values(actual);
  const b = values(expected);
  checkLengths(a, b);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return Infinity;
    diff = Math.max(diff, d);
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, TINY);
}

/** ||a - b||_2 / max(||b||_2, 1e-30); NaN anywhere gives Infinity. `b` is the reference. */
export function relErrNorm(actual: Values, expected: Values): number {
  const a = values(actual);
  const b = values(expected);
  checkLengths(a, b);
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    if (Number.isNaN(d)) return Infinity;
    diff += d * d;
    norm += b[i] * b[i];
  }
  return Math.sqrt(diff) / Math.max(Math.sqrt(norm), TINY);
}

/**
 * Throws a readable error when relErr(actual, expected) >= tol, naming the worst
 * element so a failure says where it went wrong, not only by how much.
 */
export function expectClose(actual: Values, expected: Values, tol: number, label = 'tensor'): void {
  const a = values(actual);
  const b = values(expected);
  const err = relErr(a, b);
  if (err < tol) return;
  let worst = 0;
  for (let i = 1; i < a.length; i++) {
    if (!(Math.abs(a[i] - b[i]) <= Math.abs(a[worst] - b[worst]))) worst = i;
  }
  throw new Error(
    `${label}: relative error ${err.toExponential(3)} >= ${tol} ` +
      `(worst at flat index ${worst}: got ${a[worst]}, expected ${b[worst]}; ${a.length} elements)`,
  );
}
