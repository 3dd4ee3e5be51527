// Checks a loaded model: applies presets and command-line overrides, resolves
// params, evaluates the generator (conditioning + stages) and each
// discriminator into graphs with static shapes, validates the structure the
// trainer relies on, and evaluates the objective and train sections.
import type * as A from '../../grammar/ast.ts';
import { Codes, DiagnosticError, didYouMean, error, warning, type Diagnostic } from '../../grammar/diagnostics.ts';
import { parseExpression } from '../../grammar/index.ts';
import type { ModelSource } from '../load.ts';
import { isPrefixRule, namePattern, placeholders } from '../encoders/names.ts';
import { Evaluator, NetContext } from './evaluate.ts';
import { checkTensorSize, NetworkGraph } from './graph.ts';
import { Scope } from './scope.ts';
import { evalSection, objectiveSchema, trainSchema, type ObjectiveConfig, type TrainConfig } from './settings.ts';
import { describe, poison, shapeStr, type Value } from './values.ts';

export interface CheckOptions {
  /** `--set key=value`: a param, or a dotted `train.x` / `objective.x` setting. */
  set?: string[];
  preset?: string;
}

export interface NetworkInfo {
  name: string;
  kind: 'generator' | 'discriminator' | 'encoder';
  /** Output resolution for the generator (its last stage), input resolution for a discriminator. */
  resolution: number;
  graph: NetworkGraph;
  /** Generator: stages in order with their image node. */
  stages: { name: string; resolution: number; from?: string; image: number; parameters: number; macs: number }[];
  /** Discriminator: head name -> logit node. */
  heads: Record<string, number>;
  /** Named loss terms defined in this network (the condition's KL, for instance). */
  losses: Record<string, number>;
  /** Graph inputs by name (text, z, image, condition outputs seen by a discriminator). */
  inputs: Record<string, number>;
  /** Generator: the condition's tensors by name (mu, logvar, c_hat), which discriminators read. */
  exports: Record<string, number>;
  /** Encoder: the node of its result. */
  output?: number;
  /** Encoder: how a published checkpoint's tensor names map onto its parameters (its `weights` declaration). */
  checkpointNames?: A.WeightRule[];
  /** Encoder: the other encoders' rules of its file: a checkpoint of several (CLIP's two towers) loads into each. */
  siblingCheckpointNames?: A.WeightRule[];
}

export interface CheckedModel {
  name: string;
  file: string;
  params: Record<string, number | boolean | string>;
  networks: NetworkInfo[];
  /** Frozen networks declared with `encoder` (an encoder file holds only these). */
  encoders: NetworkInfo[];
  /** The objective and train sections, typed, with the schema's defaults applied (compiler/check/settings.ts). */
  objective: ObjectiveConfig;
  train: TrainConfig;
}

export interface CheckResult {
  model?: CheckedModel;
  diagnostics: Diagnostic[];
  /** Extra sources (command-line overrides) for rendering diagnostics. */
  sources: Map<string, string>;
}

export function checkModel(src: ModelSource, opts: CheckOptions = {}): CheckResult {
  return new ModelChecker(src, opts).run();
}

class ModelChecker {
  private readonly diags: Diagnostic[] = [];
  private readonly sources = new Map<string, string>();
  private readonly ev: Evaluator;
  private readonly paramValues = new Map<string, Value>();
  private readonly evaluating = new Set<string>();
  private readonly used = new Set<string>();
  private readonly params: Map<string, { value: A.Expr; declSpan: A.Span }>;
  private readonly train: A.Setting[];
  private readonly objective: A.Setting[];
  private paramScope!: Scope;

  constructor(private readonly src: ModelSource, private readonly opts: CheckOptions) {
    this.ev = new Evaluator({ blocks: src.blocks });
    this.params = new Map([...src.params].map(([k, p]) => [k, { value: p.value, declSpan: p.declSpan }]));
    this.train = [...src.train];
    this.objective = [...src.objective];
  }

