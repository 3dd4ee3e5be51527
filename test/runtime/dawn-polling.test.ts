// dawn.node's tick loop (runtime/dawn-polling.ts): on a software adapter the
// device opens with Dawn's ticks rerouted through a 1 ms setTimeout, so a GPU
// wait no longer spins the main thread; every other setImmediate callback
// stays immediate.
import { describe, expect, it } from 'vitest';
import { dawnPollInterval } from '../../runtime/dawn-polling.ts';
import { getDevice } from '../../runtime/device.ts';

/** A kernel that spins for a while (about 100-300 ms on lavapipe), so the wait is long enough to count ticks. */
const BUSY = `@group(0) @binding(0) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  var a = f32(g.x);
  for (var k = 0u; k < 200000u; k++) { a = a * 0.999 + 1.0; }
  o[g.x] = a;
}`;

describe('Dawn event polling', () => {
  it('routes dawn.node\'s ticks through setTimeout on a software adapter while a GPU wait is pending', async () => {
    const { device, info } = await getDevice();
    if (!info.software || process.env.GAN_DAWN_POLL_MS !== undefined) return; // hardware keeps Dawn's loop; an override is the user's
    expect(dawnPollInterval()).toBe(1);
    const buf = device.createBuffer({ size: 64 * 8 * 4, usage: GPUBufferUsage.STORAGE });
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: BUSY }), entryPoint: 'main' } });
    const bind = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] });
    const run = () => {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(8);
      pass.end();
      device.queue.submit([enc.finish()]);
      return device.queue.onSubmittedWorkDone();
    };
    await run(); // the first dispatch JIT-compiles
    const timeout = globalThis.setTimeout;
    let ticks = 0;
    globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      if (typeof fn === 'function' && fn.name === '' && fn.length === 0) ticks++;
      return timeout(fn, ms, ...args);
    }) as typeof setTimeout;
    const t0 = performance.now();
    try {
      await run();
    } finally {
      globalThis.setTimeout = timeout;
      buf.destroy();
    }
    const ms = performance.now() - t0;
    expect(ticks).toBeGreaterThan(0);
    // One tick per interval at most (each is a setTimeout of at least 1 ms), where the busy loop made thousands.
    expect(ticks).toBeLessThanOrEqual(ms + 2);
  });

  it('leaves other setImmediate callbacks immediate', async () => {
    await getDevice();
    // A JS callback and a promise's resolve function go to Node's setImmediate, never to setTimeout.
    const timeout = globalThis.setTimeout;
    const delayed: unknown[] = [];
    globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      delayed.push(fn);
      return timeout(fn, ms, ...args);
    }) as typeof setTimeout;
    let resolve!: () => void;
    const resolved = new Promise<void>((r) => (resolve = r));
    let ran = false;
    const callback = () => {
      ran = true;
    };
    try {
      setImmediate(resolve);
      setImmediate(callback);
    } finally {
      globalThis.setTimeout = timeout;
    }
    await resolved;
    await new Promise<void>((r) => setImmediate(r));
    expect(ran).toBe(true);
    expect(delayed).not.toContain(resolve);
    expect(delayed).not.toContain(callback);
  });
});
