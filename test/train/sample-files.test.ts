// Sample grids, loss curves and the colour metric: files written with sharp,
// read back with sharp, pixel for pixel.
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { curvesSvg, metricsPanels, panelOf, seriesLabel, smooth, writeCurves } from '../../runtime/train/curves.ts';
import { gridLayout, sampleFixture, toByte, writeSampleGrid, writeSamples } from '../../runtime/train/samples.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'gan-samples-'));

/** [n, 3, R, R] values in [-1, 1] that differ per image, channel and pixel. */
function ramp(n: number, R: number, salt = 0): Float32Array {
  return Float32Array.from({ length: n * 3 * R * R }, (_, k) => Math.sin(k * 0.37 + salt) * 1.05);
}

async function decode(path: string) {
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  return { data, info };
}

describe('sample grids', () => {
  it('lays out a square grid, or the given columns', () => {
    expect(gridLayout(6, 16)).toMatchObject({ columns: 3, rows: 2, width: 3 * 16 + 4 * 2, height: 2 * 16 + 3 * 2 });
    expect(gridLayout(5, 8, { columns: 5, pad: 0 })).toMatchObject({ columns: 5, rows: 1, width: 40, height: 8 });
    expect(() => gridLayout(0, 8)).toThrow(/at least one/);
  });

  it('writes one PNG per stage whose pixels decode back to the images (8-bit rounding), gaps white', async () => {
    const dir = tmp();
    const n = 5;
    const stages = [
      { name: 'g0', images: ramp(n, 8) },
      { name: 'g1', images: ramp(n, 16, 1) },
    ];
    const captions = ['a small red circle on a grey background', 'b <i>&amp;', 'c', 'd', 'e'];
    const out = await writeSampleGrid(join(dir, 'step-000010'), stages, captions, { columns: 3, pad: 2 });
    expect(out.pngs).toEqual([join(dir, 'step-000010-g0.png'), join(dir, 'step-000010-g1.png')]);
    for (const [s, stage] of stages.entries()) {
      const R = s === 0 ? 8 : 16;
      const { data, info } = await decode(out.pngs[s]);
      const L = gridLayout(n, R, { columns: 3, pad: 2 });
      expect([info.width, info.height, info.channels]).toEqual([L.width, L.height, 3]);
      let checked = 0;
      for (let i = 0; i < n; i++) {
        const x0 = 2 + (i % 3) * (R + 2);
        const y0 = 2 + Math.floor(i / 3) * (R + 2);
        for (let y = 0; y < R; y++) {
          for (let x = 0; x < R; x++) {
            for (let c = 0; c < 3; c++) {
              const want = toByte(stage.images[((i * 3 + c) * R + y) * R + x]);
              expect(data[((y0 + y) * L.width + x0 + x) * 3 + c]).toBe(want);
              checked++;
            }
          }
        }
      }
      expect(checked).toBe(n * 3 * R * R);
      expect([...data.subarray(0, 6)]).toEqual([255, 255, 255, 255, 255, 255]); // the corner is a gap
      // the sixth cell (no sixth image) stays white
      const x6 = 2 + 2 * (R + 2);
      const y6 = 2 + (R + 2);
      expect(data[(y6 * L.width + x6) * 3]).toBe(255);
    }
    const html = readFileSync(out.html, 'utf8');
    expect(html).toContain('a small red circle on a grey background');
    expect(html).toContain('b &#60;i&#62;&#38;amp;'); // captions are escaped
    expect(html).toContain("url('step-000010-g1.png')");
    expect(html.match(/<figure>/g)).toHaveLength(2 * n);
  });

  it('maps -1, 0, 1 and out-of-range values to bytes', () => {
    expect([-1, 0, 1, -3, 3, Number.NaN].map(toByte)).toEqual([0, 128, 255, 0, 255, 0]);
  });

  it('refuses images that do not fit the captions', async () => {
    await expect(writeSampleGrid(join(tmp(), 'x'), [{ name: 'g0', images: new Float32Array(3 * 8 * 8 * 2 + 1) }], ['a', 'b'])).rejects.toThrow(/not 2 RGB square images/);
  });

  it('writeSamples names files by step and keeps latest-*.png and index.html current', async () => {
    const run = tmp();
    await writeSamples(run, 5, [{ name: 'g0', images: ramp(2, 4) }], ['x', 'y']);
    const second = await writeSamples(run, 10, [{ name: 'g0', images: ramp(2, 4, 2) }], ['x', 'y']);
    const dir = join(run, 'samples');
    for (const f of ['step-000005-g0.png', 'step-000010-g0.png', 'step-000005.html', 'step-000010.html', 'latest-g0.png', 'index.html']) expect(existsSync(join(dir, f))).toBe(true);
    expect(readFileSync(join(dir, 'latest-g0.png'))).toEqual(readFileSync(join(dir, 'step-000010-g0.png')));
    expect(readFileSync(second.index, 'utf8')).toContain('step 10');
  });

  it('chooses the fixture deterministically: distinct entries, noise of the right size', () => {
    const a = sampleFixture({ n: 6, size: 10, captionsPer: 3, noise: { z: 4 }, seed: 7 });
    const b = sampleFixture({ n: 6, size: 10, captionsPer: 3, noise: { z: 4 }, seed: 7 });
    const c = sampleFixture({ n: 6, size: 10, captionsPer: 3, noise: { z: 4 }, seed: 8 });
    expect(a).toEqual(b);
    expect(a.indices).not.toEqual(c.indices);
    expect(new Set(a.indices).size).toBe(6);
    expect(a.captions.every((k) => k >= 0 && k < 3)).toBe(true);
    expect(a.noise.z).toHaveLength(24);
    const mean = a.noise.z.reduce((p, v) => p + v, 0) / 24;
    expect(Math.abs(mean)).toBeLessThan(1);
    expect(sampleFixture({ n: 5, size: 2, noise: {}, seed: 0 }).indices.slice(0, 4)).toEqual(expect.arrayContaining([0, 1]));
  });
});

