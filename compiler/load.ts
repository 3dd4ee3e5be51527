// Loads a .gan file with everything it stands on: its `extends` chain and its
// `import`s, merged into one ModelSource. Later declarations override earlier
// ones by name (a variant file overrides its base). Cycles are reported with
// the whole chain.
import { readFileSync, statSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import type * as A from '../grammar/ast.ts';
import { Codes, error, type Diagnostic } from '../grammar/diagnostics.ts';
import { parseSource } from '../grammar/index.ts';
import { fileTooLarge, MAX_SOURCE_BYTES, sourceText } from '../grammar/source-text.ts';

export interface ParamSource {
  name: string;
  value: A.Expr;
  /** Where the param was first declared (an override keeps the declaration). */
  declSpan: A.Span;
}

export interface ModelSource {
  name: string;
  file: string;
  params: Map<string, ParamSource>;
  inputs: Map<string, A.InputDecl>;
  noises: Map<string, A.NoiseDecl>;
  blocks: Map<string, A.BlockDecl>;
  conditions: Map<string, A.ConditionDecl>;
  stages: Map<string, A.StageDecl>;
  discriminators: Map<string, A.DiscriminatorDecl>;
  objective: A.Setting[];
  train: A.Setting[];
  presets: Map<string, A.PresetDecl>;
  /** Frozen networks (pretrained encoders) and their checkpoints' name maps. */
  encoders: Map<string, A.EncoderDecl>;
  weights: Map<string, A.WeightsDecl>;
}

export interface LoadResult {
  model?: ModelSource;
  diagnostics: Diagnostic[];
  /** Every source text read, by display name, for rendering diagnostics. */
  sources: Map<string, string>;
}

/** Display names are relative to the working directory, like compilers print them. */
function displayName(abs: string): string {
  const rel = relative(process.cwd(), abs);
  return rel.startsWith('..') ? abs : rel;
}

export function emptyModel(name: string, file: string): ModelSource {
  return {
    name,
    file,
    params: new Map(),
    inputs: new Map(),
    noises: new Map(),
    blocks: new Map(),
    conditions: new Map(),
    stages: new Map(),
    discriminators: new Map(),
    objective: [],
    train: [],
    presets: new Map(),
    encoders: new Map(),
    weights: new Map(),
  };
}

class Loader {
  readonly diagnostics: Diagnostic[] = [];
  readonly sources = new Map<string, string>();
  private readonly cache = new Map<string, ModelSource | null>();

  /** `stack` holds absolute paths being loaded, for cycle detection. */
  load(abs: string, stack: string[], from?: A.Span, given?: string | Uint8Array): ModelSource | null {
    const shown = displayName(abs);
    const at = stack.indexOf(abs);
    if (at >= 0) {
      const chain = [...stack.slice(at), abs].map(displayName).join(' -> ');
      this.diagnostics.push(error(Codes.cyclicInclude, `cyclic extends/import: ${chain}`, from, { label: 'this closes the cycle' }));
      return null;
    }
    if (this.cache.has(abs)) return this.cache.get(abs)!;
    const read = this.read(abs, shown, from, given);
    if (read === undefined) return null;
    const parsed = parseSource(read, shown);
    this.diagnostics.push(...parsed.diagnostics);
    const ast = parsed.ast;
    const next = [...stack, abs];
    const name = ast.name?.name ?? shown.replace(/^.*\//, '').replace(/\.gan$/, '');

    let model: ModelSource;
    if (ast.extends) {
      const base = this.load(resolve(dirname(abs), ast.extends.path), next, ast.extends.span);
      model = base ? cloneModel(base) : emptyModel(name, shown);
      model.name = name;
      model.file = shown;
    } else {
      model = emptyModel(name, shown);
    }
    for (const d of ast.decls) {
      if (d.kind !== 'import') continue;
      const lib = this.load(resolve(dirname(abs), d.path), next, d.pathSpan);
      // An import brings in blocks only; the importing file's own win.
      if (lib) for (const [k, b] of lib.blocks) if (!model.blocks.has(k)) model.blocks.set(k, b);
    }
    applyDecls(model, ast.decls, this.diagnostics);
    this.cache.set(abs, model);
    return model;
  }

  /**
   * The text of `abs` (or of `given`, its contents in memory), ready to parse;
   * undefined, with a diagnostic, when it cannot be read or is not .gan text
   * (binary, UTF-16, not UTF-8, far too large).
   */
  private read(abs: string, shown: string, from: A.Span | undefined, given?: string | Uint8Array): string | undefined {
    let input = given;
    if (input === undefined) {
      try {
        const stat = statSync(abs);
        if (!stat.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTFILE' });
        if (stat.size > MAX_SOURCE_BYTES) {
          this.diagnostics.push(fileTooLarge(stat.size, shown));
          return undefined;
        }
        input = readFileSync(abs);
      } catch (e) {
        const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
        this.diagnostics.push(error(Codes.fileNotFound, `cannot read '${shown}': ${why}`, from, { label: 'expected a path to a .gan file, relative to this file' }));
        return undefined;
      }
    }
    const decoded = sourceText(input, shown);
    if (decoded.text !== undefined) this.sources.set(shown, decoded.text);
    this.diagnostics.push(...decoded.diagnostics);
    return decoded.diagnostics.length ? undefined : decoded.text;
  }
}

function cloneModel(m: ModelSource): ModelSource {
  return {
    ...m,
    params: new Map(m.params),
    inputs: new Map(m.inputs),
    noises: new Map(m.noises),
    blocks: new Map(m.blocks),
    conditions: new Map(m.conditions),
    stages: new Map(m.stages),
    discriminators: new Map(m.discriminators),
    objective: [...m.objective],
    train: [...m.train],
    presets: new Map(m.presets),
    encoders: new Map(m.encoders),
    weights: new Map(m.weights),
  };
}

function applyDecls(model: ModelSource, decls: A.TopDecl[], diags: Diagnostic[]): void {
  const seenHere = new Map<string, A.Span>();
  const once = (kind: string, name: string, span: A.Span): void => {
    const key = `${kind}:${name}`;
    const prev = seenHere.get(key);
    if (prev) diags.push(error(Codes.duplicateName, `${kind} '${name}' is declared twice in this file`, span, { label: 'second declaration' }));
    seenHere.set(key, span);
  };
  // Declarations that a later one of the same name replaces.
  const byName: Partial<Record<A.TopDecl['kind'], Map<string, A.TopDecl>>> = {
    input: model.inputs,
    noise: model.noises,
    block: model.blocks,
    condition: model.conditions,
    discriminator: model.discriminators,
    preset: model.presets,
    encoder: model.encoders,
    weights: model.weights,
  };
  for (const d of decls) {
    const table = byName[d.kind];
    if (table && 'name' in d) {
      once(d.kind, d.name, d.nameSpan);
      table.set(d.name, d);
      continue;
    }
    switch (d.kind) {
      case 'param': {
        once('param', d.name, d.nameSpan);
        const prev = model.params.get(d.name);
        model.params.set(d.name, { name: d.name, value: d.value, declSpan: prev?.declSpan ?? d.nameSpan });
        break;
      }
      case 'generator':
        for (const s of d.stages) {
          once('stage', s.name, s.nameSpan);
          model.stages.set(s.name, s);
        }
        break;
      case 'objective':
        model.objective.push(...d.settings);
        break;
      case 'train':
        model.train.push(...d.settings);
        break;
      default:
        break; // imports are resolved before
    }
  }
}

/** Loads `path` (or, with `text`, treats `text` (a string or the file's bytes) as the contents of `path`). */
export function loadModel(path: string, text?: string | Uint8Array): LoadResult {
  const loader = new Loader();
  const model = loader.load(resolve(path), [], undefined, text);
  return { model: model ?? undefined, diagnostics: loader.diagnostics, sources: loader.sources };
}
