// Lowers a checked network (the checker's graph of language-level ops, with
// per-sample shapes) to the tensor IR for a given batch size. This is the
// generic walk: parameters, buffers, inputs and bindings. How each op lowers
// is part of its language-op record (compiler/lang/ops); the IR re-checks
// every shape.
import type { NetworkInfo } from './check/model.ts';
import type { GraphNode, ParamInfo } from './check/graph.ts';
import { GraphBuilder } from './ir/builder.ts';
import type { Init, Value } from './ir/graph.ts';
import type { LowerContext } from './lang/op.ts';
import { lowering } from './lang/registry.ts';
import { bce } from './ops/losses.ts';

export interface LowerOptions {
  batch: number;
  /** BatchNorm with batch statistics and running-stat updates (true) or running statistics (false). */
  training: boolean;
  /** In training mode, update the BatchNorm running statistics (default true). */
  updateStats?: boolean;
  /**
   * Values bound to named inputs instead of fresh graph inputs (a discriminator
   * lowered into the generator's builder reads its `image` and `mu` from there).
   */
  bind?: Record<string, Value>;
}

export interface LoweredNetwork {
  builder: GraphBuilder;
  /** IR value of every checker node, by node id. */
  values: Map<number, Value>;
  /** Named graph inputs (text, z, image, condition outputs). */
  inputs: Record<string, Value>;
  /** Stage images (`g0.image`), heads (`uncond`), losses (`kl`), an encoder's result (`out`). */
  outputs: Record<string, Value>;
  /** The condition's tensors (mu, logvar, c_hat) of a generator. */
  exports: Record<string, Value>;
  params: Value[];
}

/**
 * Params and state buffers by name, per builder: lowering a network twice
 * into one builder (a discriminator seeing real, wrong and fake images)
 * shares its weights and chains its BatchNorm running statistics.
 */
const leavesByBuilder = new WeakMap<GraphBuilder, Map<string, Value>>();
function leaf(b: GraphBuilder, name: string, make: () => Value): Value {
  let m = leavesByBuilder.get(b);
  if (!m) leavesByBuilder.set(b, (m = new Map()));
  let v = m.get(name);
  if (!v) m.set(name, (v = make()));
  return v;
}

const INITS: Record<ParamInfo['init'], Init> = {
  orthogonal: { kind: 'orthogonal', gain: 1 },
  zeros: { kind: 'zeros' },
  ones: { kind: 'ones' },
  bn_weight: { kind: 'normal', mean: 1, std: 0.02 },
  embedding: { kind: 'normal', mean: 0, std: 0.02 },
};

export function lowerNetwork(net: NetworkInfo, opts: LowerOptions, builder = new GraphBuilder()): LoweredNetwork {
  const b = builder;
  const N = opts.batch;
  const values = new Map<number, Value>();
  const inputs: Record<string, Value> = {};
  const params: Value[] = [];
  const group = net.name;
  const param = (p: ParamInfo) => {
    const name = `${net.name}/${p.name}`;
    const frozen = net.kind === 'encoder';
    // A frozen network's weights come from its checkpoint: orthogonal init of
    // CLIP's full-size matrices would take minutes on the host for nothing.
    const init = frozen && p.init === 'orthogonal' ? INITS.embedding : INITS[p.init];
    const v = leaf(b, name, () => b.param(name, p.shape, init, group, frozen));
    params.push(v);
    return v;
  };
  const bound = (name: string, shape: number[]): Value => {
    const v = opts.bind?.[name];
    if (!v) return b.input(name, shape);
    if (v.shape.length !== shape.length || v.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`lowering ${net.name}: input '${name}' is [${shape.join(', ')}], bound value is [${v.shape.join(', ')}]`);
    }
    return v;
  };
  const inputName = new Map(Object.entries(net.inputs).map(([k, id]) => [id, k]));
  const context = (n: GraphNode, shape: number[]): LowerContext => ({
    b,
    node: n,
    x: n.inputs.map((i) => values.get(i)!),
    shape,
    training: opts.training,
    updateStats: opts.updateStats !== false,
    param: (leaf) => {
      const info = n.params.find((q) => q.name.endsWith(`/${leaf}`));
      return info ? param(info) : undefined;
    },
    buffer: (leafName) => {
      const info = n.buffers.find((q) => q.name.endsWith(`/${leafName}`));
      if (!info) throw new Error(`lowering: ${n.path} has no buffer '${leafName}'`);
      const name = `${net.name}/${info.name}`;
      return leaf(b, name, () => b.buffer(name, info.shape, { kind: info.init }));
    },
    noise: (op, attrs) => b.noise(inputName.get(n.id) ?? n.path, op, { shape, ...attrs }),
  });

  for (const n of net.graph.nodes) {
    const shape = [N, ...n.shape];
    if (n.kind === 'input') {
      const name = inputName.get(n.id) ?? n.path;
      values.set(n.id, (inputs[name] = bound(name, shape)));
      continue;
    }
    const op = lowering(n.op);
    if (!op) throw new Error(`lowering: no IR lowering for op '${n.op}' (${n.path})`);
    values.set(n.id, op.lower(context(n, shape)));
  }
  const outputs: Record<string, Value> = {};
  const out = (name: string, id: number) => (outputs[name] = b.output(name, values.get(id)!));
  for (const s of net.stages) out(`${s.name}.image`, s.image);
  for (const [k, id] of Object.entries(net.heads)) out(k, id);
  for (const [k, id] of Object.entries(net.losses)) out(k, id);
  if (net.output !== undefined) out('out', net.output);
  const exports = Object.fromEntries(Object.entries(net.exports).map(([k, id]) => [k, values.get(id)!]));
  return { builder: b, values, inputs, outputs, exports, params };
}

/**
 * A training-shaped program for one network, for memory planning before a
 * trainer exists: forward, and the gradients of the network's own parameters
 * of a stand-in loss (BCE of every head against 1 for a discriminator; the
 * stage images' means plus the condition's losses for the generator, without
 * the discriminators it trains through).
 */
export function standInLoss(net: LoweredNetwork, kind: NetworkInfo['kind']): Value {
  const b = net.builder;
  let loss: Value | undefined;
  const acc = (v: Value) => (loss = loss ? b.add(loss, v) : v);
  for (const [name, v] of Object.entries(net.outputs)) {
    if (kind === 'discriminator' && v.shape.length > 0) acc(bce(b, v, 1));
    else if (kind === 'generator') acc(v.shape.length > 0 ? b.mean(v) : v);
    else if (v.shape.length === 0 && name) acc(v);
  }
  if (!loss) throw new Error('network has no outputs to build a loss from');
  return loss;
}
