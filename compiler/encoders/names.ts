// How an encoder's `weights` rules turn a published checkpoint's tensor name
// into a parameter path: `"visual.transformer.resblocks.{i}.ln_1." =
// "Residual.{i}/layernorm.0/"`. A rule whose ends are `.` and `/` maps a prefix
// (the rest of the name is kept); `{name}` placeholders match whole numbers and
// carry them to the same placeholders on the other side, in order. A rule to
// "" names a tensor the checkpoint holds that no parameter takes (CLIP's
// `logit_scale`): loading skips it. One place
// for the checker (every rule names a parameter, every parameter is named) and
// the loader (compiler/encoders/checkpoint.ts).
import type { WeightRule } from '../../grammar/ast.ts';

const PLACEHOLDER = /\{([A-Za-z_]\w*)\}/g;

export const isPrefixRule = (r: WeightRule) => r.from.endsWith('.') && r.to.endsWith('/');

/** A pattern's placeholders, in order. */
export const placeholders = (pattern: string) => [...pattern.matchAll(PLACEHOLDER)].map((m) => m[1]);

/** A name pattern as a regular expression; each placeholder captures a whole number. */
export function namePattern(pattern: string, prefix: boolean): RegExp {
  const body = pattern
    .split(/\{[A-Za-z_]\w*\}/)
    .map((part) => part.replace(/[.*+?^$()|[\]\\{}]/g, '\\$&'))
    .join('(\\d+)');
  return new RegExp(`^${body}${prefix ? '' : '$'}`);
}

/**
 * The parameter path a checkpoint tensor name maps to ('' for a tensor to
 * skip), or undefined when no rule matches. An exact rule wins over a prefix rule; among prefix rules the
 * longest matching prefix wins.
 */
export function paramPathFor(rules: readonly WeightRule[], name: string): string | undefined {
  let best: { path: string; length: number; exact: boolean } | undefined;
  for (const r of rules) {
    const prefix = isPrefixRule(r);
    const m = namePattern(r.from, prefix).exec(name);
    if (!m) continue;
    let k = 1;
    const path = r.to.replace(PLACEHOLDER, () => String(Number(m[k++])));
    const candidate = { path: prefix ? path + name.slice(m[0].length) : path, length: m[0].length, exact: !prefix };
    if (!best || (candidate.exact && !best.exact) || (candidate.exact === best.exact && candidate.length > best.length)) best = candidate;
  }
  return best?.path;
}
