// Minimal safetensors writer/reader (F32 only) for exchanging weights with the
// PyTorch oracle: 8-byte little-endian header length, JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}}, then the raw data.
import { readFileSync, writeFileSync } from 'node:fs';
import type { HostTensor } from '../oracle/tensor.ts';

export function writeSafetensors(path: string, tensors: Record<string, HostTensor>): void {
  const header: Record<string, { dtype: 'F32'; shape: number[]; data_offsets: [number, number] }> = {};
  let at = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [at, at + t.data.byteLength] };
    at += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // keeps the data 8-byte aligned
  const head = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + head.length + at);
  out.writeBigUInt64LE(BigInt(head.length), 0);
  head.copy(out, 8);
  let off = 8 + head.length;
  for (const t of Object.values(tensors)) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, off);
    off += t.data.byteLength;
  }
  writeFileSync(path, out);
}

export function readSafetensors(path: string): Record<string, HostTensor> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out: Record<string, HostTensor> = {};
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (h.dtype !== 'F32') throw new Error(`safetensors: ${name} is ${h.dtype}, only F32 is supported`);
    const bytes = buf.subarray(8 + n + h.data_offsets[0], 8 + n + h.data_offsets[1]);
    const data = new Float32Array(bytes.byteLength / 4);
    new Uint8Array(data.buffer).set(bytes);
    out[name] = { shape: h.shape, data };
  }
  return out;
}