  run(): CheckResult {
    this.applyPreset();
    this.applySets();
    this.paramScope = this.makeParamScope();
    const params: Record<string, number | boolean | string> = {};
    for (const name of this.params.keys()) {
      const v = this.param(name);
      if (v && (v.t === 'num' || v.t === 'bool' || v.t === 'str')) params[name] = v.v;
    }
    this.used.clear(); // only reads from the model body count as "used"
    const networks: NetworkInfo[] = [];
    // A file of encoders only (models/encoders/*.gan) is not a GAN.
    const encoderFile = this.src.encoders.size > 0 && this.src.stages.size === 0 && this.src.discriminators.size === 0;
    if (!encoderFile) {
      const cond = new Map<string, number[]>(); // condition outputs: name -> shape
      const g = this.generator(cond);
      if (g) networks.push(g);
      for (const d of this.src.discriminators.values()) {
        const n = this.discriminator(d, cond, g);
        if (n) networks.push(n);
      }
      if (this.src.discriminators.size === 0) {
        this.diags.push(error(Codes.structure, `model '${this.src.name}' has no discriminator`, undefined, { help: "add 'discriminator d0 @ 64 { ... }', or declare only encoders for an encoder file" }));
      }
    }
    const encoders: NetworkInfo[] = [];
    for (const d of this.src.encoders.values()) {
      const n = this.encoder(d);
      if (n) encoders.push(n);
    }
    for (const w of this.src.weights.values()) {
      if (!this.src.encoders.has(w.name)) {
        this.diags.push(error(Codes.undefinedName, `weights for unknown encoder '${w.name}'`, w.nameSpan, { help: didYouMean(w.name, this.src.encoders.keys()) }));
      }
    }
    const stageNames = [...this.src.stages.keys()];
    const objective = evalSection('objective', this.objective, objectiveSchema(stageNames), this.ev, this.paramScope, this.diags);
    const train = evalSection('train', this.train, trainSchema, this.ev, this.paramScope, this.diags);
    this.warnUnused();
    const diagnostics = [...this.diags, ...this.ev.diagnostics];
    const hasError = diagnostics.some((d) => d.severity === 'error');
    return {
      model: hasError ? undefined : { name: this.src.name, file: this.src.file, params, networks, encoders, objective, train },
      diagnostics,
      sources: this.sources,
    };
  }

  // ---- params and overrides ----

  private applyPreset(): void {
    const name = this.opts.preset;
    if (!name) return;
    const p = this.src.presets.get(name);
    if (!p) {
      const known = [...this.src.presets.keys()];
      this.diags.push(error(Codes.undefinedName, `model '${this.src.name}' has no preset '${name}'`, undefined, {
        help: didYouMean(name, known) ?? (known.length ? `presets: ${known.join(', ')}` : 'this model defines no presets'),
      }));
      return;
    }
    for (const d of p.params) {
      const cur = this.params.get(d.name);
      if (!cur) {
        this.diags.push(error(Codes.unknownParamOverride, `preset '${name}' overrides param '${d.name}', which does not exist`, d.nameSpan, { help: didYouMean(d.name, this.params.keys()) }));
        continue;
      }
      this.params.set(d.name, { value: d.value, declSpan: cur.declSpan });
    }
    for (const s of p.sections) (s.kind === 'train' ? this.train : this.objective).push(...s.settings);
  }

