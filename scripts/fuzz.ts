// `npm run fuzz [-- --seed S --count N --from I --sweep 0|1 --timeout SECONDS]`:
// the long fuzz run of the parser and checker (the cases and the property are
// in test/check/fuzz-cases.ts; the quick suite runs a few hundred of them).
// First a sweep (unless --sweep 0): every bundled model cut at every token
// boundary. Then N random structure-aware cases of the seed.
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
import { makeCase, runCase, truncationCase, truncationCount, type FuzzCase } from '../test/check/fuzz-cases.ts';

interface Options {
  seed: number;
  count: number;
  from: number;
  sweep: number;
  timeout: number;
}

/** A case of the run: `sweep` cases first (by their own index), then the seed's random ones. */
interface CaseId {
  phase: 'sweep' | 'random';
  index: number;
}

function caseOf(id: CaseId, opts: Options): FuzzCase {
  return id.phase === 'sweep' ? truncationCase(id.index) : makeCase(opts.seed, id.index, 'full');
}

const describeId = (id: CaseId, opts: Options) => (id.phase === 'sweep' ? `truncation case ${id.index}` : `case ${id.index} of seed ${opts.seed}`);

type Report = { kind: 'start'; id: CaseId } | { kind: 'fail'; id: CaseId; why: string } | { kind: 'done'; stats: Stats };

interface Stats {
  cases: number;
  swept: number;
  withErrors: number;
  slowest: { id: CaseId; ms: number }[];
}

function parseOptions(argv: string[]): Options {
  const opts: Options = { seed: 1, count: 10_000, from: 0, sweep: 1, timeout: 60 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '') as keyof Options;
    const value = Number(argv[i + 1]);
    if (!(key in opts) || !Number.isFinite(value)) {
      process.stderr.write(`fuzz: unknown option or bad value '${argv[i]} ${argv[i + 1] ?? ''}' (options: --seed, --count, --from, --sweep, --timeout)\n`);
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
  const stats: Stats = { cases: 0, swept: 0, withErrors: 0, slowest: [] };
  const ids: CaseId[] = [];
  if (opts.sweep) for (let k = 0; k < truncationCount(); k++) ids.push({ phase: 'sweep', index: k });
  for (let i = opts.from; i < opts.from + opts.count; i++) ids.push({ phase: 'random', index: i });
  for (const id of ids) {
    port.postMessage({ kind: 'start', id } satisfies Report);
    const c = caseOf(id, opts);
    const t = performance.now();
    const why = runCase(c, (r) => (stats.withErrors += r.diagnostics.some((d) => d.severity === 'error') ? 1 : 0));
    const ms = performance.now() - t;
    if (id.phase === 'sweep') stats.swept++;
    else stats.cases++;
    stats.slowest.push({ id, ms });
    stats.slowest.sort((a, b) => b.ms - a.ms).splice(5);
    if (why) {
      port.postMessage({ kind: 'fail', id, why } satisfies Report);
      return;
    }
  }
  port.postMessage({ kind: 'done', stats } satisfies Report);
}

// ---------------------------------------------------------------------------
// Main: progress, watchdog, summary, reproducer.

function writeReproducer(opts: Options, id: CaseId, c: FuzzCase, why: string): string {
  const dir = mkdtempSync(join(tmpdir(), `gan-fuzz-${id.phase === 'sweep' ? 'cut' : opts.seed}-${id.index}-`));
  cpSync('models', join(dir, 'models'), { recursive: true });
  const file = join(dir, c.base);
  writeFileSync(file, c.input);
  writeFileSync(join(dir, 'case.json'), JSON.stringify({ seed: opts.seed, ...id, base: c.base, mutations: c.mutations, set: c.set, failure: why }, null, 2) + '\n');
  return file;
}

function main(opts: Options): void {
  const started = performance.now();
  // The worker loads this same file through tsx, as scripts/gan.js does (workers do not inherit tsx's hooks).
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  // A heap limit for the worker, so that a case that eats memory fails like any other instead of killing the run.
  const worker = new Worker(boot, { eval: true, workerData: opts, resourceLimits: { maxOldGenerationSizeMb: 3072 } });
  let current: CaseId | undefined;
  let caseStarted = 0;
  let firstCaseAt = 0;
  const fail = (id: CaseId | undefined, why: string) => {
    void worker.terminate();
    process.exitCode = 1;
    if (!id) {
      process.stdout.write(`\nFAIL before the first case: ${why}\n`);
      return;
    }
    const c = caseOf(id, opts);
    const file = writeReproducer(opts, id, c, why);
    const rerun = id.phase === 'sweep' ? `npm run fuzz -- --count 0` : `npm run fuzz -- --seed ${opts.seed} --from ${id.index} --count 1 --sweep 0`;
    const sets = (c.set ?? []).map((v) => ` --set '${v.replace(/'/g, "'\\''")}'`).join('');
    process.stdout.write(`\nFAIL ${describeId(id, opts)}: ${c.base}\n  mutations: ${c.mutations.join('; ').slice(0, 1000)}\n  ${why.split('\n').slice(0, 12).join('\n  ')}\n`);
    process.stdout.write(`reproducer: ${file} (case.json next to models/ says what was done)\n`);
    process.stdout.write(`rerun: ${rerun}   or   npx gan check ${file}${sets.length < 500 ? sets : ' (with the --set values in case.json)'}\n`);
  };
  const watchdog = setInterval(() => {
    if (current && performance.now() - caseStarted > opts.timeout * 1000) {
      clearInterval(watchdog);
      fail(current, `case ran longer than ${opts.timeout} s (a hang?)`);
    }
  }, 1000);
  let done = 0;
  worker.on('message', (m: Report) => {
    if (m.kind === 'start') {
      if (!current) firstCaseAt = performance.now();
      current = m.id;
      caseStarted = performance.now();
      if (++done % 1000 === 0) process.stdout.write(`  ${done} cases, ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
    } else if (m.kind === 'fail') {
      clearInterval(watchdog);
      fail(m.id, m.why);
    } else {
      clearInterval(watchdog);
      const s = (performance.now() - firstCaseAt) / 1000;
      const { cases, swept, withErrors, slowest } = m.stats;
      const all = cases + swept;
      process.stdout.write(`fuzz: ${swept} truncations and ${cases} cases of seed ${opts.seed} (from ${opts.from}) passed in ${s.toFixed(1)} s (${((s / Math.max(1, all)) * 1000).toFixed(1)} ms per case; ${((firstCaseAt - started) / 1000).toFixed(1)} s to load)\n`);
      process.stdout.write(`  ${withErrors} with errors, ${all - withErrors} still valid models\n`);
      process.stdout.write(`  slowest: ${slowest.map((x) => `${describeId(x.id, opts)} ${x.ms.toFixed(0)} ms`).join(', ')}\n`);
    }
  });
  worker.on('error', (e) => {
    clearInterval(watchdog);
    fail(current, `the worker died: ${e.stack ?? e}`);
  });
}

if (isMainThread) {
  const opts = parseOptions(process.argv.slice(2));
  process.stdout.write(`fuzz: ${opts.sweep ? 'every token-boundary truncation of the bundled models, then ' : ''}seed ${opts.seed}, cases ${opts.from} to ${opts.from + opts.count - 1}; timeout ${opts.timeout} s per case\n`);
  main(opts);
} else {
  work(workerData as Options);
}
