// Mutation check of the test suite: plants plausible bugs one at a time in a
// scratch copy of the working tree and reports which ones the suite catches.
//
//   npm run mutate                    every mutation, each against the tests listed with it
//   npm run mutate -- --full          each against the whole suite (slow: minutes per mutation)
//   npm run mutate -- adam-beta1 ...  only the named mutations
//   npm run mutate -- --list          names and descriptions
//
// A mutation whose `find` text no longer occurs exactly once is reported as
// STALE (exit 1): the list must follow the code, or it silently checks nothing.
// Exit status: 0 when every mutation is caught, 1 otherwise.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MUTATIONS, type Mutation } from './mutations.ts';

const root = resolve(import.meta.dirname, '..');
const argv = process.argv.slice(2);
const full = argv.includes('--full');
if (argv.includes('--list')) {
  for (const m of MUTATIONS) console.log(`${m.name.padEnd(28)} ${m.what}`);
  process.exit(0);
}
const names = argv.filter((a) => !a.startsWith('--'));
for (const n of names) if (!MUTATIONS.some((m) => m.name === n)) throw new Error(`unknown mutation '${n}' (see --list)`);
const chosen = names.length ? MUTATIONS.filter((m) => names.includes(m.name)) : MUTATIONS;

type Outcome = 'caught' | 'MISSED' | 'STALE';
interface Result {
  m: Mutation;
  outcome: Outcome;
  detail: string;
  seconds: number;
}

const scratch = mkdtempSync(join(tmpdir(), 'gan-mutate-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));
copyTree(root, scratch);

const results: Result[] = [];
for (const [i, m] of chosen.entries()) {
  console.error(`[${i + 1}/${chosen.length}] ${m.name}: ${m.what}`);
  const t0 = Date.now();
  const r = trial(m);
  results.push({ m, ...r, seconds: (Date.now() - t0) / 1000 });
  console.error(`  -> ${r.outcome} (${r.detail})`);
}

console.log('\n| mutation | what | outcome | detail | s |');
console.log('|---|---|---|---|---:|');
for (const r of results) console.log(`| ${r.m.name} | ${r.m.what} | ${r.outcome} | ${r.detail} | ${r.seconds.toFixed(0)} |`);
const caught = results.filter((r) => r.outcome === 'caught').length;
console.log(`\n${caught} of ${results.length} mutations caught`);
process.exit(caught === results.length ? 0 : 1);

function trial(m: Mutation): { outcome: Outcome; detail: string } {
  const path = join(scratch, m.file);
  const original = readFileSync(path, 'utf8');
  const at = original.split(m.find).length - 1;
  if (at !== 1) return { outcome: 'STALE', detail: `'find' occurs ${at} times in ${m.file}` };
  writeFileSync(path, original.replace(m.find, m.replace));
  try {
    const report = join(scratch, '.mutate-report.json');
    rmSync(report, { force: true });
    const files = full ? [] : m.tests;
    const r = spawnSync('npx', ['vitest', 'run', '--reporter=json', `--outputFile.json=${report}`, ...files], {
      cwd: scratch,
      encoding: 'utf8',
      env: { ...process.env, CI: 'true' },
    });
    if (!existsSync(report)) return { outcome: 'caught', detail: `suite did not run (exit ${r.status})` };
    const j = JSON.parse(readFileSync(report, 'utf8'));
    const failedTests: string[] = [];
    for (const f of j.testResults ?? []) {
      for (const t of f.assertionResults ?? []) if (t.status === 'failed') failedTests.push(t.fullName);
      if (f.status === 'failed' && !(f.assertionResults ?? []).some((t: { status: string }) => t.status === 'failed')) failedTests.push(`${f.name} (load)`);
    }
    if (failedTests.length === 0) return { outcome: 'MISSED', detail: `${j.numPassedTests} tests passed` };
    return { outcome: 'caught', detail: `${failedTests.length} failed, e.g. ${failedTests[0].slice(0, 90)}` };
  } finally {
    writeFileSync(path, original);
  }
}

/** The working tree (tracked and untracked, not ignored) into `dest`, node_modules linked. */
function copyTree(src: string, dest: string): void {
  const list = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: src, encoding: 'utf8' });
  if (list.status !== 0) throw new Error(`git ls-files failed: ${list.stderr}`);
  const files = list.stdout.split('\0').filter((f) => f && existsSync(join(src, f)));
  const tar = spawnSync('sh', ['-c', `tar -C "${src}" --null -T - -cf - | tar -C "${dest}" -xf -`], { input: files.join('\0') });
  if (tar.status !== 0) throw new Error(`copying the tree failed: ${tar.stderr}`);
  symlinkSync(join(src, 'node_modules'), join(dest, 'node_modules'));
}
