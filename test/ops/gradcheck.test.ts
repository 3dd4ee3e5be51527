// Second check of every gradient rule, independent of PyTorch and of the GPU:
// the backward graph evaluated in float64 on the CPU (compiler/ir/reference.ts)
// against central finite differences of the forward, for every parity case.
import { describe, expect, it } from 'vitest';
import { grad } from '../../compiler/autodiff.ts';
import { GraphBuilder } from '../../compiler/ir/builder.ts';
import type { Value } from '../../compiler/ir/graph.ts';
import { evaluate } from '../../compiler/ir/reference.ts';
import { allOps } from '../../compiler/ops/registry.ts';
import { randn } from '../oracle/random.ts';
import { randomInput } from './harness.ts';

const cases = allOps()
  .filter((op) => op.kind === 'composite' || !op.random)
  .flatMap((op) => op.parity.map((c, k) => ({ op, c, label: `${op.name}${c.name ? `/${c.name}` : op.parity.length > 1 ? `/${k}` : ''}` })));

describe('gradient rules vs float64 finite differences', () => {
  it.each(cases)('$label', ({ op, c, label }) => {
    const seed = [...label].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) >>> 0, 3);
    const b = new GraphBuilder();
    const xs = c.inputs.map((s, i) => b.input(`x${i}`, s));
    const y = c.build ? c.build(b, xs) : b.apply(op.name, xs, c.attrs ?? {});
    const gradOf = c.grad ?? c.inputs.map((_, i) => i);
    if (gradOf.length === 0) return;
    const gy = b.input('gy', y.shape);
    const loss = b.sum(b.mul(y, gy));
    const gs = grad(b, loss, gradOf.map((i) => xs[i]));
    const feeds = new Map<number, Float64Array>();
    c.inputs.forEach((s, i) => feeds.set(xs[i].id, Float64Array.from(randomInput(s, c.domain?.[i] ?? 'normal', seed + i).data)));
    feeds.set(gy.id, Float64Array.from(randn([...y.shape], seed + 99).data));
    const analytic = evaluate(gs.filter((g): g is Value => g !== null), feeds);
    const L = () => evaluate([loss], feeds).get(loss.id)![0];
    const h = 1e-6;
    gradOf.forEach((i, k) => {
      const x = feeds.get(xs[i].id)!;
      const g = gs[k] ? analytic.get(gs[k]!.id)! : new Float64Array(x.length);
      let worst = 0;
      let scale = 0;
      for (let j = 0; j < x.length; j++) {
        const v = x[j];
        x[j] = v + h;
        const up = L();
        x[j] = v - h;
        const down = L();
        x[j] = v;
        const fd = (up - down) / (2 * h);
        worst = Math.max(worst, Math.abs(fd - g[j]));
        scale = Math.max(scale, Math.abs(fd));
      }
      expect(worst / Math.max(scale, 1e-12), `${label}: d/dx${i}`).toBeLessThan(1e-6);
    });
  });
});
