// A safe reader (and a small writer) for NumPy's `.npy` format, for caption
// embeddings: float32 `[N, D]` or `[N, K, D]`, little-endian, C order.
// float64 (`<f8`) is accepted and converted to float32 (embeddings made in
// Python are often float64; the model computes in float32 anyway). Anything
// else (big-endian, integers, Fortran order, object arrays) is refused.
// A hostile file cannot make us allocate: the header is capped at 64 KiB and
// the shape's byte count must equal the data actually in the file before
// any array is created.
import { closeSync, fstatSync, openSync, readSync, writeFileSync } from 'node:fs';
import { endianness } from 'node:os';

export const NPY_MAX_HEADER = 64 * 1024;
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export class NpyError extends Error {}

export interface NpyArray {
  shape: number[];
  data: Float32Array;
  /** The dtype as stored ('<f4' or '<f8'); data is float32 either way. */
  storedDtype: '<f4' | '<f8';
}

interface NpyHeader {
  descr: string;
  fortran: boolean;
  shape: number[];
}

/** Parses the header's Python dict literal without evaluating anything. */
function parseHeader(text: string, file: string): NpyHeader {
  const t = text.trim();
  if (!t.startsWith('{') || !t.endsWith('}')) throw new NpyError(`${file}: malformed .npy header (not a dict): ${JSON.stringify(t.slice(0, 80))}`);
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(t);
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(t);
  const shape = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(t);
  if (!descr || !fortran || !shape) throw new NpyError(`${file}: malformed .npy header (needs descr, fortran_order and shape): ${JSON.stringify(t.slice(0, 80))}`);
  const dims = shape[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      if (!/^\d{1,16}L?$/.test(s)) throw new NpyError(`${file}: malformed .npy header: shape entry '${s.slice(0, 20)}' is not a non-negative integer`);
      return Number(s.replace('L', ''));
    });
  return { descr: descr[1], fortran: fortran[1] === 'True', shape: dims };
}

function readExactly(fd: number, length: number, position: number, file: string, what: string): Buffer {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) throw new NpyError(`${file}: truncated .npy file (${what}: wanted ${length} bytes, found ${got})`);
    got += n;
  }
  return buf;
}

function readInto(fd: number, dst: Uint8Array, position: number, file: string): void {
  let got = 0;
  while (got < dst.length) {
    const n = readSync(fd, dst, got, dst.length - got, position + got);
    if (n === 0) throw new NpyError(`${file}: truncated .npy file (data: wanted ${dst.length} bytes, found ${got})`);
    got += n;
  }
}

if (endianness() !== 'LE') throw new Error('the .npy reader assumes a little-endian host');

/** Reads a float32/float64 `.npy` file of rank 2 or 3 (callers check the rank they need). */
export function readNpy(file: string): NpyArray {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new NpyError(`${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const size = fstatSync(fd).size;
    if (size < 10) throw new NpyError(`${file}: not a .npy file (only ${size} bytes)`);
    const pre = readExactly(fd, 12 <= size ? 12 : 10, 0, file, 'preamble');
    if (!MAGIC.every((b, i) => pre[i] === b)) throw new NpyError(`${file}: not a .npy file (no \\x93NUMPY magic)`);
    const major = pre[6];
    if (major !== 1 && major !== 2 && major !== 3) throw new NpyError(`${file}: unsupported .npy version ${major}.${pre[7]}`);
    const lenBytes = major === 1 ? 2 : 4;
    if (pre.length < 8 + lenBytes) throw new NpyError(`${file}: truncated .npy file (preamble)`);
    const headerLen = major === 1 ? pre.readUInt16LE(8) : pre.readUInt32LE(8);
    if (headerLen > NPY_MAX_HEADER) throw new NpyError(`${file}: .npy header of ${headerLen} bytes exceeds the ${NPY_MAX_HEADER}-byte limit`);
    const dataStart = 8 + lenBytes + headerLen;
    if (dataStart > size) throw new NpyError(`${file}: truncated .npy file (header says ${headerLen} bytes, file has ${size - 8 - lenBytes})`);
    const headerText = readExactly(fd, headerLen, 8 + lenBytes, file, 'header').toString(major === 3 ? 'utf8' : 'latin1');
    const h = parseHeader(headerText, file);
    if (h.descr !== '<f4' && h.descr !== '<f8') {
      throw new NpyError(`${file}: dtype '${h.descr}' is not supported; embeddings must be little-endian float32 ('<f4') or float64 ('<f8')`);
    }
    if (h.fortran) throw new NpyError(`${file}: Fortran-order arrays are not supported; save with np.ascontiguousarray(x)`);
    const itemSize = h.descr === '<f4' ? 4 : 8;
    // BigInt: a hostile shape must not overflow into a plausible byte count.
    const want = h.shape.reduce((a, d) => a * BigInt(d), 1n) * BigInt(itemSize);
    const have = BigInt(size - dataStart);
    if (want !== have) {
      throw new NpyError(`${file}: shape (${h.shape.join(', ')}) of '${h.descr}' needs ${want} bytes of data, the file has ${have}${want > have ? ' (truncated?)' : ''}`);
    }
    const count = Number(have) / itemSize;
    // Read straight into the typed array's memory (hosts here are little-endian, checked at load).
    const stored = itemSize === 4 ? new Float32Array(count) : new Float64Array(count);
    readInto(fd, new Uint8Array(stored.buffer), dataStart, file);
    const data = stored instanceof Float32Array ? stored : Float32Array.from(stored);
    return { shape: h.shape, data, storedDtype: h.descr };
  } finally {
    closeSync(fd);
  }
}

/** Writes a little-endian float32 C-order `.npy` (version 1.0). */
export function writeNpy(file: string, shape: number[], data: Float32Array): void {
  const count = shape.reduce((a, d) => a * d, 1);
  if (count !== data.length) throw new Error(`writeNpy: shape (${shape.join(', ')}) holds ${count} values, data has ${data.length}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad so the data starts on a 64-byte boundary, header ending in '\n'.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header + ' '.repeat(total - 10 - header.length - 1) + '\n';
  const out = Buffer.alloc(total + count * 4);
  MAGIC.forEach((b, i) => (out[i] = b));
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  for (let i = 0; i < count; i++) out.writeFloatLE(data[i], total + i * 4);
  writeFileSync(file, out);
}
