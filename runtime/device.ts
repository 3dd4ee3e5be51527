// Dawn device set-up. The object returned by `create()` must stay referenced
// for the life of the process: if it is garbage-collected, dawn.node crashes,
// aborts or leaves promises unresolved. We keep it in module scope.
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, globals } from 'webgpu';
import { throttleDawnPolling } from './dawn-polling.ts';
import { describeAdapter, deviceDescriptor, isSoftware, type DeviceInfo, type GpuContext } from './gpu-context.ts';

export { describeAdapter, type DeviceInfo, type GpuContext };

export type AdapterPreference = 'auto' | 'hardware' | 'software';

/** Raised when no usable adapter exists; the CLI prints it without a stack. */
export class NoAdapterError extends Error {
  override name = 'NoAdapterError';
}

let gpu: GPU | undefined; // held for the process lifetime (see header)
let shared: Promise<GpuContext> | undefined;

function ensureRuntimeDir(): void {
  // lavapipe warns on every start when XDG_RUNTIME_DIR is unset.
  if (!process.env.XDG_RUNTIME_DIR) {
    const dir = join(tmpdir(), `gan-xdg-${process.getuid?.() ?? 0}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = dir;
  }
}

function instance(): GPU {
  if (!gpu) {
    ensureRuntimeDir();
    Object.assign(globalThis, globals);
    // GAN_DAWN_FLAGS: space-separated flags for Dawn's Node bindings, for experiments
    // (e.g. "enable-dawn-features=dump_shaders"; see the webgpu package's README).
    // By default GPU timestamps are exact: Dawn rounds them to 65.5 us, a
    // browser's guard against timing attacks that only blurs our profiles.
    const flags = process.env.GAN_DAWN_FLAGS ? process.env.GAN_DAWN_FLAGS.split(' ').filter(Boolean) : ['disable-dawn-features=timestamp_quantization'];
    gpu = create(flags);
  }
  return gpu;
}

/**
 * The process's one Dawn GPU instance (created on first use). Other WebGPU
 * users in the process (e.g. tfjs-webgpu in the benchmark) must share it:
 * a second `create()` would be a second Dawn instance to keep alive.
 */
export function gpuInstance(): GPU {
  return instance();
}

/** Adapter preference from the environment: GAN_ADAPTER=auto|hardware|software. */
export function preferenceFromEnv(): AdapterPreference {
  const v = (process.env.GAN_ADAPTER ?? 'auto').toLowerCase();
  if (v === 'auto' || v === 'hardware' || v === 'software') return v;
  throw new NoAdapterError(`GAN_ADAPTER must be auto, hardware or software, not '${v}'`);
}

export async function requestAdapter(pref: AdapterPreference = preferenceFromEnv()): Promise<GPUAdapter> {
  const g = instance();
  const hw = pref !== 'software' ? await g.requestAdapter({ powerPreference: 'high-performance' }) : null;
  if (hw && (!isSoftware(hw) || pref === 'auto')) {
    if (pref === 'hardware' && isSoftware(hw)) throw new NoAdapterError('no hardware WebGPU adapter found (GAN_ADAPTER=hardware)');
    return hw;
  }
  if (pref === 'hardware') throw new NoAdapterError('no hardware WebGPU adapter found (GAN_ADAPTER=hardware)');
  const sw = await g.requestAdapter({ forceFallbackAdapter: true }) ?? await g.requestAdapter();
  if (!sw) {
    throw new NoAdapterError(
      'no WebGPU adapter found. Dawn needs a Vulkan driver: install your GPU vendor\'s driver, or on a CPU-only ' +
        'Debian 12 machine run `bash scripts/setup.sh` (installs mesa-vulkan-drivers 25.x from bookworm-backports).',
    );
  }
  return sw;
}

const lostListeners = new Set<(message: string) => void>();

/**
 * Runs `fn` when the device is lost, just before the process exits with 70
 * (the trainer names the step and the last good checkpoint). Returns an unsubscribe.
 */
export function onDeviceLost(fn: (message: string) => void): () => void {
  lostListeners.add(fn);
  return () => lostListeners.delete(fn);
}

/**
 * What a lost device does: prints the message, runs every onDeviceLost
 * listener (the trainer names the step and the last good checkpoint) and
 * exits with 70. Exported for the trainer's test hook, since Dawn offers no
 * way to lose a device on purpose.
 */
export function reportDeviceLost(message: string): never {
  console.error(`gan: WebGPU device lost: ${message}`);
  for (const fn of lostListeners) {
    try {
      fn(message);
    } catch {
      // A listener's failure must not keep the process alive on a lost device.
    }
  }
  process.exit(70);
}

/** Opens (once per process) a device with the adapter's own limits. */
export function getDevice(pref?: AdapterPreference): Promise<GpuContext> {
  shared ??= openDevice(pref);
  return shared;
}

/**
 * A second device on the context's adapter, opened exactly as the main one (so
 * its shaders compile identically), e.g. for runtime/jit-helper.ts. Its errors
 * are its user's to handle; it never ends the process.
 */
export async function siblingDevice(ctx: GpuContext): Promise<GPUDevice> {
  // An adapter opens one device ("consumed"): ask again for the same one.
  const adapter = await requestAdapter(ctx.info.software ? 'software' : 'hardware');
  if (JSON.stringify(describeAdapter(adapter)) !== JSON.stringify(ctx.info)) throw new Error('siblingDevice: the adapter found is not the context\'s');
  const device = await adapter.requestDevice(deviceDescriptor(adapter));
  device.addEventListener('uncapturederror', () => {});
  return device;
}

/**
 * Milliseconds between dawn.node's event ticks while GPU work is pending
 * (runtime/dawn-polling.ts): GAN_DAWN_POLL_MS, by default 1 on a software
 * adapter, whose work shares the CPU with the tick loop, and 0 (Dawn's own
 * busy loop) on hardware.
 */
export function pollInterval(software: boolean): number {
  const v = process.env.GAN_DAWN_POLL_MS;
  if (v === undefined || v === '') return software ? 1 : 0;
  const ms = Number(v);
  if (!(ms >= 0)) throw new NoAdapterError(`GAN_DAWN_POLL_MS must be a number of milliseconds (0 = Dawn's busy loop), not '${v}'`);
  return ms;
}

async function openDevice(pref?: AdapterPreference): Promise<GpuContext> {
  const adapter = await requestAdapter(pref);
  const poll = pollInterval(isSoftware(adapter));
  if (poll > 0) throttleDawnPolling(poll);
  const device = await adapter.requestDevice(deviceDescriptor(adapter));
  device.lost.then((info) => {
    if (info.reason !== 'destroyed') reportDeviceLost(info.message);
  });
  device.addEventListener('uncapturederror', (ev) => {
    const err = (ev as GPUUncapturedErrorEvent).error;
    console.error(`gan: WebGPU error: ${err.message}`);
    process.exitCode = 70;
  });
  return { adapter, device, info: describeAdapter(adapter) };
}
