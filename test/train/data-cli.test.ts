// `gan data shapes` and `gan data check` as a user runs them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gan } from '../helpers/cli.ts';


describe('gan data', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'gan-data-cli-')), 'shapes');

  it('shapes writes a dataset that check accepts for ms-clip-gan', () => {
    const made = gan('data', 'shapes', '--out', dir, '--n', '12', '--size', '32', '--seed', '4');
    expect(made.err).toBe('');
    expect(made.code).toBe(0);
    expect(made.out).toContain(`${dir}: 12 images of 32x32, 3 captions each, 512-wide stand-in embeddings (not CLIP)`);
    const ok = gan('data', 'check', dir, '--model', 'models/ms-clip-gan.gan');
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(new RegExp(`ok: 12 images, 3 captions each, 512-wide embeddings, as models/ms-clip-gan.gan's text input takes, \\d+ classes`));
  });

  it('check refuses bad data with every problem and exit 1', () => {
    rmSync(join(dir, 'images', '00003.png'));
    const bad = gan('data', 'check', dir, '--model', 'models/stackgan-v2.gan');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain(`gan: ${dir} is not a valid dataset (2 problems):`);
    expect(bad.err).toContain(`${join(dir, 'embeddings.npy')}: embeddings are 512 wide, the model's text input takes 1024`);
    expect(bad.err).toContain(`${join(dir, 'images', '00003.png')} (${join(dir, 'captions.jsonl')}:4): image missing`);
    expect(bad.err).not.toMatch(/at .*\.ts:\d+/); // no stack trace
  });
});