describe('loss curves', () => {
  const lines = Array.from({ length: 40 }, (_, s) =>
    JSON.stringify({ step: s + 1, d0: { loss: 1.4 - s * 0.01, real: 0.7 }, d1: { loss: 1.3 }, G: { loss: 2 + Math.sin(s), kl: 0.1 }, images_per_s: 12, step_ms: 80 }),
  );

  it('groups keys into panels by network', () => {
    expect(['losses/d0.cond_real', 'losses/G.g0.cond_fake', 'd1.loss'].map(panelOf)).toEqual(['d0', 'G', 'd1']);
    expect(seriesLabel('losses/G.g0.cond_fake', 'G')).toBe('g0.cond_fake');
    expect(['d0/loss', 'G/kl', 'errD1', 'errG', 'g_kl', 'step', 'images_per_s', 'step_ms', 'd_loss', 'foo'].map(panelOf)).toEqual([
      'd0',
      'G',
      'd1',
      'G',
      'G',
      undefined,
      'speed',
      'speed',
      'D',
      'other',
    ]);
    const panels = metricsPanels(`${lines.join('\n')}\n{"step": 41, "d0": {"lo`);
    expect(panels.map((p) => p.title)).toEqual(['d0', 'd1', 'G', 'speed']);
    expect(panels[0].series.map((s) => s.key)).toEqual(['d0/loss', 'd0/real']);
    expect(panels[0].series[0].steps).toHaveLength(40); // the half-written last line is skipped
  });

  it('smooths with a debiased moving average', () => {
    expect(smooth([2, 2, 2])).toEqual([2, 2, 2].map((v) => expect.closeTo(v, 12)));
    const s = smooth([0, 10], 0.5);
    expect(s[1]).toBeCloseTo((0.5 * 0 * 0.5 + 0.5 * 10) / 0.75, 10);
  });

  it('writes a PNG with one panel per network, lines drawn in colour', async () => {
    const dir = tmp();
    const metrics = join(dir, 'metrics.jsonl');
    writeFileSync(metrics, `${lines.join('\n')}\n`);
    const out = join(dir, 'curves.png');
    const panels = await writeCurves(metrics, out, { panelWidth: 300, panelHeight: 200, columns: 2 });
    expect(panels).toHaveLength(4);
    const { data, info } = await decode(out);
    expect([info.width, info.height]).toEqual([600, 400]);
    // Some pixels carry the first series' blue (#1f77b4), smoothed at full strength.
    let blue = 0;
    for (let k = 0; k < data.length; k += info.channels) if (Math.abs(data[k] - 0x1f) < 12 && Math.abs(data[k + 1] - 0x77) < 12 && Math.abs(data[k + 2] - 0xb4) < 12) blue++;
    expect(blue).toBeGreaterThan(100);
    expect(curvesSvg(panels).svg).toContain('d0');
  });

  it("reads the trainer's metrics.jsonl: one panel per network, speed apart", () => {
    const rec = (step: number) => ({ step, losses: { 'd0.cond_real': 0.7, 'd0.loss': 1.4, 'd1.loss': 1.3, 'G.g0.cond_fake': 0.8, 'G.kl': 0.01, 'G.loss': 2 }, step_ms: 400, images_per_s: 10 });
    const panels = metricsPanels([1, 2, 3].map((s) => JSON.stringify(rec(s))).join('\n'));
    expect(panels.map((p) => [p.title, p.series.map((s) => seriesLabel(s.key, p.title))])).toEqual([
      ['d0', ['cond_real', 'loss']],
      ['d1', ['loss']],
      ['G', ['g0.cond_fake', 'kl', 'loss']],
      ['speed', ['step_ms', 'images_per_s']],
    ]);
  });

  it('writes nothing while there is no data', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'm.jsonl'), '');
    expect(await writeCurves(join(dir, 'm.jsonl'), join(dir, 'c.png'))).toEqual([]);
    expect(existsSync(join(dir, 'c.png'))).toBe(false);
  });
});
