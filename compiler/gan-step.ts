// The training step of a multi-stage conditional GAN, StackGAN-v2 style, as
// two programs over one set of parameters:
//
//   d_step: G forward (no BN stat updates) -> for each stage i, D_i on
//           (real_i, mu), (wrong_i, mu), (fake_i.detach(), mu), mu detached
//           -> errD_i -> gradients of D_i's params
//   g_step: G forward -> D_i on (fake_i, mu) -> errG -> gradients of G's params
//
// Public API (what the trainer and the tests use):
//   buildGanSteps(model, batch, limits?) -> GanSteps
//     .layout            one StateLayout (params, BN statistics) shared by both programs
//     .dStep, .gStep     StepProgram: { plan, feeds, outputs }; `plan` is what Runtime.load
//                        takes; `feeds` and `outputs` list every plan feed and output with its
//                        Role and shape (runtime/format/step.ts). Look values up by role:
//                        find(steps.dStep.feeds, { role: 'real_image', stage: 'g0' }).name
//     .groups            optimizer groups: { g: 'G', d: ['d0', ...] } (one optimizer each)
//     .unsupported       objective terms the model asks for that these programs leave out
//   sharedNoise(steps)   the noise feeds both programs take (declared noise such as z, and the
//                        CA sample): feed each the same data in d_step and g_step of one
//                        iteration and both see the same G forward, as StackGAN's single G
//                        forward does. Unfed noise is drawn on the device, per program run.
//
// Feeds: text (and any other model input), noise, ca_noise, real_image and wrong_image per
// stage (d_step only). Outputs: fake_image per stage; each D head's logits per pass; every
// loss term (unweighted mean, with its weight); each network's loss.
//
// Losses (shared/reference/stackgan.md), with y = train.real_label and
// u = objective.uncond when use_uncond_loss, else 0:
//   u > 0: errD = BCE(real_c, y) + u BCE(real_u, y) + BCE(wrong_c, 0) + u BCE(wrong_u, y)
//                 + BCE(fake_c, 0) + u BCE(fake_u, 0)
//   u = 0: errD = BCE(real_c, y) + 0.5 (BCE(wrong_c, 0) + BCE(fake_c, 0))
//   errG = sum_i [BCE(fake_c_i, 1) + u BCE(fake_u_i, 1)] + kl_w * KL
// A discriminator without a cond head is unconditional: errD = BCE(real_u, y) + BCE(fake_u, 0)
// (no wrong pass) and its G term is BCE(fake_u, 1).
// MS-CLIP-GAN's alignment head (cosine of image and text features) adds
// align_w * mean(1 - align(real)) to errD and align_w * mean(1 - align(fake))
// to errG. StackGAN-v2's colour consistency (objective.colour = c > 0) adds,
// for each stage refining an earlier one, c * (MSE(mu, mu') + 5 MSE(cov, cov'))
// to errG: mu and cov the per-image mean and 3x3 covariance of the stage's
// pixels, mu' and cov' those of the earlier stage's image, detached.
// Frozen encoders (compiler/encoders/frozen.ts), given by the caller, add to
// errG: CLIP guidance w * mean(1 - cos(E_img(clip_pixels(fake_i)), text)) and
// the perceptual term w * MSE(F(vgg_pixels(fake_i)), F(vgg_pixels(real_i)))
// at their stage i, E_img the CLIP image tower and F VGG16's features (the
// real image is a g_step feed). Their parameters are frozen: no gradient, no
// optimizer, in the layout but not in D's program. Terms the model asks for
// without their encoder given are listed in `unsupported`.
import { paramGrads } from './autodiff.ts';
import type { FrozenTerm } from './encoders/frozen.ts';
import { frozenTermValue } from './encoders/terms.ts';
import type { CheckedModel, NetworkInfo } from './check/model.ts';
import { objectiveInEffect } from './check/settings.ts';
import { GraphBuilder } from './ir/builder.ts';
import type { Value } from './ir/graph.ts';
import { lowerNetwork, type LoweredNetwork } from './lower.ts';
import type { Plan, StateLayout } from '../runtime/format/plan.ts';
import { bce } from './ops/losses.ts';
import { compileProgram, layoutState, DEFAULT_LIMITS, type PlanLimits, type ProgramSpec } from './plan/index.ts';
import { roleStr, type LossTerm, type Pass, type Role, type StepValue } from '../runtime/format/step.ts';

