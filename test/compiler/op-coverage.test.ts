// Every language op, through checker and lowering (issue 6): each record's
// examples are checked as .gan text and lowered by the real compiler, and must
// record the record's node and produce exactly the IR ops the example declares
// (so `noise ~ uniform` cannot silently lower to randn again). Every keyword of
// every op has a non-default example compared against PyTorch on the GPU
// (test/ops/lang-parity.test.ts runs them).
import { describe, expect, it } from 'vitest';
import { callOp, allLangOps, lowering } from '../../compiler/lang/registry.ts';
import { opDef } from '../../compiler/ops/registry.ts';
import { checkText, errors, position } from '../helpers/gan.ts';
import { allCases, checkCase, INPUTS, keywords, lowerCase, modelText, nonDefaultKeywords } from './op-cases.ts';

describe('language ops: checker and lowering agree', () => {
  it('every op has examples, and every node op has one lowering', () => {
    for (const op of allLangOps()) {
      expect(op.examples.length, `${op.syntax} ${op.name} has no example`).toBeGreaterThan(0);
      expect(lowering(op.node)?.lower, `${op.name}: node '${op.node}'`).toBe(op.lower);
      for (const name of op.ir) expect(() => opDef(name), `${op.name} declares unknown IR op '${name}'`).not.toThrow();
    }
  });

  it.each(allCases().map((c) => [c.label, c] as const))('%s', (_label, { op, ex }) => {
    const c = checkCase(op, ex);
    expect(c.nodes.length, 'records no node').toBeGreaterThan(0);
    for (const n of c.nodes) expect(n.op, `${n.path} records another op`).toBe(op.node);
    const { lowered, applied } = lowerCase(c, 2);
    expect([...new Set(applied)].sort(), 'IR ops applied directly').toEqual([...new Set(ex.ir ?? op.ir)].sort());
    for (const n of c.results) {
      const v = lowered.values.get(n.id)!;
      // The per-sample shape the checker inferred is the IR's, batch in front (losses are one scalar).
      expect(v.shape, n.path).toEqual(n.shape.length === 0 ? [] : [2, ...n.shape]);
    }
  });

  it('every keyword of every op has a non-default example compared against PyTorch', () => {
    const missing: string[] = [];
    for (const op of allLangOps()) {
      if (op.syntax !== 'call') continue;
      const covered = new Set(op.examples.filter((ex) => ex.torch).flatMap((ex) => nonDefaultKeywords(op, ex)));
      for (const k of keywords(op)) if (!covered.has(k.name)) missing.push(`${op.name}(${k.name})`);
    }
    expect(missing).toEqual([]);
  });

  it('the keyword check can fail: an example at the default does not count', () => {
    const leaky = callOp('leaky_relu')!;
    expect(nonDefaultKeywords(leaky, { args: { x: 'm', slope: 0.2 } })).toEqual([]);
    expect(nonDefaultKeywords(leaky, { args: { x: 'm', slope: 0.3 } })).toEqual(['slope']);
    const conv = callOp('conv')!;
    // pad's default follows k and stride: pad 1 is the default of k 4, stride 2.
    expect(nonDefaultKeywords(conv, { args: { x: 'm', out: 2, k: 4, stride: 2, pad: 1 } })).toEqual(['out', 'k', 'stride']);
  });

  it("the IR's shape rule refuses for the checker, as a located diagnostic with the language's code", () => {
    // conv's output size is the IR conv2d's rule (ShapeError), reported where the call is.
    const conv = callOp('conv')!;
    const r = checkText(modelText(conv, { args: { x: 'm', out: 2, k: 9, pad: 0 } }));
    const [e] = errors(r);
    expect([e.code, e.message, e.label]).toEqual(['GAN304', 'conv: kernel 9x9 with stride 1 and padding 0 leaves no output', 'input [4, 6, 6]']);
    // The harness's model declares each input on a line of its own, then the image, then `generator {`.
    expect(position(r, e)).toMatchObject({ line: Object.keys(INPUTS).length + 4, col: 7, text: 'conv(m, out = 2, k = 9, pad = 0)' });
  });

  it('what the lowering cannot do, the checker refuses with a located diagnostic', () => {
    const up = callOp('upsample')!;
    const text = modelText(up, { args: { x: 'm', factor: 3 } });
    const errs = errors(checkText(text));
    expect(errs.map((e) => [e.code, e.message])).toEqual([['GAN306', 'upsample factor must be a power of 2, got 3']]);
  });
});
