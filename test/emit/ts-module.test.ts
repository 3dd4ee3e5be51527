// `gan compile --emit ts`: the generated module directory of a trained mini
// model. Its images equal the compiler path's (`gan sample`'s) bit for bit on
// this adapter; it passes `tsc --strict`; its imports stay inside the
// directory (a copy of the runtime, no compiler or grammar); names and doc
// comments from the .gan cannot inject code; wrong inputs are refused naming
// the input and both shapes; examples/node-sample.ts runs it to a PNG grid;
// the page of examples/web runs it in headless Chromium (SwiftShader's WebGPU)
// to the Node path's images, and says so plainly where a browser has no WebGPU.
// The module runs in a child process, as an application would load it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import sharp from 'sharp';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGeneratorEval, generate, writeGeneratorWeights } from '../../compiler/cli/generator-eval.ts';
import { openSampleSource } from '../../compiler/cli/sample.ts';
import { docText, safeIdentifier } from '../../compiler/emit/ts-module.ts';
import { Runtime } from '../../runtime/executor.ts';
import { generateShapes } from '../../runtime/train/data/index.ts';
import { writeNpy } from '../../runtime/train/data/npy.ts';
import { miniGan } from '../helpers/gan.ts';
import { buildWebPage } from '../../scripts/build-web.ts';
import puppeteer from 'puppeteer-core';
import { gan } from '../helpers/cli.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const env = { ...process.env, NO_COLOR: '1', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp/xdg' };
const tmp = mkdtempSync(join(tmpdir(), 'gan-emit-'));
// Inside the repository (out/ is ignored), so the module finds `webgpu` and `sharp` in node_modules as a user's project would.
mkdirSync(join(ROOT, 'out'), { recursive: true });
const outRoot = mkdtempSync(join(ROOT, 'out', 'test-emit-'));
const moduleDir = join(outRoot, 'mini');
const model = join(tmp, 'mini.gan');
const run = join(tmp, 'run');
const D = 16;


/** Runs TypeScript in a fresh Node process (tsx), as an application of the module would run. */
function tsxScript(code: string) {
  const file = join(outRoot, `script-${Math.random().toString(36).slice(2)}.ts`);
  writeFileSync(file, code);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], { encoding: 'utf8', env, timeout: 120_000, cwd: ROOT });
  return { code: r.status, out: r.stdout, err: r.stderr.replace(/^Warning: \S+ artificially reduced .*\n/gm, '') };
}

const text = Float32Array.from({ length: 5 * D }, (_, i) => Math.sin(i * 1.7));

beforeAll(async () => {
  writeFileSync(
    model,
    '// A mini GAN for the module tests. A hostile comment: */ process.exit(1); /*\n' +
      miniGan({ text: D, z: 8, caOut: 16, ngf: 4, ndf: 4 }).replace(`input text: [${D}]`, `input text: [${D}]  // caption embedding */ process.exit(2); /*`) +
      'train { batch = 2 }\n',
  );
  await generateShapes({ out: join(tmp, 'shapes'), n: 8, size: 16, dim: D, seed: 3 });
  const t = gan('train', model, '--data', join(tmp, 'shapes'), '--steps', '2', '--out', run);
  expect(t.code, t.err).toBe(0);
  const c = gan('compile', model, '--emit', 'ts', '--weights', run, '--batch', '2', '--out', moduleDir);
  expect(c.code, c.err).toBe(0);
  expect(c.out).toMatch(/module Mini \(index\.ts, generator\.json: \d+ kernels at batch 2, weights\.safetensors, training\.json, runtime\/\)/);
}, 180_000);

afterAll(() => rmSync(outRoot, { recursive: true, force: true }));