export interface StepProgram {
  plan: Plan;
  /** Every feed of the plan, with its role. */
  feeds: StepValue[];
  /** Every output of the plan, with its role. */
  outputs: StepValue[];
}

export interface GanSteps {
  layout: StateLayout;
  dStep: StepProgram;
  gStep: StepProgram;
  /** Optimizer groups: 'G' and one per discriminator. */
  groups: { g: string; d: string[] };
  /** Objective terms present in the model that these programs leave out. */
  unsupported: string[];
}

/** The noise feeds of d_step that g_step takes too (same name, role and shape). */
export function sharedNoise(steps: GanSteps): StepValue[] {
  const inG = new Map(steps.gStep.feeds.map((f) => [f.name, f]));
  return steps.dStep.feeds.filter((f) => {
    const g = inG.get(f.name);
    return (f.role.role === 'noise' || f.role.role === 'ca_noise') && g && roleStr(g.role) === roleStr(f.role) && g.shape.join() === f.shape.join();
  });
}

interface Weights {
  y: number;
  u: number;
  kl: number;
  align: number;
  colour: number;
}

function weights(m: CheckedModel): Weights {
  const o = m.objective;
  if (o.adversarial !== 'bce') throw new Error(`adversarial loss '${o.adversarial}' is not supported yet`);
  return { y: m.train.real_label, u: o.use_uncond_loss ? o.uncond : 0, kl: o.kl, align: o.align, colour: o.colour };
}

/** Per-image pixel mean [B, C] and covariance [B, C, C] (over H x W, divided by H W) of an NCHW image. */
function colourStats(b: GraphBuilder, x: Value): { mu: Value; cov: Value } {
  const [n, c, h, w] = x.shape;
  const mu = b.mean(x, [2, 3], true);
  const d = b.reshape(b.sub(x, b.expand(mu, x.shape)), [n, c, h * w]);
  const full = [n, c, c, h * w];
  const cov = b.mean(b.mul(b.expand(b.reshape(d, [n, c, 1, h * w]), full), b.expand(b.reshape(d, [n, 1, c, h * w]), full)), [3]);
  return { mu: b.reshape(mu, [n, c]), cov };
}

/** StackGAN-v2's colour-consistency term of an image with the (detached) image of the stage it refines, unweighted. */
function colourTerm(b: GraphBuilder, image: Value, earlier: Value): Value {
  const a = colourStats(b, image);
  const e = colourStats(b, b.detach(earlier));
  const mse = (p: Value, q: Value) => {
    const d = b.sub(p, q);
    return b.mean(b.mul(d, d));
  };
  return b.add(mse(a.mu, e.mu), b.mul(mse(a.cov, e.cov), 5));
}

/** One term of a network's loss: a head's logits on one pass, judged against a target (or an align head). */
interface TermSpec {
  term: LossTerm;
  pass: Pass;
  head: string;
  /** BCE target; undefined for the align head, whose term is mean(1 - cosine). */
  target?: number;
  weight: number;
}

/** errD's terms for a discriminator with these heads. */
function dTerms(heads: Record<string, number>, w: Weights): TermSpec[] {
  const t: TermSpec[] = [];
  if ('cond' in heads) {
    const side = w.u > 0 ? 1 : 0.5;
    t.push({ term: 'cond_real', pass: 'real', head: 'cond', target: w.y, weight: 1 });
    t.push({ term: 'cond_wrong', pass: 'wrong', head: 'cond', target: 0, weight: side });
    t.push({ term: 'cond_fake', pass: 'fake', head: 'cond', target: 0, weight: side });
    if ('uncond' in heads && w.u > 0) {
      t.push({ term: 'uncond_real', pass: 'real', head: 'uncond', target: w.y, weight: w.u });
      // StackGAN-v2 labels a wrong pair's image real for the unconditional head: it is a real image.
      t.push({ term: 'uncond_wrong', pass: 'wrong', head: 'uncond', target: w.y, weight: w.u });
      t.push({ term: 'uncond_fake', pass: 'fake', head: 'uncond', target: 0, weight: w.u });
    }
  } else if ('uncond' in heads) {
    t.push({ term: 'uncond_real', pass: 'real', head: 'uncond', target: w.y, weight: 1 });
    t.push({ term: 'uncond_fake', pass: 'fake', head: 'uncond', target: 0, weight: 1 });
  }
  if ('align' in heads && w.align !== 0) t.push({ term: 'align_real', pass: 'real', head: 'align', weight: w.align });
  return t;
}

