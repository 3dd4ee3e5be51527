// Small helpers for float32 storage buffers and read-back. Read-back goes
// through one staging buffer per reader that grows as needed and is reused:
// on lavapipe a fresh large MAP_READ allocation can cost 10-20 ms, a reused
// one about 1 ms.

// WebGPU's usage bits, spelled out once for the whole runtime: in Node the
// GPUBufferUsage/GPUMapMode globals only exist once runtime/device.ts has
// installed them, after the modules that use them load.
export const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80, QUERY_RESOLVE: 0x200 } as const;
/** GPUMapMode.READ */
export const MAP_MODE_READ = 0x1;

/** Usage for tensors the kernels read and write and tests upload/download. */
export const STORAGE_USAGE = USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST;
/** Uniforms written from the host (kernel parameters). */
export const UNIFORM_USAGE = USAGE.UNIFORM | USAGE.COPY_DST;
/** Staging buffers that GPU results are copied into and mapped for reading. */
export const READBACK_USAGE = USAGE.MAP_READ | USAGE.COPY_DST;

/** WebGPU sizes must be multiples of 4 and bindings must not be empty. */
function paddedSize(byteLength: number): number {
  return Math.max(4, Math.ceil(byteLength / 4) * 4);
}

/** A storage buffer holding `data`, or `data` zero floats when given a count. */
export function createStorageBuffer(device: GPUDevice, data: Float32Array | number, label?: string): GPUBuffer {
  const floats = typeof data === 'number' ? data : data.length;
  const buffer = device.createBuffer({
    label,
    size: paddedSize(floats * 4),
    usage: STORAGE_USAGE,
    mappedAtCreation: typeof data !== 'number',
  });
  if (typeof data !== 'number') {
    new Float32Array(buffer.getMappedRange(), 0, data.length).set(data);
    buffer.unmap();
  }
  return buffer;
}

/** A uniform buffer holding `data` (u32 or f32 words). */
export function createUniformBuffer(device: GPUDevice, data: Uint32Array | Float32Array, label?: string): GPUBuffer {
  const buffer = device.createBuffer({ label, size: paddedSize(data.byteLength), usage: UNIFORM_USAGE });
  device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  return buffer;
}

/**
 * Copies storage buffers back to the host through one reused staging buffer.
 * Reads are serialised (the staging buffer can only be mapped once at a time).
 */
export class BufferReader {
  private staging: GPUBuffer | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly device: GPUDevice) {}

  /** Reads `floats` float32 values (default: the whole buffer) into `into` or a new array. */
  read(source: GPUBuffer, floats = source.size / 4, into?: Float32Array): Promise<Float32Array> {
    const result = this.queue.then(() => this.readNow(source, floats, into));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async readNow(source: GPUBuffer, floats: number, into?: Float32Array): Promise<Float32Array> {
    const bytes = paddedSize(floats * 4);
    if (!this.staging || this.staging.size < bytes) {
      this.staging?.destroy();
      this.staging = this.device.createBuffer({ label: 'readback-staging', size: bytes, usage: READBACK_USAGE });
    }
    const staging = this.staging;
    const encoder = this.device.createCommandEncoder({ label: 'readback' });
    encoder.copyBufferToBuffer(source, 0, staging, 0, bytes);
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_MODE_READ, 0, bytes);
    const out = into ?? new Float32Array(floats);
    out.set(new Float32Array(staging.getMappedRange(0, bytes), 0, floats));
    staging.unmap();
    return out;
  }

  destroy(): void {
    this.staging?.destroy();
    this.staging = undefined;
  }
}

const readers = new WeakMap<GPUDevice, BufferReader>();

/** Reads a float32 buffer back using the device's shared BufferReader. */
export function readBuffer(device: GPUDevice, source: GPUBuffer, floats?: number, into?: Float32Array): Promise<Float32Array> {
  let reader = readers.get(device);
  if (!reader) {
    reader = new BufferReader(device);
    readers.set(device, reader);
  }
  return reader.read(source, floats, into);
}
