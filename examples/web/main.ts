// A web page running a generated module (`gan compile --emit ts`) on the
// browser's WebGPU: it loads the module's plan and weights from the page's
// parent folder, generates 4 images of every stage for fixed caption
// embeddings and a fixed seed, and draws the last stage. The result also goes
// to window.ganResult, which the tests read through the DevTools protocol.
// Built with `npm run build:web -- DIR` (scripts/build-web.ts).
import * as mod from 'gan-module';

const N = 4;
const SEED = 7;
const status = document.getElementById('status')!;
const out = window as unknown as { ganResult?: unknown };

/** Fixed caption embeddings: rows of sin(1.7 i), each L2-normalised as caption embeddings are (the tests compare the same on Node). */
export function fixedText(n: number, d: number): Float32Array {
  const t = Float32Array.from({ length: n * d }, (_, i) => Math.sin(i * 1.7));
  for (let r = 0; r < n; r++) {
    const row = t.subarray(r * d, (r + 1) * d);
    const norm = Math.hypot(...row);
    row.forEach((v, k) => (row[k] = v / norm));
  }
  return t;
}

function draw(images: Float32Array, n: number, r: number): void {
  const grid = document.getElementById('grid')!;
  for (let k = 0; k < n; k++) {
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = r;
    const ctx = canvas.getContext('2d')!;
    const img = ctx.createImageData(r, r);
    for (let p = 0; p < r * r; p++) {
      for (let c = 0; c < 3; c++) img.data[p * 4 + c] = Math.round(Math.min(1, Math.max(0, (images[(k * 3 + c) * r * r + p] + 1) / 2)) * 255);
      img.data[p * 4 + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    grid.appendChild(canvas);
  }
}

try {
  const loadName = Object.keys(mod).find((k) => k.startsWith('load'))!;
  const generator = await (mod as unknown as Record<string, (base: URL) => Promise<import('../../runtime/module/generator.ts').Generator>>)[loadName](new URL('../', location.href));
  const stages = await generator.generate({ text: fixedText(N, generator.spec.textDim), seed: SEED });
  const last = stages[stages.length - 1];
  draw(last.images, N, generator.spec.stages[generator.spec.stages.length - 1].resolution);
  status.textContent = `${generator.spec.model}: ${N} images per stage on ${generator.rt.ctx.info.description || `${generator.rt.ctx.info.vendor} ${generator.rt.ctx.info.architecture}`}`;
  out.ganResult = { adapter: generator.rt.ctx.info, stages: stages.map((s) => ({ name: s.name, images: Array.from(s.images) })) };
} catch (e) {
  const message = (e as Error).message;
  status.textContent = (e as Error).name === 'NoWebGpuError' ? `No WebGPU here: ${message}` : `Error: ${message}`;
  out.ganResult = { error: message, name: (e as Error).name };
}