/** errG's terms through one discriminator. */
function gTerms(heads: Record<string, number>, w: Weights): TermSpec[] {
  const t: TermSpec[] = [];
  if ('cond' in heads) t.push({ term: 'cond_fake', pass: 'fake', head: 'cond', target: 1, weight: 1 });
  const u = 'cond' in heads ? w.u : 1;
  if ('uncond' in heads && u !== 0) t.push({ term: 'uncond_fake', pass: 'fake', head: 'uncond', target: 1, weight: u });
  if ('align' in heads && w.align !== 0) t.push({ term: 'align_fake', pass: 'fake', head: 'align', weight: w.align });
  return t;
}

function termValue(b: GraphBuilder, logits: Value, spec: TermSpec): Value {
  return spec.target === undefined ? b.mean(b.sub(1, logits)) : bce(b, logits, spec.target);
}

/** A step graph being built: its IR, and the role of every feed and output. */
class StepGraph {
  readonly b = new GraphBuilder();
  private readonly outputs: Record<string, Value> = {};
  private readonly outputRoles: StepValue[] = [];
  private readonly feedRoles = new Map<string, Role>();

  out(name: string, v: Value, role: Role, weight?: number): Value {
    if (name in this.outputs) throw new Error(`internal: step output '${name}' defined twice`);
    this.outputs[name] = v;
    this.outputRoles.push({ name, shape: [...v.shape], role, ...(weight === undefined ? {} : { weight }) });
    return v;
  }

  feed(name: string, role: Role): void {
    this.feedRoles.set(name, role);
  }

  /** The weighted sum of terms (each also an output), as the network's loss output. */
  loss(net: string, terms: { name: string; v: Value; term: LossTerm; stage?: string; weight: number }[]): Value {
    if (terms.length === 0) throw new Error(`network '${net}' has no loss term in this step`);
    const parts = terms.map((t) => {
      this.out(t.name, t.v, { role: 'loss_term', net, term: t.term, ...(t.stage ? { stage: t.stage } : {}) }, t.weight);
      return t.weight === 1 ? t.v : this.b.mul(t.v, t.weight);
    });
    return this.out(`${net}.loss`, parts.reduce((acc, p) => this.b.add(acc, p)), { role: 'loss', net });
  }

  /** The generator lowered into this graph, its inputs and noise given roles. */
  generator(g: NetworkInfo, batch: number, updateStats: boolean): LoweredNetwork {
    const G = lowerNetwork(g, { batch, training: true, updateStats }, this.b);
    for (const [name, v] of Object.entries(G.inputs)) this.feed(v.name!, name === 'text' ? { role: 'text' } : { role: 'input', name });
    const declared = new Map(Object.entries(g.inputs).map(([k, id]) => [id, k]));
    const inCondition = ancestors(g, Object.values(g.exports));
    for (const n of g.graph.nodes) {
      if (n.op !== 'randn') continue;
      const name = G.values.get(n.id)!.name!;
      const d = n.kind === 'noise' ? declared.get(n.id) : undefined;
      this.feed(name, d ? { role: 'noise', name: d } : inCondition.has(n.id) ? { role: 'ca_noise' } : { role: 'noise', name });
    }
    for (const s of g.stages) this.out(`${s.name}.image`, G.outputs[`${s.name}.image`], { role: 'fake_image', stage: s.name });
    return G;
  }

