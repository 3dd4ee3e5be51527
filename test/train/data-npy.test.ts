// The .npy reader against files written by numpy (/usr/bin/python3), and
// hostile files that must be refused before any large allocation.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NpyError, readNpy, writeNpy } from '../../runtime/train/data/npy.ts';

const dir = mkdtempSync(join(tmpdir(), 'gan-npy-'));

function numpy(script: string): void {
  execFileSync('/usr/bin/python3', ['-c', `import numpy as np\nD=${JSON.stringify(dir)}\n${script}`], { stdio: 'pipe' });
}

/** A v1.0 .npy file with an arbitrary header text and payload. */
function rawNpy(name: string, header: string, payload = Buffer.alloc(0), headerLenOverride?: number): string {
  const h = Buffer.from(header, 'latin1');
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  pre.writeUInt16LE(headerLenOverride ?? h.length, 8);
  const p = join(dir, name);
  writeFileSync(p, Buffer.concat([pre, h, payload]));
  return p;
}

describe('readNpy', () => {
  it('reads float32 [N, D] and [N, K, D] written by numpy, bit for bit', () => {
    numpy(`
a = (np.arange(12, dtype=np.float32) * np.float32(0.1) - 0.5).reshape(3, 4)
np.save(D + '/a.npy', a)
b = np.random.RandomState(0).randn(2, 3, 5).astype(np.float32)
np.save(D + '/b.npy', b)
b.tofile(D + '/b.raw')
`);
    const a = readNpy(join(dir, 'a.npy'));
    expect(a.shape).toEqual([3, 4]);
    expect(a.storedDtype).toBe('<f4');
    expect(Array.from(a.data)).toEqual(Array.from(new Float32Array(Array.from({ length: 12 }, (_, i) => Math.fround(Math.fround(i * Math.fround(0.1)) - 0.5)))));
    const b = readNpy(join(dir, 'b.npy'));
    expect(b.shape).toEqual([2, 3, 5]);
    const raw = readFileSync(join(dir, 'b.raw'));
    expect(Buffer.from(b.data.buffer)).toEqual(raw);
  });

  it('converts float64 to float32 and reads format version 2.0', () => {
    numpy(`
c = np.random.RandomState(1).randn(4, 3)
np.save(D + '/c.npy', c)
c.astype(np.float32).tofile(D + '/c32.raw')
np.lib.format.write_array(open(D + '/v2.npy', 'wb'), c.astype(np.float32), version=(2, 0))
`);
    const c = readNpy(join(dir, 'c.npy'));
    expect(c.storedDtype).toBe('<f8');
    expect(Buffer.from(c.data.buffer)).toEqual(readFileSync(join(dir, 'c32.raw')));
    const v2 = readNpy(join(dir, 'v2.npy'));
    expect(v2.shape).toEqual([4, 3]);
    expect(Buffer.from(v2.data.buffer)).toEqual(readFileSync(join(dir, 'c32.raw')));
  });

  it('writes files numpy reads back exactly', () => {
    const data = new Float32Array([1.5, -2, 3.25, Math.fround(0.1), 0, -0]);
    writeNpy(join(dir, 'w.npy'), [2, 3], data);
    numpy(`
w = np.load(D + '/w.npy')
assert w.dtype == np.float32 and w.shape == (2, 3) and w.flags['C_CONTIGUOUS'], (w.dtype, w.shape)
assert (w.ravel() == np.array([1.5, -2, 3.25, 0.1, 0, -0], dtype=np.float32)).all()
`);
    expect(Array.from(readNpy(join(dir, 'w.npy')).data)).toEqual(Array.from(data));
  });

  const refuse = (p: string, msg: RegExp) => {
    expect(() => readNpy(p)).toThrow(NpyError);
    expect(() => readNpy(p)).toThrow(msg);
    expect(() => readNpy(p)).toThrow(p); // names the file
  };

  it('refuses a huge shape without allocating it', () => {
    const p = rawNpy('huge.npy', "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 1000000000000), }\n", Buffer.alloc(16));
    refuse(p, /needs 4000000000000000000000000 bytes of data, the file has 16/);
  });

  it('refuses a huge header length', () => {
    // version 1.0: a 65535-byte header length in a small file
    refuse(rawNpy('hdr.npy', "{'descr': '<f4'}", Buffer.alloc(8), 65535), /truncated .npy file \(header says 65535 bytes/);
    // version 2.0 with a 4 GiB header length
    const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0, 0, 0, 0, 0]);
    pre.writeUInt32LE(0xffffffff, 8);
    const p = join(dir, 'hdr2.npy');
    writeFileSync(p, Buffer.concat([pre, Buffer.alloc(100)]));
    refuse(p, /header of 4294967295 bytes exceeds the 65536-byte limit/);
  });

  it('refuses Fortran order', () => {
    numpy(`np.save(D + '/f.npy', np.asfortranarray(np.ones((3, 4), dtype=np.float32)))`);
    refuse(join(dir, 'f.npy'), /Fortran-order arrays are not supported/);
  });

  it('refuses other dtypes and big-endian floats', () => {
    numpy(`
np.save(D + '/i.npy', np.ones((2, 2), dtype=np.int32))
np.save(D + '/be.npy', np.ones((2, 2), dtype='>f4'))
`);
    refuse(join(dir, 'i.npy'), /dtype '<i4' is not supported/);
    refuse(join(dir, 'be.npy'), /dtype '>f4' is not supported/);
  });

  it('refuses truncated data, bad magic and a malformed header', () => {
    numpy(`np.save(D + '/t.npy', np.ones((5, 8), dtype=np.float32))`);
    const full = readFileSync(join(dir, 't.npy'));
    writeFileSync(join(dir, 't2.npy'), full.subarray(0, full.length - 4));
    refuse(join(dir, 't2.npy'), /shape \(5, 8\) of '<f4' needs 160 bytes of data, the file has 156 \(truncated\?\)/);
    writeFileSync(join(dir, 'magic.npy'), Buffer.from('PK\x03\x04 not an npy file'));
    refuse(join(dir, 'magic.npy'), /not a .npy file/);
    refuse(rawNpy('mal.npy', "{'descr': '<f4', 'shape': (2, 2)}\n", Buffer.alloc(16)), /malformed .npy header/);
    refuse(rawNpy('neg.npy', "{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 2), }\n", Buffer.alloc(16)), /not a non-negative integer/);
    refuse(join(dir, 'absent.npy'), /cannot open \(ENOENT\)/);
  });
});
