// Lowers a checked network (the checker's graph of language-level ops, with
// per-sample shapes) to the tensor IR for a given batch size. Each language op
// maps onto IR builder calls here, in one table; the IR re-checks every shape.
import type { NetworkInfo } from './check/model.ts';
import type { GraphNode, ParamInfo } from './check/graph.ts';
import { GraphBuilder } from './ir/builder.ts';
import type { Init, Value } from './ir/graph.ts';
import { batchNorm } from './ops/batchnorm.ts';
import { cosine, glu } from './ops/composite.ts';
import { conv2d } from './ops/conv.ts';
import { bce, klNormal, l1, mse } from './ops/losses.ts';
import { linear } from './ops/matmul.ts';
import { tile } from './ops/shape.ts';

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
  /** Stage images (`g0.image`), heads (`uncond`), losses (`kl`). */
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
    const v = leaf(b, name, () => b.param(name, p.shape, INITS[p.init], group));
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

  for (const n of net.graph.nodes) {
    const x = n.inputs.map((i) => values.get(i)!);
    values.set(n.id, lowerNode(b, net.name, n, x, N, opts, param, (name, shape) => (inputs[name] = bound(name, shape)), inputName));
  }
  const outputs: Record<string, Value> = {};
  const out = (name: string, id: number) => (outputs[name] = b.output(name, values.get(id)!));
  for (const s of net.stages) out(`${s.name}.image`, s.image);
  for (const [k, id] of Object.entries(net.heads)) out(k, id);
  for (const [k, id] of Object.entries(net.losses)) out(k, id);
  const exports = Object.fromEntries(Object.entries(net.exports).map(([k, id]) => [k, values.get(id)!]));
  return { builder: b, values, inputs, outputs, exports, params };
}

function lowerNode(
  b: GraphBuilder,
  net: string,
  n: GraphNode,
  x: Value[],
  N: number,
  opts: LowerOptions,
  param: (p: ParamInfo) => Value,
  input: (name: string, shape: number[]) => Value,
  inputName: Map<number, string>,
): Value {
  const a = n.attrs;
  const full = [N, ...n.shape];
  const p = (leaf: string) => {
    const info = n.params.find((q) => q.name.endsWith(`/${leaf}`));
    return info ? param(info) : undefined;
  };
  switch (n.op) {
    case 'input':
      return input(inputName.get(n.id) ?? n.path, full);
    case 'randn':
      return b.noise(n.kind === 'noise' && inputName.has(n.id) ? inputName.get(n.id)! : n.path, 'randn', { shape: full });
    case 'linear':
      return linear(b, x[0], p('weight')!, p('bias'));
    case 'conv2d':
      return conv2d(b, x[0], p('weight')!, { stride: a.stride as number, pad: a.pad as number, bias: p('bias') });
    case 'batchnorm': {
      const [rm, rv] = n.buffers.map((buf) => leaf(b, `${net}/${buf.name}`, () => b.buffer(`${net}/${buf.name}`, buf.shape, { kind: buf.init })));
      // Training without updates (a forward pass repeated within one step) passes no running stats.
      const stats = opts.training && opts.updateStats === false ? {} : { runningMean: rm, runningVar: rv };
      return batchNorm(b, x[0], { weight: p('weight'), bias: p('bias'), ...stats, training: opts.training, momentum: a.momentum as number, eps: a.eps as number });
    }
    case 'glu':
      return glu(b, x[0], 1);
    case 'relu':
      return b.relu(x[0]);
    case 'leaky_relu':
      return b.leakyRelu(x[0], a.slope as number);
    case 'tanh':
      return b.tanh(x[0]);
    case 'sigmoid':
      return b.sigmoid(x[0]);
    case 'softplus':
      return b.softplus(x[0]);
    case 'exp':
      return b.exp(x[0]);
    case 'log':
      return b.log(x[0]);
    case 'sqrt':
      return b.sqrt(x[0]);
    case 'detach':
      return b.detach(x[0]);
    case 'upsample': {
      let v = x[0];
      const f = a.factor as number;
      if ((f & (f - 1)) !== 0) throw new Error(`upsample: factor ${f} is not a power of 2 (only x2 steps are lowered)`);
      for (let s = f; s > 1; s /= 2) v = b.upsample2x(v);
      return v;
    }
    case 'concat':
      return b.concat(x, (a.dim as number) + 1);
    case 'slice':
      return b.slice(x[0], (a.dim as number) + 1, a.start as number, a.end as number);
    case 'reshape':
      return b.reshape(x[0], full);
    case 'tile':
      return tile(b, x[0], n.shape[1], n.shape[2]);
    case 'mean':
      return b.mean(x[0], (a.axes as number[]).map((d) => d + 1));
    case 'sum':
      return b.sum(x[0], (a.axes as number[]).map((d) => d + 1));
    case 'cosine':
      return b.reshape(cosine(b, x[0], x[1], 1), full);
    case 'kl_normal':
      return klNormal(b, x[0], x[1]);
    case 'bce_logits':
      return bce(b, x[0], a.target as number);
    case 'mse':
      return mse(b, x[0], x[1]);
    case 'l1':
      return l1(b, x[0], x[1]);
    case 'add':
    case 'sub':
    case 'mul':
    case 'div': {
      // Per-sample shapes broadcast from the right; with the batch in front,
      // a lower-rank operand gets size-1 axes after its batch axis.
      const operands: (Value | number)[] = [];
      let i = 0;
      if ('left' in a) operands.push(a.left as number);
      else operands.push(alignRank(b, x[i++], full.length));
      if ('right' in a) operands.push(a.right as number);
      else operands.push(alignRank(b, x[i++], full.length));
      const [l, r] = operands;
      return n.op === 'add' ? b.add(l, r) : n.op === 'sub' ? b.sub(l, r) : n.op === 'mul' ? b.mul(l, r) : b.div(l, r);
    }
    default:
      throw new Error(`lowering: no IR lowering for op '${n.op}' (${n.path})`);
  }
}

function alignRank(b: GraphBuilder, v: Value, rank: number): Value {
  if (v.shape.length === rank) return v;
  const [n, ...rest] = v.shape;
  return b.reshape(v, [n, ...Array(rank - v.shape.length).fill(1), ...rest]);
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
