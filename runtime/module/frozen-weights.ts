// A generated module's frozen encoders (CLIP guidance, perceptual loss): the
// compiler resolved, at `gan compile --emit ts`, which tensor of which
// checkpoint fills each frozen param (the encoder's `weights` rules, checked);
// this reads them, with no compiler at run time.
import { readSafetensors, toFloat32 } from '../format/safetensors.ts';

export interface FrozenWeights {
  /** The checkpoint file (safetensors). */
  checkpoint: string;
  /** Param name (layout) -> the checkpoint's tensor name. */
  tensors: Record<string, string>;
}

export function readFrozenWeights(frozen: readonly FrozenWeights[]): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const f of frozen) {
    const file = readSafetensors(f.checkpoint).tensors;
    for (const [param, name] of Object.entries(f.tensors)) {
      const t = file[name];
      if (!t) throw new Error(`${f.checkpoint}: no tensor '${name}' (for the frozen param '${param}'): another checkpoint than the module was compiled with?`);
      const v = toFloat32(t);
      if (!v) throw new Error(`${f.checkpoint}: tensor '${name}' is ${t.dtype}, not floating point`);
      out.set(param, v);
    }
  }
  return out;
}
