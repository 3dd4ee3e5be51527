// Property: whatever the input, the parser and checker return diagnostics;
// they never throw, every diagnostic points inside its file, and rendering it
// is safe. The quick suite runs 200 structure-aware cases (fuzz-cases.ts)
// and every token-boundary truncation of one model; `npm run fuzz` runs
// thousands more, at full sizes.
import { describe, expect, it } from 'vitest';
import { makeCase, runCase, truncationCase, truncationCount } from './fuzz-cases.ts';

describe('fuzz: structure-aware mutations of the bundled models', () => {
  it('200 seeded cases: no throw, valid spans, safe rendering; most break the model, some do not', () => {
    const failures: string[] = [];
    let broken = 0;
    for (let i = 0; i < 200; i++) {
      const c = makeCase(1, i, 'quick');
      const bad = runCase(c, (r) => (broken += r.diagnostics.some((d) => d.severity === 'error') ? 1 : 0));
      if (bad) failures.push(`case ${i} (${c.base}; ${c.mutations.join('; ')}): ${bad}`);
    }
    expect(failures.slice(0, 3).join('\n\n')).toBe('');
    expect(broken).toBeGreaterThan(120);
    expect(broken).toBeLessThan(200);
  });

  it('truncation at every token boundary of a model', () => {
    const sweep = Array.from({ length: truncationCount() }, (_, k) => truncationCase(k)).filter((c) => c.base === 'models/dcgan.gan');
    const failures: string[] = [];
    for (const c of sweep) {
      const bad = runCase(c);
      if (bad) failures.push(`${c.mutations[0]}: ${bad}`);
    }
    expect(sweep.length).toBeGreaterThan(300);
    expect(failures.slice(0, 3).join('\n\n')).toBe('');
  });
});
