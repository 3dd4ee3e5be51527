// A float64 CPU evaluator of the IR, from each op's `ref` semantics. Slow and
// simple on purpose: it is the second oracle (after PyTorch) for gradient rules,
// via finite differences, and needs no GPU.
import { topoSort, type Value } from './graph.ts';
import { numel } from './shape.ts';
import { primitive } from '../ops/registry.ts';

/** Evaluates `roots`; `feeds` gives every leaf they need (params, inputs, buffers, noise) by value id. */
export function evaluate(roots: readonly Value[], feeds: ReadonlyMap<number, Float64Array>): Map<number, Float64Array> {
  const vals = new Map<number, Float64Array>(feeds);
  for (const n of topoSort(roots)) {
    if (vals.has(n.output.id)) continue; // fed (e.g. fixed noise)
    const def = primitive(n.op);
    if (!def.ref) throw new Error(`op '${n.op}' has no reference semantics`);
    const ins = n.inputs.map((v) => {
      const x = vals.get(v.id);
      if (!x) throw new Error(`evaluate: no value for ${v.kind} ${v.name ? `'${v.name}'` : `%${v.id}`}`);
      if (x.length !== numel(v.shape)) throw new Error(`evaluate: value %${v.id} has ${x.length} elements, shape needs ${numel(v.shape)}`);
      return x;
    });
    vals.set(n.output.id, def.ref(ins, { out: n.output.shape, ins: n.inputs.map((v) => v.shape), attrs: n.attrs }));
  }
  return vals;
}
