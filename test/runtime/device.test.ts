// Errors from the GPU reach the user as messages and a non-zero exit, never a hang.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('device errors', () => {
  it('an uncaptured WebGPU validation error is printed and makes the process exit non-zero', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/runtime/uncaptured.ts'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.signal).toBeNull(); // finished by itself: no hang
    expect(r.stderr).toMatch(/^gan: WebGPU error: Buffer usages .* is invalid/m);
    expect(r.status).toBe(70);
  });
});
