// Text form of a graph, one op per line with its shape, like a jaxpr:
//
//   param   %0 : f32[4,8]  fc/weight  (G, orthogonal)
//   input   %1 : f32[2,8]  x
//   %2 : f32[2,4] = matmul %1 %0  transA=false transB=true
//   update  bn/running_mean <- %9
//   output  loss = %12
import type { Graph, Init, Node, Value } from './graph.ts';
import { topoSort } from './graph.ts';

const ty = (v: Value) => `f32[${v.shape.join(',')}]`;

function fmtInit(i: Init | undefined): string {
  if (!i) return '';
  switch (i.kind) {
    case 'const':
      return `const ${i.value}`;
    case 'normal':
      return `normal(${i.mean}, ${i.std})`;
    case 'uniform':
      return `uniform(${i.low}, ${i.high})`;
    case 'orthogonal':
      return `orthogonal(gain ${i.gain})`;
    default:
      return i.kind;
  }
}

function fmtAttr(v: unknown): string {
  return Array.isArray(v) ? `[${v.join(',')}]` : String(v);
}

function fmtNode(n: Node): string {
  const attrs = Object.entries(n.attrs)
    // An op without inputs (fill, random numbers) has its output shape as an attr: shown once, in the type.
    .filter(([k]) => !(n.inputs.length === 0 && k === 'shape'))
    .map(([k, v]) => `${k}=${fmtAttr(v)}`);
  const args = n.inputs.map((v) => `%${v.id}`);
  const name = n.output.name ? `  # ${n.output.name}` : '';
  return `%${n.output.id} : ${ty(n.output)} = ${[n.op, ...args].join(' ')}${attrs.length ? '  ' + attrs.join(' ') : ''}${name}`;
}

/** Prints the nodes needed for `roots` (default: outputs, updates), leaves first. */
export function printGraph(g: Graph, roots?: Value[]): string {
  const rs = roots ?? [...g.outputs.values(), ...g.updates.map((u) => u.value)];
  const nodes = rs.length ? topoSort(rs) : g.nodes;
  const used = new Set<number>();
  for (const n of nodes) for (const v of n.inputs) used.add(v.id);
  for (const r of rs) used.add(r.id);
  const lines: string[] = [];
  for (const v of g.values) {
    if (v.node || !used.has(v.id)) continue;
    const extra = v.kind === 'param' ? `  (${v.group}, ${fmtInit(v.init)})` : v.kind === 'buffer' ? `  (${fmtInit(v.init)})` : '';
    lines.push(`${v.kind.padEnd(7)} %${v.id} : ${ty(v)}  ${v.name ?? ''}${extra}`);
  }
  for (const n of nodes) lines.push(fmtNode(n));
  for (const u of g.updates) if (used.has(u.value.id) || !roots) lines.push(`update  ${u.target.name} <- %${u.value.id}`);
  for (const [name, v] of g.outputs) lines.push(`output  ${name} = %${v.id}`);
  return lines.join('\n');
}
