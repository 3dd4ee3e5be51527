// The `gan` command end to end, as a user runs it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gan } from '../helpers/cli.ts';


describe('gan check', () => {
  it('--json gives the published StackGAN++ counts', () => {
    const r = gan('check', 'models/stackgan-v2.gan', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.model).toBe('StackGANv2');
    expect(j.params.ngf).toBe(64);
    const by = Object.fromEntries(j.networks.map((n: { kind: string; resolution: number }) => [n.kind === 'generator' ? 'G' : `D${n.resolution}`, n]));
    expect(by.G).toMatchObject({ kind: 'generator', parameters: 21_239_696, macs: 7_909_277_696 });
    expect(by.D64).toMatchObject({ kind: 'discriminator', resolution: 64, parameters: 5_723_906, macs: 151_011_328 });
    expect(by.D128).toMatchObject({ parameters: 18_834_178, macs: 672_153_600 });
    expect(by.D256).toMatchObject({ parameters: 71_269_122, macs: 3_159_375_872 });
    expect(by.G.layers[0]).toHaveProperty('path');
    expect(by.G.stages.map((s: { resolution: number }) => s.resolution)).toEqual([64, 128, 256]);
  });

  it('prints a readable summary of the reference model', () => {
    const r = gan('check', 'models/ms-clip-gan.gan');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^layer\s+op\s+output shape\s+params\s+MACs$/m);
    expect(r.out).toContain('g0/Up.0/conv2d.0');
    expect(r.out).toContain('total G: 20,977,552 parameters');
    expect(r.out).toContain('discriminator d2 @ 256: heads uncond, cond, align');
  });

  it('--set and --preset change the model', () => {
    const r = gan('check', 'models/ms-clip-gan.gan', '--preset', 'tiny', '--set', 'ngf=8', '--set', 'train.batch=2', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.params).toMatchObject({ ngf: 8, ndf: 4 });
    expect(j.train.batch).toBe(2);
  });

  it('a file with mistakes: several precise diagnostics, exit 1, no stack trace', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gan-cli-'));
    const file = join(dir, 'bad.gan');
    writeFileSync(file, 'gan Bad\nparam ngf = 8\nnoise z: [16] ~ normal\ngenerator {\n  stage g0 @ 4 {\n    h = z |> linaer(3 * 4 * 4) |> reshape(3, 4, 4)\n    image = h |> conv(ngg, k = 3)\n  }\n}\ndiscriminator d @ 4 { head uncond = image |> conv(1, k = 4, stride = 4, bias = true) }\n');
    const r = gan('check', file);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/bad\.gan:6:14/);
    expect(r.err).toContain("unknown op or block 'linaer'");
    expect(r.err).toContain("did you mean 'linear'?");
    expect(r.err).toMatch(/bad\.gan:7:23/);
    expect(r.err).toContain("undefined name 'ngg'");
    expect(r.err).toContain('2 errors');
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.out).toBe('');
  });

  it('unknown param override and missing file exit 1 with a clear message', () => {
    const set = gan('check', 'models/dcgan.gan', '--set', 'ngff=3');
    expect(set.code).toBe(1);
    expect(set.err).toContain("cannot set 'ngff': model 'DCGAN' has no such param");
    const missing = gan('check', 'models/nope.gan');
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("cannot read 'models/nope.gan': no such file");
    expect(missing.err).not.toMatch(/\n\s+at /);
  });
});

describe('gan compile and the memory report', () => {
  it('--emit ir prints the graph of each network, one op per line with its shape', () => {
    const r = gan('compile', 'models/ms-clip-gan.gan', '--emit', 'ir', '--preset', 'tiny', '--batch', '2');
    expect(r.code).toBe(0);
    expect(r.out).toContain('# network G (generator), batch 2, training mode');
    expect(r.out).toMatch(/^input\s+%\d+ : f32\[2,512\]\s+text$/m);
    expect(r.out).toMatch(/^param\s+%\d+ : f32\[4,3,4,4\]\s+d1\/Encode16\.0\/conv2d\.0\/weight/m);
    expect(r.out).toMatch(/^output\s+g2\.image = %\d+$/m);
    expect(r.out).toMatch(/^output\s+align = %\d+$/m);
  });

  it('--memory plans each network at a batch size; tensors over a binding are split by batch, over a buffer refused with sizes', () => {
    const r = gan('check', 'models/ms-clip-gan.gan', '--preset', 'tiny', '--memory', '--batch', '2', '--no-layers');
    expect(r.code).toBe(0);
    expect(r.out).toContain('planned memory at batch 2');
    expect(r.out).toMatch(/^G forward \+ backward \(training\): peak \d+\.\d+ MiB$/m);
    expect(r.out).toMatch(/^d2 forward \(eval\): peak/m);
    // Full width at the model's batch (24): G's 240 MiB concat is over one binding (128 MiB), within one buffer.
    const full = gan('check', 'models/ms-clip-gan.gan', '--memory', '--no-layers');
    expect(full.err).toBe('');
    expect(full.code).toBe(0);
    expect(full.out).toContain('planned memory at batch 24');
    expect(full.out).toMatch(/^G forward \+ backward \(training\): peak \d+\.\d+ MiB$/m);
    const big = gan('check', 'models/ms-clip-gan.gan', '--memory', '--batch', '64', '--no-layers');
    expect(big.code).toBe(1);
    expect(big.err).toMatch(/needs \d+ bytes \([\d.]+ MiB\), more than the adapter's maxBufferSize/);
  });
});

describe('gan doctor', () => {
  it('names the adapter Dawn chose, or exits 1 saying there is none', () => {
    const r = gan('doctor', '--json');
    const j = JSON.parse(r.out);
    expect(j.node).toBe(process.versions.node);
    if (j.adapter) {
      expect(r.code).toBe(0);
      expect(j.adapter.backend).toBeTruthy();
      expect(j.adapter.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
      // On a CPU-only machine Dawn runs on Mesa's lavapipe (llvmpipe).
      if (j.adapter.software) expect(j.adapter.description).toMatch(/llvmpipe|lavapipe|swiftshader/i);
      // Dawn's tick loop is throttled where the GPU's work shares the CPU (runtime/dawn-polling.ts).
      if (process.env.GAN_DAWN_POLL_MS === undefined) expect(j.dawnPollMs).toBe(j.adapter.software ? 1 : 0);
    } else {
      expect(r.code).toBe(1);
      expect(j.problem).toMatch(/no WebGPU adapter/);
    }
    const text = gan('doctor');
    expect(text.out).toMatch(/^adapter\s+/m);
    if (j.adapter) expect(text.out).toMatch(/^polling\s+(every \d+ ms|Dawn's own busy loop) while the GPU works/m);
    if (j.adapter?.software) {
      // Asking for a GPU on a CPU-only machine is a clear failure, not a fallback.
      const hw = gan('doctor', '--adapter', 'hardware');
      expect(hw.code).toBe(1);
      expect(hw.out).toContain('no hardware WebGPU adapter found');
    }
  });
});
