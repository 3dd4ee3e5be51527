// Transient buffers from liveness: walking the launches in order, each value
// without a fixed home gets a transient buffer 'tN', reused once the value's
// last reader has run (roots are never released). Buffers are shared by every
// program of a runtime, which grows each to the largest size any asks for.
import type { Slot } from '../../runtime/format/plan.ts';
import { bytesOf, type Value } from '../ir/graph.ts';
import type { Launch } from './launches.ts';
import { argValue } from './split.ts';

export interface Transients {
  /** Sizes of 't0', 't1', ... in bytes. */
  sizes: number[];
  /** Largest sum of live activations at any launch. */
  liveBytes: number;
  /** Every activation in its own buffer. */
  unsharedBytes: number;
}

/** Decides the transient buffer of every launched value that has no home yet; adds them to `home`. */
export function allocateTransients(launches: Launch[], roots: Value[], home: Map<number, Slot>): Transients {
  const lastUse = new Map<number, number>();
  launches.forEach((l, i) => {
    for (const k of l.kernels) for (const a of k.args) if (a !== 'rng') lastUse.set(argValue(a)!.id, i);
  });
  for (const v of roots) lastUse.set(v.id, Infinity);
  const free: { id: number; size: number }[] = [];
  const sizes: number[] = [];
  const owner = new Map<number, number>(); // value id -> transient index
  let live = 0;
  let liveBytes = 0;
  let unsharedBytes = 0;
  launches.forEach((l, i) => {
    for (const v of l.outputs) {
      if (home.has(v.id)) continue;
      const size = bytesOf(v);
      unsharedBytes += size;
      // Best fit among free buffers; else grow the largest free one; else a new buffer.
      free.sort((p, q) => p.size - q.size);
      let pick = free.findIndex((f) => f.size >= size);
      if (pick < 0 && free.length) pick = free.length - 1;
      let t: number;
      if (pick >= 0) {
        t = free.splice(pick, 1)[0].id;
        sizes[t] = Math.max(sizes[t], size);
      } else {
        t = sizes.length;
        sizes.push(size);
      }
      owner.set(v.id, t);
      home.set(v.id, { buffer: `t${t}`, offset: 0, size });
      live += size;
      liveBytes = Math.max(liveBytes, live);
    }
    const released = new Set<number>();
    for (const k of l.kernels) {
      for (const arg of k.args) {
        const a = argValue(arg);
        if (a === null || released.has(a.id)) continue;
        const t = owner.get(a.id);
        if (t !== undefined && lastUse.get(a.id) === i) {
          released.add(a.id);
          free.push({ id: t, size: sizes[t] });
          live -= bytesOf(a);
        }
      }
    }
  });
  // Values with no consumers in this program (dead ends) are never released: harmless.
  return { sizes, liveBytes, unsharedBytes };
}
