// Compute pipelines and bind groups for KernelSpecs.
//
// Pipelines are cached by a content hash of the WGSL, so identical kernels
// (same op, same baked-in shapes) are compiled once however many times the plan
// uses them. `prepare()` compiles everything up front with
// createComputePipelineAsync, so recording a training step never waits on the
// shader compiler (on lavapipe each new shader costs 0.2-2 s of LLVM JIT).
// Layouts are explicit (derived from KernelSpec.bindings), not 'auto', so a
// compile error is reported against the kernel and not as a layout mismatch.
import type { BindingAccess, KernelSpec } from './format/kernel.ts';

/** A shader that failed to compile, with Dawn's messages and the offending lines. */
export class KernelCompileError extends Error {
  override name = 'KernelCompileError';
  constructor(
    readonly kernel: string,
    readonly details: string,
  ) {
    super(`kernel '${kernel}' failed to compile:\n${details}`);
  }
}

/** cyrb53: a fast 53-bit string hash; collisions are checked against the WGSL text. */
export function wgslHash(text: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

const BUFFER_TYPE: Record<BindingAccess, GPUBufferBindingType> = {
  read: 'read-only-storage',
  read_write: 'storage',
  uniform: 'uniform',
};

// GPUShaderStage.COMPUTE; spelled out because the Node global may not exist yet.
const COMPUTE_STAGE = 0x4;

interface CachedPipeline {
  wgsl: string;
  pipeline: Promise<GPUComputePipeline>;
  ready?: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

function formatCompilationInfo(info: GPUCompilationInfo, wgsl: string): string {
  const lines = wgsl.split('\n');
  return info.messages
    .map((m) => {
      const where = m.lineNum > 0 ? `line ${m.lineNum}:${m.linePos}: ` : '';
      const src = m.lineNum > 0 && lines[m.lineNum - 1] !== undefined ? `\n    ${lines[m.lineNum - 1].trim()}` : '';
      return `  ${m.type}: ${where}${m.message}${src}`;
    })
    .join('\n');
}

export class PipelineCache {
  private readonly pipelines = new Map<string, CachedPipeline>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;

  constructor(readonly device: GPUDevice) {}

  /** Number of distinct compiled (or compiling) pipelines. */
  get size(): number {
    return this.pipelines.size;
  }

  /** Compiles every distinct kernel among `specs`, in parallel; rejects with KernelCompileError. */
  async prepare(specs: Iterable<KernelSpec>): Promise<void> {
    const pending: Promise<GPUComputePipeline>[] = [];
    for (const spec of specs) pending.push(this.entry(spec).pipeline);
    await Promise.all(pending);
  }

  /** The compiled pipeline of a prepared kernel. Throws if prepare() has not finished for it. */
  pipeline(spec: KernelSpec): GPUComputePipeline {
    const entry = this.entry(spec);
    if (!entry.ready) throw new Error(`kernel '${spec.name}' is not compiled yet: await prepare([...]) before recording`);
    return entry.ready;
  }

  /** A bind group with `buffers` at bindings 0..n-1, cached per pipeline and buffer identity. */
  bindGroup(spec: KernelSpec, buffers: readonly GPUBuffer[]): GPUBindGroup {
    if (buffers.length !== spec.bindings.length) {
      throw new Error(`kernel '${spec.name}' takes ${spec.bindings.length} buffers (${spec.bindings.map((b) => b.name).join(', ')}), got ${buffers.length}`);
    }
    const entry = this.entry(spec);
    const key = `${wgslHash(spec.wgsl)}|${buffers.map((b) => this.bufferId(b)).join(',')}`;
    let group = this.bindGroups.get(key);
    if (!group) {
      group = this.device.createBindGroup({
        label: spec.name,
        layout: entry.layout,
        entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
      });
      this.bindGroups.set(key, group);
    }
    return group;
  }

  /** Records one dispatch of a prepared kernel into an open compute pass. */
  dispatch(pass: GPUComputePassEncoder, spec: KernelSpec, buffers: readonly GPUBuffer[]): void {
    pass.setPipeline(this.pipeline(spec));
    pass.setBindGroup(0, this.bindGroup(spec, buffers));
    const [x, y, z] = spec.workgroups;
    pass.dispatchWorkgroups(x, y, z);
  }

  /** Forgets cached bind groups (call after destroying buffers they reference). */
  clearBindGroups(): void {
    this.bindGroups.clear();
  }

  private bufferId(buffer: GPUBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) {
      id = this.nextBufferId++;
      this.bufferIds.set(buffer, id);
    }
    return id;
  }

  private entry(spec: KernelSpec): CachedPipeline {
    const hash = wgslHash(spec.wgsl);
    const hit = this.pipelines.get(hash);
    if (hit) {
      if (hit.wgsl !== spec.wgsl) throw new Error(`WGSL hash collision between kernels (hash ${hash}, kernel '${spec.name}')`);
      return hit;
    }
    const layout = this.device.createBindGroupLayout({
      label: spec.name,
      entries: spec.bindings.map((b, binding) => ({ binding, visibility: COMPUTE_STAGE, buffer: { type: BUFFER_TYPE[b.access] } })),
    });
    const entry: CachedPipeline = { wgsl: spec.wgsl, layout, pipeline: this.compile(spec, layout) };
    entry.pipeline.then(
      (p) => (entry.ready = p),
      () => this.pipelines.delete(hash), // a later prepare() retries and reports again
    );
    this.pipelines.set(hash, entry);
    return entry;
  }

  private async compile(spec: KernelSpec, layout: GPUBindGroupLayout): Promise<GPUComputePipeline> {
    const device = this.device;
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ label: spec.name, code: spec.wgsl });
    const [info, moduleError] = await Promise.all([module.getCompilationInfo(), device.popErrorScope()]);
    if (info.messages.some((m) => m.type === 'error') || moduleError) {
      const details = info.messages.length > 0 ? formatCompilationInfo(info, spec.wgsl) : `  ${moduleError?.message}`;
      throw new KernelCompileError(spec.name, details);
    }
    try {
      return await device.createComputePipelineAsync({
        label: spec.name,
        layout: device.createPipelineLayout({ label: spec.name, bindGroupLayouts: [layout] }),
        compute: { module, entryPoint: 'main' },
      });
    } catch (e) {
      throw new KernelCompileError(spec.name, `  ${(e as Error).message}`);
    }
  }
}

const caches = new WeakMap<GPUDevice, PipelineCache>();

/** The process-wide pipeline cache of a device. */
export function pipelineCache(device: GPUDevice): PipelineCache {
  let cache = caches.get(device);
  if (!cache) {
    cache = new PipelineCache(device);
    caches.set(device, cache);
  }
  return cache;
}
