// Helpers for the float64 CPU reference semantics of ops (PrimitiveOp.ref).
import { numel, sameShape, strides, type Shape } from '../ir/shape.ts';

/** Maps a flat index of `to` to the flat index of `from` broadcast to it. */
export function broadcastIndexer(from: Shape, to: Shape): (i: number) => number {
  if (sameShape(from, to)) return (i) => i;
  if (numel(from) === 1) return () => 0;
  const lead = to.length - from.length;
  const fs = strides(from);
  const ts = strides(to);
  const dims: [number, number, number][] = [];
  for (let d = 0; d < from.length; d++) if (from[d] !== 1) dims.push([ts[d + lead], to[d + lead], fs[d]]);
  return (i) => {
    let j = 0;
    for (const [t, n, f] of dims) j += (Math.floor(i / t) % n) * f;
    return j;
  };
}

export function mapOut(out: Shape, f: (i: number) => number): Float64Array {
  const r = new Float64Array(numel(out));
  for (let i = 0; i < r.length; i++) r[i] = f(i);
  return r;
}

export function unaryRef(fn: (a: number) => number) {
  return (ins: readonly Float64Array[], c: { out: Shape; ins: readonly Shape[] }) => {
    const ix = broadcastIndexer(c.ins[0], c.out);
    return mapOut(c.out, (i) => fn(ins[0][ix(i)]));
  };
}

export function binaryRef(fn: (a: number, b: number) => number) {
  return (ins: readonly Float64Array[], c: { out: Shape; ins: readonly Shape[] }) => {
    const ia = broadcastIndexer(c.ins[0], c.out);
    const ib = broadcastIndexer(c.ins[1], c.out);
    return mapOut(c.out, (i) => fn(ins[0][ia(i)], ins[1][ib(i)]));
  };
}
