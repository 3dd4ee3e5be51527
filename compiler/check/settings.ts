// The objective and train sections: evaluated in order (a variant's entries
// come after its base's, so they override), then validated against a schema
// with defaults from the StackGAN-v2 text-to-image config.
import type * as A from '../../grammar/ast.ts';
import { Codes, DiagnosticError, didYouMean, error, type Diagnostic } from '../../grammar/diagnostics.ts';
import type { Evaluator } from './evaluate.ts';
import type { Scope } from './scope.ts';
import { describe, toJson, type Value } from './values.ts';

type Check = (v: Value, at: A.Span, key: string) => string | undefined; // returns an error message

const isNum = (min: number, max = Infinity, minOpen = false): Check => (v) =>
  v.t !== 'num' ? `must be a number, got ${describe(v)}` : (minOpen ? v.v <= min : v.v < min) || v.v > max ? `must be in ${minOpen ? '(' : '['}${min}, ${max === Infinity ? 'inf)' : max + ']'}, got ${v.v}` : undefined;
const isInt = (min: number): Check => (v) =>
  v.t !== 'num' || !Number.isInteger(v.v) ? `must be an integer, got ${describe(v)}` : v.v < min ? `must be at least ${min}, got ${v.v}` : undefined;
const isBool: Check = (v) => (v.t === 'bool' ? undefined : `must be true or false, got ${describe(v)}`);

interface CallSchema {
  args: Record<string, { check: Check; default?: Value }>;
  /** A rule across arguments, checked once each argument is valid and defaulted. */
  refine?: (args: Record<string, Value>) => string | undefined;
}

const betas: Check = (v) =>
  v.t === 'tuple' && v.items.length === 2 && v.items.every((i) => i.t === 'num' && i.v >= 0 && i.v < 1) ? undefined : `must be a pair of numbers in [0, 1), got ${describe(v)}`;

const optimizers: Record<string, CallSchema> = {
  adam: {
    args: {
      lr: { check: isNum(0, Infinity, true) },
      betas: { check: betas, default: { t: 'tuple', items: [{ t: 'num', v: 0.5 }, { t: 'num', v: 0.999 }] } },
      eps: { check: isNum(0, Infinity, true), default: { t: 'num', v: 1e-8 } },
      // L2 added to the gradient, as torch.optim.Adam (not AdamW's decoupled decay).
      weight_decay: { check: isNum(0), default: { t: 'num', v: 0 } },
    },
  },
  // torch.optim.SGD with dampening 0 (runtime/optim.ts implements every argument here).
  sgd: {
    args: {
      lr: { check: isNum(0, Infinity, true) },
      momentum: { check: isNum(0, 1), default: { t: 'num', v: 0 } },
      nesterov: { check: isBool, default: { t: 'bool', v: false } },
      weight_decay: { check: isNum(0), default: { t: 'num', v: 0 } },
    },
    refine: (a) => (a.nesterov.t === 'bool' && a.nesterov.v && a.momentum.t === 'num' && a.momentum.v <= 0 ? 'nesterov needs a momentum > 0' : undefined),
  },
};

function callOf(schemas: Record<string, CallSchema>, what: string): Check {
  return (v) => {
    if (v.t !== 'call') return `must be ${Object.keys(schemas).map((k) => `${k}(...)`).join(' or ')}, got ${describe(v)}`;
    const s = schemas[v.name];
    if (!s) return `unknown ${what} '${v.name}'${didYouMean(v.name, Object.keys(schemas)) ? ` (${didYouMean(v.name, Object.keys(schemas))})` : ''}; expected ${Object.keys(schemas).join(' or ')}`;
    for (const k of Object.keys(v.args)) {
      if (!s.args[k]) return `${v.name} has no argument '${k}'${didYouMean(k, Object.keys(s.args)) ? ` (${didYouMean(k, Object.keys(s.args))})` : ''}`;
    }
    for (const [k, spec] of Object.entries(s.args)) {
      const a = v.args[k];
      if (!a) {
        if (!spec.default) return `${v.name} needs argument '${k}'`;
        v.args[k] = spec.default;
        continue;
      }
      const bad = spec.check(a, v.span, k);
      if (bad) return `${v.name}(${k}) ${bad}`;
    }
    const bad = s.refine?.(v.args);
    return bad && `${v.name}: ${bad}`;
  };
}

const adversarialKinds = ['bce', 'hinge', 'wgan'];

export interface SectionSchema {
  keys: Record<string, { check: Check; default?: Value; doc: string }>;
}

