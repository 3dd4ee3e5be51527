// Compile-time functions of the language: arithmetic on numbers (params and
// shapes) and shape introspection in blocks. The tensor ops (conv, glu,
// bce, ...) are language ops, each defined once in compiler/lang/ops.

/** Compile-time functions on numbers, usable in params and shapes. */
export const scalarFunctions: Record<string, { arity: number[]; f: (...x: number[]) => number }> = {
  log2: { arity: [1], f: Math.log2 },
  floor: { arity: [1], f: Math.floor },
  ceil: { arity: [1], f: Math.ceil },
  round: { arity: [1], f: Math.round },
  abs: { arity: [1], f: Math.abs },
  min: { arity: [2], f: Math.min },
  max: { arity: [2], f: Math.max },
  int: { arity: [1], f: Math.trunc },
  sqrt: { arity: [1], f: Math.sqrt },
  exp: { arity: [1], f: Math.exp },
  log: { arity: [1], f: Math.log },
};

/** Shape introspection usable in blocks: `channels(x)`. */
export const shapeFunctions: Record<string, (shape: number[]) => number | undefined> = {
  channels: (s) => s[0],
  height: (s) => (s.length === 3 ? s[1] : undefined),
  width: (s) => (s.length === 3 ? s[2] : undefined),
  numel: (s) => s.reduce((a, b) => a * b, 1),
  /** The last dimension: the width of a token matrix [T, E]. */
  features: (s) => s[s.length - 1],
};
