// `gan check FILE`: parse, check shapes, print a model summary (or JSON).
import { renderSummary, toJsonSummary } from '../check/summary.ts';
import { checkFile, type CompileResult } from '../index.ts';
import { memoryReport } from './compile.ts';
import { printDiagnostics } from './diagnostics.ts';

export interface CheckCliOptions {
  set?: string[];
  preset?: string;
  json?: boolean;
  layers?: boolean;
  memory?: boolean;
  batch?: string;
}

export function runCheck(file: string, opts: CheckCliOptions): number {
  const r: CompileResult = checkFile(file, { set: opts.set, preset: opts.preset });
  printDiagnostics(r);
  if (!r.model) return 1;
  process.stdout.write((opts.json ? JSON.stringify(toJsonSummary(r.model), null, 2) : renderSummary(r.model, { layers: opts.layers })) + '\n');
  if (opts.memory) {
    const batch = opts.batch === undefined ? r.model.train.batch : Number(opts.batch);
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
