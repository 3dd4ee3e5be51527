// Filling a frozen encoder's parameters from a published checkpoint
// (safetensors with the publisher's tensor names) through the encoder's
// `weights` rules. Every tensor is checked: a name no rule maps, a parameter
// no tensor fills, a shape that differs, a dtype that is not floating point,
// two tensors for one parameter. Tensors that a rule maps to "" (CLIP's
// `logit_scale`) or that the file's other encoders take (a CLIP checkpoint
// holds both towers) are skipped. All problems are reported together, naming
// the file and each tensor, before anything reaches the device.
import type { NetworkInfo } from '../check/model.ts';
import { isFloatDtype, readSafetensors, toFloat32, type Tensor } from '../../runtime/format/safetensors.ts';
import { paramPathFor } from './names.ts';

export class CheckpointError extends Error {
  constructor(
    readonly file: string,
    readonly encoder: string,
    readonly problems: string[],
  ) {
    const shown = problems.slice(0, 12);
    super(
      `${file}: does not fit encoder '${encoder}' (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${shown.map((p) => `  ${p}`).join('\n')}${problems.length > shown.length ? `\n  ... and ${problems.length - shown.length} more` : ''}`,
    );
    this.name = 'CheckpointError';
  }
}

/** The encoder's parameters by path (`conv2d.0/weight`) with their shapes. */
export function encoderParams(enc: NetworkInfo): Map<string, number[]> {
  return new Map(enc.graph.nodes.flatMap((n) => n.params.map((p) => [p.name, p.shape] as const)));
}

const shapeStr = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * The encoder's parameter values from checkpoint tensors, by parameter path
 * (float32; half-precision checkpoints are widened). Throws a CheckpointError
 * listing every problem.
 */
export function checkpointParams(enc: NetworkInfo, tensors: Record<string, Tensor>, file: string): Map<string, Float32Array> {
  return mapCheckpoint(enc, tensors, file, true).values;
}

/** Which checkpoint tensor fills each parameter (by parameter path), checked as checkpointParams checks it. */
export function checkpointSources(enc: NetworkInfo, tensors: Record<string, Tensor>, file: string): Map<string, string> {
  return mapCheckpoint(enc, tensors, file, false).sources;
}

/** Checks the mapping of `tensors` onto the encoder; `widen`: also each tensor's values as float32 (checkpointSources needs only the names). */
function mapCheckpoint(enc: NetworkInfo, tensors: Record<string, Tensor>, file: string, widen: boolean): { values: Map<string, Float32Array>; sources: Map<string, string> } {
  const rules = enc.checkpointNames;
  if (!rules) throw new CheckpointError(file, enc.name, [`encoder '${enc.name}' declares no 'weights' rules, so no checkpoint can be mapped onto it`]);
  const params = encoderParams(enc);
  const out = new Map<string, Float32Array>();
  const source = new Map<string, string>();
  const problems: string[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    const path = paramPathFor(rules, name);
    if (path === '' || (path === undefined && enc.siblingCheckpointNames && paramPathFor(enc.siblingCheckpointNames, name) !== undefined)) continue;
    if (path === undefined) {
      problems.push(`unexpected tensor '${name}' ${shapeStr(t.shape)}: no weights rule maps it`);
      continue;
    }
    const want = params.get(path);
    if (!want) {
      problems.push(`unexpected tensor '${name}': its rule maps it to '${path}', which encoder '${enc.name}' does not have`);
      continue;
    }
    if (source.has(path)) {
      problems.push(`tensors '${source.get(path)}' and '${name}' both map to '${path}'`);
      continue;
    }
    source.set(path, name);
    if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
      problems.push(`tensor '${name}' is ${shapeStr(t.shape)}, parameter '${path}' is ${shapeStr(want)}`);
      continue;
    }
    if (!isFloatDtype(t.dtype)) {
      problems.push(`tensor '${name}' is ${t.dtype}; expected floating point (F32, F16, BF16 or F64)`);
      continue;
    }
    if (widen) out.set(path, toFloat32(t)!);
  }
  for (const [path, shape] of params) {
    if (!source.has(path)) problems.push(`missing: no tensor fills parameter '${path}' ${shapeStr(shape)}`);
  }
  if (problems.length) throw new CheckpointError(file, enc.name, problems);
  return { values: out, sources: source };
}

/** Reads `file` and maps it onto the encoder (see checkpointParams). */
export function readCheckpoint(enc: NetworkInfo, file: string): Map<string, Float32Array> {
  return checkpointParams(enc, readSafetensors(file).tensors, file);
}