  private applySets(): void {
    for (const item of this.opts.set ?? []) {
      const file = `--set ${item}`;
      this.sources.set(file, item);
      const eq = item.indexOf('=');
      if (eq <= 0) {
        this.diags.push(error(Codes.badValue, `--set expects key=value, got '${item}'`, { file, offset: 0, length: item.length }));
        continue;
      }
      const key = item.slice(0, eq).trim();
      const keySpan = { file, offset: 0, length: eq };
      const parsed = parseExpression(item.slice(eq + 1), file);
      if (!parsed.expr) {
        for (const d of parsed.diagnostics) this.diags.push({ ...d, span: d.span ? { ...d.span, offset: d.span.offset + eq + 1 } : undefined });
        continue;
      }
      const value = shiftSpans(parsed.expr, eq + 1);
      const path = key.split('.');
      if (path.length > 1 && (path[0] === 'train' || path[0] === 'objective')) {
        const setting: A.Setting = { path: path.slice(1), pathSpan: keySpan, value, span: { file, offset: 0, length: item.length } };
        (path[0] === 'train' ? this.train : this.objective).push(setting);
        continue;
      }
      const cur = this.params.get(key);
      if (!cur) {
        this.diags.push(error(Codes.unknownParamOverride, `cannot set '${key}': model '${this.src.name}' has no such param`, keySpan, {
          label: 'not a param of this model',
          help: didYouMean(key, this.params.keys()) ?? 'settings are set as train.<key>=... or objective.<key>=...',
        }));
        continue;
      }
      this.params.set(key, { value, declSpan: cur.declSpan });
    }
  }

  /** Params resolve on first read (in any order, cycles reported); every read is recorded for GAN207. */
  private makeParamScope(): Scope {
    const checker = this;
    return new (class extends Scope {
      override get(n: string): Value | undefined {
        if (!checker.params.has(n)) return super.get(n);
        checker.used.add(n);
        return checker.param(n) ?? { t: 'poison' };
      }
      override allNames(): string[] {
        return [...checker.params.keys()];
      }
    })();
  }

  private param(name: string): Value | undefined {
    const done = this.paramValues.get(name);
    if (done) return done;
    const p = this.params.get(name);
    if (!p) return undefined;
    if (this.evaluating.has(name)) {
      this.diags.push(error(Codes.cyclicParam, `param '${name}' is defined in terms of itself`, p.value.span, { notes: [`cycle: ${[...this.evaluating, name].join(' -> ')}`] }));
      this.paramValues.set(name, { t: 'poison' });
      return { t: 'poison' };
    }
    this.evaluating.add(name);
    let v: Value = { t: 'poison' };
    try {
      v = this.ev.expr(p.value, this.paramScope, undefined);
      if (v.t !== 'poison' && v.t !== 'num' && v.t !== 'bool' && v.t !== 'str') {
        this.ev.fail(Codes.typeMismatch, `param '${name}' must be a number, boolean or string, got ${describe(v)}`, p.value.span);
      }
    } catch (e) {
      this.ev.report(e);
      v = { t: 'poison' };
    } finally {
      this.evaluating.delete(name);
    }
    this.paramValues.set(name, v);
    return v;
  }

  private warnUnused(): void {
    const used = [...this.params.keys()].filter((k) => this.used.has(k)); // once: a file with thousands of params stays linear
    for (const [name, p] of this.params) {
      if (!this.used.has(name) && this.src.params.get(name)) {
        this.diags.push(warning(Codes.unusedParam, `param '${name}' is never used`, p.declSpan, { help: didYouMean(name, used) }));
      }
    }
  }

  // ---- networks ----

  private shapeOf(exprs: A.Expr[], what: string): number[] | undefined {
    try {
      const shape = exprs.map((e) => this.ev.intValue(e, this.paramScope, `a dimension of ${what}`));
      if (exprs.length) checkTensorSize(shape, { ...exprs[0].span, length: exprs.at(-1)!.span.offset + exprs.at(-1)!.span.length - exprs[0].span.offset }, what);
      return shape;
    } catch (e) {
      this.ev.report(e);
      return undefined;
    }
  }

  private resolution(e: A.Expr, what: string): number | undefined {
    try {
      const res = this.ev.intValue(e, this.paramScope, `the resolution of ${what}`);
      checkTensorSize([3, res, res], e.span, `an image at the resolution of ${what}`);
      return res;
    } catch (e2) {
      this.ev.report(e2);
      return undefined;
    }
  }

