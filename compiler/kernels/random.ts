// Philox 4x32-10 (Salmon et al., SC'11). Counter = (i, stream, step, 0),
// key = (seed, 0xcafef00d); each invocation turns one 128-bit block into four
// numbers: normals by Box-Muller (randn) or uniforms (rand_uniform). The
// runtime fills the `rng` binding with [seed, step, 0, 0] every step.
import type { Shape } from '../ir/shape.ts';
import { numel } from '../ir/shape.ts';
import { f32 } from '../ops/op.ts';
import { gridFor } from '../../runtime/format/grid.ts';
import type { KernelSpec } from '../../runtime/format/kernel.ts';
import { SizeParams } from './sizes.ts';

export const PHILOX_WGSL = /* wgsl */ `
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
  let al = a & 0xffffu; let ah = a >> 16u;
  let bl = b & 0xffffu; let bh = b >> 16u;
  let ll = al * bl; let lh = al * bh; let hl = ah * bl; let hh = ah * bh;
  let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  return vec2<u32>(hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u), a * b);
}

fn philox(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = ctr;
  var k = key;
  for (var r = 0u; r < 10u; r++) {
    let p0 = mulhilo(0xD2511F53u, c.x);
    let p1 = mulhilo(0xCD9E8D57u, c.z);
    c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
  }
  return c;
}

// (0, 1]: never 0, so log() is finite.
fn unit(x: u32) -> f32 { return (f32(x >> 8u) + 1.0) * (1.0 / 16777216.0); }
`;

/**
 * One invocation per four outputs: `draw` is a WGSL vec4<f32> expression of
 * the Philox block `r` (a vec4<u32>). The length comes from the output binding
 * and the stream from the Sizes uniform, so every draw of one distribution
 * shares one WGSL (one pipeline) whatever its size and stream.
 */
function philoxKernel(name: string, shape: Shape, stream: number, draw: string): KernelSpec {
  const n = numel(shape);
  const g = gridFor(Math.ceil(n / 4));
  const sizes = new SizeParams();
  const streamWord = sizes.field('STREAM', stream);
  const wgsl = `${PHILOX_WGSL}
@group(0) @binding(0) var<storage, read> rng: array<u32, 4>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${sizes.declaration(2)}

@compute @workgroup_size(${g.size})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = ${g.index('gid')};
  let n = arrayLength(&out);
  if (t * 4u >= n) { return; }
  let r = philox(vec4<u32>(t, ${streamWord}, rng[1], 0u), vec2<u32>(rng[0], 0xcafef00du));
${draw}
  for (var j = 0u; j < 4u; j++) {
    let o = t * 4u + j;
    if (o < n) { out[o] = v[j]; }
  }
}
`;
  const { bindings, params } = sizes.attach([
    { name: 'rng', access: 'read' },
    { name: 'out', access: 'read_write' },
  ]);
  return { name, wgsl, bindings, workgroups: g.workgroups, params };
}

/** Standard normals (Box-Muller on two pairs of uniforms). */
export function randnKernel(shape: Shape, stream: number): KernelSpec {
  return philoxKernel(
    'randn',
    shape,
    stream,
    `  let m0 = sqrt(-2.0 * log(unit(r.x)));
  let m1 = sqrt(-2.0 * log(unit(r.z)));
  let a0 = 6.283185307179586 * unit(r.y);
  let a1 = 6.283185307179586 * unit(r.w);
  let v = vec4<f32>(m0 * cos(a0), m0 * sin(a0), m1 * cos(a1), m1 * sin(a1));`,
  );
}

/**
 * U(low, high): low + (high - low) * u with u = k / 2^24, k in [0, 2^24)
 * (the top 24 bits of a Philox word, exact in f32). Rounding can only reach
 * `high` itself for ranges whose spacing is coarser than 2^-24 of the width;
 * those values fold back to `low`, keeping the interval half-open.
 */
export function randUniformKernel(shape: Shape, stream: number, low: number, high: number): KernelSpec {
  const lo = f32(low);
  const width = f32(high - low);
  const hi = f32(high);
  return philoxKernel(
    'rand_uniform',
    shape,
    stream,
    `  let u = vec4<f32>(vec4<u32>(r.x >> 8u, r.y >> 8u, r.z >> 8u, r.w >> 8u)) * (1.0 / 16777216.0);
  let w = ${lo} + ${width} * u;
  let v = select(w, vec4<f32>(${lo}), w >= vec4<f32>(${hi}));`,
  );
}
