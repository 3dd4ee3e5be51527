// The runtime's generator path bundles for a browser: esbuild (platform
// browser) builds runtime/module/generator.ts with runtime/device-browser.ts
// and the safetensors codec (a page's weights),
// and neither the entry chunk nor anything it imports statically loads a Node
// module or Dawn (`webgpu`): those live in runtime/device.ts, which the
// runtime imports lazily, only when no device was given. (A page in a real
// browser is issue 11's next step; this keeps the path clean meanwhile.)
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { BROWSER_BUILD } from '../../scripts/build-web.ts';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');

describe('the generator path in a browser bundle', () => {
  it('loads no Node module and not Dawn, except in the lazily imported Node device chunk', async () => {
    const outdir = mkdtempSync(join(tmpdir(), 'gan-bundle-'));
    const r = await build({
      stdin: {
        contents: [
          "export { Generator, parseGeneratorSpec } from './runtime/module/generator.ts';",
          "export { browserDevice } from './runtime/device-browser.ts';",
          "export { decodeSafetensors, toFloat32 } from './runtime/format/safetensors-codec.ts';",
        ].join('\n'),
        resolveDir: ROOT,
        sourcefile: 'page-entry.ts',
        loader: 'ts',
      },
      ...BROWSER_BUILD,
      outdir,
      metafile: true,
      logLevel: 'silent',
    });
    expect(r.errors).toEqual([]);
    const outputs = r.metafile!.outputs;
    const entry = Object.keys(outputs).find((k) => outputs[k].entryPoint)!;
    // Every chunk the entry loads before running: its static imports, transitively.
    const eager = new Set<string>();
    const visit = (file: string) => {
      if (eager.has(file)) return;
      eager.add(file);
      for (const i of outputs[file].imports) if (i.kind === 'import-statement' && !i.external) visit(i.path);
    };
    visit(entry);
    const nodeImports = [...eager].flatMap((f) => outputs[f].imports.filter((i) => i.external && i.kind === 'import-statement').map((i) => `${f}: ${i.path}`));
    expect(nodeImports).toEqual([]);
    // The Node device is there, behind a dynamic import, for Node callers.
    const lazy = Object.keys(outputs).filter((f) => !eager.has(f));
    expect(lazy.some((f) => outputs[f].imports.some((i) => i.path === 'webgpu'))).toBe(true);
    expect(readFileSync(resolve(entry), 'utf8')).toMatch(/import\(["']\.\/[^"']+\.js["']\)/);
  });
});
