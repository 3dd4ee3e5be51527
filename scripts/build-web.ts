// Builds the web page of examples/web for a generated module directory:
// bundles examples/web/main.ts with the module's browser.ts (esbuild, for the
// browser) into DIR/web/bundle.js beside a copy of index.html. Serve DIR over
// http(s) (or localhost) and open DIR/web/.
//
//   npm run build:web -- DIR
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * How the runtime bundles for a page: the runtime imports Dawn's Node device
 * lazily, only without a given device, so split it into a chunk the page
 * never loads, and leave Node's modules and Dawn out.
 */
export const BROWSER_BUILD: BuildOptions = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  splitting: true,
  external: ['node:*', 'webgpu'],
};

export async function buildWebPage(moduleDir: string): Promise<string> {
  const dir = resolve(moduleDir);
  if (!existsSync(join(dir, 'browser.ts'))) throw new Error(`${moduleDir}: no browser.ts (make the module with gan compile --emit ts --out ${moduleDir})`);
  const web = join(dir, 'web');
  mkdirSync(web, { recursive: true });
  await build({
    ...BROWSER_BUILD,
    entryPoints: [join(ROOT, 'examples/web/main.ts')],
    outdir: web,
    entryNames: 'bundle',
    alias: { 'gan-module': join(dir, 'browser.ts') },
    logLevel: 'warning',
  });
  copyFileSync(join(ROOT, 'examples/web/index.html'), join(web, 'index.html'));
  return web;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: npm run build:web -- DIR   (a module directory from gan compile --emit ts)');
    process.exit(2);
  }
  const web = await buildWebPage(dir);
  console.log(`${web}: index.html + bundle.js (serve ${dir} over http and open web/)`);
}