  private generator(cond: Map<string, number[]>): NetworkInfo | undefined {
    if (this.src.stages.size === 0) {
      this.diags.push(error(Codes.structure, `model '${this.src.name}' has no generator stages`, undefined, { help: "add 'generator { stage g0 @ 64 { ... image = ... } }'" }));
      return undefined;
    }
    const graph = new NetworkGraph('G');
    const net = new NetContext(graph);
    const globals = new Scope(this.paramScope);
    const inputs: Record<string, number> = {};
    for (const d of this.src.inputs.values()) {
      const shape = this.shapeOf(d.shape, `input '${d.name}'`);
      if (!shape) continue;
      const n = graph.add({ kind: 'input', op: 'input', inputs: [], attrs: {}, shape, path: d.name, params: [], buffers: [], macs: 0 });
      inputs[d.name] = n.id;
      globals.set(d.name, { t: 'tensor', shape, node: n.id, net: 'G' });
    }
    for (const d of this.src.noises.values()) {
      const shape = this.shapeOf(d.shape, `noise '${d.name}'`);
      if (!shape) continue;
      try {
        const t = this.ev.declareNoise(net, d, shape);
        inputs[d.name] = t.node;
        globals.set(d.name, t);
      } catch (e) {
        this.ev.report(e);
        globals.set(d.name, poison);
      }
    }
    this.ev.globals = globals;
    for (const c of this.src.conditions.values()) {
      const scope = new Scope(globals);
      net.push(c.name);
      this.ev.exec(c.body, scope, net, 'condition');
      net.pop();
      for (const [k, v] of scope.ownEntries()) {
        globals.set(k, v);
        if (v.t === 'tensor') cond.set(k, v.shape);
        if (v.t === 'poison') cond.set(k, []); // already reported; keep the name defined downstream
      }
    }
    const exports: Record<string, number> = {};
    for (const [k, v] of globals.ownEntries()) if (v.t === 'tensor' && cond.has(k)) exports[k] = v.node;
    const stages: NetworkInfo['stages'] = [];
    const done = new Set<string>();
    for (const s of this.src.stages.values()) {
      const res = this.resolution(s.resolution, `stage '${s.name}'`);
      if (s.from && !done.has(s.from.name)) {
        const isLater = this.src.stages.has(s.from.name);
        this.diags.push(error(Codes.undefinedName, isLater ? `stage '${s.name}' refines '${s.from.name}', which comes later` : `stage '${s.name}' refines unknown stage '${s.from.name}'`, s.from.span, {
          label: 'expected an earlier stage',
          help: isLater ? undefined : didYouMean(s.from.name, done),
        }));
      }
      const before = { params: graph.parameters, macs: graph.macs };
      const scope = new Scope(globals);
      net.push(s.name);
      this.ev.exec(s.body, scope, net, 'stage');
      net.pop();
      const own = new Map(scope.ownEntries());
      this.ev.stageScopes.set(s.name, { getOwn: (n) => own.get(n), names: [...own.keys()] });
      globals.set(s.name, { t: 'stage', name: s.name });
      done.add(s.name);
      const image = own.get('image');
      if (!image) {
        this.diags.push(error(Codes.structure, `stage '${s.name}' does not define 'image'`, s.nameSpan, { help: "end the stage with 'image = h |> conv(3, k = 3) |> tanh'" }));
        continue;
      }
      if (image.t === 'poison' || res === undefined) continue;
      if (image.t !== 'tensor' || shapeStr(image.shape) !== shapeStr([3, res, res])) {
        this.diags.push(error(Codes.shapeMismatch, `stage '${s.name}' @ ${res} must produce an image of shape ${shapeStr([3, res, res])}, got ${describe(image)}`, s.nameSpan, {
          label: `declared @ ${res}`,
        }));
        continue;
      }
      graph.outputs.set(`${s.name}.image`, image.node);
      stages.push({ name: s.name, resolution: res, from: s.from?.name, image: image.node, parameters: graph.parameters - before.params, macs: graph.macs - before.macs });
    }
    const losses = Object.fromEntries([...net.losses].map(([k, v]) => [k, v.node]));
    return { name: 'G', kind: 'generator', resolution: stages.at(-1)?.resolution ?? 0, graph, stages, heads: {}, losses, inputs, exports };
  }

