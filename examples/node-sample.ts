// Loads a generated model module (`gan compile MODEL --emit ts --out DIR`)
// and writes a sample grid of its last stage for caption embeddings from an
// .npy file ([N, D], or [N, K, D]: caption 0 of each). Nothing here, or in the
// module, loads the gan-dsl compiler.
//
//   npx tsx examples/node-sample.ts DIR embeddings.npy grid.png [--weights W.safetensors] [--n 16] [--seed 0]
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { readNpy } from '../runtime/train/data/npy.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { weights: { type: 'string' }, n: { type: 'string', default: '16' }, seed: { type: 'string', default: '0' } },
});
const [dir, embeddings, out] = positionals;
if (!dir || !embeddings || !out) {
  console.error('usage: npx tsx examples/node-sample.ts DIR embeddings.npy grid.png [--weights W.safetensors] [--n 16] [--seed 0]');
  process.exit(2);
}
const mod = await import(pathToFileURL(resolve(dir, 'index.ts')).href);
const Model = mod.default;
const model = values.weights ? await Model.load(values.weights) : await Model.load();
const npy = readNpy(embeddings);
const D: number = Model.textDim;
if (npy.shape[npy.shape.length - 1] !== D) throw new Error(`${embeddings}: rows are ${npy.shape.at(-1)} wide, the model takes ${D}`);
const perRow = npy.data.length / npy.shape[0] / D; // captions per image (K)
const n = Number(values.n);
const text = new Float32Array(n * D);
for (let i = 0; i < n; i++) text.set(npy.data.subarray(((i % npy.shape[0]) * perRow) * D, ((i % npy.shape[0]) * perRow + 1) * D), i * D);
const stages = await model.generate({ text, seed: Number(values.seed) });
const last = stages[stages.length - 1];
await mod.writeGridPng(out, last.images, n);
console.log(`${out}: ${n} images of stage ${last.name}`);
model.destroy();