  compile(layout: StateLayout, spec: Omit<ProgramSpec, 'outputs'>, limits: PlanLimits): StepProgram {
    const plan = compileProgram(this.b.graph, layout, { ...spec, outputs: this.outputs }, limits);
    const feeds = Object.entries(plan.feeds).map(([name, f]): StepValue => {
      const role = this.feedRoles.get(name);
      if (!role) throw new Error(`internal: ${spec.name} feed '${name}' has no role`);
      return { name, shape: [...f.shape], role };
    });
    return { plan, feeds, outputs: this.outputRoles };
  }
}

/** Node ids `roots` depend on in a checker graph. */
function ancestors(net: NetworkInfo, roots: number[]): Set<number> {
  const seen = new Set<number>();
  const stack = [...roots];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...net.graph.nodes[id].inputs);
  }
  return seen;
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

/** D_i lowered on one image with the condition bound; its heads' logits become outputs. */
function dPass(s: StepGraph, d: NetworkInfo, batch: number, pass: Pass, image: Value, cond: Record<string, Value>): Record<string, Value> {
  const lowered = lowerNetwork(d, { batch, training: true, bind: { ...cond, image } }, s.b);
  const heads: Record<string, Value> = {};
  for (const h of Object.keys(d.heads)) heads[h] = s.out(`${d.name}.${pass}.${h}`, lowered.outputs[h], { role: 'logit', net: d.name, pass, head: h });
  return heads;
}

function buildD(m: CheckedModel, batch: number, w: Weights): { s: StepGraph; grads: Map<string, Value | null> } {
  const { g, ds } = pairs(m);
  const s = new StepGraph();
  const b = s.b;
  const G = s.generator(g, batch, false);
  const cond = condition(b, G, true);
  const grads = new Map<string, Value | null>();
  for (const { d, stage } of ds) {
    const terms = dTerms(d.heads, w);
    const image = (pass: Pass): Value => {
      if (pass === 'fake') return b.detach(G.outputs[`${stage}.image`]);
      const name = `${pass}.${stage}`;
      s.feed(name, pass === 'real' ? { role: 'real_image', stage } : { role: 'wrong_image', stage });
      return b.input(name, [batch, 3, d.resolution, d.resolution]);
    };
    // A pass runs only when a term reads it, in StackGAN's order (BN running statistics chain real -> wrong -> fake).
    const heads: Partial<Record<Pass, Record<string, Value>>> = {};
    for (const pass of ['real', 'wrong', 'fake'] as const) if (terms.some((t) => t.pass === pass)) heads[pass] = dPass(s, d, batch, pass, image(pass), cond);
    const errD = s.loss(
      d.name,
      terms.map((t) => ({ name: `${d.name}.${t.term}`, v: termValue(b, heads[t.pass]![t.head], t), term: t.term, weight: t.weight })),
    );
    for (const [k, v] of paramGrads(b, errD, [d.name])) grads.set(k, v);
  }
  return { s, grads };
}

/** A frozen term on G's stage images (compiler/encoders/terms.ts); the perceptual term's real images become a feed. */
function frozenTerm(s: StepGraph, t: FrozenTerm, G: LoweredNetwork): Value {
  const fake = G.outputs[`${t.at}.image`];
  if (t.kind === 'clip') return frozenTermValue(s.b, t, fake, { text: G.inputs.text });
  const name = `real.${t.at}`;
  s.feed(name, { role: 'real_image', stage: t.at });
  return frozenTermValue(s.b, t, fake, { real: s.b.input(name, fake.shape) });
}

