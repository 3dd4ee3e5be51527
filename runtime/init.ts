// Parameter and state initialisation on the host, deterministic from a seed:
// the same seed gives the same values on every machine and every run, so a
// model can be re-initialised exactly without saving its initial weights.
//
// One standard-normal stream per call; params are drawn first, then state
// buffers, each in layout order. Changing that order (or the stream) changes
// every initial weight of every model: pin it with test/runtime/init.test.ts.
import type { Init, StateLayout } from './format/plan.ts';

/** Initial values of every param and state buffer of a layout, by name. */
export function initialValues(layout: StateLayout, seed: number): { params: Record<string, Float32Array>; state: Record<string, Float32Array> } {
  const randn = normalSource(seed);
  const params: Record<string, Float32Array> = {};
  const state: Record<string, Float32Array> = {};
  for (const [name, p] of Object.entries(layout.params)) params[name] = initTensor(p.init, p.shape, randn);
  for (const [name, s] of Object.entries(layout.state)) state[name] = initTensor(s.init, s.shape, randn);
  return { params, state };
}

/**
 * Standard normals from a splitmix32 stream (Box-Muller, cosine branch only:
 * two uniforms per normal). The generator lives only for one initialisation,
 * so there is no host-side random state to checkpoint.
 */
export function normalSource(seed: number): () => number {
  let s = (seed ^ 0x5bd1e995) >>> 0;
  const u = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (((z ^ (z >>> 16)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

function normalCdf(z: number): number {
  // Abramowitz-Stegun 7.1.26 erf, |error| < 1.5e-7: plenty for initial weights.
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return 0.5 * (1 + Math.sign(z) * erf);
}

/** One tensor's initial values, drawing from `randn` (consumed in element order). */
export function initTensor(init: Init, shape: readonly number[], randn: () => number): Float32Array {
  const n = shape.reduce((p, d) => p * d, 1);
  const out = new Float32Array(n);
  switch (init.kind) {
    case 'zeros':
      return out;
    case 'ones':
      return out.fill(1);
    case 'const':
      return out.fill(init.value);
    case 'normal':
      for (let i = 0; i < n; i++) out[i] = init.mean + init.std * randn();
      return out;
    case 'uniform':
      // Phi(z) of a standard normal z is uniform on (0, 1).
      for (let i = 0; i < n; i++) out[i] = init.low + (init.high - init.low) * normalCdf(randn());
      return out;
    case 'orthogonal':
      return orthogonal(shape, init.gain, randn);
  }
}

/** torch.nn.init.orthogonal_: rows = shape[0], columns = the rest; QR of a normal matrix (Gram-Schmidt). */
function orthogonal(shape: readonly number[], gain: number, randn: () => number): Float32Array {
  const rows = shape[0];
  const cols = shape.slice(1).reduce((p, d) => p * d, 1);
  const [r, c] = rows < cols ? [rows, cols] : [cols, rows]; // orthonormal rows of a [r, c] matrix, r <= c
  const m = Array.from({ length: r }, () => Float64Array.from({ length: c }, randn));
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < i; j++) {
      let d = 0;
      for (let k = 0; k < c; k++) d += m[i][k] * m[j][k];
      for (let k = 0; k < c; k++) m[i][k] -= d * m[j][k];
    }
    let norm = 0;
    for (let k = 0; k < c; k++) norm += m[i][k] * m[i][k];
    norm = Math.sqrt(norm) || 1;
    for (let k = 0; k < c; k++) m[i][k] /= norm;
  }
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < r; i++) {
    for (let k = 0; k < c; k++) {
      if (rows < cols) out[i * cols + k] = gain * m[i][k];
      else out[k * cols + i] = gain * m[i][k];
    }
  }
  return out;
}
