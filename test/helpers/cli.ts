// Runs the `gan` command in a child process, as a user would (scripts/gan.js),
// for the CLI tests: exit code, stdout, and stderr without Dawn's start-up
// warnings about limits it lowers ("... artificially reduced ..."), which are
// not ours.
import { spawnSync } from 'node:child_process';

/** The environment CLI tests run `gan` in: no colour codes, lavapipe's runtime folder set. */
export const CLI_ENV: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp/xdg' };

/** stderr without Dawn's limit warnings. */
export function ours(stderr: string): string {
  return stderr.replace(/^Warning: \S+ artificially reduced .*\n/gm, '');
}

/** `gan ARGS...`: its exit code, stdout and stderr (ours). */
export function gan(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['scripts/gan.js', ...args], { encoding: 'utf8', env: CLI_ENV, timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: ours(r.stderr) };
}
