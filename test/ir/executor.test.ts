// The executor on Dawn: several programs sharing state and transient buffers,
// noise fed or generated, asynchronous read-back through the staging ring.
import { afterAll, describe, expect, it } from 'vitest';
import { paramGrads } from '../../compiler/autodiff.ts';
import { GraphBuilder } from '../../compiler/ir/builder.ts';
import { bce } from '../../compiler/ops/losses.ts';
import { linear } from '../../compiler/ops/matmul.ts';
import { compileProgram, layoutState } from '../../compiler/plan/index.ts';
import { Runtime } from '../../runtime/executor.ts';
import { Adam } from '../../runtime/optim.ts';
import { randn } from '../oracle/random.ts';

function tinyGan() {
  const b = new GraphBuilder();
  const z = b.noise('z', 'randn', { shape: [4, 8] });
  const real = b.input('real', [4, 8]);
  const wg = b.param('g/fc/weight', [8, 8], { kind: 'orthogonal', gain: 1 }, 'G');
  const wd = b.param('d/fc/weight', [1, 8], { kind: 'normal', mean: 0, std: 0.3 }, 'D');
  const fake = b.tanh(linear(b, z, wg));
  const d = (x: typeof z) => linear(b, x, wd);
  const lossD = b.add(bce(b, d(real), 0.9), bce(b, d(b.detach(fake)), 0));
  const lossG = bce(b, d(fake), 1);
  const layout = layoutState(b.graph);
  const dStep = compileProgram(b.graph, layout, { name: 'd_step', outputs: { lossD }, grads: paramGrads(b, lossD, ['D']), groups: ['D'] });
  const gStep = compileProgram(b.graph, layout, { name: 'g_step', outputs: { lossG, fake }, grads: paramGrads(b, lossG, ['G']), groups: ['G'] });
  return { layout, dStep, gStep };
}

describe('executor', () => {
  let rt: Runtime | undefined;
  afterAll(() => rt?.destroy());

  it('runs D and G programs over shared state; noise is fresh unless fed', async () => {
    const { layout, dStep, gStep } = tinyGan();
    rt = await Runtime.create(layout, { seed: 5 });
    rt.initState(1);
    const d = await rt.load(dStep);
    // Plans are plain data: a generated module can embed them as JSON.
    const g = await rt.load(JSON.parse(JSON.stringify(gStep)));
    const real = randn([4, 8], 3).data;
    const z = randn([4, 8], 4).data;

    const a = await rt.run(g, { z });
    await rt.run(d, { real }); // shares transient buffers with g
    const b = await rt.run(g, { z });
    expect(b.lossG).toEqual(a.lossG);
    expect(b.fake).toEqual(a.fake);
    const lossOnly = await rt.run(g, { z }, { read: ['lossG'] });
    expect(Object.keys(lossOnly)).toEqual(['lossG']);
    expect(await rt.readOutput(g, 'fake')).toEqual(a.fake);
    const fresh1 = await rt.run(g);
    const fresh2 = await rt.run(g);
    expect(fresh1.fake).not.toEqual(a.fake);
    expect(fresh2.fake).not.toEqual(fresh1.fake);

    // Orthogonal init: W W^T = I.
    const w = await rt.readParam('g/fc/weight');
    for (let i = 0; i < 8; i++) {
      for (let j = 0; j < 8; j++) {
        let s = 0;
        for (let k = 0; k < 8; k++) s += w[i * 8 + k] * w[j * 8 + k];
        expect(s).toBeCloseTo(i === j ? 1 : 0, 5);
      }
    }
  });

  it('keeps stepping without awaiting read-backs, and training lowers the D loss', async () => {
    const { layout, dStep } = tinyGan();
    const r = await Runtime.create(layout);
    r.initState(2);
    const adam = new Adam(r, 'D', { lr: 0.05, betas: [0.5, 0.999] });
    const d = await r.load(dStep, [adam]);
    const real = randn([4, 8], 3).data;
    const pending: Promise<Record<string, Float32Array>>[] = [];
    for (let s = 0; s < 30; s++) pending.push(r.run(d, { real }, { optimizers: [adam] }));
    const losses = (await Promise.all(pending)).map((o) => o.lossD[0]);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[29]).toBeLessThan(losses[0]);
    expect(adam.steps).toBe(30);
    r.destroy();
  });

  it('reports missing and mis-sized feeds by name and shape', async () => {
    const { layout, dStep } = tinyGan();
    const r = await Runtime.create(layout);
    const d = await r.load(dStep);
    expect(() => r.run(d, {})).toThrow(/d_step: missing feed 'real' \[4,8\]/);
    expect(() => r.run(d, { real: new Float32Array(3) })).toThrow(/feed 'real' \[4,8\] needs 32 floats, got 3/);
    expect(() => r.run(d, { real: new Float32Array(32), nope: new Float32Array(1) })).toThrow(/unknown feed 'nope'/);
    r.destroy();
  });
});
