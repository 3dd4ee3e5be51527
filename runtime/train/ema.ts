// An exponential moving average of one param group (the generator), kept in
// GPU buffers beside the params and updated by one fused kernel per arena
// chunk, recorded right after the group's optimizer step (a StepHook).
//
//   acc = decay * acc + (1 - decay) * p
//
// Two modes:
//   'plain'          StackGAN-v2's: acc starts as a copy of the initial params and
//                    is the average itself. With decay 0.999 it still holds 74% of
//                    the initial weights after 300 steps.
//   'bias_corrected' (default) acc starts at zero and the average is
//                    acc / (1 - decay^t), Adam's correction: after t steps it is a
//                    proper weighted mean of the params seen, no initial-weight bias.
// The accumulator and the step count are saved and restored exactly.
import { STORAGE_USAGE as STORAGE, UNIFORM_USAGE as UNIFORM } from '../buffers.ts';
import type { Runtime, StepHook } from '../executor.ts';
import { gridFor as grid, WG } from '../format/grid.ts';
import type { KernelSpec } from '../format/kernel.ts';
import { checkScalar, checkTensors, type SavedState, type StateTensor, type TensorSpec } from '../state.ts';

export type EmaMode = 'plain' | 'bias_corrected';

export function emaKernel(floats: number): KernelSpec {
  const g = grid(floats);
  return {
    name: `ema_${floats}`,
    wgsl: `struct Hyper { decay: f32, one_minus_decay: f32, _p0: f32, _p1: f32 }
@group(0) @binding(0) var<storage, read> p: array<f32>;
@group(0) @binding(1) var<storage, read_write> acc: array<f32>;
@group(0) @binding(2) var<uniform> h: Hyper;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = ${g.index('gid')};
  if (i >= ${floats}u) { return; }
  acc[i] = h.decay * acc[i] + h.one_minus_decay * p[i];
}
`,
    bindings: [
      { name: 'p', access: 'read' },
      { name: 'acc', access: 'read_write' },
      { name: 'h', access: 'uniform' },
    ],
    workgroups: g.workgroups,
    flops: 3 * floats,
  };
}

export class Ema implements StepHook {
  private readonly chunks: { param: GPUBuffer; acc: GPUBuffer; spec: KernelSpec; bind?: GPUBindGroup; pipeline?: GPUComputePipeline }[];
  private readonly hyper: GPUBuffer;
  private t = 0;

  constructor(
    private readonly rt: Runtime,
    readonly group: string,
    readonly decay: number,
    readonly mode: EmaMode = 'bias_corrected',
  ) {
    if (!(decay > 0 && decay < 1)) throw new Error(`EMA decay must be in (0, 1), got ${decay}`);
    const g = rt.layout.groups[group];
    if (!g) throw new Error(`no param group '${group}' (groups: ${Object.keys(rt.layout.groups).join(', ')})`);
    this.hyper = rt.device.createBuffer({ label: `${group}-ema-hyper`, size: 16, usage: UNIFORM });
    // 1 - decay in double, as for Adam's betas.
    rt.device.queue.writeBuffer(this.hyper, 0, new Float32Array([decay, 1 - decay, 0, 0]));
    this.chunks = g.chunks.map((c) => ({
      param: rt.arena(c.param),
      acc: rt.device.createBuffer({ label: `${c.param}-ema`, size: Math.max(4, c.bytes), usage: STORAGE }),
      spec: emaKernel(c.bytes / 4),
    }));
  }

  /** Updates taken so far. */
  get steps(): number {
    return this.t;
  }

  /** Starts the average: 'plain' copies the current params, 'bias_corrected' zeroes it. */
  reset(): void {
    const enc = this.rt.device.createCommandEncoder();
    for (const c of this.chunks) {
      if (this.mode === 'plain') enc.copyBufferToBuffer(c.param, 0, c.acc, 0, c.acc.size);
      else enc.clearBuffer(c.acc);
    }
    this.rt.device.queue.submit([enc.finish()]);
    this.t = 0;
  }

  kernels(): KernelSpec[] {
    return this.chunks.map((c) => c.spec);
  }

  beforeStep(): void {
    this.t++;
  }

  record(pass: GPUComputePassEncoder): void {
    for (const c of this.chunks) {
      const pipeline = (c.pipeline ??= this.rt.cache.pipeline(c.spec));
      c.bind ??= this.rt.device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [c.param, c.acc, this.hyper].map((buffer, binding) => ({ binding, resource: { buffer } })),
      });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, c.bind);
      pass.dispatchWorkgroups(...c.spec.workgroups);
    }
  }

  private placements(): { name: string; chunk: number; offset: number; size: number }[] {
    const g = this.rt.layout.groups[this.group];
    const chunkNames = g.chunks.map((c) => c.param);
    return g.params.map((name) => {
      const slot = this.rt.layout.params[name];
      return { name, chunk: chunkNames.indexOf(slot.buffer), offset: slot.offset, size: slot.size };
    });
  }

  /** The raw accumulator per param ('acc:NAME') and the mode, decay and step count. */
  async exportState(): Promise<SavedState> {
    const bytes = await this.rt.readBuffers(this.chunks.map((c) => c.acc));
    const tensors: Record<string, StateTensor> = {};
    for (const p of this.placements()) tensors[`acc:${p.name}`] = new Float32Array(bytes[p.chunk], p.offset, p.size / 4).slice();
    return { tensors, scalars: { mode: this.mode, decay: this.decay, steps: this.t } };
  }

  importState(saved: SavedState): void {
    const what = `Ema(${this.group}).importState`;
    checkScalar(what, saved, 'mode', this.mode);
    checkScalar(what, saved, 'decay', this.decay);
    const steps = saved.scalars.steps;
    if (typeof steps !== 'number' || !Number.isInteger(steps) || steps < 0) throw new Error(`${what}: steps must be a whole number, got ${JSON.stringify(steps)}`);
    const expected: Record<string, TensorSpec> = {};
    for (const p of this.placements()) expected[`acc:${p.name}`] = { type: 'f32', length: p.size / 4 };
    checkTensors(what, saved, expected);
    for (const p of this.placements()) {
      const data = saved.tensors[`acc:${p.name}`];
      this.rt.device.queue.writeBuffer(this.chunks[p.chunk].acc, p.offset, data.buffer, data.byteOffset, data.byteLength);
    }
    this.t = steps;
  }

  /**
   * The average to sample from, per param: the accumulator, divided by
   * 1 - decay^t in 'bias_corrected' mode (before any step: the live params).
   */
  async average(): Promise<Record<string, Float32Array>> {
    const saved = await this.exportState();
    const out: Record<string, Float32Array> = {};
    const correction = this.mode === 'bias_corrected' ? 1 - this.decay ** this.t : 1;
    for (const p of this.placements()) {
      const acc = saved.tensors[`acc:${p.name}`] as Float32Array;
      out[p.name] = this.t === 0 && this.mode === 'bias_corrected' ? await this.rt.readParam(p.name) : acc.map((x) => x / correction);
    }
    return out;
  }

  destroy(): void {
    for (const c of this.chunks) c.acc.destroy();
    this.hyper.destroy();
  }
}
