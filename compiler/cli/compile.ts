// `gan compile FILE --emit ir`: the tensor IR of each network, one op per
// line with its shape. `gan check FILE --memory --batch N`: planned peak
// memory of each network's forward and training step.
import { paramGrads } from '../autodiff.ts';
import type { CheckedModel } from '../check/model.ts';
import { printGraph } from '../ir/printer.ts';
import { lowerNetwork, standInLoss } from '../lower.ts';
import type { Plan } from '../../runtime/format/plan.ts';
import { compileProgram, formatMemory, layoutState, type PlanLimits, DEFAULT_LIMITS } from '../plan/index.ts';
import { maxBufferSize } from '../plan/limits.ts';
import { checkFile } from '../index.ts';
import { printDiagnostics } from './diagnostics.ts';
import { UserError } from './user-error.ts';
import { emitGeneratorModule, type ModuleTraining } from '../emit/ts-module.ts';
import { checkpointSources } from '../encoders/checkpoint.ts';
import { FrozenTermError, frozenTerms, type FrozenTerm } from '../encoders/frozen.ts';
import { readSafetensors } from '../../runtime/format/safetensors.ts';
import { buildGanSteps } from '../gan-step.ts';
import { trainerSpec } from './train.ts';
import { checkWeights } from '../../runtime/module/generator.ts';
import { asUserError, buildGeneratorEval } from './generator-eval.ts';
import { openSampleSource } from './sample.ts';

export interface CompileCliOptions {
  set?: string[];
  preset?: string;
  emit?: string;
  batch?: string;
  eval?: boolean;
  net?: string;
  /** --emit ts: the module directory and, optionally, a checkpoint whose (EMA) generator weights it carries. */
  out?: string;
  weights?: string;
}

function parseBatch(s: string | undefined, fallback: number): number {
  if (s === undefined) return fallback;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`--batch must be a positive integer, got '${s}'`);
  return n;
}


function selectNetworks(m: CheckedModel, only?: string) {
  if (!only) return m.networks;
  const sel = m.networks.filter((n) => n.name === only);
  if (!sel.length) throw new UserError(`no network '${only}' (networks: ${m.networks.map((n) => n.name).join(', ')})`);
  return sel;
}

export function runCompile(file: string, opts: CompileCliOptions): number {
  const r = checkFile(file, { set: opts.set, preset: opts.preset });
  printDiagnostics(r);
  if (!r.model) return 1;
  const emit = opts.emit ?? 'ir';
  if (emit === 'ts') return emitTs(file, r.model, r.sources, opts);
  if (emit !== 'ir') throw new UserError(`--emit ${emit} is not supported (supported: ir, ts)`);
  if (opts.out || opts.weights) throw new UserError('--out and --weights go with --emit ts');
  const batch = parseBatch(opts.batch, r.model.train.batch);
  for (const net of selectNetworks(r.model, opts.net)) {
    const lowered = lowerNetwork(net, { batch, training: !opts.eval });
    process.stdout.write(`# network ${net.name} (${net.kind}), batch ${batch}, ${opts.eval ? 'eval' : 'training'} mode\n`);
    process.stdout.write(printGraph(lowered.builder.graph) + '\n\n');
  }
  return 0;
}

