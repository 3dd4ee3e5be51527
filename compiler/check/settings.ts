// The objective and train sections: evaluated in order (a variant's entries
// come after its base's, so they override), validated against a schema, and
// read into the typed `ObjectiveConfig` and `TrainConfig` that every consumer
// (the GAN step, the CLI summary, the bench, the trainer) uses.
//
// The schema is the one place defaults live: a section key's default, and an
// optimizer argument's default, are applied here when the section is read, so
// no consumer needs (or may have) a fallback of its own. Defaults follow the
// StackGAN-v2 text-to-image config (shared/reference/stackgan.md).
//
// Keys keep the language's names (`use_uncond_loss`, `real_label`), so a
// setting has one name in a .gan file, in `--set`, in `gan check --json` and
// here.
import type * as A from '../../grammar/ast.ts';
import { Codes, DiagnosticError, didYouMean, error, type Diagnostic } from '../../grammar/diagnostics.ts';
import type { Evaluator } from './evaluate.ts';
import type { NetworkInfo } from './model.ts';
import type { Scope } from './scope.ts';
import { describe, type Value } from './values.ts';

// ---- the typed settings ----

export type AdversarialLoss = 'bce' | 'hinge' | 'wgan';

export interface AdamConfig {
  kind: 'adam';
  lr: number;
  betas: [number, number];
  eps: number;
  /** L2 added to the gradient, as torch.optim.Adam (not AdamW's decoupled decay). */
  weight_decay: number;
}

export interface SgdConfig {
  kind: 'sgd';
  lr: number;
  momentum: number;
  nesterov: boolean;
  weight_decay: number;
}

export type OptimizerConfig = AdamConfig | SgdConfig;

/**
 * A term of G's loss computed by a frozen encoder on one stage's images:
 * CLIP guidance (`clip(...)`, the CLIP image tower against the text) or the
 * perceptual loss (`vgg(...)`, VGG16 features of fake and real images).
 */
export interface EncoderTermConfig {
  weight: number;
  /** A generator stage name. */
  at: string;
  /** The .gan file declaring the encoder, relative to the model file. */
  model: string;
  /** Path of the checkpoint (safetensors under the publisher's tensor names), relative to the working directory. */
  checkpoint: string;
  /** A preset of the encoder file ('' = none): its test-size instance, say. */
  encoder_preset: string;
}

export interface ObjectiveConfig {
  adversarial: AdversarialLoss;
  use_uncond_loss: boolean;
  /** Weight of the unconditional head's terms when `use_uncond_loss`. */
  uncond: number;
  /** Weight of the conditioning-augmentation KL term (the generator's loss `kl`). */
  kl: number;
  /** Weight of the alignment head's terms. */
  align: number;
  colour: number;
  /** null: off (`perceptual = off`, or 0). */
  perceptual: EncoderTermConfig | null;
  /** null: off (`clip_guidance = off`). */
  clip_guidance: EncoderTermConfig | null;
}

export interface TrainConfig {
  batch: number;
  /** Unset unless the model says: a run gives steps or epochs. */
  epochs: number | null;
  steps: number | null;
  g: OptimizerConfig;
  /** One optimizer of this kind per discriminator. */
  d: OptimizerConfig;
  n_critic: number;
  d_every: number;
  real_label: number;
  g_ema: number;
  /** Share of wrong images from the real image's own data group (hard negatives). */
  wrong_same_group: number;
  seed: number;
}

// ---- checking and reading values ----

type Check = (v: Value) => string | undefined; // returns an error message
type Read<T> = (v: Value) => T; // only ever sees a value its check accepted

/** A call argument: its check, how to read it, its default (none = required). */
interface ArgSpec<T> {
  check: Check;
  read: Read<T>;
  default?: Value;
}

/** A section key. A key with a default is never null; one without is null when unset (or when its read gives null: `off`). */
type KeySpec<T> = { doc: string; check: Check; read: Read<T> } & (null extends T ? { default?: undefined } : { default: Value });

/** One spec per field of the typed config: adding a field without its spec (or the reverse) does not compile. */
export type SectionSchema<C> = { [K in keyof C]-?: KeySpec<C[K]> };
type CallSchema<C> = {
  args: { [K in Exclude<keyof C, 'kind'>]-?: ArgSpec<C[K]> };
  /** A rule across arguments, checked once each argument is valid (and defaulted). */
  refine?: (call: Omit<C, 'kind'>) => string | undefined;
};
type CallSchemas<U extends { kind: string }> = { [K in U['kind']]: CallSchema<Extract<U, { kind: K }>> };

const num = (v: number): Value => ({ t: 'num', v });
const NO_SPAN: A.Span = { file: '', offset: 0, length: 0 };

