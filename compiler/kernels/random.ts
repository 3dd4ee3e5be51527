// Philox 4x32-10 (Salmon et al., SC'11) + Box-Muller. Counter = (i, stream,
// step, 0), key = (seed, 0xcafef00d); each invocation yields four normals.
// The runtime fills the `rng` binding with [seed, step, 0, 0] every step.
import type { Shape } from '../ir/shape.ts';
import { numel } from '../ir/shape.ts';
import { gridFor } from '../../runtime/format/grid.ts';
import type { KernelSpec } from '../../runtime/format/kernel.ts';

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

export function randnKernel(shape: Shape, stream: number): KernelSpec {
  const n = numel(shape);
  const groups = Math.ceil(n / 4);
  const g = gridFor(groups);
  const wgsl = `${PHILOX_WGSL}
@group(0) @binding(0) var<storage, read> rng: array<u32, 4>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(${g.size})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = ${g.index('gid')};
  if (t >= ${groups}u) { return; }
  let r = philox(vec4<u32>(t, ${stream}u, rng[1], 0u), vec2<u32>(rng[0], 0xcafef00du));
  let m0 = sqrt(-2.0 * log(unit(r.x)));
  let m1 = sqrt(-2.0 * log(unit(r.z)));
  let a0 = 6.283185307179586 * unit(r.y);
  let a1 = 6.283185307179586 * unit(r.w);
  let v = vec4<f32>(m0 * cos(a0), m0 * sin(a0), m1 * cos(a1), m1 * sin(a1));
  for (var j = 0u; j < 4u; j++) {
    let o = t * 4u + j;
    if (o < ${n}u) { out[o] = v[j]; }
  }
}
`;
  return {
    name: `randn_${n}`,
    wgsl,
    bindings: [
      { name: 'rng', access: 'read' },
      { name: 'out', access: 'read_write' },
    ],
    workgroups: g.workgroups,
  };
}
