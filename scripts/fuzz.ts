// `npm run fuzz [-- --seed S --count N --timeout SECONDS --from I]`: the long
// fuzz run of the parser and checker (the cases and the property are in
// test/check/fuzz-cases.ts; the quick suite runs a few hundred of them).
//
// Cases run in a worker thread so that a case that hangs is caught too: the
// main thread watches the worker's progress. On the first failure (a throw,
// a bad span, unsafe rendering, or a case running past --timeout) it writes
// a reproducer under the system's temp folder (a copy of models/ with the
// failing input in place of its model, so imports resolve), prints how to
// rerun it, and exits 1.
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { makeCase, runCase, type FuzzCase } from '../test/check/fuzz-cases.ts';

interface Options {
  seed: number;
  count: number;
  from: number;
  timeout: number;
}

type Report = { kind: 'start'; index: number } | { kind: 'fail'; index: number; why: string } | { kind: 'done'; stats: Stats };

interface Stats {
  cases: number;
  withErrors: number;
  slowest: { index: number; ms: number }[];
}

function parseOptions(argv: string[]): Options {
  const opts: Options = { seed: 1, count: 10_000, from: 0, timeout: 60 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '') as keyof Options;
    const value = Number(argv[i + 1]);
    if (!(key in opts) || !Number.isFinite(value)) {
      process.stderr.write(`fuzz: unknown option or bad value '${argv[i]} ${argv[i + 1] ?? ''}' (options: --seed, --count, --from, --timeout)\n`);
      process.exit(2);
    }
    opts[key] = value;
  }
  return opts;
}

// ---------------------------------------------------------------------------
// Worker: runs the cases, reporting each start so the main thread can time it.

function work(opts: Options): void {
  const port = parentPort!;
  const stats: Stats = { cases: 0, withErrors: 0, slowest: [] };
  for (let i = opts.from; i < opts.from + opts.count; i++) {
    port.postMessage({ kind: 'start', index: i } satisfies Report);
    const c = makeCase(opts.seed, i, 'full');
    const t = performance.now();
    const why = runCase(c, (r) => (stats.withErrors += r.diagnostics.some((d) => d.severity === 'error') ? 1 : 0));
    const ms = performance.now() - t;
    stats.cases++;
    stats.slowest.push({ index: i, ms });
    stats.slowest.sort((a, b) => b.ms - a.ms).splice(5);
    if (why) {
      port.postMessage({ kind: 'fail', index: i, why } satisfies Report);
      return;
    }
  }
  port.postMessage({ kind: 'done', stats } satisfies Report);
}

// ---------------------------------------------------------------------------
// Main: progress, watchdog, summary, reproducer.

function writeReproducer(opts: Options, c: FuzzCase, why: string): string {
  const dir = mkdtempSync(join(tmpdir(), `gan-fuzz-${opts.seed}-${c.index}-`));
  cpSync('models', join(dir, 'models'), { recursive: true });
  const file = join(dir, c.base);
  writeFileSync(file, c.input);
  writeFileSync(join(dir, 'case.json'), JSON.stringify({ seed: opts.seed, index: c.index, base: c.base, mutations: c.mutations, set: c.set, failure: why }, null, 2) + '\n');
  return file;
}

function main(opts: Options): void {
  const started = performance.now();
  // The worker loads this same file through tsx, as scripts/gan.js does (workers do not inherit tsx's hooks).
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  // A heap limit for the worker, so that a case that eats memory fails like any other instead of killing the run.
  const worker = new Worker(boot, { eval: true, workerData: opts, resourceLimits: { maxOldGenerationSizeMb: 3072 } });
  let current = opts.from;
  let caseStarted: number | undefined; // unset while the worker loads
  let lastProgress = 0;
  const fail = (index: number, why: string) => {
    const c = makeCase(opts.seed, index, 'full');
    const file = writeReproducer(opts, c, why);
    process.stdout.write(`\nFAIL case ${index} of seed ${opts.seed}: ${c.base}\n  mutations: ${c.mutations.join('; ')}\n  ${why.split('\n').slice(0, 12).join('\n  ')}\n`);
    process.stdout.write(`reproducer: ${file} (case.json next to models/ says what was done)\n`);
    const sets = (c.set ?? []).map((v) => ` --set '${v.replace(/'/g, "'\\''")}'`).join('');
    process.stdout.write(`rerun: npm run fuzz -- --seed ${opts.seed} --from ${index} --count 1   or   npx gan check ${file}${sets.length < 500 ? sets : ' (with the --set values in case.json)'}\n`);
    void worker.terminate();
    process.exitCode = 1;
  };
  const watchdog = setInterval(() => {
    if (caseStarted !== undefined && performance.now() - caseStarted > opts.timeout * 1000) {
      clearInterval(watchdog);
      fail(current, `case ran longer than ${opts.timeout} s (a hang?)`);
    }
  }, 1000);
  worker.on('message', (m: Report) => {
    if (m.kind === 'start') {
      current = m.index;
      caseStarted = performance.now();
      const done = m.index - opts.from;
      if (done - lastProgress >= 500) {
        lastProgress = done;
        const s = (performance.now() - started) / 1000;
        process.stdout.write(`  ${done} / ${opts.count} cases, ${s.toFixed(0)} s\n`);
      }
    } else if (m.kind === 'fail') {
      clearInterval(watchdog);
      fail(m.index, m.why);
    } else {
      clearInterval(watchdog);
      const s = (performance.now() - started) / 1000;
      const { cases, withErrors, slowest } = m.stats;
      process.stdout.write(`fuzz: ${cases} cases of seed ${opts.seed} (from ${opts.from}) passed in ${s.toFixed(1)} s (${((s / cases) * 1000).toFixed(1)} ms per case)\n`);
      process.stdout.write(`  ${withErrors} with errors, ${cases - withErrors} still valid models\n`);
      process.stdout.write(`  slowest: ${slowest.map((x) => `#${x.index} ${x.ms.toFixed(0)} ms`).join(', ')}\n`);
    }
  });
  worker.on('error', (e) => {
    clearInterval(watchdog);
    fail(current, `the worker died: ${e.stack ?? e}`);
  });
}

if (isMainThread) {
  const opts = parseOptions(process.argv.slice(2));
  process.stdout.write(`fuzz: seed ${opts.seed}, cases ${opts.from} to ${opts.from + opts.count - 1}, timeout ${opts.timeout} s per case\n`);
  main(opts);
} else {
  work(workerData as Options);
}
