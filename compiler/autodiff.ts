// Reverse-mode autodiff at compile time: the backward pass is more IR, built
// with the same GraphBuilder, so it is fused, planned and lowered like the
// forward. micrograd-sized: topological order, reversed walk, accumulate.
//
// Only nodes on a path from a requested `wrt` value to the loss get a gradient,
// so a discriminator step asks for D's params and never touches G's param
// gradients. Ops declared not differentiable (detach) block the walk.
import type { GraphBuilder } from './ir/builder.ts';
import { topoSort, type Value } from './ir/graph.ts';
import { fmtShape, sameShape } from './ir/shape.ts';
import { primitive } from './ops/registry.ts';

/**
 * Gradients of `loss` (any shape; seeded with ones, or with `seed`) w.r.t. each
 * of `wrt`; null where the loss does not depend on that value.
 */
export function grad(b: GraphBuilder, loss: Value, wrt: readonly Value[], seed?: Value): (Value | null)[] {
  const nodes = topoSort([loss]);
  // Values that depend on some wrt value: only their producers need a rule.
  const active = new Set(wrt.map((v) => v.id));
  for (const n of nodes) {
    if (primitive(n.op).differentiable === false) continue;
    if (n.inputs.some((v) => active.has(v.id))) active.add(n.output.id);
  }
  const grads = new Map<number, Value>();
  const seedValue = seed ?? b.expand(b.scalar(1), loss.shape);
  if (!sameShape(seedValue.shape, loss.shape)) throw new Error(`grad: seed ${fmtShape(seedValue.shape)} does not match loss ${fmtShape(loss.shape)}`);
  grads.set(loss.id, seedValue);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k];
    const gy = grads.get(n.output.id);
    if (!gy || !active.has(n.output.id)) continue;
    const needs = n.inputs.map((v) => active.has(v.id));
    if (!needs.some(Boolean)) continue;
    const def = primitive(n.op);
    const gx = def.grad({ b, node: n, x: n.inputs, y: n.output, gy, attrs: n.attrs, needs });
    n.inputs.forEach((v, i) => {
      const g = gx[i];
      if (!needs[i] || !g) return;
      if (!sameShape(g.shape, v.shape)) {
        throw new Error(`grad rule of '${n.op}' returned ${fmtShape(g.shape)} for an input of shape ${fmtShape(v.shape)}`);
      }
      const prev = grads.get(v.id);
      grads.set(v.id, prev ? b.add(prev, g) : g);
    });
  }
  return wrt.map((v) => grads.get(v.id) ?? null);
}

/** Gradients of `loss` w.r.t. every param of the given groups, keyed by param name (for compileProgram). */
export function paramGrads(b: GraphBuilder, loss: Value, groups: readonly string[]): Map<string, Value | null> {
  const params = b.graph.params.filter((p) => groups.includes(p.group ?? 'default'));
  const gs = grad(b, loss, params);
  return new Map(params.map((p, i) => [p.name!, gs[i]]));
}
