// Optimizers as fused WGSL kernels over a whole network: the params of one
// group live in a few arena buffers (compiler/plan.ts layoutState), so one
// dispatch per arena chunk updates every param of the network. Padding between
// params has zero gradient and stays zero.
//
// Adam follows torch.optim.Adam exactly (L2 weight decay added to the gradient,
// bias corrections folded as PyTorch does):
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
import { STORAGE_USAGE as STORAGE, UNIFORM_USAGE as UNIFORM } from './buffers.ts';
import type { Runtime, StepHook } from './executor.ts';
import { gridFor as grid, WG } from './format/grid.ts';
import type { KernelSpec } from './format/kernel.ts';

export function adamKernel(floats: number): KernelSpec {
  const g = grid(floats);
  return {
    name: `adam_${floats}`,
    wgsl: `struct Hyper { step_size: f32, inv_sqrt_bc2: f32, b1: f32, b2: f32, eps: f32, wd: f32, _p0: f32, _p1: f32 }
@group(0) @binding(0) var<storage, read_write> p: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<uniform> h: Hyper;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = ${g.index('gid')};
  if (i >= ${floats}u) { return; }
  let gi = g[i] + h.wd * p[i];
  let mi = h.b1 * m[i] + (1.0 - h.b1) * gi;
  let vi = h.b2 * v[i] + (1.0 - h.b2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  p[i] = p[i] - h.step_size * mi / (sqrt(vi) * h.inv_sqrt_bc2 + h.eps);
}
`,
    bindings: [
      { name: 'p', access: 'read_write' },
      { name: 'g', access: 'read' },
      { name: 'm', access: 'read_write' },
      { name: 'v', access: 'read_write' },
      { name: 'h', access: 'uniform' },
    ],
    workgroups: g.workgroups,
    flops: 12 * floats,
  };
}

export function sgdKernel(floats: number): KernelSpec {
  const g = grid(floats);
  return {
    name: `sgd_${floats}`,
    wgsl: `struct Hyper { lr: f32, wd: f32, _p0: f32, _p1: f32 }
@group(0) @binding(0) var<storage, read_write> p: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<uniform> h: Hyper;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = ${g.index('gid')};
  if (i >= ${floats}u) { return; }
  p[i] = p[i] - h.lr * (g[i] + h.wd * p[i]);
}
`,
    bindings: [
      { name: 'p', access: 'read_write' },
      { name: 'g', access: 'read' },
      { name: 'h', access: 'uniform' },
    ],
    workgroups: g.workgroups,
    flops: 3 * floats,
  };
}

export interface AdamOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

abstract class GroupOptimizer implements StepHook {
  protected readonly chunks: { param: GPUBuffer; grad: GPUBuffer; floats: number; spec: KernelSpec; extra: GPUBuffer[]; bind?: GPUBindGroup; pipeline?: GPUComputePipeline }[];
  protected readonly hyper: GPUBuffer;

  constructor(
    protected readonly rt: Runtime,
    readonly group: string,
    hyperFloats: number,
    kernel: (floats: number) => KernelSpec,
    extraBuffers: number,
  ) {
    const g = rt.layout.groups[group];
    if (!g) throw new Error(`no param group '${group}' (groups: ${Object.keys(rt.layout.groups).join(', ')})`);
    const d = rt.device;
    this.hyper = d.createBuffer({ label: `${group}-hyper`, size: hyperFloats * 4, usage: UNIFORM });
    this.chunks = g.chunks.map((c) => ({
      param: rt.arena(c.param),
      grad: rt.arena(c.grad),
      floats: c.bytes / 4,
      spec: kernel(c.bytes / 4),
      extra: Array.from({ length: extraBuffers }, (_, k) => d.createBuffer({ label: `${c.param}-state${k}`, size: c.bytes, usage: STORAGE })),
    }));
  }

  kernels(): KernelSpec[] {
    return this.chunks.map((c) => c.spec);
  }

  record(pass: GPUComputePassEncoder): void {
    for (const c of this.chunks) {
      const pipeline = (c.pipeline ??= this.rt.cache.pipeline(c.spec));
      c.bind ??= this.rt.device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [c.param, c.grad, ...c.extra, this.hyper].map((buffer, binding) => ({ binding, resource: { buffer } })),
      });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, c.bind);
      pass.dispatchWorkgroups(...c.spec.workgroups);
    }
  }

  /**
   * Dispatches each update kernel once on small scratch buffers (one
   * workgroup touches only the first 64 elements), so lavapipe's first-dispatch
   * JIT happens at load time; params and moments are untouched.
   */
  warm(pass: GPUComputePassEncoder): void {
    const d = this.rt.device;
    for (const c of this.chunks) {
      const scratch = [c.param, c.grad, ...c.extra].map((_, k) => d.createBuffer({ size: 256, usage: STORAGE, label: `warm${k}` }));
      const pipeline = (c.pipeline ??= this.rt.cache.pipeline(c.spec));
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, d.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [...scratch, this.hyper].map((buffer, binding) => ({ binding, resource: { buffer } })) }));
      pass.dispatchWorkgroups(1, 1, 1);
    }
  }

  /** Compiles the update kernels (also done by Runtime.load when passed as a hook). */
  async prepare(): Promise<void> {
    await this.rt.cache.prepare(this.kernels());
  }

  destroy(): void {
    for (const c of this.chunks) for (const b of c.extra) b.destroy();
    this.hyper.destroy();
  }
}

export class Adam extends GroupOptimizer {
  private t = 0;
  readonly opts: Required<AdamOptions>;

  constructor(rt: Runtime, group: string, opts: AdamOptions) {
    super(rt, group, 8, adamKernel, 2);
    this.opts = { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, ...opts };
  }

  /** Steps taken so far (bias correction uses t + 1 on the next step). */
  get steps(): number {
    return this.t;
  }

  beforeStep(): void {
    this.t++;
    const { lr, betas, eps, weightDecay } = this.opts;
    const bc1 = 1 - betas[0] ** this.t;
    const bc2 = 1 - betas[1] ** this.t;
    const h = new Float32Array([lr / bc1, 1 / Math.sqrt(bc2), betas[0], betas[1], eps, weightDecay, 0, 0]);
    this.rt.device.queue.writeBuffer(this.hyper, 0, h);
  }
}

export class SGD extends GroupOptimizer {
  constructor(
    rt: Runtime,
    group: string,
    readonly opts: { lr: number; weightDecay?: number },
  ) {
    super(rt, group, 4, sgdKernel, 0);
  }

  beforeStep(): void {
    this.rt.device.queue.writeBuffer(this.hyper, 0, new Float32Array([this.opts.lr, this.opts.weightDecay ?? 0, 0, 0]));
  }
}
