// The generator-eval path of `gan sample`: the generator alone with BatchNorm
// in eval mode, fed caption embeddings, batched with padding, deterministic
// from the noise seed; weights from initState or written by name.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { buildGeneratorEval, generate, writeGeneratorWeights } from '../../compiler/cli/generator-eval.ts';
import { Runtime } from '../../runtime/executor.ts';
import { initialValues } from '../../runtime/init.ts';
import { writeGridPng } from '../../runtime/train/samples.ts';
import { checkText, miniGan } from '../helpers/gan.ts';

const model = checkText(miniGan({ text: 12, z: 4, caOut: 8, ngf: 2 })).model!;
const text = Float32Array.from({ length: 5 * 12 }, (_, k) => Math.sin(k * 0.7));

async function images(seed: number, weights?: Record<string, Float32Array>, batch = 2) {
  const gen = buildGeneratorEval(model, batch);
  const rt = await Runtime.create(gen.layout, { seed });
  if (weights) writeGeneratorWeights(rt, gen.layout, weights, 'test weights');
  else rt.initState(0);
  const prog = await rt.load(gen.plan);
  const out = await generate(rt, prog, gen, text, 5);
  rt.destroy();
  return { gen, out };
}

describe('generator in eval mode', () => {
  it('plans only the generator: eval BatchNorm (no state updates), one text feed, stage images out', () => {
    const gen = buildGeneratorEval(model, 2);
    expect(gen.textDim).toBe(12);
    expect(gen.stages).toEqual([{ name: 'g0', output: 'g0.image', resolution: 16 }]);
    expect(Object.keys(gen.plan.outputs)).toEqual(['g0.image']);
    expect(Object.keys(gen.plan.feeds).filter((k) => gen.plan.feeds[k].kind === 'input')).toEqual([gen.textFeed]);
    expect(Object.keys(gen.layout.params).every((p) => p.startsWith('G/'))).toBe(true);
    expect(Object.keys(gen.layout.state).some((s) => s.includes('running_mean'))).toBe(true);
    expect(gen.plan.grads).toEqual([]);
  });

  it('generates N images over padded batches, in [-1, 1], the same for the same seed, other noise for another', async () => {
    const a = await images(7);
    const b = await images(7);
    const c = await images(8);
    expect(a.out[0].images).toHaveLength(5 * 3 * 16 * 16);
    expect(a.out[0].images.every((v) => Number.isFinite(v) && v >= -1 && v <= 1)).toBe(true);
    expect(Buffer.from(a.out[0].images.buffer).equals(Buffer.from(b.out[0].images.buffer))).toBe(true);
    expect(Buffer.from(a.out[0].images.buffer).equals(Buffer.from(c.out[0].images.buffer))).toBe(false);
    // the padded last batch still yields a real image (not zeros)
    const last = a.out[0].images.subarray(4 * 768);
    expect(last.some((v) => Math.abs(v) > 1e-3)).toBe(true);
    const path = join(mkdtempSync(join(tmpdir(), 'gan-sample-')), 'grid.png');
    const layout = await writeGridPng(path, a.out[0].images, 5, { columns: 5 });
    const meta = await sharp(path).metadata();
    expect([meta.width, meta.height]).toEqual([layout.width, layout.height]);
  }, 120_000);

  it('uses the weights written by name, BatchNorm running statistics included', async () => {
    const gen = buildGeneratorEval(model, 2);
    const init = initialValues(gen.layout, 0);
    const viaInit = await images(7);
    const viaWrite = await images(7, { ...init.params, ...init.state });
    expect(Buffer.from(viaWrite.out[0].images.buffer).equals(Buffer.from(viaInit.out[0].images.buffer))).toBe(true);
    // Eval mode reads the running statistics: shifting a running mean changes the images.
    const mean = Object.keys(init.state).find((s) => s.includes('running_mean'))!;
    const shifted = await images(7, { ...init.params, ...init.state, [mean]: init.state[mean].map(() => 0.5) });
    expect(Buffer.from(shifted.out[0].images.buffer).equals(Buffer.from(viaInit.out[0].images.buffer))).toBe(false);
    const { [mean]: _, ...lacking } = { ...init.params, ...init.state };
    await expect(images(7, lacking)).rejects.toThrow(/test weights lacks 1 generator tensor/);
  }, 120_000);
});
