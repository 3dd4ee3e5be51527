// The import graph follows the data flow grammar -> compiler -> runtime:
// runtime/ imports nothing from compiler/ or grammar/ (a generated module
// type-checks with the runtime alone), and grammar/ imports nothing from
// compiler/ or runtime/. Type-only imports count too. Statements are read with
// TypeScript's own pre-processor, so `import type`, `export ... from` and
// dynamic `import()` are all seen.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function tsFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)).split(sep).join('/'))
    .sort();
}

/** The repository-relative targets of a file's relative module specifiers (packages are left out). */
function importsOf(file: string, text = readFileSync(join(ROOT, file), 'utf8')): string[] {
  return ts
    .preProcessFile(text, true, true)
    .importedFiles.map((f) => f.fileName)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => relative(ROOT, resolve(ROOT, dirname(file), spec)).split(sep).join('/'));
}

/** "file -> target" for every import of `files` that lands in one of `forbidden` (top-level folders). */
function crossings(files: string[], forbidden: string[], read?: (f: string) => string): string[] {
  return files.flatMap((f) => importsOf(f, read?.(f)).filter((t) => forbidden.some((d) => t === d || t.startsWith(`${d}/`))).map((t) => `${f} -> ${t}`));
}

describe('import graph', () => {
  it('reads every kind of import statement and resolves it from the importing file', () => {
    const text = [
      "import type { Plan } from '../../compiler/plan/index.ts';",
      "import { x } from './local.ts';",
      "export { y } from '../../grammar/ast.ts';",
      "export * from '../../compiler/kernels/target.ts';",
      "const m = await import('../../compiler/lower.ts');",
      "import 'webgpu';",
    ].join('\n');
    expect(importsOf('runtime/format/x.ts', text)).toEqual([
      'compiler/plan/index.ts',
      'runtime/format/local.ts',
      'grammar/ast.ts',
      'compiler/kernels/target.ts',
      'compiler/lower.ts',
    ]);
    expect(crossings(['runtime/format/x.ts'], ['compiler', 'grammar'], () => text)).toHaveLength(4);
  });

  it('runtime/ imports nothing from compiler/ or grammar/', () => {
    const files = tsFiles('runtime');
    expect(files).toContain('runtime/executor.ts');
    expect(files).toContain('runtime/format/plan.ts');
    expect(importsOf('runtime/executor.ts')).toContain('runtime/format/plan.ts');
    expect(crossings(files, ['compiler', 'grammar'])).toEqual([]);
  });

  it('grammar/ imports nothing from compiler/ or runtime/', () => {
    const files = tsFiles('grammar');
    expect(files).toContain('grammar/parser.ts');
    expect(crossings(files, ['compiler', 'runtime'])).toEqual([]);
  });
});
