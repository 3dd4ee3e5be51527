import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSource } from '../../grammar/index.ts';

function ganFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? ganFiles(p) : p.endsWith('.gan') ? [p] : [];
  });
}

describe('parser', () => {
  const files = ganFiles('models');
  it('finds the model files', () => {
    expect(files.length).toBeGreaterThanOrEqual(9);
  });
  for (const f of files) {
    it(`parses ${f} without diagnostics`, () => {
      const r = parseSource(readFileSync(f, 'utf8'), f);
      expect(r.diagnostics).toEqual([]);
      expect(r.ast.decls.length).toBeGreaterThan(0);
    });
  }

  it('builds the AST of pipelines, tuples, keywords and repeat', () => {
    const r = parseSource(
      `gan X extends "base.gan"
       block B(x, c = 2) {
         a, b = x |> conv(2 * c, k = 3) |> split(2)
         repeat n as i { a = a + b }
         return a
       }
       train { d.lr = 5e-5  g = adam(lr = 2e-4, betas = (0.5, 0.999)) }`,
      'x.gan',
    );
    expect(r.diagnostics).toEqual([]);
    expect(r.ast.extends?.path).toBe('base.gan');
    const block = r.ast.decls[0];
    expect(block.kind).toBe('block');
    if (block.kind !== 'block') return;
    expect(block.params.map((p) => p.name)).toEqual(['x', 'c']);
    const assign = block.body[0];
    expect(assign.kind).toBe('assign');
    if (assign.kind !== 'assign') return;
    expect(assign.targets.map((t) => t.name)).toEqual(['a', 'b']);
    // x |> conv(...) |> split(2)  ==  split(conv(x, ...), 2)
    expect(assign.value.kind).toBe('call');
    if (assign.value.kind !== 'call') return;
    expect(assign.value.callee).toBe('split');
    const inner = assign.value.args[0].value;
    expect(inner.kind === 'call' && inner.callee).toBe('conv');
    if (inner.kind !== 'call') return;
    expect(inner.args.map((a) => a.name)).toEqual([undefined, undefined, 'k']);
    expect(block.body[1].kind).toBe('repeat');
    const train = r.ast.decls[1];
    expect(train.kind === 'train' && train.settings.map((s) => s.path.join('.'))).toEqual(['d.lr', 'g']);
  });

  it('gives arithmetic the usual precedence and `div` integer division', () => {
    const r = parseSource('param a = 1 + 2 * 3 ** 2 div 4 - -1', 'x.gan');
    expect(r.diagnostics).toEqual([]);
    const p = r.ast.decls[0];
    // 1 + ((2 * (3 ** 2)) div 4) - (-1)
    expect(p.kind === 'param' && p.value.kind === 'binary' && p.value.op).toBe('-');
  });

  it('reports several syntax errors in one file, with positions', () => {
    const src = 'param a = \nparam b = 3 +\nblock B(x { x }\nparam c = 2\n';
    const r = parseSource(src, 'bad.gan');
    expect(r.diagnostics.length).toBeGreaterThanOrEqual(3);
    for (const d of r.diagnostics) {
      expect(d.code).toBe('GAN102');
      expect(d.span?.file).toBe('bad.gan');
      expect(d.label).toMatch(/^expected /);
    }
  });
});
