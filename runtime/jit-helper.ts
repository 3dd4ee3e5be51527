// Parallel shader JIT for software adapters.
//
// Lavapipe (llvmpipe) JIT-compiles a compute pipeline at its first dispatch,
// not in createComputePipelineAsync, and a device runs its dispatches on one
// queue thread: warming N new kernels costs N serial LLVM compiles (0.1-2 s
// each, most of a cold start). A second device has its own queue thread and
// shares Mesa's on-disk shader cache, so while the main device warms its
// kernels in plan order a helper device dispatches the same kernels in reverse
// order; each then finds in the cache what the other already compiled.
// Hardware drivers compile at pipeline creation (already in parallel), so the
// helper exists only on software adapters, and GAN_JIT_HELPER=0 turns it off.
import { USAGE } from './buffers.ts';
import type { GpuContext } from './gpu-context.ts';
import type { KernelSpec } from './format/kernel.ts';
import { pipelineCache } from './pipelines.ts';

/** Dispatches per submission: the helper stops within this many kernels of being told to. */
const CHUNK = 2;

/** A helper's warm-up in flight: `stop()` ends it after the current chunk; `done` settles then. */
export interface JitJob {
  stop(): void;
  done: Promise<void>;
}

let helper: Promise<GPUDevice | null> | undefined;
/** Storage binding k of every helper dispatch: 4 KB, kept for the helper's life (kernels write them). */
const dummies: GPUBuffer[] = [];
/**
 * Every uniform binding's buffer: 4 KB of zeros that no kernel can write (it
 * is never bound as storage). A size-generic kernel reads its sizes there, and
 * sizes of zero mean no work; a storage dummy would hand it whatever another
 * kernel wrote there, e.g. a float's bits as a loop count.
 */
let zeros: GPUBuffer | undefined;

/** Whether a helper device is used on this context (software adapter, not disabled, shader cache on). */
export function jitHelperWanted(ctx: GpuContext): boolean {
  // Only Dawn in Node has Mesa's shader cache to warm (a page has no `process`).
  if (typeof process === 'undefined' || !ctx.info.software || process.env.GAN_JIT_HELPER === '0') return false;
  const off = (process.env.MESA_SHADER_CACHE_DISABLE ?? '').toLowerCase();
  return !(off === 'true' || off === '1');
}

/** The process's helper device (opened once, kept alive like the main one), or null where none is wanted. */
function helperDevice(ctx: GpuContext): Promise<GPUDevice | null> {
  // Dawn's sibling device, imported only when wanted (never in a browser: jitHelperWanted is false there).
  helper ??= jitHelperWanted(ctx) ? import('./device.ts').then((d) => d.siblingDevice(ctx)).catch(() => null) : Promise.resolve(null);
  return helper;
}

/**
 * Starts dispatching `specs` (distinct kernels, in the order the helper should
 * compile them) once each on the helper device, one workgroup over small
 * dummy buffers (bounds-checked accesses, so any kernel is safe to run so;
 * uniform bindings read zeros, so size-generic kernels return at once).
 * Returns null where no helper is used.
 */
export async function warmOnHelper(ctx: GpuContext, specs: readonly KernelSpec[]): Promise<JitJob | null> {
  const device = await helperDevice(ctx);
  if (!device || specs.length === 0) return null;
  const cache = pipelineCache(device);
  const dummy = (k: number) => (dummies[k] ??= device.createBuffer({ label: `jit-dummy-${k}`, size: 4096, usage: USAGE.STORAGE }));
  zeros ??= device.createBuffer({ label: 'jit-dummy-uniform', size: 4096, usage: USAGE.UNIFORM });
  let stopped = false;
  const run = async () => {
    for (let i = 0; i < specs.length && !stopped; i += CHUNK) {
      const chunk = specs.slice(i, i + CHUNK);
      await cache.prepare(chunk);
      if (stopped) break;
      const enc = device.createCommandEncoder({ label: 'jit-helper' });
      const pass = enc.beginComputePass();
      for (const spec of chunk) {
        pass.setPipeline(cache.pipeline(spec));
        pass.setBindGroup(0, cache.bindGroup(spec, spec.bindings.map((b, k) => (b.access === 'uniform' ? zeros! : dummy(k)))));
        pass.dispatchWorkgroups(1, 1, 1);
      }
      pass.end();
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
    }
  };
  const done = run().catch(() => {
    // The helper only saves time: any failure of its own leaves the main warm-up to do the work.
  });
  return {
    stop: () => {
      stopped = true;
    },
    done,
  };
}
