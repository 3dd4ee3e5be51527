// dawn.node ticks its devices while any of their promises is pending
// (mapAsync, onSubmittedWorkDone, createComputePipelineAsync) by re-arming
// globalThis.setImmediate with a native callback after every tick: a busy
// loop on the main thread for as long as the GPU works. On a software adapter
// (lavapipe, SwiftShader) the GPU's work runs on the same CPU cores, so the
// loop takes a core from it. Measured on the 2-core CI machine (cpu preset,
// one D + G step, awaited): 1.50-1.62 s with the loop, 0.85-0.97 s without.
//
// throttleDawnPolling reroutes that callback, and only it, through
// setTimeout: Dawn's is a native function of no name and no parameters,
// while every JS callback (and a promise's resolve function, which takes one
// parameter) passes through to Node's setImmediate untouched. A wait then
// ends at most one interval after the GPU finishes.
let installed: number | null = null;

function isDawnTick(fn: unknown): boolean {
  return typeof fn === 'function' && fn.name === '' && fn.length === 0 && /\{\s*\[native code\]\s*\}$/.test(Function.prototype.toString.call(fn));
}

/** Installs the throttle (once per process); `intervalMs` between Dawn's ticks while work is pending. */
export function throttleDawnPolling(intervalMs: number): void {
  if (installed !== null) return;
  if (!(intervalMs > 0)) throw new Error(`Dawn poll interval must be positive, got ${intervalMs}`);
  installed = intervalMs;
  const immediate = globalThis.setImmediate as unknown as (fn: unknown, ...args: unknown[]) => NodeJS.Immediate;
  const throttled = function (fn: (...args: unknown[]) => void, ...args: unknown[]) {
    if (isDawnTick(fn)) {
      // Dawn ignores the handle; a Timeout keeps the process alive as an Immediate would.
      return setTimeout(fn, intervalMs, ...args) as unknown as NodeJS.Immediate;
    }
    return immediate(fn, ...args);
  };
  // Node's own promisified form (util.promisify(setImmediate)) lives on the original.
  Object.assign(throttled, immediate);
  globalThis.setImmediate = throttled as typeof globalThis.setImmediate;
}

/** The interval in force, or null when Dawn polls at full speed. */
export function dawnPollInterval(): number | null {
  return installed;
}
