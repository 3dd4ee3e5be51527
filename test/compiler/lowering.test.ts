// Every bundled model lowers to the IR and plans into GAN training steps
// (no device needed): the compile path from .gan to kernels never breaks
// silently for a model we ship.
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildGanSteps } from '../../compiler/gan-step.ts';
import { checkFile } from '../../compiler/index.ts';
import { printGraph } from '../../compiler/ir/printer.ts';
import { lowerNetwork } from '../../compiler/lower.ts';

const MODELS = ['models/ms-clip-gan.gan', 'models/stackgan-v2.gan', 'models/dcgan.gan', ...readdirSync('models/variants').map((f) => `models/variants/${f}`)];

describe('lowering and planning of the bundled models (tiny preset, batch 2)', () => {
  for (const file of MODELS) {
    it(file, () => {
      const r = checkFile(file, { preset: 'tiny' });
      expect(r.model, r.diagnostics.map((d) => d.message).join('\n')).toBeDefined();
      const m = r.model!;
      for (const net of m.networks) {
        for (const training of [true, false]) {
          const l = lowerNetwork(net, { batch: 2, training });
          // Every parameter the checker counted exists in the IR with its shape.
          const counted = net.graph.nodes.flatMap((n) => n.params.map((p): [string, string] => [`${net.name}/${p.name}`, p.shape.join('x')]));
          const lowered = l.params.map((p): [string, string] => [p.name!, p.shape.join('x')]);
          expect(new Map(lowered)).toEqual(new Map(counted));
          expect(printGraph(l.builder.graph)).toMatch(/^output /m);
        }
      }
      const steps = buildGanSteps(m, 2);
      expect(steps.dStep.plan.stats.dispatches).toBeGreaterThan(0);
      expect(steps.gStep.plan.stats.dispatches).toBeGreaterThan(0);
      const dNames = m.networks.filter((n) => n.kind === 'discriminator').map((n) => n.name);
      expect(steps.groups).toEqual({ g: 'G', d: dNames });
      // Every D param gets a gradient in the D step; every G param in the G step.
      const params = Object.keys(steps.layout.params);
      expect([...steps.dStep.plan.grads].sort()).toEqual(params.filter((p) => !p.startsWith('G/')).sort());
      expect([...steps.gStep.plan.grads].sort()).toEqual(params.filter((p) => p.startsWith('G/')).sort());
    });
  }
});