function internal(v: Value, want: string): never {
  throw new Error(`internal: a checked setting is ${describe(v)}, not ${want}`);
}
const readNum: Read<number> = (v) => (v.t === 'num' ? v.v : internal(v, 'a number'));
const readBool: Read<boolean> = (v) => (v.t === 'bool' ? v.v : internal(v, 'a boolean'));
const readStr: Read<string> = (v) => (v.t === 'str' ? v.v : internal(v, 'a string'));
const readSym: Read<string> = (v) => (v.t === 'sym' ? v.name : internal(v, 'a name'));
const readPair: Read<[number, number]> = (v) => (v.t === 'tuple' && v.items.length === 2 ? [readNum(v.items[0]), readNum(v.items[1])] : internal(v, 'a pair'));

const isNum = (min: number, max = Infinity, minOpen = false): Check => (v) =>
  v.t !== 'num' ? `must be a number, got ${describe(v)}` : (minOpen ? v.v <= min : v.v < min) || v.v > max ? `must be in ${minOpen ? '(' : '['}${min}, ${max === Infinity ? 'inf)' : max + ']'}, got ${v.v}` : undefined;
const isInt = (min: number): Check => (v) =>
  v.t !== 'num' || !Number.isInteger(v.v) ? `must be an integer, got ${describe(v)}` : v.v < min ? `must be at least ${min}, got ${v.v}` : undefined;
const isBool: Check = (v) => (v.t === 'bool' ? undefined : `must be true or false, got ${describe(v)}`);
const isStr: Check = (v) => (v.t === 'str' ? undefined : `must be a string, got ${describe(v)}`);
const isBetas: Check = (v) =>
  v.t === 'tuple' && v.items.length === 2 && v.items.every((i) => i.t === 'num' && i.v >= 0 && i.v < 1) ? undefined : `must be a pair of numbers in [0, 1), got ${describe(v)}`;

const positive = { check: isNum(0, Infinity, true), read: readNum };

const optimizers: CallSchemas<OptimizerConfig> = {
  adam: {
    args: {
      lr: positive,
      betas: { check: isBetas, read: readPair, default: { t: 'tuple', items: [num(0.5), num(0.999)] } },
      eps: { ...positive, default: num(1e-8) },
      weight_decay: { check: isNum(0), read: readNum, default: num(0) },
    },
  },
  // torch.optim.SGD with dampening 0 (runtime/optim.ts implements every argument here).
  sgd: {
    args: {
      lr: positive,
      momentum: { check: isNum(0, 1), read: readNum, default: num(0) },
      nesterov: { check: isBool, read: readBool, default: { t: 'bool', v: false } },
      weight_decay: { check: isNum(0), read: readNum, default: num(0) },
    },
    refine: (a) => (a.nesterov && a.momentum <= 0 ? 'nesterov needs a momentum > 0' : undefined),
  },
};

/** A call such as `adam(lr = 2e-4)`: checks the name and arguments; reads it with the arguments' defaults. */
function callOf<U extends { kind: string }>(schemas: CallSchemas<U>, what: string): { check: Check; read: Read<U> } {
  const specs = schemas as Record<string, { args: Record<string, ArgSpec<unknown>>; refine?: (args: Record<string, unknown>) => string | undefined }>;
  const names = Object.keys(specs);
  const readArgs = (v: Extract<Value, { t: 'call' }>) =>
    Object.fromEntries(Object.entries(specs[v.name].args).map(([k, spec]) => [k, spec.read(v.args[k] ?? spec.default ?? internal({ t: 'poison' }, `argument '${k}'`))]));
  const check: Check = (v) => {
    if (v.t !== 'call') return `must be ${names.map((k) => `${k}(...)`).join(' or ')}, got ${describe(v)}`;
    const s = specs[v.name]?.args;
    if (!s) return `unknown ${what} '${v.name}'${didYouMean(v.name, names) ? ` (${didYouMean(v.name, names)})` : ''}; expected ${names.join(' or ')}`;
    for (const k of Object.keys(v.args)) {
      if (!s[k]) return `${v.name} has no argument '${k}'${didYouMean(k, Object.keys(s)) ? ` (${didYouMean(k, Object.keys(s))})` : ''}`;
    }
    for (const [k, spec] of Object.entries(s)) {
      const a = v.args[k];
      if (!a) {
        if (!spec.default) return `${v.name} needs argument '${k}'`;
        continue;
      }
      const bad = spec.check(a);
      if (bad) return `${v.name}(${k}) ${bad}`;
    }
    const bad = specs[v.name].refine?.(readArgs(v));
    return bad && `${v.name}: ${bad}`;
  };
  const read: Read<U> = (v) => (v.t === 'call' ? ({ kind: v.name, ...readArgs(v) } as U) : internal(v, 'a call'));
  return { check, read };
}