export function objectiveSchema(stageNames: string[]): SectionSchema {
  const stage: Check = (v) => (v.t === 'sym' && stageNames.includes(v.name) ? undefined : `must name a generator stage (${stageNames.join(', ')}), got ${describe(v)}`);
  const str: Check = (v) => (v.t === 'str' ? undefined : `must be a string, got ${describe(v)}`);
  return {
    keys: {
      adversarial: {
        doc: 'adversarial loss: bce (hinge and wgan are not supported yet)',
        default: { t: 'sym', name: 'bce' },
        check: (v) => {
          if (v.t !== 'sym' || !adversarialKinds.includes(v.name)) return `must be one of ${adversarialKinds.join(', ')}, got ${describe(v)}`;
          return undefined;
        },
      },
      use_uncond_loss: { doc: 'add the unconditional head\'s loss', default: { t: 'bool', v: false }, check: isBool },
      uncond: { doc: 'weight of the unconditional loss when enabled', default: { t: 'num', v: 1 }, check: isNum(0) },
      kl: { doc: 'weight of the conditioning-augmentation KL term', default: { t: 'num', v: 2 }, check: isNum(0) },
      align: { doc: 'weight of the alignment head\'s loss', default: { t: 'num', v: 1 }, check: isNum(0) },
      colour: { doc: 'colour-consistency weight (0 = off)', default: { t: 'num', v: 0 }, check: isNum(0) },
      perceptual: { doc: 'perceptual loss weight (0 = off)', default: { t: 'num', v: 0 }, check: isNum(0) },
      clip_guidance: {
        doc: 'clip(weight, at, encoder, weights): guidance from a frozen CLIP image encoder',
        check: callOf({ clip: { args: { weight: { check: isNum(0) }, at: { check: stage }, encoder: { check: str, default: { t: 'str', v: 'ViT-B/32' } }, weights: { check: str } } } }, 'guidance'),
      },
    },
  };
}

export const trainSchema: SectionSchema = {
  keys: {
    batch: { doc: 'batch size', default: { t: 'num', v: 24 }, check: isInt(1) },
    epochs: { doc: 'number of epochs', check: isInt(1) },
    steps: { doc: 'number of generator steps', check: isInt(1) },
    g: { doc: 'generator optimizer', default: { t: 'call', name: 'adam', args: { lr: { t: 'num', v: 2e-4 } }, span: { file: '', offset: 0, length: 0 } }, check: callOf(optimizers, 'optimizer') },
    d: { doc: 'discriminator optimizer (one per discriminator)', default: { t: 'call', name: 'adam', args: { lr: { t: 'num', v: 2e-4 } }, span: { file: '', offset: 0, length: 0 } }, check: callOf(optimizers, 'optimizer') },
    n_critic: { doc: 'discriminator steps per generator step', default: { t: 'num', v: 1 }, check: isInt(1) },
    d_every: { doc: 'update the discriminators on every k-th generator step only', default: { t: 'num', v: 1 }, check: isInt(1) },
    real_label: { doc: 'target for real samples (< 1 smooths labels)', default: { t: 'num', v: 1 }, check: isNum(0, 1, true) },
    g_ema: { doc: 'EMA decay of generator weights (0 = off)', default: { t: 'num', v: 0.999 }, check: isNum(0, 1) },
    seed: { doc: 'random seed', default: { t: 'num', v: 0 }, check: isInt(0) },
  },
};

function clone(v: Value): Value {
  if (v.t === 'call') return { ...v, args: Object.fromEntries(Object.entries(v.args).map(([k, a]) => [k, clone(a)])) };
  if (v.t === 'tuple') return { t: 'tuple', items: v.items.map(clone) };
  return v;
}

/** Evaluates and validates a section; returns plain JSON values. */
export function evalSection(
  section: 'objective' | 'train',
  settings: A.Setting[],
  schema: SectionSchema,
  ev: Evaluator,
  scope: Scope,
  diags: Diagnostic[],
): Record<string, unknown> {
  const values = new Map<string, { v: Value; span: A.Span }>();
  for (const [k, s] of Object.entries(schema.keys)) if (s.default) values.set(k, { v: clone(s.default), span: { file: '', offset: 0, length: 0 } });
  ev.symbolic = true;
  try {
    for (const s of settings) {
      try {
        const key = s.path[0];
        const spec = schema.keys[key];
        if (!spec) {
          throw new DiagnosticError(
            error(Codes.unknownSetting, `unknown ${section} setting '${key}'`, s.pathSpan, {
              label: `expected one of ${Object.keys(schema.keys).join(', ')}`,
              help: didYouMean(key, Object.keys(schema.keys)),
            }),
          );
        }
        const v = ev.expr(s.value, scope, undefined);
        if (v.t === 'poison') continue;
        if (s.path.length === 1) {
          const bad = spec.check(v, s.value.span, key);
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
        const bad = spec.check(updated, s.value.span, key);
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
  return Object.fromEntries([...values.entries()].map(([k, { v }]) => [k, toJson(v)]));
}
