// `gan check FILE`: parse, check shapes, print a model summary (or JSON).
import { renderRich, renderShort, type Diagnostic } from '../../grammar/diagnostics.ts';
import { renderSummary, toJsonSummary } from '../check/summary.ts';
import { checkFile, type CompileResult } from '../index.ts';
import { memoryReport } from './compile.ts';

export interface CheckCliOptions {
  set?: string[];
  preset?: string;
  json?: boolean;
  layers?: boolean;
  memory?: boolean;
  batch?: string;
}

export function printDiagnostics(r: { diagnostics: Diagnostic[]; sources: Map<string, string> }, short = false): void {
  const color = process.stderr.isTTY && !process.env.NO_COLOR;
  const lookup = (f: string) => r.sources.get(f);
  for (const d of r.diagnostics) process.stderr.write((short ? renderShort(d, lookup) : renderRich(d, lookup, color)) + '\n' + (short ? '' : '\n'));
  const errors = r.diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = r.diagnostics.length - errors;
  if (errors) process.stderr.write(`${errors} error${errors > 1 ? 's' : ''}${warnings ? `, ${warnings} warning${warnings > 1 ? 's' : ''}` : ''}\n`);
}

export function runCheck(file: string, opts: CheckCliOptions): number {
  const r: CompileResult = checkFile(file, { set: opts.set, preset: opts.preset });
  printDiagnostics(r);
  if (!r.model) return 1;
  process.stdout.write((opts.json ? JSON.stringify(toJsonSummary(r.model), null, 2) : renderSummary(r.model, { layers: opts.layers })) + '\n');
  if (opts.memory) {
    const batch = opts.batch === undefined ? Number(r.model.train.batch ?? 1) : Number(opts.batch);
    if (!Number.isInteger(batch) || batch < 1) {
      process.stderr.write(`gan: --batch must be a positive integer, got '${opts.batch}'\n`);
      return 1;
    }
    try {
      process.stdout.write('\n' + memoryReport(r.model, batch) + '\n');
    } catch (e) {
      // The planner refuses tensors over the binding limit with the sizes in the message.
      process.stderr.write(`gan: ${(e as Error).message}\n`);
      return 1;
    }
  }
  return 0;
}