  /**
   * An encoder: its inputs, its body (result: the `return`), and its
   * `weights` rules checked against its parameters: each rule names some
   * parameter, and each parameter is named by some rule, so a checkpoint can
   * fill every one of them.
   */
  private encoder(d: A.EncoderDecl): NetworkInfo | undefined {
    const graph = new NetworkGraph(d.name);
    const net = new NetContext(graph);
    const globals = new Scope(this.paramScope);
    const inputs: Record<string, number> = {};
    for (const inp of d.inputs) {
      const shape = this.shapeOf(inp.shape, `input '${inp.name}' of encoder '${d.name}'`);
      if (!shape) {
        globals.set(inp.name, poison);
        continue;
      }
      const n = graph.add({ kind: 'input', op: 'input', inputs: [], attrs: {}, shape, path: inp.name, params: [], buffers: [], macs: 0 });
      inputs[inp.name] = n.id;
      globals.set(inp.name, { t: 'tensor', shape, node: n.id, net: d.name });
    }
    this.ev.globals = globals;
    let result: Value | undefined;
    try {
      result = this.ev.result(d.body, new Scope(globals), net, 'encoder');
    } catch (e) {
      this.ev.report(e);
      return undefined;
    }
    if (!result) {
      this.diags.push(error(Codes.structure, `encoder '${d.name}' gives no result`, d.nameSpan, { help: "end it with 'return x' or an expression" }));
      return undefined;
    }
    if (result.t === 'poison') return undefined;
    if (result.t !== 'tensor') {
      this.diags.push(error(Codes.typeMismatch, `encoder '${d.name}' must give a tensor, got ${describe(result)}`, d.nameSpan));
      return undefined;
    }
    graph.outputs.set('out', result.node);
    const rules = this.src.weights.get(d.name)?.rules;
    if (rules) this.checkWeightRules(d.name, rules, graph);
    const siblings = [...this.src.weights.values()].filter((w) => w.name !== d.name).flatMap((w) => w.rules);
    return {
      name: d.name,
      kind: 'encoder',
      resolution: 0,
      graph,
      stages: [],
      heads: {},
      losses: {},
      inputs,
      exports: {},
      output: result.node,
      checkpointNames: rules,
      ...(siblings.length ? { siblingCheckpointNames: siblings } : {}),
    };
  }

  private checkWeightRules(encoder: string, rules: A.WeightRule[], graph: NetworkGraph): void {
    const params = graph.nodes.flatMap((n) => n.params.map((p) => p.name));
    const named = new Set<string>();
    for (const r of rules) {
      if (r.to === '') continue; // a tensor the checkpoint holds that no parameter takes
      const prefix = isPrefixRule(r);
      if (!prefix && (r.from.endsWith('.') || r.to.endsWith('/'))) {
        this.diags.push(error(Codes.badValue, `a prefix rule maps a name ending in '.' to a path ending in '/'`, r.toSpan, { label: 'expected both ends, or neither' }));
        continue;
      }
      const slots = (s: string) => placeholders(s).join(',');
      if (slots(r.from) !== slots(r.to)) {
        this.diags.push(error(Codes.badValue, `both sides of a weights rule need the same placeholders in the same order`, r.toSpan, { label: `{${slots(r.from)}} vs {${slots(r.to)}}` }));
        continue;
      }
      const re = namePattern(r.to, prefix);
      const hits = params.filter((p) => re.test(p));
      if (hits.length === 0) {
        this.diags.push(error(Codes.undefinedName, `no parameter of encoder '${encoder}' matches '${r.to}'`, r.toSpan, {
          help: didYouMean(r.to, params) ?? `its parameters: ${params.slice(0, 6).join(', ')}${params.length > 6 ? ', ...' : ''}`,
        }));
      }
      for (const h of hits) named.add(h);
    }
    const unnamed = params.filter((p) => !named.has(p));
    if (unnamed.length) {
      const w = this.src.weights.get(encoder)!;
      this.diags.push(error(Codes.structure, `weights for '${encoder}' leave ${unnamed.length} parameter(s) without a checkpoint name: ${unnamed.slice(0, 4).join(', ')}${unnamed.length > 4 ? ', ...' : ''}`, w.nameSpan, {
        help: 'add a rule "checkpoint.name" = "layer/path" for each',
      }));
    }
  }

