// The safetensors reader and writer against files PyTorch writes and reads
// (/usr/bin/python3, torch 1.13: no safetensors package there, so the Python
// side packs the format by hand with struct and json), and against hostile
// headers, which must be refused before anything is allocated for them.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors, MAX_HEADER_BYTES, readSafetensors, writeSafetensors } from '../../runtime/format/safetensors.ts';

const PY = `
import json, struct, sys, torch
DT = {torch.float32: ("F32", "<f4"), torch.float64: ("F64", "<f8"), torch.int32: ("I32", "<i4"), torch.int64: ("I64", "<i8"), torch.uint8: ("U8", "<u1")}
def write(path, tensors, metadata):
    header, blobs, at = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        b = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": DT[t.dtype][0], "shape": list(t.shape), "data_offsets": [at, at + len(b)]}
        blobs.append(b); at += len(b)
    h = json.dumps(header).encode()
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
def read(path):
    import numpy as np
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, h in header.items():
        if name == "__metadata__": continue
        b, e = h["data_offsets"]
        np_dt = {"F32": "<f4", "U32": "<u4", "I32": "<i4", "F64": "<f8"}[h["dtype"]]
        out[name] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=np_dt).reshape(h["shape"]).tolist()
    return header.get("__metadata__"), out
mode, path = sys.argv[1], sys.argv[2]
if mode == "write":
    g = torch.Generator().manual_seed(7)
    write(path, {
        "w": torch.randn(3, 4, generator=g),
        "b": torch.arange(5, dtype=torch.float64) / 3,
        "idx": torch.tensor([-2, 0, 2147483647], dtype=torch.int32),
        "big": torch.tensor([-(2**40), 5], dtype=torch.int64),
        "bytes": torch.tensor([0, 255], dtype=torch.uint8),
        "scalar": torch.tensor(1.5),
    }, {"step": "12", "note": "from torch"})
    print(json.dumps(torch.randn(3, 4, generator=torch.Generator().manual_seed(7)).flatten().tolist()))
else:
    print(json.dumps(read(path)))
`;

function py(...args: string[]): string {
  return execFileSync('/usr/bin/python3', ['-c', PY, ...args], { encoding: 'utf8' });
}

const dir = mkdtempSync(join(tmpdir(), 'gan-st-'));

describe('safetensors', () => {
  it('reads a file written by PyTorch, every dtype and the metadata', () => {
    const path = join(dir, 'torch.safetensors');
    const w = JSON.parse(py('write', path)) as number[];
    const { tensors, metadata } = readSafetensors(path);
    expect(metadata).toEqual({ step: '12', note: 'from torch' });
    expect(tensors.w.dtype).toBe('F32');
    expect(tensors.w.shape).toEqual([3, 4]);
    expect([...tensors.w.data]).toEqual(Array.from(Float32Array.from(w)));
    expect(tensors.b.dtype).toBe('F64');
    expect([...tensors.b.data]).toEqual([0, 1 / 3, 2 / 3, 1, 4 / 3]);
    expect([...tensors.idx.data]).toEqual([-2, 0, 2147483647]);
    expect([...tensors.big.data]).toEqual([-(2n ** 40n), 5n]);
    expect([...tensors.bytes.data]).toEqual([0, 255]);
    expect(tensors.scalar.shape).toEqual([]);
    expect([...tensors.scalar.data]).toEqual([1.5]);
  });

  it('writes a file PyTorch reads back exactly', () => {
    const path = join(dir, 'ours.safetensors');
    const f = Float32Array.from([0.1, -2.5, 3e-8, 7, 1e30, -0]);
    writeSafetensors(path, { f: { shape: [2, 3], data: f }, u: { shape: [2], data: Uint32Array.of(0xdeadbeef, 3) }, i: { shape: [1], data: Int32Array.of(-9) } }, { step: '3' });
    const [meta, t] = JSON.parse(py('read', path)) as [Record<string, string>, Record<string, unknown>];
    expect(meta).toEqual({ step: '3' });
    expect(t.f).toEqual([[...f.slice(0, 3)], [...f.slice(3)]].map((r) => r.map((x) => (Object.is(x, -0) ? -0 : x))));
    expect(t.u).toEqual([0xdeadbeef, 3]);
    expect(t.i).toEqual([-9]);
    // and its data starts 8-byte aligned, as the format recommends
    const n = Number(readFileSync(path).readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);
    expect(readSafetensors(path).tensors.u.data).toEqual(Uint32Array.of(0xdeadbeef, 3));
  });

  it('refuses shapes that disagree with the data when writing', () => {
    expect(() => encodeSafetensors({ x: { shape: [2, 2], data: new Float32Array(3) } })).toThrow(/shape \[2, 2\] but 3 elements/);
  });

  const file = (header: unknown, data = new Uint8Array(0), n?: bigint): Uint8Array => {
    const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
    const out = Buffer.alloc(8 + h.length + data.length);
    out.writeBigUInt64LE(n ?? BigInt(h.length), 0);
    h.copy(out, 8);
    out.set(data, 8 + h.length);
    return out;
  };
  const cases: [string, Uint8Array, RegExp][] = [
    ['a file shorter than the length word', Uint8Array.of(1, 2), /too short/],
    ['a header length over the cap', file({}, undefined, BigInt(MAX_HEADER_BYTES) + 1n), /exceeds the 100000000-byte cap/],
    ['a header length past the end', file({}, undefined, 1n << 62n), /exceeds|runs past the end/],
    ['a header length past the end (under the cap)', file({}, undefined, 1000n), /runs past the end/],
    ['a header that is not JSON', file('{"a": '), /not JSON/],
    ['a header that is an array', file([1]), /must be a JSON object/],
    ['an unknown dtype', file({ x: { dtype: 'Q7', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), /unsupported dtype "Q7"/],
    ['a negative dimension', file({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /shape must be/],
    ['a huge shape', file({ x: { dtype: 'F32', shape: [1e9, 1e9, 1e9], data_offsets: [0, 4] } }, new Uint8Array(4)), /needs .* bytes, data_offsets give 4/],
    ['offsets past the data', file({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(4)), /run past the data/],
    ['reversed offsets', file({ x: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, new Uint8Array(4)), /data_offsets must be/],
    ['overlapping tensors', file({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), /'x' and 'y' overlap/],
    ['metadata that is not strings', file({ __metadata__: { a: 1 } }), /__metadata__ 'a' must be a string/],
  ];
  for (const [what, bytes, msg] of cases) {
    it(`refuses ${what}`, () => {
      expect(() => decodeSafetensors(bytes, 'f.safetensors')).toThrow(msg);
      const path = join(dir, 'hostile.safetensors');
      writeFileSync(path, bytes);
      expect(() => readSafetensors(path)).toThrow(msg);
    });
  }
});
