// Checkpoints of a training run: runs/NAME/ckpt-<step>.safetensors (every
// tensor: params of every group, 'ema:' params, BatchNorm state, optimizer
// moments, the device noise words) and ckpt-<step>.json beside it (the
// sidecar: step, step counts, host noise and data-order state, the resolved
// settings, whatever the caller records such as the .gan sources and the
// adapter, and the SHA-256 of the tensor file).
//
// Both files are written atomically (temporary file, fsync, rename), tensors
// first: a sidecar exists only for a complete tensor file, so a checkpoint is
// "there" exactly when its sidecar is. The newest `keep` are kept.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { encodeSafetensors, readSafetensors, writeFileAtomic, type Tensor, type TensorData } from '../format/safetensors.ts';

export const CHECKPOINT_FORMAT = 'gan-checkpoint';
export const CHECKPOINT_VERSION = 1;

export interface CheckpointSidecar {
  format: typeof CHECKPOINT_FORMAT;
  version: typeof CHECKPOINT_VERSION;
  /** Training iterations (generator steps) completed. */
  step: number;
  /** The tensor file beside this sidecar, and its SHA-256. */
  tensors: string;
  sha256: string;
  /** Everything else the trainer needs to continue (optimizer step counts, noise and data state, EMA mode) and records (settings, sources, adapter). */
  [k: string]: unknown;
}

export interface Checkpoint {
  /** The sidecar's path. */
  path: string;
  tensors: Record<string, Tensor>;
  sidecar: CheckpointSidecar;
}

const NAME = /^ckpt-(\d+)\.json$/;

function stem(step: number): string {
  return `ckpt-${String(step).padStart(8, '0')}`;
}

/** The run's checkpoints with a sidecar, oldest first. */
export function listCheckpoints(runDir: string): { step: number; path: string }[] {
  if (!existsSync(runDir)) return [];
  return readdirSync(runDir)
    .map((f) => NAME.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ step: Number(m[1]), path: join(runDir, m[0]) }))
    .sort((a, b) => a.step - b.step);
}

/**
 * Writes ckpt-<step>.{safetensors,json} into `runDir` and deletes all but the
 * newest `keep` checkpoints. `sidecar` is everything but the fields this
 * function fills in. Returns the sidecar's path.
 */
export function writeCheckpoint(
  runDir: string,
  step: number,
  tensors: Record<string, { shape: readonly number[]; data: TensorData }>,
  sidecar: Record<string, unknown>,
  keep = 3,
): string {
  if (!Number.isInteger(keep) || keep < 1) throw new Error(`keep must be a whole number >= 1, got ${keep}`);
  mkdirSync(runDir, { recursive: true });
  const name = stem(step);
  const bytes = encodeSafetensors(tensors, { format: CHECKPOINT_FORMAT, step: String(step) });
  writeFileAtomic(join(runDir, `${name}.safetensors`), bytes);
  const full: CheckpointSidecar = {
    ...sidecar,
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    step,
    tensors: `${name}.safetensors`,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
  const path = join(runDir, `${name}.json`);
  writeFileAtomic(path, JSON.stringify(full, null, 1) + '\n');
  const all = listCheckpoints(runDir);
  for (const old of all.slice(0, Math.max(0, all.length - keep))) {
    // Sidecar first: a tensor file without a sidecar is never taken for a checkpoint.
    rmSync(old.path, { force: true });
    rmSync(old.path.replace(/\.json$/, '.safetensors'), { force: true });
  }
  return path;
}

/** The sidecar path a run folder, a sidecar or a tensor file names (a folder: its newest checkpoint). */
export function resolveCheckpoint(pathOrRunDir: string): string {
  if (!existsSync(pathOrRunDir)) throw new Error(`${pathOrRunDir}: no such checkpoint or run folder`);
  if (statSync(pathOrRunDir).isDirectory()) {
    const all = listCheckpoints(pathOrRunDir);
    if (all.length === 0) throw new Error(`${pathOrRunDir}: no checkpoint (ckpt-<step>.json) in this folder`);
    return all[all.length - 1].path;
  }
  if (pathOrRunDir.endsWith('.safetensors')) return join(dirname(pathOrRunDir), basename(pathOrRunDir, '.safetensors') + '.json');
  return pathOrRunDir;
}

/** Reads a checkpoint (a run folder: its newest), checking the sidecar and the tensor file's hash. */
export function loadCheckpoint(pathOrRunDir: string): Checkpoint {
  const path = resolveCheckpoint(pathOrRunDir);
  let sidecar: CheckpointSidecar;
  try {
    sidecar = JSON.parse(readFileSync(path, 'utf8')) as CheckpointSidecar;
  } catch (e) {
    throw new Error(`${path}: not a readable checkpoint sidecar (${(e as Error).message})`);
  }
  if (sidecar?.format !== CHECKPOINT_FORMAT) throw new Error(`${path}: not a gan checkpoint sidecar (format ${JSON.stringify(sidecar?.format)})`);
  if (sidecar.version !== CHECKPOINT_VERSION) throw new Error(`${path}: checkpoint version ${sidecar.version}, this build reads ${CHECKPOINT_VERSION}`);
  if (typeof sidecar.tensors !== 'string' || basename(sidecar.tensors) !== sidecar.tensors) throw new Error(`${path}: bad tensor file name ${JSON.stringify(sidecar.tensors)}`);
  const tpath = join(dirname(path), sidecar.tensors);
  const sha = createHash('sha256').update(readFileSync(tpath)).digest('hex');
  if (sha !== sidecar.sha256) throw new Error(`${tpath}: contents do not match the sidecar's SHA-256 (a partial copy or another run's file?)`);
  return { path, tensors: readSafetensors(tpath).tensors, sidecar };
}
