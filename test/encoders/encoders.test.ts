// The frozen encoders of models/encoders (CLIP ViT-B/32's two towers, VGG16's
// features) against PyTorch reimplementations written from the published code
// (test/encoders/encoders_ref.py): small instances (the files' `tiny` presets,
// same code paths) with random weights saved under the published tensor names,
// loaded through each file's `weights` rules; outputs and, for the image
// networks, input gradients. At full size, the parameter counts and every
// published name and shape against the reference's state dict.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointError, checkpointParams, readCheckpoint } from '../../compiler/encoders/checkpoint.ts';
import { encoderProgram, loadEncoder } from '../../compiler/encoders/program.ts';
import { encodeSafetensors, readSafetensors, type Tensor } from '../../runtime/format/safetensors.ts';
import { relErr } from '../oracle/compare.ts';
import { torchAvailable } from '../oracle/torch.ts';

const PYTHON = process.env.GAN_TORCH_PYTHON ?? '/usr/bin/python3';
const REF = join(import.meta.dirname, 'encoders_ref.py');
const CLIP = 'models/encoders/clip-vit-b32.gan';
const VGG = 'models/encoders/vgg16.gan';
const dir = mkdtempSync(join(tmpdir(), 'gan-enc-'));

/** Runs the reference: `run` writes weights.safetensors and io.safetensors into a fresh folder. */
function reference(config: Record<string, unknown>, tag: string): { weights: string; io: Record<string, Tensor> } {
  const out = join(dir, tag);
  const cfg = join(dir, `${tag}.json`);
  writeFileSync(cfg, JSON.stringify(config));
  execFileSync(PYTHON, [REF, 'run', cfg, out], { stdio: ['ignore', 'ignore', 'inherit'] });
  return { weights: join(out, 'weights.safetensors'), io: readSafetensors(join(out, 'io.safetensors')).tensors };
}

function count(config: Record<string, unknown>): { parameters: number; tensors: Record<string, number[]> } {
  const cfg = join(dir, `count-${config.net}.json`);
  writeFileSync(cfg, JSON.stringify(config));
  return JSON.parse(execFileSync(PYTHON, [REF, 'count', cfg], { encoding: 'utf8' }));
}

const f32 = (t: Tensor) => t.data as Float32Array;

// The `tiny` presets of the encoder files, as reference configs.
const TINY_IMAGE = { net: 'clip_image', width: 16, layers: 2, heads: 2, patch: 4, res: 16, output_dim: 8, batch: 2, seed: 1 };
const TINY_TEXT = { net: 'clip_text', vocab: 50, context: 8, width: 16, layers: 2, heads: 4, output_dim: 8, batch: 3, seed: 2 };
const TINY_VGG = { net: 'vgg16', channels: [4, 4, 8, 8, 16, 16, 16, 32, 32, 32], res: 16, batch: 2, seed: 3 };

