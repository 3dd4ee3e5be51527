// The safetensors format in memory (encode, decode, half precision), with no
// Node modules: a browser reads a module's weights with it. File reading and
// atomic writing are in safetensors.ts, which re-exports all of this.
//
// safetensors (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON
//   { "__metadata__"?: {string: string}, NAME: { dtype, shape, data_offsets: [begin, end] } }
// then the raw little-endian data, offsets relative to its start. Checkpoints
// are written in it so PyTorch (and anyone else) can read them.
//
// The reader trusts nothing in the file: the header's length is capped, every
// entry's dtype, shape and offsets are checked against each other and the
// file's size before anything is allocated, and tensors may not overlap.
export type Dtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8';

export type TensorData = Float64Array | Float32Array | BigInt64Array | Int32Array | Int16Array | Int8Array | BigUint64Array | Uint32Array | Uint16Array | Uint8Array;

export interface Tensor {
  dtype: Dtype;
  shape: number[];
  data: TensorData;
}

const ARRAYS = {
  F64: Float64Array,
  F32: Float32Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U64: BigUint64Array,
  U32: Uint32Array,
  U16: Uint16Array,
  U8: Uint8Array,
  // Half precision (published CLIP weights are float16) is held as its raw bits.
  F16: Uint16Array,
  BF16: Uint16Array,
} as const;

/** Dtypes whose data is a Uint16Array of raw half-precision bits, not integers. */
const HALF: ReadonlySet<Dtype> = new Set(['F16', 'BF16']);

/** The safetensors project's own cap on the header (100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;
const MAX_RANK = 8;

function dtypeOf(data: TensorData): Dtype {
  for (const [k, C] of Object.entries(ARRAYS)) if (data instanceof C) return k as Dtype;
  throw new Error('safetensors: unsupported array type');
}

function elements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The file's bytes: header, then each tensor in the order given, 8-byte aligned data start. */
export function encodeSafetensors(tensors: Record<string, { dtype?: Dtype; shape: readonly number[]; data: TensorData }>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') throw new Error(`safetensors: metadata '${k}' must be a string`);
    header.__metadata__ = metadata;
  }
  let at = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new Error("safetensors: '__metadata__' is not a tensor name");
    const held = dtypeOf(t.data);
    const dtype = t.dtype && HALF.has(t.dtype) && held === 'U16' ? t.dtype : held;
    if (t.dtype && t.dtype !== dtype) throw new Error(`safetensors: '${name}' says ${t.dtype} but holds ${held} data`);
    if (elements(t.shape) !== t.data.length) throw new Error(`safetensors: '${name}' has shape [${t.shape.join(', ')}] but ${t.data.length} elements`);
    header[name] = { dtype, shape: [...t.shape], data_offsets: [at, at + t.data.byteLength] };
    at += t.data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - ((json.length + 8) % 8)) % 8; // the data starts 8-byte aligned
  const headLength = json.length + pad;
  const out = new Uint8Array(8 + headLength + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(headLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headLength); // spaces
  let off = 8 + headLength;
  for (const t of Object.values(tensors)) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), off);
    off += t.data.byteLength;
  }
  return out;
}