/** `--emit ts`: the generator as a TypeScript module directory (compiler/emit/ts-module.ts). */
function emitTs(file: string, m: CheckedModel, sources: Map<string, string>, opts: CompileCliOptions): number {
  if (!opts.out) throw new UserError('--emit ts needs --out DIR (the module directory)');
  if (opts.net) throw new UserError('--emit ts compiles the generator; --net does not apply');
  const batch = parseBatch(opts.batch, Math.min(m.train.batch, 16));
  const spec = buildGeneratorEval(m, batch);
  let weights: Record<string, Float32Array> | undefined;
  if (opts.weights) {
    const src = openSampleSource(opts.weights, {});
    weights = src.weights(spec.layout);
    try {
      checkWeights(spec.layout, weights, src.describe);
    } catch (e) {
      throw asUserError(e);
    }
  }
  const text = sources.get(m.file) ?? '';
  const source = [m.file, ...(opts.preset ? [`--preset ${opts.preset}`] : []), ...(opts.set ?? []).map((s) => `--set ${s}`)].join(' ');
  // The training programs, as gan train builds them; frozen encoders' weights stay in their checkpoints, which the module names.
  let frozen: FrozenTerm[];
  try {
    frozen = frozenTerms(m);
  } catch (e) {
    throw e instanceof FrozenTermError ? new UserError(e.message) : e;
  }
  const steps = buildGanSteps(m, m.train.batch, DEFAULT_LIMITS, frozen);
  const textFeed = steps.dStep.feeds.find((f) => f.role.role === 'text');
  const resolutions = [...new Set(steps.dStep.feeds.filter((f) => f.role.role === 'real_image').map((f) => f.shape[2]))];
  const training: ModuleTraining = {
    spec: trainerSpec(m, steps, { frozen }),
    data: { resolutions, textDim: textFeed?.shape[1] ?? 0, wrongSameGroup: m.train.wrong_same_group },
    frozen: frozen.map((f) => {
      try {
        const sources = checkpointSources(f.encoder, readSafetensors(f.checkpoint).tensors, f.checkpoint);
        return { checkpoint: f.checkpoint, tensors: Object.fromEntries([...sources].map(([path, name]) => [`${f.encoder.name}/${path}`, name])) };
      } catch (e) {
        throw new UserError(`objective.${f.setting}: ${(e as Error).message}`);
      }
    }),
  };
  const cls = emitGeneratorModule(spec, { name: m.name, source, doc: leadingComment(text), textDoc: inputComment(text, 'text') }, opts.out, weights, training);
  process.stdout.write(
    `${opts.out}: module ${cls} (index.ts, generator.json: ${spec.plan.kernels.length} kernels at batch ${batch}${weights ? ', weights.safetensors' : ''}${training.frozen.length ? `, training.json (frozen weights read from ${training.frozen.map((f) => f.checkpoint).join(', ')})` : ', training.json'}, runtime/)\n`,
  );
  return 0;
}

/** The comment lines at the top of a .gan file, as one paragraph. */
function leadingComment(text: string): string {
  const lines: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*\/\/\s?(.*)$/.exec(line);
    if (!m) break;
    lines.push(m[1].trim());
  }
  return lines.join(' ').trim();
}

/** The comment after an input's declaration (`input text: [512]  // what it is`). */
function inputComment(text: string, input: string): string {
  const re = new RegExp(`^\\s*input\\s+${input}\\s*:[^\\n]*?//\\s*(.*)$`, 'm');
  return re.exec(text)?.[1].trim() ?? '';
}

/** Each network's forward (eval) and forward + backward (training) plans at `batch`, as `--memory` reports them. */
export function networkPlans(m: CheckedModel, batch: number, limits: PlanLimits = DEFAULT_LIMITS, only?: string): Plan[] {
  const plans: Plan[] = [];
  for (const net of selectNetworks(m, only)) {
    const fwd = lowerNetwork(net, { batch, training: false });
    plans.push(compileProgram(fwd.builder.graph, layoutState(fwd.builder.graph, limits), { name: `${net.name} forward (eval)`, outputs: fwd.outputs, updates: false }, limits));
    const tr = lowerNetwork(net, { batch, training: true });
    const loss = standInLoss(tr, net.kind);
    const grads = paramGrads(tr.builder, loss, [net.name]);
    plans.push(compileProgram(tr.builder.graph, layoutState(tr.builder.graph, limits), { name: `${net.name} forward + backward (training)`, outputs: { loss }, grads }, limits));
  }
  return plans;
}

/** Plans every network at `batch` and returns the memory report text. */
export function memoryReport(m: CheckedModel, batch: number, limits: PlanLimits = DEFAULT_LIMITS, only?: string): string {
  const head =
    `planned memory at batch ${batch} (float32; limits: ${limits.maxStorageBufferBindingSize / 2 ** 20} MiB per binding, ` +
    `${maxBufferSize(limits) / 2 ** 20} MiB per buffer; a value over a binding is bound in batch chunks)`;
  return [head, ...networkPlans(m, batch, limits, only).map(formatMemory)].join('\n');
}