describe.skipIf(!torchAvailable())('frozen encoders vs PyTorch', () => {
  const runs: { destroy(): void }[] = [];
  afterAll(() => runs.forEach((r) => r.destroy()));

  async function imageCase(file: string, name: string, input: string, config: Record<string, unknown>, tag: string) {
    const ref = reference(config, tag);
    const enc = loadEncoder(file, name, { preset: 'tiny' });
    const params = readCheckpoint(enc, ref.weights);
    const run = await encoderProgram(enc, { batch: config.batch as number, params, inputGrad: input });
    runs.push(run);
    const out = await run.run({ [input]: f32(ref.io.image), gy: f32(ref.io.gy) });
    return { y: relErr(out.y, f32(ref.io.y)), g: relErr(out[`grad/${input}`], f32(ref.io.g_image)), out, ref };
  }

  it('CLIP image tower: output and input gradient', async () => {
    const r = await imageCase(CLIP, 'image', 'pixels', TINY_IMAGE, 'image');
    expect(r.y, `y rel err ${r.y}`).toBeLessThan(1e-5);
    expect(r.g, `grad rel err ${r.g}`).toBeLessThan(1e-4);
  });

  it('CLIP image tower from a float16 checkpoint (as OpenAI publishes it)', async () => {
    const r = await imageCase(CLIP, 'image', 'pixels', { ...TINY_IMAGE, dtype: 'F16', seed: 4 }, 'image-f16');
    expect(readSafetensors(join(dir, 'image-f16', 'weights.safetensors')).tensors['visual.proj'].dtype).toBe('F16');
    expect(r.y, `y rel err ${r.y}`).toBeLessThan(1e-5);
  });

  it('CLIP text tower: causal attention, the end-of-text token picked', async () => {
    const ref = reference(TINY_TEXT, 'text');
    const enc = loadEncoder(CLIP, 'text', { preset: 'tiny' });
    const run = await encoderProgram(enc, { batch: 3, params: readCheckpoint(enc, ref.weights) });
    runs.push(run);
    const out = await run.run({ tokens: f32(ref.io.tokens), eot: f32(ref.io.eot) });
    const e = relErr(out.y, f32(ref.io.y));
    expect(e, `y rel err ${e}`).toBeLessThan(1e-5);
    // The pick is live: other end-of-text positions give other features.
    const moved = await run.run({ tokens: f32(ref.io.tokens), eot: new Float32Array([1, 1, 1]) });
    expect(relErr(moved.y, f32(ref.io.y))).toBeGreaterThan(1e-2);
  });

  it('VGG16 features to relu4_3: output and input gradient', async () => {
    const r = await imageCase(VGG, 'features', 'image', TINY_VGG, 'vgg');
    expect(r.y, `y rel err ${r.y}`).toBeLessThan(1e-5);
    expect(r.g, `grad rel err ${r.g}`).toBeLessThan(1e-4);
  });

  it.each([
    ['CLIP image tower', CLIP, 'image', { net: 'clip_image', width: 768, layers: 12, heads: 12, patch: 32, res: 224, output_dim: 512 }, 87_849_216],
    ['CLIP text tower', CLIP, 'text', { net: 'clip_text', vocab: 49408, context: 77, width: 512, layers: 12, heads: 8, output_dim: 512 }, 63_428_096],
    ['VGG16 to relu4_3', VGG, 'features', { net: 'vgg16', res: 224 }, 7_635_264],
  ] as const)('%s at full size: parameter count and every published name and shape', (_label, file, name, config, published) => {
    const ref = count(config);
    const enc = loadEncoder(file, name);
    expect(ref.parameters).toBe(published);
    expect(enc.graph.parameters).toBe(ref.parameters);
    // The published state dict's names and shapes fill every parameter (no data needed to check the map).
    const tensors = Object.fromEntries(Object.entries(ref.tensors).map(([k, shape]) => [k, { dtype: 'F32' as const, shape, data: new Float32Array(0) }]));
    expect(checkpointParams(enc, tensors, 'reference').size).toBe(Object.keys(ref.tensors).length);
  });

  it("OpenAI's whole checkpoint (both towers and logit_scale) loads into either tower", () => {
    const image = count({ net: 'clip_image', width: 768, layers: 12, heads: 12, patch: 32, res: 224, output_dim: 512 }).tensors;
    const text = count({ net: 'clip_text', vocab: 49408, context: 77, width: 512, layers: 12, heads: 8, output_dim: 512 }).tensors;
    const whole = Object.fromEntries(
      [...Object.entries({ ...image, ...text }), ['logit_scale', []] as const].map(([k, shape]) => [k, { dtype: 'F16' as const, shape: [...shape], data: new Uint16Array(0) }]),
    );
    expect(checkpointParams(loadEncoder(CLIP, 'image'), whole, 'clip.safetensors').size).toBe(Object.keys(image).length);
    expect(checkpointParams(loadEncoder(CLIP, 'text'), whole, 'clip.safetensors').size).toBe(Object.keys(text).length);
    // A tensor that neither tower names is still refused.
    const extra = { ...whole, 'visual.attnpool.weight': { dtype: 'F16' as const, shape: [1], data: new Uint16Array(1) } };
    expect(() => checkpointParams(loadEncoder(CLIP, 'text'), extra, 'clip.safetensors')).toThrow(/unexpected tensor 'visual\.attnpool\.weight' \[1\]: no weights rule maps it/);
  });
});