describe('gan compile --emit ts', () => {
  it("generates what the compiler path generates, bit for bit, for any n (runs of the compiled batch)", async () => {
    writeFileSync(join(outRoot, 'text.bin'), Buffer.from(text.buffer));
    const r = tsxScript(`
import { readFileSync, writeFileSync } from 'node:fs';
import Mini from ${JSON.stringify(join(moduleDir, 'index.ts'))};
const raw = readFileSync(${JSON.stringify(join(outRoot, 'text.bin'))});
const text = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
const m = await Mini.load();
const stages = await m.generate({ text, seed: 7 });
for (const s of stages) writeFileSync(${JSON.stringify(outRoot)} + '/module-' + s.name + '.bin', Buffer.from(s.images.buffer));
console.log(JSON.stringify({ n: stages.map((s) => s.images.length), classStages: Mini.stages }));
m.destroy();
`);
    expect(r.code, r.err).toBe(0);
    // The compiler path: `gan sample`'s program and weights, in this process.
    const src = openSampleSource(run, {});
    const gen = buildGeneratorEval(src.model, 2);
    const rt = await Runtime.create(gen.layout, { seed: 7 });
    writeGeneratorWeights(rt, gen.layout, src.weights(gen.layout), src.describe);
    const expected = await generate(rt, await rt.load(gen.plan), gen, text, 5);
    rt.destroy();
    expect(JSON.parse(r.out).classStages).toEqual([{ name: 'g0', resolution: 16 }]);
    for (const s of expected) {
      const got = readFileSync(join(outRoot, `module-${s.name}.bin`));
      expect(got.byteLength).toBe(5 * 3 * 16 * 16 * 4);
      expect(Buffer.compare(got, Buffer.from(s.images.buffer)), `stage ${s.name}`).toBe(0);
      expect(Math.max(...s.images) - Math.min(...s.images), 'real images, not a constant').toBeGreaterThan(0.01);
    }
  }, 120_000);

  it("carries gan train's programs: its trainer's first steps give the CLI run's losses exactly", () => {
    const r = tsxScript(`
import Mini from ${JSON.stringify(join(moduleDir, 'index.ts'))};
const t = await Mini.trainer({ data: ${JSON.stringify(join(tmp, 'shapes'))} });
const losses = [(await t.trainStep()).losses, (await t.trainStep()).losses];
console.log(JSON.stringify(losses));
await t.source.close();
t.destroy();
`);
    expect(r.code, r.err).toBe(0);
    const cli = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).losses);
    expect(JSON.parse(r.out.trim().split('\n').at(-1)!)).toEqual(cli);
    expect(Object.keys(cli[0])).toContain('G.loss');
  }, 120_000);

  it("trains from the caller's own batches (typed by stage): the same batches give the CLI run's losses exactly; misfits are refused by name", () => {
    const r = tsxScript(`
import { readFileSync } from 'node:fs';
import Mini, { type MiniBatch } from ${JSON.stringify(join(moduleDir, 'index.ts'))};
import { openDataset } from ${JSON.stringify(join(moduleDir, 'runtime/train/data/index.ts'))};
// The caller's pipeline: here the dataset loader itself, with the settings gan train used, its batches re-keyed by stage.
const { data, spec } = JSON.parse(readFileSync(${JSON.stringify(join(moduleDir, 'training.json'))}, 'utf8'));
const src = await openDataset(${JSON.stringify(join(tmp, 'shapes'))}, { batch: spec.batch, resolutions: data.resolutions, seed: spec.seed, textDim: data.textDim, wrongSameGroup: data.wrongSameGroup });
const feed = { async next(): Promise<MiniBatch> { const b = await src.next(); return { text: b.text, real: { g0: b.real.get(16)! }, wrong: { g0: b.wrong.get(16)! } }; } };
const t = await Mini.trainer({ data: feed });
console.log(JSON.stringify([(await t.trainStep()).losses, (await t.trainStep()).losses]));
t.destroy();
await src.close();
const good = () => ({ text: new Float32Array(2 * ${D}), real: { g0: new Float32Array(2 * 3 * 16 * 16) }, wrong: { g0: new Float32Array(2 * 3 * 16 * 16) } });
const bads = [
  { ...good(), text: new Float32Array(${D}) },
  { ...good(), real: {} },
  { ...good(), wrong: { g0: new Float32Array(2 * 3 * 16 * 16), g7: new Float32Array(1) } },
  { ...good(), text: Float32Array.from(good().text, (_, i) => (i === ${D} + 2 ? NaN : 0)) },
];
for (const bad of bads) {
  const tb = await Mini.trainer({ data: { next: () => bad as MiniBatch } });
  try { await tb.trainStep(); console.log('no error'); } catch (e) { console.log((e as Error).name + ': ' + (e as Error).message); }
  tb.destroy();
}
`);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trim().split('\n');
    const cli = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).losses);
    expect(JSON.parse(lines[0])).toEqual(cli);
    expect(lines.slice(1)).toEqual([
      `BatchInputError: batch 0: text: expected [2, ${D}] (${2 * D} values), got ${D} values`,
      'BatchInputError: batch 0: real.g0: expected a Float32Array [2, 3, 16, 16], got nothing',
      'BatchInputError: batch 0: wrong.g7: no such stage (the stages are g0)',
      'BatchInputError: batch 0: text[1, 2] is NaN',
    ]);
  }, 180_000);

  it('refuses wrong inputs naming the input and both shapes', () => {
    const r = tsxScript(`
import Mini from ${JSON.stringify(join(moduleDir, 'index.ts'))};
const m = await Mini.load();
for (const bad of [{ text: new Float32Array(${D} * 2 + 3) }, { text: new Float32Array(${D} * 2), n: 3 }, { text: new Float32Array(${D}), stage: 'g9' }]) {
  try { await m.generate(bad as never); console.log('no error'); } catch (e) { console.log((e as Error).name + ': ' + (e as Error).message); }
}
m.destroy();
`);
    expect(r.code, r.err).toBe(0);
    expect(r.out.trim().split('\n')).toEqual([
      `GeneratorInputError: text: expected [n, ${D}], got ${D * 2 + 3} values (not a multiple of ${D})`,
      `GeneratorInputError: text: expected [3, ${D}] (${3 * D} values), got ${2 * D} values ([2, ${D}])`,
      "GeneratorInputError: stage: 'g9' is not one of g0",
    ]);
  }, 120_000);

  it('passes tsc --strict, formatted, with doc comments carried over and escaped', () => {
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--allowImportingTsExtensions', '--skipLibCheck', '--types', 'node,@webgpu/types', join(moduleDir, 'index.ts')],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const index = readFileSync(join(moduleDir, 'index.ts'), 'utf8');
    expect(index).toContain('export class Mini {');
    expect(index).toContain('caption embedding *\\/ process.exit(2); /*');
    expect(index).toContain('A hostile comment: *\\/ process.exit(1); /*');
    // The escaped text stays inside comments: the only code mentioning process.exit is none.
    const code = ts.createSourceFile('index.ts', index, ts.ScriptTarget.ES2022, true);
    let calls = 0;
    const walk = (n: ts.Node) => {
      if (ts.isCallExpression(n) && n.expression.getText() === 'process.exit') calls++;
      n.forEachChild(walk);
    };
    walk(code);
    expect(calls).toBe(0);
    expect(index).toMatch(/\/\*\* \[n, 16\] caption embeddings, row after row: caption embedding/);
  }, 60_000);

  it('imports only its own copy of the runtime (nothing of compiler/ or grammar/) and known packages', () => {
    const files = readdirSync(moduleDir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.ts'))
      .map((e) => join(e.parentPath, e.name));
    expect([...new Set(files.map((f) => relative(moduleDir, f).split(sep)[0]))].sort()).toEqual(['browser.ts', 'index.ts', 'runtime']);
    const packages = new Set<string>();
    for (const f of files) {
      for (const spec of ts.preProcessFile(readFileSync(f, 'utf8'), true, true).importedFiles.map((i) => i.fileName)) {
        if (!spec.startsWith('.')) {
          packages.add(spec.startsWith('node:') ? 'node:' : spec);
          continue;
        }
        const target = resolve(dirname(f), spec);
        expect(target.startsWith(moduleDir + sep), `${relative(moduleDir, f)} imports ${spec}, outside the module`).toBe(true);
        expect(files).toContain(target);
      }
    }
    expect([...packages].sort()).toEqual(['node:', 'sharp', 'webgpu']);
  });

  it('examples/node-sample.ts writes a grid from an embeddings file', async () => {
    const npy = join(outRoot, 'emb.npy');
    writeNpy(npy, [5, D], text);
    const png = join(outRoot, 'grid.png');
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/node-sample.ts', moduleDir, npy, png, '--n', '4'], { encoding: 'utf8', env, cwd: ROOT, timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('4 images of stage g0');
    const meta = await sharp(png).metadata();
    // A 2 x 2 grid of 16 px images (with the grid's padding).
    expect(meta.width).toBeGreaterThanOrEqual(32);
    expect(meta.height).toBe(meta.width);
  }, 120_000);
});

