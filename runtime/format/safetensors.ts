// safetensors (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON
//   { "__metadata__"?: {string: string}, NAME: { dtype, shape, data_offsets: [begin, end] } }
// then the raw little-endian data, offsets relative to its start. Checkpoints
// are written in it so PyTorch (and anyone else) can read them.
//
// The reader trusts nothing in the file: the header's length is capped, every
// entry's dtype, shape and offsets are checked against each other and the
// file's size before anything is allocated, and tensors may not overlap.
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { decodeSafetensors, encodeSafetensors, MAX_HEADER_BYTES, type Dtype, type Tensor, type TensorData } from './safetensors-codec.ts';

export * from './safetensors-codec.ts';


/** Reads a safetensors file; throws naming the file on anything malformed, before allocating for it. */
export function readSafetensors(path: string): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(8);
    if (size < 8 || readSync(fd, head, 0, 8, 0) !== 8) throw new Error(`${path}: too short for a safetensors file (${size} bytes)`);
    const n = head.readBigUInt64LE(0);
    if (n > BigInt(MAX_HEADER_BYTES)) throw new Error(`${path}: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte cap`);
    if (n > BigInt(size - 8)) throw new Error(`${path}: header length ${n} runs past the end of the file (${size} bytes)`);
    const buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const r = readSync(fd, buf, got, size - got, got);
      if (r === 0) break;
      got += r;
    }
    if (got !== size) throw new Error(`${path}: read ${got} of ${size} bytes`);
    return decodeSafetensors(buf, path);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `bytes` to `path` atomically: a temporary file beside it, fsync, then
 * rename (and fsync of the folder), so a crash leaves the old file or the new
 * one, never half of one.
 */
export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    const data = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
    let off = 0;
    while (off < data.byteLength) off += writeSync(fd, data, off, data.byteLength - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  try {
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    // Some filesystems refuse fsync on a folder; the rename itself is still atomic.
  }
}

/** Writes a safetensors file atomically (see encodeSafetensors, writeFileAtomic). */
export function writeSafetensors(path: string, tensors: Record<string, { dtype?: Dtype; shape: readonly number[]; data: TensorData }>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