interface Entry {
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

/** The checked header: entries and metadata, given the size of the data section. */
function parseHeader(json: string, dataBytes: number, where: string): { entries: Record<string, Entry>; metadata: Record<string, string> } {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new Error(`${where}: header is not JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${where}: header must be a JSON object`);
  const metadata: Record<string, string> = {};
  const entries: Record<string, Entry> = {};
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where}: __metadata__ must be an object of strings`);
      for (const [k, s] of Object.entries(v)) {
        if (typeof s !== 'string') throw new Error(`${where}: __metadata__ '${k}' must be a string`);
        metadata[k] = s;
      }
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const bad = (why: string) => new Error(`${where}: tensor '${name}': ${why}`);
    if (typeof e !== 'object' || e === null) throw bad('entry must be an object');
    if (typeof e.dtype !== 'string' || !(e.dtype in ARRAYS)) throw bad(`unsupported dtype ${JSON.stringify(e.dtype)} (supported: ${Object.keys(ARRAYS).join(', ')})`);
    const dtype = e.dtype as Dtype;
    if (!Array.isArray(e.shape) || e.shape.length > MAX_RANK || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(`shape must be at most ${MAX_RANK} whole numbers >= 0`);
    const o = e.data_offsets;
    if (!Array.isArray(o) || o.length !== 2 || !o.every((x) => Number.isSafeInteger(x) && x >= 0) || o[0] > o[1]) throw bad('data_offsets must be [begin, end] with 0 <= begin <= end');
    if (o[1] > dataBytes) throw bad(`data_offsets [${o[0]}, ${o[1]}] run past the data (${dataBytes} bytes)`);
    const shape = e.shape as number[];
    // Checked in floating point first: a hostile shape's product can overflow safe integers.
    const want = shape.reduce((a, b) => a * b, 1) * ARRAYS[dtype].BYTES_PER_ELEMENT;
    if (want !== o[1] - o[0]) throw bad(`shape [${shape.join(', ')}] of ${dtype} needs ${want} bytes, data_offsets give ${o[1] - o[0]}`);
    entries[name] = { dtype, shape, begin: o[0], end: o[1] };
  }
  const sorted = Object.entries(entries).sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i][1].begin < sorted[i - 1][1].end) throw new Error(`${where}: tensors '${sorted[i - 1][0]}' and '${sorted[i][0]}' overlap`);
  }
  return { entries, metadata };
}

/** An IEEE half (binary16) bit pattern as a number. */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Whether toFloat32 takes this dtype (F32, F64, F16, BF16). */
export function isFloatDtype(d: Dtype): boolean {
  return d === 'F32' || d === 'F64' || d === 'F16' || d === 'BF16';
}

/** A floating-point tensor's values as float32 (F32, F64, F16, BF16); undefined for integer dtypes. */
export function toFloat32(t: Tensor): Float32Array | undefined {
  switch (t.dtype) {
    case 'F32':
      return t.data as Float32Array;
    case 'F64':
      return Float32Array.from(t.data as Float64Array);
    case 'F16': {
      const h = t.data as Uint16Array;
      const out = new Float32Array(h.length);
      for (let i = 0; i < h.length; i++) out[i] = halfToNumber(h[i]);
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32.
      const bits = new Uint32Array(t.data.length);
      const h = t.data as Uint16Array;
      for (let i = 0; i < h.length; i++) bits[i] = h[i] << 16;
      return new Float32Array(bits.buffer);
    }
    default:
      return undefined;
  }
}

/** Decodes a whole file held in memory (see readSafetensors). */
export function decodeSafetensors(buf: Uint8Array, where = 'safetensors'): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  if (buf.byteLength < 8) throw new Error(`${where}: too short for a safetensors file (${buf.byteLength} bytes)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) throw new Error(`${where}: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte cap`);
  if (n > BigInt(buf.byteLength - 8)) throw new Error(`${where}: header length ${n} runs past the end of the file (${buf.byteLength} bytes)`);
  const start = 8 + Number(n);
  const json = new TextDecoder('utf-8', { fatal: false }).decode(buf.subarray(8, start));
  const { entries, metadata } = parseHeader(json, buf.byteLength - start, where);
  const tensors: Record<string, Tensor> = {};
  for (const [name, e] of Object.entries(entries)) {
    const C = ARRAYS[e.dtype];
    // Copied: the data section need not be aligned for a typed-array view.
    // (Buffer#slice is a view into Node's pool, so copy explicitly.)
    const bytes = new Uint8Array(e.end - e.begin);
    bytes.set(buf.subarray(start + e.begin, start + e.end));
    tensors[name] = { dtype: e.dtype, shape: e.shape, data: new C(bytes.buffer, 0, (e.end - e.begin) / C.BYTES_PER_ELEMENT) };
  }
  return { tensors, metadata };
}

