// The compiler's front door for checking: load a file (with its extends and
// imports), check it, and return diagnostics plus every source for rendering.
import type { Diagnostic } from '../grammar/diagnostics.ts';
import { checkModel, type CheckOptions, type CheckedModel } from './check/model.ts';
import { loadModel } from './load.ts';

export interface CompileResult {
  model?: CheckedModel;
  diagnostics: Diagnostic[];
  sources: Map<string, string>;
}

export function checkFile(path: string, opts: CheckOptions = {}, text?: string | Uint8Array): CompileResult {
  const loaded = loadModel(path, text);
  const sources = new Map(loaded.sources);
  // Checking a file with syntax errors would mostly report their echoes.
  if (!loaded.model || loaded.diagnostics.some((d) => d.severity === 'error')) return { diagnostics: loaded.diagnostics, sources };
  const checked = checkModel(loaded.model, opts);
  for (const [k, v] of checked.sources) sources.set(k, v);
  const diagnostics = [...loaded.diagnostics, ...checked.diagnostics];
  const failed = diagnostics.some((d) => d.severity === 'error');
  return { model: failed ? undefined : checked.model, diagnostics, sources };
}

export type { CheckOptions, CheckedModel };
