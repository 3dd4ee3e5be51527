// `gan doctor`: what this machine offers gan-dsl: Node, the WebGPU adapter
// Dawn chose, its key limits. Exits non-zero when there is no adapter.
import { describeAdapter, requestAdapter, NoAdapterError, pollInterval } from '../../runtime/device.ts';

export interface DoctorReport {
  node: string;
  nodeOk: boolean;
  adapter: ReturnType<typeof describeAdapter> | null;
  /** Milliseconds between dawn.node's ticks while GPU work is pending on this adapter; 0 = Dawn's own busy loop (runtime/dawn-polling.ts). */
  dawnPollMs?: number;
  problem?: string;
}

export async function doctorReport(): Promise<DoctorReport> {
  const node = process.versions.node;
  const nodeOk = Number(node.split('.')[0]) >= 20;
  try {
    const adapter = await requestAdapter();
    const info = describeAdapter(adapter);
    return { node, nodeOk, adapter: info, dawnPollMs: pollInterval(info.software) };
  } catch (e) {
    if (e instanceof NoAdapterError) return { node, nodeOk, adapter: null, problem: e.message };
    throw e;
  }
}

const MiB = 1024 * 1024;
function fmtLimit(k: string, v: number): string {
  return /Size$/.test(k) && v >= MiB ? `${(v / MiB).toFixed(0)} MiB` : String(v);
}

export function renderDoctor(r: DoctorReport): string {
  const lines: string[] = [];
  lines.push(`node      ${r.node}${r.nodeOk ? '' : '  (gan-dsl needs Node 20 or newer)'}`);
  if (!r.adapter) {
    lines.push(`adapter   none`);
    lines.push('');
    lines.push(`error: ${r.problem}`);
    return lines.join('\n');
  }
  const a = r.adapter;
  lines.push(`adapter   ${a.description || a.device} (vendor ${a.vendor}, architecture ${a.architecture})`);
  lines.push(`backend   ${a.backend}`);
  lines.push(`software  ${a.software ? 'yes (CPU emulation: expect single-digit GFLOP/s; use small widths)' : 'no'}`);
  lines.push('limits');
  for (const [k, v] of Object.entries(a.limits)) lines.push(`  ${k.padEnd(36)} ${fmtLimit(k, v)}`);
  lines.push(`features  ${a.features.join(', ')}`);
  const poll = r.dawnPollMs ?? 0;
  lines.push(`polling   ${poll > 0 ? `every ${poll} ms while the GPU works` : "Dawn's own busy loop while the GPU works"} (GAN_DAWN_POLL_MS)`);
  return lines.join('\n');
}