const adversarialKinds: AdversarialLoss[] = ['bce', 'hinge', 'wgan'];

export function objectiveSchema(stageNames: string[]): SectionSchema<ObjectiveConfig> {
  const stage: Check = (v) => (v.t === 'sym' && stageNames.includes(v.name) ? undefined : `must name a generator stage (${stageNames.join(', ')}), got ${describe(v)}`);
  const encoderTerm = <K extends 'clip' | 'vgg'>(kind: K, model: string) =>
    callOf<{ kind: K } & EncoderTermConfig>(
      {
        [kind]: {
          args: {
            weight: { check: isNum(0), read: readNum },
            at: { check: stage, read: readSym },
            model: { check: isStr, read: readStr, default: { t: 'str', v: model } },
            checkpoint: { check: isStr, read: readStr },
            encoder_preset: { check: isStr, read: readStr, default: { t: 'str', v: '' } },
          },
        },
      } as CallSchemas<{ kind: K } & EncoderTermConfig>,
      'term',
    );
  const clip = encoderTerm('clip', 'encoders/clip-vit-b32.gan');
  const vgg = encoderTerm('vgg', 'encoders/vgg16.gan');
  const isOff = (v: Value) => v.t === 'sym' && v.name === 'off';
  const weight = (doc: string, v: number) => ({ doc, default: num(v), check: isNum(0), read: readNum });
  return {
    adversarial: {
      doc: 'adversarial loss: bce (hinge and wgan are not supported yet)',
      default: { t: 'sym', name: 'bce' },
      check: (v) => (v.t === 'sym' && (adversarialKinds as string[]).includes(v.name) ? undefined : `must be one of ${adversarialKinds.join(', ')}, got ${describe(v)}`),
      read: (v) => readSym(v) as AdversarialLoss,
    },
    use_uncond_loss: { doc: "add the unconditional head's loss", default: { t: 'bool', v: false }, check: isBool, read: readBool },
    uncond: weight('weight of the unconditional loss when enabled', 1),
    kl: weight('weight of the conditioning-augmentation KL term', 2),
    align: weight("weight of the alignment head's loss", 1),
    colour: weight('colour-consistency weight (0 = off)', 0),
    perceptual: {
      doc: 'vgg(weight, at, model, checkpoint, encoder_preset): MSE of frozen VGG16 features of fake and real images at a stage; off (or 0) = none',
      check: (v) =>
        isOff(v) || (v.t === 'num' && v.v === 0)
          ? undefined
          : v.t === 'num'
            ? `needs the frozen VGG16 encoder: write vgg(weight = ${v.v}, at = <stage>, checkpoint = "vgg16.safetensors"), or off`
            : vgg.check(v),
      read: (v) => {
        if (v.t !== 'call') return null;
        const { kind: _, ...c } = vgg.read(v);
        return c;
      },
    },
    clip_guidance: {
      doc: 'clip(weight, at, model, checkpoint, encoder_preset): guidance from a frozen CLIP image encoder (the `image` encoder of `model`); off = none',
      check: (v) => (isOff(v) ? undefined : clip.check(v)),
      read: (v) => {
        if (isOff(v)) return null;
        const { kind: _, ...c } = clip.read(v);
        return c;
      },
    },
  };
}

const optimizer = callOf(optimizers, 'optimizer');
const adamDefault: Value = { t: 'call', name: 'adam', args: { lr: num(2e-4) }, span: NO_SPAN };

export const trainSchema: SectionSchema<TrainConfig> = {
  batch: { doc: 'batch size', default: num(24), check: isInt(1), read: readNum },
  epochs: { doc: 'number of epochs', check: isInt(1), read: readNum },
  steps: { doc: 'number of generator steps', check: isInt(1), read: readNum },
  g: { doc: 'generator optimizer', default: adamDefault, ...optimizer },
  d: { doc: 'discriminator optimizer (one per discriminator)', default: adamDefault, ...optimizer },
  n_critic: { doc: 'discriminator steps per generator step', default: num(1), check: isInt(1), read: readNum },
  d_every: { doc: 'update the discriminators on every k-th generator step only', default: num(1), check: isInt(1), read: readNum },
  real_label: { doc: 'target for real samples (< 1 smooths labels)', default: num(1), check: isNum(0, 1, true), read: readNum },
  g_ema: { doc: 'EMA decay of generator weights (0 = off)', default: num(0.999), check: isNum(0, 1), read: readNum },
  wrong_same_group: { doc: 'share of wrong images drawn from the real image\'s own data group (hard negatives; needs "group" in captions.jsonl)', default: num(0), check: isNum(0, 1), read: readNum },
  seed: { doc: 'random seed', default: num(0), check: isInt(0), read: readNum },
};

