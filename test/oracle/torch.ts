// A long-lived PyTorch process used as the numerical oracle in tests.
//
//   const torch = await startTorch();
//   const out = await torch.run('y = a @ b\nout = {"y": y}', { a, b });
//
// One `/usr/bin/python3 test/oracle/oracle.py` child per test file (vitest's
// forks pool gives each file its own process), spawned lazily by startTorch()
// and killed by close() or when the Node process exits. Requests are newline-
// delimited JSON; tensors travel as base64 little-endian float32 (see oracle.py).
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { HostTensor } from './tensor.ts';

/** Debian's python3-torch is only importable by the system interpreter, not a venv's python3. */
const PYTHON = process.env.GAN_TORCH_PYTHON ?? '/usr/bin/python3';
const ORACLE_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'oracle.py');

export interface RunOptions {
  /** Input names bound with requires_grad=True. */
  grad?: string[];
  /** Plain JSON values bound as Python variables (strides, flags, ...). */
  vars?: Record<string, unknown>;
  /** torch.manual_seed before the snippet runs (default 0). */
  seed?: number;
  /** Bind inputs as float64 (outputs still come back as float32). */
  float64?: boolean;
}

export interface TorchOracle {
  /**
   * Runs `code` with `inputs` bound as torch tensors (plus torch, F, nn, math, np);
   * the code must assign a dict `out`, whose entries come back as float32 tensors.
   */
  run(code: string, inputs?: Record<string, HostTensor>, options?: RunOptions): Promise<Record<string, HostTensor>>;
  close(): void;
}

let availability: { ok: boolean; reason: string } | undefined;

function probeTorch(): { ok: boolean; reason: string } {
  availability ??= (() => {
    const r = spawnSync(PYTHON, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
    if (r.error) return { ok: false, reason: `PyTorch oracle unavailable: cannot run ${PYTHON} (${r.error.message})` };
    if (r.status !== 0) {
      const last = r.stderr.trim().split('\n').pop() ?? '';
      return { ok: false, reason: `PyTorch oracle unavailable: ${PYTHON} cannot import torch (${last}); install python3-torch` };
    }
    return { ok: true, reason: `torch ${r.stdout.trim()}` };
  })();
  return availability;
}

/**
 * True when `/usr/bin/python3` can import torch; use with `describe.skipIf(!torchAvailable())`.
 * Under CI (CI=true) it is always true: the tests then run and fail in
 * startTorch() with the reason, instead of skipping the checks they exist for.
 */
export function torchAvailable(): boolean {
  const a = probeTorch();
  if (a.ok) return true;
  if (underCI()) {
    console.error(`[oracle] ${a.reason}; CI=true, so the PyTorch parity tests run and fail`);
    return true;
  }
  console.warn(`[oracle] skipping PyTorch parity tests: ${a.reason}`);
  return false;
}

function underCI(): boolean {
  return /^(1|true|yes)$/i.test(process.env.CI ?? '');
}

/** Why torch is unavailable (or its version when it is), for skip messages. */
export function torchStatus(): string {
  return probeTorch().reason;
}

function encode(t: HostTensor): { shape: number[]; data: string } {
  const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return { shape: [...t.shape], data: bytes.toString('base64') };
}

function decode(t: { shape: number[]; data: string }): HostTensor {
  const bytes = Buffer.from(t.data, 'base64');
  // Copy into a fresh, aligned buffer: Buffer slices may start at odd offsets.
  const data = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(data.buffer).set(bytes);
  return { shape: t.shape, data };
}

interface Reply {
  id: number;
  ok: boolean;
  out?: Record<string, { shape: number[]; data: string }>;
  error?: string;
}

class TorchProcess implements TorchOracle {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private stderrTail = '';
  private exited: Error | undefined;
  private readonly killOnExit = () => this.child.kill();

  constructor() {
    this.child = spawn(PYTHON, ['-u', ORACLE_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout }).on('line', (line) => this.onLine(line));
    this.child.stderr.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-4000);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = new Error(`PyTorch oracle exited (code ${code}, signal ${signal}); stderr:\n${this.stderrTail}`);
      for (const p of this.pending.values()) p.reject(this.exited);
      this.pending.clear();
    });
    this.child.on('error', (e) => {
      this.exited = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    });
    process.once('exit', this.killOnExit);
  }

  private onLine(line: string): void {
    const reply = JSON.parse(line) as Reply;
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    p.resolve(reply);
  }

  async run(code: string, inputs: Record<string, HostTensor> = {}, options: RunOptions = {}): Promise<Record<string, HostTensor>> {
    if (this.exited) throw this.exited;
    const id = this.nextId++;
    const req = {
      id,
      code,
      inputs: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, encode(v)])),
      grad: options.grad ?? [],
      vars: options.vars ?? {},
      seed: options.seed ?? 0,
      float64: options.float64 ?? false,
    };
    const reply = await new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin.write(JSON.stringify(req) + '\n');
    });
    if (!reply.ok) throw new Error(`PyTorch snippet failed:\n${code}\n--- python ---\n${reply.error}`);
    return Object.fromEntries(Object.entries(reply.out ?? {}).map(([k, v]) => [k, decode(v)]));
  }

  close(): void {
    process.removeListener('exit', this.killOnExit);
    this.child.stdin.end();
    this.child.kill();
  }
}

let shared: TorchProcess | undefined;

/**
 * The PyTorch oracle for this test file: spawned on first call, shared after.
 * Call `close()` in afterAll (it is also killed when the process exits).
 */
export async function startTorch(): Promise<TorchOracle> {
  if (!shared) {
    const a = probeTorch();
    if (!a.ok) throw new Error(a.reason);
    const proc = new TorchProcess();
    shared = proc;
    const origClose = proc.close.bind(proc);
    proc.close = () => {
      if (shared === proc) shared = undefined;
      origClose();
    };
  }
  return shared;
}
