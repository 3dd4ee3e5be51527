// Optimizers as fused WGSL kernels over a whole network: the params of one
// group live in a few arena buffers (compiler/plan/layout.ts layoutState), so one
// dispatch per arena chunk updates every param of the network. Padding between
// params has zero gradient and stays zero.
//
// Adam follows torch.optim.Adam exactly (L2 weight decay added to the gradient,
// bias corrections folded as PyTorch does):
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// SGD follows torch.optim.SGD with dampening 0 (g += wd p first):
//   b = mu b + g;  p -= lr * (nesterov ? g + mu b : b)
// (torch starts b at g on the first step; mu * 0 + g is the same float.)
//
// Moments and step counts are saved and restored by exportState/importState,
// one tensor per param ('exp_avg:NAME', 'exp_avg_sq:NAME', 'momentum_buffer:NAME',
// torch's names), so a checkpoint does not depend on the arena layout.
import { STORAGE_USAGE as STORAGE, UNIFORM_USAGE as UNIFORM } from './buffers.ts';
import type { Runtime, StepHook } from './executor.ts';
import { gridFor as grid, WG } from './format/grid.ts';
import type { KernelSpec } from './format/kernel.ts';
import { checkScalar, checkTensors, type SavedState, type StateTensor, type TensorSpec } from './state.ts';