function clone(v: Value): Value {
  if (v.t === 'call') return { ...v, args: Object.fromEntries(Object.entries(v.args).map(([k, a]) => [k, clone(a)])) };
  if (v.t === 'tuple') return { t: 'tuple', items: v.items.map(clone) };
  return v;
}

/** Evaluates, validates and reads a section into its typed config (defaults applied). */
export function evalSection<C>(
  section: 'objective' | 'train',
  settings: A.Setting[],
  schema: SectionSchema<C>,
  ev: Evaluator,
  scope: Scope,
  diags: Diagnostic[],
): C {
  const keys = schema as Record<string, KeySpec<unknown>>;
  const values = new Map<string, { v: Value; span: A.Span }>();
  for (const [k, s] of Object.entries(keys)) if (s.default) values.set(k, { v: clone(s.default), span: NO_SPAN });
  ev.symbolic = true;
  try {
    for (const s of settings) {
      try {
        const key = s.path[0];
        const spec = keys[key];
        if (!spec) {
          throw new DiagnosticError(
            error(Codes.unknownSetting, `unknown ${section} setting '${key}'`, s.pathSpan, {
              label: `expected one of ${Object.keys(keys).join(', ')}`,
              help: didYouMean(key, Object.keys(keys)),
            }),
          );
        }
        const v = ev.expr(s.value, scope, undefined);
        if (v.t === 'poison') continue;
        if (s.path.length === 1) {
          const bad = spec.check(v);
          if (bad) throw new DiagnosticError(error(Codes.badValue, `${section}.${key} ${bad}`, s.value.span));
          values.set(key, { v, span: s.value.span });
          continue;
        }
        // Dotted: `d.lr = 5e-5` changes one argument of an existing call.
        const cur = values.get(key);
        if (!cur || cur.v.t !== 'call' || s.path.length !== 2) {
          throw new DiagnosticError(error(Codes.unknownSetting, `cannot set '${s.path.join('.')}': '${key}' is not a call with named arguments`, s.pathSpan));
        }
        const updated = clone(cur.v) as Extract<Value, { t: 'call' }>;
        updated.args[s.path[1]] = v;
        const bad = spec.check(updated);
        if (bad) throw new DiagnosticError(error(Codes.badValue, `${section}.${key} ${bad}`, s.pathSpan));
        values.set(key, { v: updated, span: s.value.span });
      } catch (e) {
        ev.report(e);
      }
    }
  } finally {
    ev.symbolic = false;
  }
  if (section === 'objective') {
    const adv = values.get('adversarial');
    if (adv && adv.v.t === 'sym' && adv.v.name !== 'bce') {
      diags.push(error(Codes.notSupported, `adversarial loss '${adv.v.name}' is not supported yet`, adv.span.file ? adv.span : undefined, { label: 'only bce is implemented', help: 'use adversarial = bce' }));
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, spec] of Object.entries(keys)) {
    const v = values.get(k)?.v;
    out[k] = v ? spec.read(v) : null;
  }
  return out as C;
}

/**
 * The objective settings that act on a model of these networks: `kl` only
 * with a generator loss `kl` (a condition), `align` only with an align head,
 * `use_uncond_loss` and `uncond` only with a discriminator that has both a
 * cond and an uncond head, `colour` only between two stages, `clip_guidance`
 * and `perceptual` only when set with a weight above 0. What a summary prints.
 */
export function objectiveInEffect(o: ObjectiveConfig, networks: readonly NetworkInfo[]): Partial<ObjectiveConfig> {
  const g = networks.find((n) => n.kind === 'generator');
  const ds = networks.filter((n) => n.kind === 'discriminator');
  const condAndUncond = ds.some((d) => 'cond' in d.heads && 'uncond' in d.heads);
  const out: Partial<ObjectiveConfig> = { adversarial: o.adversarial };
  if (condAndUncond) out.use_uncond_loss = o.use_uncond_loss;
  if (condAndUncond && o.use_uncond_loss) out.uncond = o.uncond;
  if (g && 'kl' in g.losses) out.kl = o.kl;
  if (ds.some((d) => 'align' in d.heads)) out.align = o.align;
  if (g && g.stages.length > 1) out.colour = o.colour;
  if (o.perceptual && o.perceptual.weight > 0) out.perceptual = o.perceptual;
  if (o.clip_guidance && o.clip_guidance.weight > 0) out.clip_guidance = o.clip_guidance;
  return out;
}
