// Seeded random inputs for parity tests: the same seed gives the same tensor on
// every machine, so a failing case can be replayed exactly.
import { numel, type HostTensor } from './tensor.ts';

/** splitmix32: tiny, fast, good enough statistical quality for test inputs. */
export function seededUniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return (z + 0.5) / 4294967296; // in (0, 1): safe for log()
  };
}

/** Standard normal floats (Box-Muller) scaled by `std`. */
export function randn(shape: number[], seed: number, std = 1): HostTensor {
  const u = seededUniform(seed);
  const data = new Float32Array(numel(shape));
  for (let i = 0; i < data.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u()));
    const theta = 2 * Math.PI * u();
    data[i] = std * r * Math.cos(theta);
    if (i + 1 < data.length) data[i + 1] = std * r * Math.sin(theta);
  }
  return { shape, data };
}

/** Uniform floats in [lo, hi). */
export function randu(shape: number[], seed: number, lo = 0, hi = 1): HostTensor {
  const u = seededUniform(seed);
  const data = new Float32Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = lo + (hi - lo) * u();
  return { shape, data };
}