function buildG(m: CheckedModel, batch: number, w: Weights, frozen: readonly FrozenTerm[]): { s: StepGraph; grads: Map<string, Value | null> } {
  const { g, ds } = pairs(m);
  const s = new StepGraph();
  const b = s.b;
  const G = s.generator(g, batch, true);
  const cond = condition(b, G, false);
  const terms: Parameters<StepGraph['loss']>[1] = [];
  for (const { d, stage } of ds) {
    const fake = dPass(s, d, batch, 'fake', G.outputs[`${stage}.image`], cond);
    for (const t of gTerms(d.heads, w)) terms.push({ name: `G.${stage}.${t.term}`, v: termValue(b, fake[t.head], t), term: t.term, stage, weight: t.weight });
  }
  if (w.colour !== 0) {
    for (const st of g.stages) {
      if (!st.from) continue;
      terms.push({ name: `G.${st.name}.colour`, v: colourTerm(b, G.outputs[`${st.name}.image`], G.outputs[`${st.from}.image`]), term: 'colour', stage: st.name, weight: w.colour });
    }
  }
  for (const t of frozen) terms.push({ name: `G.${t.at}.${t.kind}`, v: frozenTerm(s, t, G), term: t.kind, stage: t.at, weight: t.weight });
  // The KL is always an output (a trainer logs it); it joins errG with a non-zero weight.
  if (G.outputs.kl) {
    if (w.kl !== 0) terms.push({ name: 'G.kl', v: G.outputs.kl, term: 'kl', weight: w.kl });
    else s.out('G.kl', G.outputs.kl, { role: 'loss_term', net: 'G', term: 'kl' }, 0);
  }
  const errG = s.loss('G', terms);
  return { s, grads: paramGrads(b, errG, [g.name]) };
}

/** Objective terms the model asks for that these programs do not compute, and losses nothing weights. */
function unsupportedTerms(m: CheckedModel, frozen: readonly FrozenTerm[]): string[] {
  const o = objectiveInEffect(m.objective, m.networks);
  const out: string[] = [];
  const given = new Set(frozen.map((t) => t.setting));
  if (o.clip_guidance && !given.has('clip_guidance')) out.push('clip_guidance (its frozen CLIP image encoder was not given)');
  if (o.perceptual && !given.has('perceptual')) out.push('perceptual (its frozen VGG16 encoder was not given)');
  for (const n of m.networks) {
    for (const l of Object.keys(n.losses)) if (!(n.kind === 'generator' && l === 'kl')) out.push(`loss '${l}' of ${n.name} (no objective weight reads it)`);
  }
  return out;
}

/** The layout less its frozen groups (what a program without the encoders lays out). */
function withoutFrozen(l: StateLayout): StateLayout {
  const frozen = new Set(Object.entries(l.groups).filter(([, g]) => g.frozen).map(([k]) => k));
  const keep = <T>(r: Record<string, T>, ok: (k: string, v: T) => boolean) => Object.fromEntries(Object.entries(r).filter(([k, v]) => ok(k, v)));
  return {
    ...l,
    params: keep(l.params, (_, p) => !frozen.has(p.group)),
    groups: keep(l.groups, (k) => !frozen.has(k)),
    buffers: keep(l.buffers, (k) => ![...frozen].some((g) => k.startsWith(`param:${g}:`))),
  };
}

function sameLayout(a: StateLayout, b: StateLayout): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The two step programs. `frozen`: the encoders of the objective's frozen
 * terms (compiler/encoders/frozen.ts frozenTerms), lowered into g_step; the
 * caller fills their parameters from the checkpoints.
 */
export function buildGanSteps(m: CheckedModel, batch: number, limits: PlanLimits = DEFAULT_LIMITS, frozen: readonly FrozenTerm[] = []): GanSteps {
  const w = weights(m);
  const D = buildD(m, batch, w);
  const G = buildG(m, batch, w, frozen);
  // Both graphs create the same params and buffers in the same order (G's
  // adds the frozen encoders' last), so one layout serves both programs.
  const layout = layoutState(G.s.b.graph, limits);
  if (!sameLayout(layoutState(D.s.b.graph, limits), withoutFrozen(layout))) throw new Error('internal: D and G step graphs disagree on the parameter layout');
  const groups = { g: 'G', d: m.networks.filter((n) => n.kind === 'discriminator').map((n) => n.name) };
  const dStep = D.s.compile(layout, { name: 'd_step', grads: D.grads, groups: groups.d }, limits);
  const gStep = G.s.compile(layout, { name: 'g_step', grads: G.grads, groups: [groups.g] }, limits);
  return { layout, dStep, gStep, groups, unsupported: unsupportedTerms(m, frozen) };
}
