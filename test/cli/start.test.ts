// `npm start` (scripts/start.sh) trains models/ms-clip-gan.gan at its `cpu`
// preset on the shapes data. The preset's sizes were chosen by measurement
// (README, "Training on the shapes data"); these tests pin the wiring: the
// script is what npm start runs, it is valid bash, and the preset resolves to a
// three-stage model with a step count, so `gan train` needs no --steps.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkFile } from '../../compiler/index.ts';

describe('npm start', () => {
  it('runs scripts/start.sh, which parses as bash and trains the cpu preset on data/shapes', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
    expect(pkg.scripts.start).toBe('bash scripts/start.sh');
    execFileSync('bash', ['-n', 'scripts/start.sh']); // throws on a syntax error
    const script = readFileSync('scripts/start.sh', 'utf8');
    expect(script).toMatch(/gan train "\$model" --preset cpu --data "\$data"/);
    expect(script).toMatch(/gan eval colour "\$run"/);
    expect(readFileSync('.gitignore', 'utf8').split('\n')).toContain('/data/');
  });

  it('the cpu preset keeps the three stages (at 32/64/128 px), with steps set and 3+ channels at g2', () => {
    const r = checkFile('models/ms-clip-gan.gan', { preset: 'cpu' });
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const m = r.model!;
    expect(m.train.steps).toBeGreaterThan(0);
    expect(m.train.batch).toBe(8);
    expect(m.objective.kl).toBe(0.02);
    // g2's feature map has ngf / 4 channels before ToImage: with one, every colour lies on a line.
    expect(Number(m.params.ngf) / 4).toBeGreaterThanOrEqual(3);
    const base = checkFile('models/ms-clip-gan.gan').model!;
    const layout = (ns: typeof m.networks) => ns.map((n) => [n.name, n.stages?.length]);
    expect(layout(m.networks)).toEqual(layout(base.networks));
    expect(m.networks.map((n) => [n.name, n.resolution, n.stages?.map((s) => s.resolution)])[0]).toEqual(['G', 128, [32, 64, 128]]);
  });
});
