// Runs the TypeScript colour metric (runtime/train/colour-metric.ts) on images
// written by another tool, so a port (scripts/shapes-sweep.py) can be checked
// against it image for image. Usage:
//   npx tsx scripts/colour-metric-dump.ts IMAGES.npy CAPTIONS.json OUT.json
// IMAGES.npy: float32 [N, 3, R, R] in [-1, 1] (little-endian, C order);
// CAPTIONS.json: N caption strings. OUT.json: { share, matched, scored, dominant }.
import { readFileSync, writeFileSync } from 'node:fs';
import { colourAgreement } from '../runtime/train/colour-metric.ts';

function readNpyFloat32(path: string): { data: Float32Array; shape: number[] } {
  const raw = readFileSync(path);
  if (raw.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${path}: not a .npy`);
  const major = raw[6];
  const hlen = major === 1 ? raw.readUInt16LE(8) : raw.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = raw.toString('latin1', start, start + hlen);
  if (!header.includes("'<f4'") || header.includes("'fortran_order': True")) throw new Error(`${path}: expected little-endian float32 in C order: ${header}`);
  const shape = [...header.match(/'shape': \(([^)]*)\)/)![1].matchAll(/\d+/g)].map((m) => Number(m[0]));
  const bytes = raw.subarray(start + hlen);
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return { data, shape };
}

const [imgPath, capPath, outPath] = process.argv.slice(2);
if (!imgPath || !capPath || !outPath) throw new Error('usage: colour-metric-dump.ts IMAGES.npy CAPTIONS.json OUT.json');
const { data } = readNpyFloat32(imgPath);
const captions = JSON.parse(readFileSync(capPath, 'utf8')) as string[];
const r = colourAgreement(data, captions);
writeFileSync(outPath, JSON.stringify({ share: r.share, matched: r.matched, scored: r.scored, dominant: r.dominant }));
process.stdout.write(`${r.matched}/${r.scored} = ${(100 * r.share).toFixed(1)}%\n`);
