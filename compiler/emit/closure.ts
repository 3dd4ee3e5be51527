// The runtime files a generated module needs: the transitive closure of
// relative imports from its entry points (packages such as `webgpu` stay
// package imports). A module directory carries these copies, so it runs
// without the compiler and the grammar, and the copy proves it needs neither.
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/** Repository-relative paths of `entries` and every file they import, transitively (relative specifiers only). */
export function importClosure(root: string, entries: string[]): string[] {
  const seen = new Set<string>();
  const stack = [...entries];
  while (stack.length) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(join(root, file), 'utf8');
    for (const f of ts.preProcessFile(text, true, true).importedFiles) {
      if (!f.fileName.startsWith('.')) continue;
      stack.push(relative(root, resolve(root, dirname(file), f.fileName)).split(sep).join('/'));
    }
  }
  return [...seen].sort();
}
