// The training step of a multi-stage conditional GAN, StackGAN-v2 style, as
// two programs over one set of parameters:
//
//   d_step: G forward (no BN stat updates) -> for each stage i, D_i on
//           (real_i, mu), (wrong_i, mu), (fake_i.detach(), mu), mu detached
//           -> errD_i -> gradients of D_i's params
//   g_step: G forward -> D_i on (fake_i, mu) -> errG -> gradients of G's params
//
// Losses (shared/reference/stackgan.md), with y = train.real_label and
// u = objective.uncond when use_uncond_loss, else 0:
//   u > 0: errD = BCE(real_c, y) + u BCE(real_u, y) + BCE(wrong_c, 0) + u BCE(wrong_u, y)
//                 + BCE(fake_c, 0) + u BCE(fake_u, 0)
//   u = 0: errD = BCE(real_c, y) + 0.5 (BCE(wrong_c, 0) + BCE(fake_c, 0))
//   errG = sum_i [BCE(fake_c_i, 1) + u BCE(fake_u_i, 1)] + kl_w * KL
// MS-CLIP-GAN's alignment head (cosine of image and text features) adds
// align_w * mean(1 - align(real)) to errD and align_w * mean(1 - align(fake))
// to errG. CLIP-image guidance and perceptual/colour terms are not lowered yet
// (see `unsupported`).
import { paramGrads } from './autodiff.ts';
import type { CheckedModel, NetworkInfo } from './check/model.ts';
import { GraphBuilder } from './ir/builder.ts';
import type { Value } from './ir/graph.ts';
import { lowerNetwork, type LoweredNetwork } from './lower.ts';
import type { Plan, StateLayout } from '../runtime/format/plan.ts';
import { bce as bceLoss } from './ops/losses.ts';
import { compileProgram, layoutState, DEFAULT_LIMITS, type PlanLimits } from './plan/index.ts';

export interface GanSteps {
  layout: StateLayout;
  dStep: Plan;
  gStep: Plan;
  /** Optimizer groups: 'G' and one per discriminator. */
  groups: { g: string; d: string[] };
  /** Objective terms present in the model that these programs leave out. */
  unsupported: string[];
}

interface Weights {
  y: number;
  u: number;
  kl: number;
  align: number;
}

function weights(m: CheckedModel): Weights {
  const o = m.objective as Record<string, unknown>;
  const t = m.train as Record<string, unknown>;
  return {
    y: Number(t.real_label ?? 1),
    u: o.use_uncond_loss ? Number(o.uncond ?? 1) : 0,
    kl: Number(o.kl ?? 0),
    align: Number(o.align ?? 0),
  };
}

function sum(b: GraphBuilder, terms: Value[]): Value {
  return terms.reduce((acc, t) => b.add(acc, t));
}

/** D_i lowered on one image with the condition bound; returns its heads. */
function dHeads(b: GraphBuilder, d: NetworkInfo, batch: number, image: Value, cond: Record<string, Value>, updateStats = true): Record<string, Value> {
  const lowered = lowerNetwork(d, { batch, training: true, updateStats, bind: { ...cond, image } }, b);
  const heads: Record<string, Value> = {};
  for (const k of Object.keys(d.heads)) heads[k] = lowered.outputs[k];
  return heads;
}

function bce(b: GraphBuilder, x: Value | undefined, target: number, w = 1): Value[] {
  if (!x || w === 0) return [];
  const l = bceLoss(b, x, target);
  return [w === 1 ? l : b.mul(l, w)];
}

function alignLoss(b: GraphBuilder, x: Value | undefined, w: number): Value[] {
  return x && w !== 0 ? [b.mul(b.mean(b.sub(1, x)), w)] : [];
}

/** The generator and the discriminators with the stage each one judges. */
function pairs(m: CheckedModel): { g: NetworkInfo; ds: { d: NetworkInfo; stage: string }[] } {
  const g = m.networks.find((n) => n.kind === 'generator');
  if (!g) throw new Error(`model '${m.name}' has no generator`);
  const ds = m.networks
    .filter((n) => n.kind === 'discriminator')
    .map((d) => {
      const stage = g.stages.find((s) => s.resolution === d.resolution);
      if (!stage) throw new Error(`discriminator '${d.name}' @ ${d.resolution} has no generator stage of that resolution`);
      return { d, stage: stage.name };
    });
  return { g, ds };
}

/** Condition tensors and inputs the discriminators read, bound to G's values. */
function condition(b: GraphBuilder, G: LoweredNetwork, detach: boolean): Record<string, Value> {
  const out: Record<string, Value> = { ...G.inputs };
  for (const [k, v] of Object.entries(G.exports)) out[k] = detach ? b.detach(v) : v;
  return out;
}

