// Values the checker computes with. Compile-time scalars (params and the
// arithmetic on them), tensors with static per-sample shapes (the batch
// dimension is implicit), tuples, and symbols (bare names in settings such as
// `bce`). `poison` stands for the result of an expression that already
// reported an error, so one mistake is reported once.
import type { Span } from '../../grammar/ast.ts';

export type Value =
  | { t: 'num'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'str'; v: string }
  | { t: 'sym'; name: string }
  | { t: 'tensor'; shape: number[]; node: number; net: string }
  | { t: 'tuple'; items: Value[] }
  | { t: 'call'; name: string; args: Record<string, Value>; span: Span }
  | { t: 'stage'; name: string }
  | { t: 'poison' };

export type Tensor = Extract<Value, { t: 'tensor' }>;

export const poison: Value = { t: 'poison' };

export function shapeStr(shape: number[]): string {
  return `[${shape.join(', ')}]`;
}

export function describe(v: Value): string {
  switch (v.t) {
    case 'num':
      return Number.isInteger(v.v) ? 'an integer' : 'a number';
    case 'bool':
      return 'a boolean';
    case 'str':
      return 'a string';
    case 'sym':
      return `the name '${v.name}'`;
    case 'tensor':
      return `a tensor of shape ${shapeStr(v.shape)}`;
    case 'tuple':
      return `a tuple of ${v.items.length}`;
    case 'call':
      return `'${v.name}(...)'`;
    case 'stage':
      return `stage '${v.name}'`;
    case 'poison':
      return 'an invalid value';
  }
}

/** Plain JSON for summaries: numbers, strings, arrays, objects. */
export function toJson(v: Value): unknown {
  switch (v.t) {
    case 'num':
    case 'bool':
    case 'str':
      return v.v;
    case 'sym':
      return v.name;
    case 'tuple':
      return v.items.map(toJson);
    case 'call':
      return { kind: v.name, ...Object.fromEntries(Object.entries(v.args).map(([k, a]) => [k, toJson(a)])) };
    case 'stage':
      return v.name;
    case 'tensor':
      return shapeStr(v.shape);
    case 'poison':
      return null;
  }
}