  private discriminator(d: A.DiscriminatorDecl, cond: Map<string, number[]>, g: NetworkInfo | undefined): NetworkInfo | undefined {
    const res = this.resolution(d.resolution, `discriminator '${d.name}'`);
    if (res === undefined) return undefined;
    if (g && !g.stages.some((s) => s.resolution === res) && g.stages.length === this.src.stages.size) {
      this.diags.push(error(Codes.structure, `discriminator '${d.name}' @ ${res} has no generator stage of that resolution`, d.nameSpan, {
        label: `stages: ${g.stages.map((s) => `${s.name} @ ${s.resolution}`).join(', ')}`,
      }));
    }
    const graph = new NetworkGraph(d.name);
    const net = new NetContext(graph);
    const globals = new Scope(this.paramScope);
    const inputs: Record<string, number> = {};
    const lazyInput = (name: string, shape: number[]) =>
      globals.setLazy(name, () => {
        const n = graph.add({ kind: 'input', op: 'input', inputs: [], attrs: {}, shape, path: name, params: [], buffers: [], macs: 0 });
        inputs[name] = n.id;
        return { t: 'tensor', shape, node: n.id, net: d.name };
      });
    for (const inp of this.src.inputs.values()) {
      const shape = this.shapeOf(inp.shape, `input '${inp.name}'`);
      if (shape) lazyInput(inp.name, shape);
    }
    for (const [k, shape] of cond) {
      if (shape.length === 0) globals.set(k, { t: 'poison' });
      else lazyInput(k, shape);
    }
    lazyInput('image', [3, res, res]);
    this.ev.globals = globals;
    const scope = new Scope(globals);
    this.ev.exec(d.body, scope, net, 'discriminator');
    globals.get('image'); // every discriminator reads an image, even one that ignores it
    if (net.headsDeclared.size === 0) {
      this.diags.push(error(Codes.structure, `discriminator '${d.name}' has no head`, d.nameSpan, { help: "add 'head uncond = f |> conv(1, k = 4, stride = 4, bias = true)'" }));
    }
    const heads = Object.fromEntries([...net.heads].map(([k, v]) => [k, v.node]));
    for (const [k, v] of net.heads) graph.outputs.set(k, v.node);
    const losses = Object.fromEntries([...net.losses].map(([k, v]) => [k, v.node]));
    return { name: d.name, kind: 'discriminator', resolution: res, graph, stages: [], heads, losses, inputs, exports: {} };
  }
}

function shiftSpans<T>(node: T, by: number): T {
  if (Array.isArray(node)) return node.map((n) => shiftSpans(n, by)) as T;
  if (node && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) {
      out[k] = (k === 'span' || k.endsWith('Span')) && v && typeof v === 'object' && 'offset' in v ? { ...(v as A.Span), offset: (v as A.Span).offset + by } : shiftSpans(v, by);
    }
    return out as T;
  }
  return node;
}

export { DiagnosticError };
