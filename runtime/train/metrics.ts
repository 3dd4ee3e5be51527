// metrics.jsonl: one JSON line per logged step, appended and flushed to the OS
// as it is written, so a crash loses at most the line being written and
// another process can tail the file while training runs.
//
//   {"step": 12, "losses": {"d0.cond_real": 0.69, ..., "G.g0.cond_fake": 0.7, "G.kl": 0.01, "G.loss": 1.4},
//    "step_ms": 412.5, "images_per_s": 9.7}
import { appendFileSync, closeSync, mkdirSync, openSync, readFileSync, existsSync, ftruncateSync, fsyncSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Role } from '../format/step.ts';

export interface MetricRecord {
  /** Iterations completed when the losses were computed (1-based: the first step logs step 1). */
  step: number;
  /** Every loss term of every network, and each network's total ('NET.loss'). */
  losses: Record<string, number>;
  step_ms: number;
  images_per_s: number;
}

/** A loss's metric key, from its role: 'd0.cond_real', 'G.g1.cond_fake', 'G.kl', 'd0.loss'. */
export function metricKey(r: Role): string | null {
  if (r.role === 'loss') return `${r.net}.loss`;
  if (r.role === 'loss_term') return [r.net, r.stage, r.term].filter(Boolean).join('.');
  return null;
}

export class MetricsLog {
  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
  }

  /**
   * Keeps the lines of steps <= `step` and drops the rest (a resumed run
   * rewrites the steps after its checkpoint, so the file has each step once).
   */
  truncateAfter(step: number): void {
    if (!existsSync(this.path)) return;
    const lines = readFileSync(this.path, 'utf8').split('\n').filter((l) => l.trim() !== '');
    let keep = 0;
    let bytes = 0;
    for (const l of lines) {
      let s: number;
      try {
        s = (JSON.parse(l) as MetricRecord).step;
      } catch {
        break; // a torn last line
      }
      if (!(s <= step)) break;
      keep++;
      bytes += Buffer.byteLength(l) + 1;
    }
    if (keep === lines.length && bytes === Buffer.byteLength(readFileSync(this.path, 'utf8'))) return;
    const fd = openSync(this.path, 'r+');
    try {
      ftruncateSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  append(r: MetricRecord): void {
    appendFileSync(this.path, JSON.stringify(r) + '\n');
  }

  static read(path: string): MetricRecord[] {
    return readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as MetricRecord);
  }
}
