// The state layout shared by every program of a model: params packed by
// optimizer group into arena chunks no larger than one binding (so one
// optimizer dispatch covers a chunk), a gradient arena with the same layout
// (none for a frozen group: a pretrained encoder is never trained), and the
// state buffers (BatchNorm running statistics).
import { PLAN_FORMAT_VERSION, type Slot, type StateLayout } from '../../runtime/format/plan.ts';
import { bytesOf, type Graph, type Value } from '../ir/graph.ts';
import { DEFAULT_LIMITS, tooBig, type PlanLimits } from './limits.ts';

const align = (x: number, a: number) => Math.ceil(x / a) * a;

/** Packs params by group (and state buffers) into arena chunks no larger than one binding. */
export function layoutState(graph: Graph, limits: PlanLimits = DEFAULT_LIMITS): StateLayout {
  const layout: StateLayout = { version: PLAN_FORMAT_VERSION, params: {}, state: {}, buffers: {}, groups: {} };
  const a = limits.minStorageBufferOffsetAlignment;
  const pack = (values: Value[], prefix: string, place: (v: Value, buffer: string, offset: number) => void): string[] => {
    const chunks: string[] = [];
    let used = Infinity;
    for (const v of values) {
      const size = bytesOf(v);
      if (size > limits.maxStorageBufferBindingSize) throw tooBig(`${v.kind} '${v.name}'`, v.shape, limits);
      if (used + size > limits.maxStorageBufferBindingSize) {
        chunks.push(`${prefix}:${chunks.length}`);
        used = 0;
      }
      const buffer = chunks[chunks.length - 1];
      place(v, buffer, used);
      used = align(used + size, a);
      layout.buffers[buffer] = used;
    }
    return chunks;
  };
  const groups = new Map<string, Value[]>();
  for (const p of graph.params) {
    const g = p.group ?? 'default';
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(p);
  }
  for (const [g, ps] of groups) {
    const frozen = ps[0].frozen === true;
    if (ps.some((p) => (p.frozen === true) !== frozen)) throw new Error(`internal: param group '${g}' mixes frozen and trained params`);
    const gradOf = (buffer: string) => buffer.replace(/^param:/, 'grad:');
    const chunks = pack(ps, `param:${g}`, (v, buffer, offset) => {
      const size = bytesOf(v);
      layout.params[v.name!] = {
        buffer,
        offset,
        size,
        shape: [...v.shape],
        group: g,
        init: v.init ?? { kind: 'zeros' },
        ...(frozen ? {} : { grad: { buffer: gradOf(buffer), offset, size } }),
      };
    });
    if (!frozen) for (const c of chunks) layout.buffers[gradOf(c)] = layout.buffers[c];
    layout.groups[g] = {
      params: ps.map((p) => p.name!),
      chunks: chunks.map((c) => ({ param: c, ...(frozen ? {} : { grad: gradOf(c) }), bytes: layout.buffers[c] })),
      ...(frozen ? { frozen } : {}),
    };
  }
  pack(graph.byKind('buffer'), 'state', (v, buffer, offset) => {
    layout.state[v.name!] = { buffer, offset, size: bytesOf(v), shape: [...v.shape], init: v.init ?? { kind: 'zeros' } };
  });
  return layout;
}

/** The layout's slot of a param or state buffer (a plain Slot, without shape or init). */
export function layoutSlot(s: Slot | undefined, v: Value): Slot {
  if (!s) throw new Error(`'${v.name}' is not in the state layout (was the layout made from this graph?)`);
  return { buffer: s.buffer, offset: s.offset, size: s.size };
}