describe('names from the .gan file', () => {
  it('become safe identifiers', () => {
    expect(safeIdentifier('MSClipGAN')).toBe('MSClipGAN');
    expect(safeIdentifier('3stage')).toBe('Gan3stage');
    expect(safeIdentifier('class')).toBe('GanClass');
    expect(safeIdentifier('a-b c;d')).toBe('a_b_c_d');
    expect(safeIdentifier('x`${process.exit()}`')).toBe('x_$_process_exit____');
  });

  it('cannot close a doc comment', () => {
    expect(docText('ok */ code /* more')).toBe('ok *\\/ code /* more');
    expect(docText('bell\u0007and\u001b[31m')).toBe('bell and [31m');
  });
});

/** Debian's headless Chromium (scripts/setup.sh installs it); the machine notes give the flags. */
const CHROMIUM = process.env.GAN_CHROMIUM ?? '/usr/lib/chromium/chromium-headless-shell';

describe.skipIf(!existsSync(CHROMIUM) && !process.env.CI)('the web page (examples/web) in a real browser', () => {
  let server: Server;
  let base = '';
  beforeAll(async () => {
    await buildWebPage(moduleDir);
    const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json' };
    server = createServer((req, res) => {
      const path = resolve(moduleDir, `.${decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)}`);
      const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'index.html') : path;
      if (!file.startsWith(moduleDir) || !existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': types[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream' }).end(readFileSync(file));
    }).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}/web/`;
  }, 60_000);
  afterAll(() => server?.close());

  async function visit(flags: string[]) {
    const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: 'shell', args: ['--no-sandbox', ...flags] });
    try {
      const page = await browser.newPage();
      const messages: string[] = [];
      page.on('console', (m) => messages.push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => messages.push(`pageerror: ${(e as Error).message}`));
      await page.goto(base);
      await page.waitForFunction(() => (window as unknown as { ganResult?: unknown }).ganResult !== undefined, { timeout: 90_000 });
      const result = await page.evaluate(() => (window as unknown as { ganResult: unknown }).ganResult);
      const status = await page.$eval('#status', (e) => e.textContent ?? '');
      return { result: result as { error?: string; name?: string; adapter?: { architecture: string }; stages?: { name: string; images: number[] }[] }, status, messages };
    } finally {
      await browser.close();
    }
  }

  it("shows the module's images, equal to the Node path's to float32 tolerance, with no WebGPU message", async () => {
    const { result, status, messages } = await visit(['--enable-unsafe-webgpu']);
    expect(result.error, status).toBeUndefined();
    expect(messages.filter((m) => /error|warning|wgsl|validation/i.test(m))).toEqual([]);
    expect(result.adapter?.architecture).toBe('swiftshader');
    expect(status).toMatch(/^Mini: 4 images per stage on /);
    // The Node path: the same plan, weights, captions (examples/web/main.ts fixedText) and seed on Dawn + lavapipe.
    const src = openSampleSource(run, {});
    const gen = buildGeneratorEval(src.model, 2);
    const rt = await Runtime.create(gen.layout, { seed: 7 });
    writeGeneratorWeights(rt, gen.layout, src.weights(gen.layout), src.describe);
    const fixed = Float32Array.from({ length: 4 * D }, (_, i) => Math.sin(i * 1.7));
    for (let r = 0; r < 4; r++) {
      const row = fixed.subarray(r * D, (r + 1) * D);
      const norm = Math.hypot(...row);
      row.forEach((v, k) => (row[k] = v / norm));
    }
    const expected = await generate(rt, await rt.load(gen.plan), gen, fixed, 4);
    rt.destroy();
    for (const s of expected) {
      const got = result.stages!.find((x) => x.name === s.name)!.images;
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - s.images[i]));
      // Another shader compiler (SwiftShader vs lavapipe): rounding differs, the images do not.
      expect(worst, `stage ${s.name}: max |browser - node|`).toBeLessThan(1e-3);
    }
  }, 120_000);

  it('says plainly when the browser has no WebGPU', async () => {
    // Without --enable-unsafe-webgpu, Chromium offers no adapter on a GPU-less machine.
    const { result, status } = await visit([]);
    expect(result.name).toBe('NoWebGpuError');
    expect(status).toMatch(/^No WebGPU here: this browser has (no WebGPU|WebGPU but offers no adapter)/);
  }, 120_000);
});
