// Decodes a shapes dataset's PNGs (DIR/images/*.png, in captions.jsonl order)
// into one uint8 .npy [N, H, W, 3] for scripts/shapes-sweep.py, whose Python
// has no image library. Usage:
//   npx tsx scripts/decode-shapes.ts /work/main/data/shapes /tmp/sweep/shapes-images.npy
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

/** A .npy (format 1.0) of uint8 data with the given shape. */
export function npyUint8(data: Uint8Array, shape: number[]): Buffer {
  let header = `{'descr': '|u1', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

async function main(): Promise<void> {
  const [dir, out] = process.argv.slice(2);
  if (!dir || !out) throw new Error('usage: decode-shapes.ts DATA_DIR OUT.npy');
  const files = readFileSync(join(dir, 'captions.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => (JSON.parse(l) as { file: string }).file);
  let H = 0;
  let W = 0;
  const chunks: Buffer[] = [];
  for (const f of files) {
    const { data, info } = await sharp(join(dir, 'images', f)).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (!H) [H, W] = [info.height, info.width];
    if (info.height !== H || info.width !== W || info.channels !== 3) throw new Error(`${f}: ${info.width}x${info.height}x${info.channels}, expected ${W}x${H}x3`);
    chunks.push(data);
  }
  writeFileSync(out, npyUint8(new Uint8Array(Buffer.concat(chunks)), [files.length, H, W, 3]));
  process.stdout.write(`wrote ${out}: [${files.length}, ${H}, ${W}, 3] uint8\n`);
}

await main();
