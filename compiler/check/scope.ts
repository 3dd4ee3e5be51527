// Lexical scopes of the checker. Lookups walk outwards; assignment binds in
// the current scope (a `repeat` or `if` body shares its enclosing scope, like
// Python). `lazy` entries are created on first use (a discriminator's inputs
// appear in its graph only if it reads them).
import type { Value } from './values.ts';

export class Scope {
  private readonly vars = new Map<string, Value>();
  private readonly lazy = new Map<string, () => Value>();

  constructor(readonly parent?: Scope) {}

  get(name: string): Value | undefined {
    const v = this.vars.get(name);
    if (v) return v;
    const make = this.lazy.get(name);
    if (make) {
      const made = make();
      this.vars.set(name, made);
      this.lazy.delete(name);
      return made;
    }
    return this.parent?.get(name);
  }

  set(name: string, v: Value): void {
    this.vars.set(name, v);
  }

  setLazy(name: string, make: () => Value): void {
    this.lazy.set(name, make);
  }

  /** Names bound directly here (not in parents). */
  ownEntries(): [string, Value][] {
    return [...this.vars.entries()];
  }

  /** Every visible name, for "did you mean". */
  allNames(): string[] {
    const out = new Set<string>([...this.vars.keys(), ...this.lazy.keys()]);
    for (const n of this.parent?.allNames() ?? []) out.add(n);
    return [...out];
  }
}
