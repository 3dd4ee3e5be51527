// Parameter initialisation (runtime/init.ts): deterministic from the seed and
// pinned to the values it gave when it still lived in the executor, so a
// refactor that reorders the draws (or changes the stream) fails here.
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../compiler/ir/builder.ts';
import { layoutState } from '../../compiler/plan/index.ts';
import { initialValues, initTensor, normalSource } from '../../runtime/init.ts';

function layout() {
  const b = new GraphBuilder();
  b.param('g/fc/weight', [3, 4], { kind: 'normal', mean: 0, std: 0.02 }, 'G');
  b.param('g/fc/bias', [5], { kind: 'uniform', low: -1, high: 1 }, 'G');
  b.param('d/fc/weight', [2, 3], { kind: 'orthogonal', gain: 1 }, 'D');
  b.param('d/bn/weight', [3], { kind: 'ones' }, 'D');
  b.buffer('d/bn/running_var', [3], { kind: 'ones' });
  b.buffer('extra', [4], { kind: 'normal', mean: 1, std: 2 });
  return layoutState(b.graph);
}

describe('initialisation', () => {
  it('gives the values it gave inside the executor (seed 7): params first, then state, in layout order', () => {
    const v = initialValues(layout(), 7);
    expect(Object.keys(v.params)).toEqual(['g/fc/weight', 'g/fc/bias', 'd/fc/weight', 'd/bn/weight']);
    expect(Array.from(v.params['g/fc/weight'].slice(0, 4))).toEqual([-0.009871505200862885, -0.005584126338362694, 0.012076581828296185, 0.009993807412683964]);
    expect(Array.from(v.params['g/fc/bias'])).toEqual([-0.6528305411338806, 0.5590000748634338, 0.542820930480957, -0.28274253010749817, -0.9014191031455994]);
    expect(Array.from(v.params['d/fc/weight'])).toEqual([0.5632634162902832, -0.8123341202735901, 0.1511540561914444, 0.4876464903354645, 0.4744914472103119, 0.7328429222106934]);
    expect(Array.from(v.params['d/bn/weight'])).toEqual([1, 1, 1]);
    expect(Array.from(v.state['d/bn/running_var'])).toEqual([1, 1, 1]);
    expect(Array.from(v.state.extra)).toEqual([1.0811522006988525, 4.67921781539917, -1.346428632736206, -2.260672092437744]);
  });

  it('is deterministic from the seed, and another seed gives other values', () => {
    const a = initialValues(layout(), 3);
    const b = initialValues(layout(), 3);
    const c = initialValues(layout(), 4);
    expect(b).toEqual(a);
    expect(c.params['g/fc/weight']).not.toEqual(a.params['g/fc/weight']);
  });

  it('normal and uniform inits have their moments and ranges', () => {
    const n = 20000;
    const normal = initTensor({ kind: 'normal', mean: 0.5, std: 2 }, [n], normalSource(1));
    const mean = normal.reduce((s, x) => s + x, 0) / n;
    const std = Math.sqrt(normal.reduce((s, x) => s + (x - mean) ** 2, 0) / n);
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.05); // 3.5 standard errors (2 / sqrt(n) = 0.014)
    expect(Math.abs(std - 2)).toBeLessThan(0.04);
    const uniform = initTensor({ kind: 'uniform', low: -3, high: 1 }, [n], normalSource(2));
    expect(Math.min(...uniform)).toBeGreaterThanOrEqual(-3);
    expect(Math.max(...uniform)).toBeLessThanOrEqual(1);
    expect(Math.abs(uniform.reduce((s, x) => s + x, 0) / n + 1)).toBeLessThan(0.03); // mean -1, se 0.008
    const quarter = uniform.filter((x) => x < -2).length / n; // P(x < -2) = 1/4
    expect(Math.abs(quarter - 0.25)).toBeLessThan(0.015);
  });

  it('orthogonal init has orthonormal rows (wide) or columns (tall), times the gain', () => {
    for (const [rows, cols] of [[3, 7], [7, 3]]) {
      const w = initTensor({ kind: 'orthogonal', gain: 1.5 }, [rows, cols], normalSource(5));
      const [outer, inner, at] = rows <= cols ? [rows, cols, (i: number, k: number) => w[i * cols + k]] : [cols, rows, (i: number, k: number) => w[k * cols + i]];
      for (let i = 0; i < outer; i++) {
        for (let j = 0; j < outer; j++) {
          let s = 0;
          for (let k = 0; k < inner; k++) s += at(i, k) * at(j, k);
          expect(s).toBeCloseTo(i === j ? 2.25 : 0, 5);
        }
      }
    }
  });
});
