// Regression: sfc32's first word was left signed after `b ^ (b >>> 9)`, so a
// checkpoint's data state could hold a negative word that the loader's
// setState refuses ("rng must be four 32-bit words"): `--resume` then failed
// for some runs. The words must stay unsigned, and a copy must continue alike.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../runtime/train/data/rng.ts';

describe('Rng words', () => {
  it('stay unsigned 32-bit through many draws, and restoring them continues the same stream', () => {
    const r = Rng.seeded(0, 0);
    for (let i = 0; i < 2000; i++) {
      r.u32();
      for (const w of r.words()) expect(w >= 0 && w <= 0xffffffff && Number.isInteger(w)).toBe(true);
    }
    const copy = new Rng(r.words());
    for (let i = 0; i < 100; i++) expect(copy.u32()).toBe(r.u32());
  });
});