export function adamKernel(floats: number): KernelSpec {
  const g = grid(floats);
  return {
    name: `adam_${floats}`,
    wgsl: `struct Hyper { step_size: f32, inv_sqrt_bc2: f32, b1: f32, b2: f32, eps: f32, wd: f32, one_minus_b1: f32, one_minus_b2: f32 }
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
  let mi = h.b1 * m[i] + h.one_minus_b1 * gi;
  let vi = h.b2 * v[i] + h.one_minus_b2 * gi * gi;
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

/** SGD with a momentum buffer; Nesterov is baked in (a separate pipeline) rather than branched on. */
export function sgdMomentumKernel(floats: number, nesterov: boolean): KernelSpec {
  const g = grid(floats);
  return {
    name: `sgd_${nesterov ? 'nesterov' : 'momentum'}_${floats}`,
    wgsl: `struct Hyper { lr: f32, wd: f32, momentum: f32, _p0: f32 }
@group(0) @binding(0) var<storage, read_write> p: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> buf: array<f32>;
@group(0) @binding(3) var<uniform> h: Hyper;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = ${g.index('gid')};
  if (i >= ${floats}u) { return; }
  let d = g[i] + h.wd * p[i];
  let b = h.momentum * buf[i] + d;
  buf[i] = b;
  p[i] = p[i] - h.lr * ${nesterov ? '(d + h.momentum * b)' : 'b'};
}
`,
    bindings: [
      { name: 'p', access: 'read_write' },
      { name: 'g', access: 'read' },
      { name: 'buf', access: 'read_write' },
      { name: 'h', access: 'uniform' },
    ],
    workgroups: g.workgroups,
    flops: (nesterov ? 7 : 5) * floats,
  };
}

export interface AdamOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export interface SGDOptions {
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

/**
 * An optimizer as a `train` setting gives it (the checker's JSON: `adam(lr = 2e-4)`
 * becomes `{ kind: 'adam', lr: 2e-4, betas: [0.5, 0.999], eps: 1e-8, ... }`).
 */
export type OptimizerSettings =
  | { kind: 'adam'; lr: number; betas?: [number, number]; eps?: number; weight_decay?: number }
  | { kind: 'sgd'; lr: number; momentum?: number; nesterov?: boolean; weight_decay?: number };

const SETTING_KEYS: Record<OptimizerSettings['kind'], string[]> = {
  adam: ['kind', 'lr', 'betas', 'eps', 'weight_decay'],
  sgd: ['kind', 'lr', 'momentum', 'nesterov', 'weight_decay'],
};

/**
 * The optimizer for one param group from its setting. A key this runtime does
 * not implement is an error, never silently ignored (as SGD momentum once was).
 */
export function createOptimizer(rt: Runtime, group: string, s: OptimizerSettings): Adam | SGD {
  const known = SETTING_KEYS[s.kind];
  if (!known) throw new Error(`unknown optimizer '${(s as { kind: unknown }).kind}' (expected ${Object.keys(SETTING_KEYS).join(' or ')})`);
  const extra = Object.keys(s).filter((k) => !known.includes(k));
  if (extra.length) throw new Error(`${s.kind}: the runtime does not implement ${extra.map((k) => `'${k}'`).join(', ')}`);
  if (s.kind === 'adam') return new Adam(rt, group, { lr: s.lr, betas: s.betas, eps: s.eps, weightDecay: s.weight_decay });
  return new SGD(rt, group, { lr: s.lr, momentum: s.momentum, nesterov: s.nesterov, weightDecay: s.weight_decay });
}

abstract class GroupOptimizer implements StepHook {
  abstract readonly kind: string;
  protected readonly chunks: { param: GPUBuffer; grad: GPUBuffer; floats: number; spec: KernelSpec; extra: GPUBuffer[]; bind?: GPUBindGroup; pipeline?: GPUComputePipeline }[];
  protected readonly hyper: GPUBuffer;
  /** Steps taken so far. */
  protected t = 0;

  /** `stateNames`: one per-element state buffer per name (saved as 'NAME:param'). */
  constructor(
    protected readonly rt: Runtime,
    readonly group: string,
    hyperFloats: number,
    kernel: (floats: number) => KernelSpec,
    private readonly stateNames: readonly string[],
  ) {
    const g = rt.layout.groups[group];
    if (!g) throw new Error(`no param group '${group}' (groups: ${Object.keys(rt.layout.groups).join(', ')})`);
    if (g.frozen) throw new Error(`param group '${group}' is frozen (a pretrained encoder): it has no optimizer`);
    const d = rt.device;
    this.hyper = d.createBuffer({ label: `${group}-hyper`, size: hyperFloats * 4, usage: UNIFORM });
    this.chunks = g.chunks.map((c) => ({
      param: rt.arena(c.param),
      grad: rt.arena(c.grad!),
      floats: c.bytes / 4,
      spec: kernel(c.bytes / 4),
      extra: stateNames.map((name) => d.createBuffer({ label: `${c.param}-${name}`, size: c.bytes, usage: STORAGE })),
    }));
  }

  /** Steps taken so far (Adam's bias correction uses steps + 1 on the next step). */
  get steps(): number {
    return this.t;
  }

  beforeStep(): void {
    this.t++;
    this.rt.device.queue.writeBuffer(this.hyper, 0, this.hyperValues().buffer);
  }

  /** The update kernel's uniforms for the step about to run (this.t is its 1-based number). */
  protected abstract hyperValues(): Float32Array<ArrayBuffer>;

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

  /** Where each param of the group lies: its chunk and its byte range there (the same in the param arena and every state buffer). */
  private placements(): { name: string; chunk: number; offset: number; size: number }[] {
    const chunkNames = this.rt.layout.groups[this.group].chunks.map((c) => c.param);
    return this.rt.layout.groups[this.group].params.map((name) => {
      const slot = this.rt.layout.params[name];
      return { name, chunk: chunkNames.indexOf(slot.buffer), offset: slot.offset, size: slot.size };
    });
  }

  /** Moments (one tensor per state buffer and param) and the step count; reads after the work submitted so far. */
  async exportState(): Promise<SavedState> {
    const k = this.stateNames.length;
    const bytes = await this.rt.readBuffers(this.chunks.flatMap((c) => c.extra));
    const tensors: Record<string, StateTensor> = {};
    this.stateNames.forEach((state, s) => {
      for (const p of this.placements()) tensors[`${state}:${p.name}`] = new Float32Array(bytes[p.chunk * k + s], p.offset, p.size / 4).slice();
    });
    return { tensors, scalars: { kind: this.kind, group: this.group, steps: this.t } };
  }

  /** Restores what exportState saved (same kind, same group's params); the next step continues that run. */
  importState(saved: SavedState): void {
    const what = `${this.kind}(${this.group}).importState`;
    checkScalar(what, saved, 'kind', this.kind);
    const steps = saved.scalars.steps;
    if (typeof steps !== 'number' || !Number.isInteger(steps) || steps < 0) throw new Error(`${what}: steps must be a whole number, got ${JSON.stringify(steps)}`);
    const expected: Record<string, TensorSpec> = {};
    for (const state of this.stateNames) for (const p of this.placements()) expected[`${state}:${p.name}`] = { type: 'f32', length: p.size / 4 };
    checkTensors(what, saved, expected);
    this.stateNames.forEach((state, s) => {
      for (const p of this.placements()) {
        const data = saved.tensors[`${state}:${p.name}`];
        this.rt.device.queue.writeBuffer(this.chunks[p.chunk].extra[s], p.offset, data.buffer, data.byteOffset, data.byteLength);
      }
    });
    this.t = steps;
  }

  destroy(): void {
    for (const c of this.chunks) for (const b of c.extra) b.destroy();
    this.hyper.destroy();
  }
}

export class Adam extends GroupOptimizer {
  readonly kind = 'adam';
  readonly opts: Required<AdamOptions>;

  constructor(rt: Runtime, group: string, opts: AdamOptions) {
    super(rt, group, 8, adamKernel, ['exp_avg', 'exp_avg_sq']);
    this.opts = { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, ...definedOnly(opts), lr: opts.lr };
  }

  protected hyperValues(): Float32Array<ArrayBuffer> {
    const { lr, betas, eps, weightDecay } = this.opts;
    const bc1 = 1 - betas[0] ** this.t;
    const bc2 = 1 - betas[1] ** this.t;
    // 1 - b in double, as torch does: 1 - f32(0.999) is off by 1.3e-5 relative.
    return new Float32Array([lr / bc1, 1 / Math.sqrt(bc2), betas[0], betas[1], eps, weightDecay, 1 - betas[0], 1 - betas[1]]);
  }
}

export class SGD extends GroupOptimizer {
  readonly kind = 'sgd';
  readonly opts: Required<SGDOptions>;

  constructor(rt: Runtime, group: string, opts: SGDOptions) {
    const o: Required<SGDOptions> = { momentum: 0, nesterov: false, weightDecay: 0, ...definedOnly(opts), lr: opts.lr };
    // torch.optim.SGD refuses the same.
    if (o.nesterov && o.momentum <= 0) throw new Error('sgd: nesterov needs a momentum > 0');
    if (o.momentum > 0) super(rt, group, 4, (n) => sgdMomentumKernel(n, o.nesterov), ['momentum_buffer']);
    else super(rt, group, 4, sgdKernel, []);
    this.opts = o;
  }

  protected hyperValues(): Float32Array<ArrayBuffer> {
    return new Float32Array([this.opts.lr, this.opts.weightDecay, this.opts.momentum, 0]);
  }
}

/** Drops undefined entries, so `{ eps: undefined }` keeps the default instead of erasing it. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