describe.skipIf(!torchAvailable())('scripts/convert-checkpoint.py: published PyTorch checkpoints to safetensors', () => {
  const convert = (input: string, output: string) =>
    execFileSync(PYTHON, ['scripts/convert-checkpoint.py', input, output], { encoding: 'utf8' });
  const torchScript = (code: string) => execFileSync(PYTHON, ['-c', `import sys, torch\nsys.path.insert(0, ${JSON.stringify(import.meta.dirname)})\nimport encoders_ref as R\n${code}`], { encoding: 'utf8' });

  it("a TorchScript archive in float16 (OpenAI's CLIP .pt) converts and loads into the image tower", () => {
    const ref = reference({ ...TINY_IMAGE, seed: 7 }, 'convert-clip');
    const pt = join(dir, 'clip.pt');
    torchScript(
      [
        `m = R.build(${JSON.stringify(TINY_IMAGE)})`,
        `m.load_state_dict({k: v.float() for k, v in R.read_safetensors(${JSON.stringify(ref.weights)})[1].items()})`,
        'm = m.half().eval()',
        `torch.jit.trace(m.float(), torch.zeros(1, 3, 16, 16)).half().save(${JSON.stringify(pt)})`,
      ].join('\n'),
    );
    const out = join(dir, 'clip-converted.safetensors');
    expect(convert(pt, out)).toMatch(/clip-converted\.safetensors: \d+ tensors, 7,808 values \(F16\)/);
    const enc = loadEncoder(CLIP, 'image', { preset: 'tiny' });
    const params = readCheckpoint(enc, out);
    const original = readCheckpoint(enc, ref.weights);
    for (const [k, v] of original) {
      const f16 = Float32Array.from(v, (x) => Math.fround(x)); // F32 reference values...
      const got = params.get(k)!;
      // ... rounded to float16 by the .half() above: within half precision of them.
      for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - f16[i])).toBeLessThanOrEqual(Math.abs(f16[i]) * 2 ** -11 + 2 ** -24);
    }
  });

  it("a plain state dict with tensors the encoder does not use (torchvision's VGG16 .pth) converts and loads", () => {
    const ref = reference({ ...TINY_VGG, seed: 8 }, 'convert-vgg');
    const pth = join(dir, 'vgg.pth');
    torchScript(
      [
        `sd = R.read_safetensors(${JSON.stringify(ref.weights)})[1]`,
        'sd.update({"classifier.0.weight": torch.zeros(10, 32), "classifier.0.bias": torch.zeros(10), "classifier.6.weight": torch.zeros(5, 10), "classifier.6.bias": torch.zeros(5)})',
        `torch.save(sd, ${JSON.stringify(pth)})`,
      ].join('\n'),
    );
    const out = join(dir, 'vgg-converted.safetensors');
    convert(pth, out);
    const enc = loadEncoder(VGG, 'features', { preset: 'tiny' });
    const params = readCheckpoint(enc, out);
    for (const [k, v] of readCheckpoint(enc, ref.weights)) expect(params.get(k)).toEqual(v);
  });
});

describe('checkpoint problems are reported together, naming the file and each tensor', () => {
  const enc = loadEncoder(VGG, 'features', { preset: 'tiny' });
  const good = (): Record<string, Tensor> => {
    const out: Record<string, Tensor> = {};
    for (const n of enc.graph.nodes) {
      for (const p of n.params) {
        const k = /ConvRelu\.(\d+)\/conv2d\.0\/(weight|bias)/.exec(p.name)!;
        const index = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21][Number(k[1])];
        out[`features.${index}.${k[2]}`] = { dtype: 'F32', shape: p.shape, data: new Float32Array(p.shape.reduce((a, b) => a * b, 1)) };
      }
    }
    return out;
  };

  it('a truncated file is refused naming it, before anything is read into the encoder', () => {
    const whole = encodeSafetensors(good());
    const cut = join(dir, 'cut.safetensors');
    writeFileSync(cut, whole.subarray(0, whole.length - 100));
    expect(() => readCheckpoint(enc, cut)).toThrow(new RegExp(`^${cut.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: tensor '.*': data_offsets \\[\\d+, \\d+\\] run past the data`));
  });

  it('a complete checkpoint maps', () => {
    expect(checkpointParams(enc, good(), 'vgg.safetensors').size).toBe(20);
  });

  it('missing, unexpected, misshapen and integer tensors', () => {
    const t = good();
    delete t['features.0.bias'];
    t['features.0.running_mean'] = { dtype: 'F32', shape: [4], data: new Float32Array(4) };
    t['head.0.weight'] = { dtype: 'F32', shape: [1], data: new Float32Array(1) };
    t['features.2.weight'] = { dtype: 'F32', shape: [4, 4, 3, 3, 1], data: new Float32Array(144) };
    t['features.5.bias'] = { dtype: 'I32', shape: [8], data: new Int32Array(8) };
    let err: unknown;
    try {
      checkpointParams(enc, t, 'vgg.safetensors');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CheckpointError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^vgg\.safetensors: does not fit encoder 'features' \(5 problems\)/);
    expect(msg).toContain("missing: no tensor fills parameter 'ConvRelu.0/conv2d.0/bias' [4]");
    expect(msg).toContain("unexpected tensor 'features.0.running_mean': its rule maps it to 'ConvRelu.0/conv2d.0/running_mean', which encoder 'features' does not have");
    expect(msg).toContain("unexpected tensor 'head.0.weight' [1]: no weights rule maps it");
    expect(msg).toContain("tensor 'features.2.weight' is [4, 4, 3, 3, 1], parameter 'ConvRelu.1/conv2d.0/weight' is [4, 4, 3, 3]");
    expect(msg).toContain("tensor 'features.5.bias' is I32; expected floating point");
  });
});
