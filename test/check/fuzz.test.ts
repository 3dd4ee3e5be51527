// Property: whatever the input, the parser and checker return diagnostics;
// they never throw, every diagnostic points inside its file, and rendering it
// is safe. The quick suite runs 200 structure-aware cases (fuzz-cases.ts)
// and every token-boundary truncation of one model; `npm run fuzz` runs
// thousands more, at full sizes.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GanLexer } from '../../grammar/tokens.ts';
import { makeCase, runCase } from './fuzz-cases.ts';

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
    const file = 'models/dcgan.gan';
    const text = readFileSync(file, 'utf8');
    const cuts = new Set<number>();
    for (const t of GanLexer.tokenize(text).tokens) cuts.add(t.startOffset).add((t.endOffset ?? t.startOffset) + 1);
    const failures: string[] = [];
    for (const at of cuts) {
      const bad = runCase({ index: at, base: file, mutations: [`cut at ${at}`], input: text.slice(0, at) });
      if (bad) failures.push(`cut at ${at}: ${bad}`);
    }
    expect(cuts.size).toBeGreaterThan(300);
    expect(failures.slice(0, 3).join('\n\n')).toBe('');
  });
});
