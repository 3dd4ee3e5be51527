// Property: whatever the input, the parser and checker return diagnostics;
// they never throw, and every diagnostic points inside its file.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkFile } from '../../compiler/index.ts';

/** mulberry32: small seeded PRNG so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SNIPPETS = ['{', '}', '(', ')', '|>', '=', ',', '0', '-1', '1e9', 'x', 'image', 'repeat 3', 'head', 'loss', '"s"', '@', '~', 'glu', 'split(3)', '[', ']', '.', 'div 0', '** 99', 'conv(', 'extends "model.gan"', 'import "nope.gan"', 'stage', 'return'];

function mutate(text: string, r: () => number): string {
  let t = text;
  const n = 1 + Math.floor(r() * 3);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * t.length);
    const kind = Math.floor(r() * 5);
    if (kind === 0) t = t.slice(0, at) + t.slice(at + 1 + Math.floor(r() * 20)); // delete a range
    else if (kind === 1) t = t.slice(0, at) + ' ' + SNIPPETS[Math.floor(r() * SNIPPETS.length)] + ' ' + t.slice(at); // insert a token
    else if (kind === 2) t = t.replace(/\d+/g, (m) => (r() < 0.1 ? String(Math.floor(r() * 7)) : m)); // change numbers (zero included)
    else if (kind === 3) {
      const lines = t.split('\n'); // duplicate or drop a line
      const l = Math.floor(r() * lines.length);
      if (r() < 0.5) lines.splice(l, 0, lines[l]);
      else lines.splice(l, 1);
      t = lines.join('\n');
    } else t = t.slice(0, at) + t.slice(at).replace(/[A-Za-z_]\w*/, (m) => m.slice(0, -1) || 'q'); // misspell a name
  }
  return t;
}

describe('fuzz: mutated model files', () => {
  const files = ['models/ms-clip-gan.gan', 'models/stackgan-v2.gan', 'models/dcgan.gan', 'models/variants/res3.gan'];
  for (const file of files) {
    it(`never throws on mutations of ${file}`, () => {
      const original = readFileSync(file, 'utf8');
      const r = rng(file.length * 7919);
      let withErrors = 0;
      for (let i = 0; i < 150; i++) {
        const text = mutate(original, r);
        let res;
        try {
          res = checkFile(file, {}, text);
        } catch (e) {
          throw new Error(`checker threw on mutation ${i} of ${file}: ${(e as Error).stack}\n--- input ---\n${text}`);
        }
        expect(Array.isArray(res.diagnostics)).toBe(true);
        for (const d of res.diagnostics) {
          expect(d.code).toMatch(/^GAN\d{3}$/);
          expect(d.message.length).toBeGreaterThan(0);
          if (d.span) {
            const src = res.sources.get(d.span.file);
            expect(src, `source of ${d.span.file}`).toBeDefined();
            expect(d.span.offset).toBeGreaterThanOrEqual(0);
            expect(d.span.offset).toBeLessThanOrEqual(src!.length);
          }
        }
        if (res.diagnostics.some((d) => d.severity === 'error')) withErrors++;
        else expect(res.model).toBeDefined();
      }
      expect(withErrors).toBeGreaterThan(30); // the mutations do break things
    });
  }
});