function buildD(m: CheckedModel, batch: number, w: Weights): { b: GraphBuilder; outputs: Record<string, Value>; grads: Map<string, Value | null> } {
  const { g, ds } = pairs(m);
  const b = new GraphBuilder();
  const G = lowerNetwork(g, { batch, training: true, updateStats: false }, b);
  const cond = condition(b, G, true);
  const outputs: Record<string, Value> = {};
  const grads = new Map<string, Value | null>();
  for (const { d, stage } of ds) {
    const shape = [batch, 3, d.resolution, d.resolution];
    const real = dHeads(b, d, batch, b.input(`real.${stage}`, shape), cond);
    const wrong = dHeads(b, d, batch, b.input(`wrong.${stage}`, shape), cond);
    const fake = dHeads(b, d, batch, b.detach(G.outputs[`${stage}.image`]), cond);
    const terms =
      w.u > 0
        ? [
            ...bce(b, real.cond, w.y), ...bce(b, real.uncond, w.y, w.u),
            ...bce(b, wrong.cond, 0), ...bce(b, wrong.uncond, w.y, w.u),
            ...bce(b, fake.cond, 0), ...bce(b, fake.uncond, 0, w.u),
          ]
        : [...bce(b, real.cond, w.y), ...bce(b, wrong.cond, 0, 0.5), ...bce(b, fake.cond, 0, 0.5)];
    // A discriminator without a conditional head is judged by its unconditional one.
    if (!real.cond) terms.push(...bce(b, real.uncond, w.y), ...bce(b, fake.uncond, 0));
    terms.push(...alignLoss(b, real.align, w.align));
    const errD = sum(b, terms);
    outputs[`errD.${d.name}`] = errD;
    // The logits are tiny; the trainer logs them (D(real), D(fake) means).
    for (const [kind, heads] of Object.entries({ real, wrong, fake })) for (const [h, v] of Object.entries(heads)) outputs[`${d.name}.${kind}.${h}`] = v;
    for (const [k, v] of paramGrads(b, errD, [d.name])) grads.set(k, v);
  }
  return { b, outputs, grads };
}

function buildG(m: CheckedModel, batch: number, w: Weights): { b: GraphBuilder; outputs: Record<string, Value>; grads: Map<string, Value | null> } {
  const { g, ds } = pairs(m);
  const b = new GraphBuilder();
  const G = lowerNetwork(g, { batch, training: true }, b);
  const cond = condition(b, G, false);
  const terms: Value[] = [];
  const outputs: Record<string, Value> = {};
  for (const { d, stage } of ds) {
    const fake = dHeads(b, d, batch, G.outputs[`${stage}.image`], cond);
    for (const [h, v] of Object.entries(fake)) outputs[`${d.name}.fake.${h}`] = v;
    terms.push(...bce(b, fake.cond, 1), ...bce(b, fake.uncond, 1, fake.cond ? w.u : 1), ...alignLoss(b, fake.align, w.align));
  }
  for (const [name, v] of Object.entries(G.outputs)) if (v.shape.length === 0 && name === 'kl' && w.kl !== 0) terms.push(b.mul(v, w.kl));
  const errG = sum(b, terms);
  outputs.errG = errG;
  if (G.outputs.kl) outputs.kl = G.outputs.kl;
  return { b, outputs, grads: paramGrads(b, errG, [g.name]) };
}

function sameLayout(a: StateLayout, b: StateLayout): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function buildGanSteps(m: CheckedModel, batch: number, limits: PlanLimits = DEFAULT_LIMITS): GanSteps {
  const w = weights(m);
  const D = buildD(m, batch, w);
  const G = buildG(m, batch, w);
  // Both graphs create the same params and buffers in the same order, so one
  // layout (one set of arenas) serves both programs.
  const layout = layoutState(D.b.graph, limits);
  if (!sameLayout(layout, layoutState(G.b.graph, limits))) throw new Error('internal: D and G step graphs disagree on the parameter layout');
  const groups = { g: 'G', d: m.networks.filter((n) => n.kind === 'discriminator').map((n) => n.name) };
  const dStep = compileProgram(D.b.graph, layout, { name: 'd_step', outputs: D.outputs, grads: D.grads, groups: groups.d }, limits);
  const gStep = compileProgram(G.b.graph, layout, { name: 'g_step', outputs: G.outputs, grads: G.grads, groups: [groups.g] }, limits);
  const o = m.objective as Record<string, unknown>;
  const unsupported: string[] = [];
  if (o.clip_guidance) unsupported.push('clip_guidance (needs the frozen CLIP image encoder)');
  if (Number(o.perceptual ?? 0) > 0) unsupported.push('perceptual');
  if (Number(o.colour ?? 0) > 0) unsupported.push('colour');
  return { layout, dStep, gStep, groups, unsupported };
}
