// Views of a checked model: a torchinfo-style table for people and a JSON
// object for tools (`gan check --json`).
import { numel } from './graph.ts';
import type { CheckedModel, NetworkInfo } from './model.ts';
import { objectiveInEffect } from './settings.ts';
import { shapeStr } from './values.ts';

export interface LayerRow {
  path: string;
  op: string;
  shape: number[];
  parameters: number;
  macs: number;
}

export function layerRows(n: NetworkInfo): LayerRow[] {
  return n.graph.nodes
    .filter((x) => x.kind !== 'input')
    .map((x) => ({ path: x.path, op: x.op, shape: x.shape, parameters: x.params.reduce((s, p) => s + numel(p.shape), 0), macs: x.macs }));
}

/** An encoder file declares encoders only: no GAN, so no objective or training. */
const encoderFile = (m: CheckedModel) => m.networks.length === 0 && m.encoders.length > 0;

export function toJsonSummary(m: CheckedModel): object {
  const encoders = m.encoders.map((n) => ({
    name: n.name,
    kind: n.kind,
    parameters: n.graph.parameters,
    macs: n.graph.macs,
    inputs: Object.fromEntries(Object.entries(n.inputs).map(([k, id]) => [k, n.graph.nodes[id].shape])),
    output: n.graph.nodes[n.output!].shape,
    checkpointNames: (n.checkpointNames ?? []).map((r) => [r.from, r.to]),
    layers: layerRows(n),
  }));
  if (encoderFile(m)) return { model: m.name, file: m.file, params: m.params, encoders };
  return {
    model: m.name,
    file: m.file,
    params: m.params,
    ...(encoders.length ? { encoders } : {}),
    networks: m.networks.map((n) => ({
      name: n.name,
      kind: n.kind,
      resolution: n.resolution,
      parameters: n.graph.parameters,
      macs: n.graph.macs,
      ...(n.kind === 'generator' ? { stages: n.stages.map(({ image: _i, ...s }) => s) } : { heads: Object.keys(n.heads) }),
      losses: Object.keys(n.losses),
      inputs: Object.fromEntries(Object.entries(n.inputs).map(([k, id]) => [k, n.graph.nodes[id].shape])),
      layers: layerRows(n),
    })),
    objective: objectiveInEffect(m.objective, m.networks),
    train: m.train,
  };
}

const fmt = (n: number) => n.toLocaleString('en-US');

function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** A table per network: layer path, op, output shape, parameters, MACs; then totals. */
export function renderSummary(m: CheckedModel, opts: { layers?: boolean } = {}): string {
  const out: string[] = [];
  out.push(`model ${m.name}  (${m.file})`);
  const ps = Object.entries(m.params).map(([k, v]) => `${k}=${v}`);
  if (ps.length) out.push(`params: ${ps.join('  ')}`);
  for (const n of [...m.networks, ...m.encoders]) {
    out.push('');
    const title =
      n.kind === 'generator'
        ? `generator ${n.name}: ${n.stages.map((s) => `${s.name} @ ${s.resolution}`).join(' -> ')}`
        : n.kind === 'encoder'
          ? `encoder ${n.name} (frozen) -> ${shapeStr(n.graph.nodes[n.output!].shape)}${n.checkpointNames ? `, ${n.checkpointNames.length} checkpoint name rules` : ', no checkpoint names (weights) declared'}`
          : `discriminator ${n.name} @ ${n.resolution}: heads ${Object.keys(n.heads).join(', ')}`;
    out.push(title);
    const rows = layerRows(n);
    if (opts.layers !== false) {
      const headers = ['layer', 'op', 'output shape', 'params', 'MACs'];
      const cells = rows.map((r) => [r.path, r.op, shapeStr(r.shape), r.parameters ? fmt(r.parameters) : '-', r.macs ? fmt(r.macs) : '-']);
      const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
      const line = (c: string[]) => c.map((x, i) => (i >= 3 ? x.padStart(widths[i]) : x.padEnd(widths[i]))).join('  ').trimEnd();
      out.push(line(headers));
      out.push(widths.map((w) => '-'.repeat(w)).join('  '));
      for (const c of cells) out.push(line(c));
      out.push(widths.map((w) => '-'.repeat(w)).join('  '));
    }
    if (n.kind === 'generator') {
      for (const s of n.stages) out.push(`  stage ${s.name} @ ${s.resolution}: ${fmt(s.parameters)} params, ${fmt(s.macs)} MACs${s.from ? ` (refines ${s.from})` : ''}`);
    }
    const ins = Object.entries(n.inputs).map(([k, id]) => `${k} ${shapeStr(n.graph.nodes[id].shape)}`);
    if (ins.length) out.push(`  inputs: ${ins.join(', ')}`);
    if (Object.keys(n.losses).length) out.push(`  losses: ${Object.keys(n.losses).join(', ')}`);
    out.push(`  total ${n.name}: ${fmt(n.graph.parameters)} parameters (${human(n.graph.parameters)}), ${fmt(n.graph.macs)} MACs per sample (${human(n.graph.macs)})`);
  }
  if (encoderFile(m)) return out.join('\n');
  out.push('');
  // Only the objective settings that act on this model (no kl without a condition, ...); unset train keys are left out.
  const obj = Object.entries(objectiveInEffect(m.objective, m.networks)).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  out.push(`objective: ${obj.join('  ')}`);
  const tr = Object.entries(m.train).filter(([, v]) => v !== null).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  out.push(`train: ${tr.join('  ')}`);
  return out.join('\n');
}
