// Prints diagnostics to stderr: rich (rustc-style, coloured on a terminal) or
// one line each, then the error/warning count.
import type { Diagnostic } from '../../grammar/diagnostics.ts';
import { renderRich, renderShort } from '../../grammar/render.ts';

export function printDiagnostics(r: { diagnostics: Diagnostic[]; sources: Map<string, string> }, short = false): void {
  const color = process.stderr.isTTY && !process.env.NO_COLOR;
  const lookup = (f: string) => r.sources.get(f);
  for (const d of r.diagnostics) process.stderr.write((short ? renderShort(d, lookup) : renderRich(d, lookup, color)) + '\n' + (short ? '' : '\n'));
  const errors = r.diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = r.diagnostics.length - errors;
  if (errors) process.stderr.write(`${errors} error${errors > 1 ? 's' : ''}${warnings ? `, ${warnings} warning${warnings > 1 ? 's' : ''}` : ''}\n`);
}
