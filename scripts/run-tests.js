#!/usr/bin/env node
// Runs the vitest suite and ends with the plain line `N passed, N failed`
// (from vitest's JSON reporter), so a run that executed no test is visible.
//
// "failed" counts failed tests, test files that failed outside any test (an
// import that throws, a crash of the worker), and a non-zero vitest exit the
// report does not explain. Skipped tests are listed; under CI (CI=true) each
// skipped test also counts as a failure, because on CI a skip means something
// the suite needs (PyTorch, a WebGPU adapter) was missing and the checks it
// guards silently did not run.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { relative } from 'node:path';

const report = '.vitest-report.json';
const ci = /^(1|true|yes)$/i.test(process.env.CI ?? '');
rmSync(report, { force: true });
const args = ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)];
const r = spawnSync('npx', args, { stdio: 'inherit' });

const summary = summarise(existsSync(report) ? JSON.parse(readFileSync(report, 'utf8')) : undefined, r.status);
for (const line of summary.notes) console.log(line);
console.log(`${summary.passed} passed, ${summary.failed} failed`);
process.exit(summary.failed === 0 && summary.passed > 0 ? 0 : 1);

/** Counts from vitest's JSON report; `status` is vitest's exit status. */
function summarise(j, status) {
  const notes = [];
  if (!j) {
    notes.push(`vitest wrote no report (exit status ${status}): the suite did not run`);
    return { passed: 0, failed: 1, notes };
  }
  const passed = j.numPassedTests ?? 0;
  let failed = j.numFailedTests ?? 0;
  const skipped = [];
  const brokenFiles = [];
  for (const file of j.testResults ?? []) {
    const name = relative(process.cwd(), file.name);
    const tests = file.assertionResults ?? [];
    for (const t of tests) if (t.status === 'skipped' || t.status === 'pending' || t.status === 'todo') skipped.push(`${name} > ${t.fullName}`);
    // A file can fail with no failed test: an error on import or in a hook.
    if (file.status === 'failed' && !tests.some((t) => t.status === 'failed')) {
      brokenFiles.push(`${name}: ${(file.message || 'failed outside any test').split('\n')[0]}`);
    }
  }
  if (brokenFiles.length) {
    notes.push(`${brokenFiles.length} test file(s) failed outside any test:`, ...brokenFiles.map((f) => `  ${f}`));
    failed += brokenFiles.length;
  }
  if (skipped.length) {
    notes.push(`${skipped.length} test(s) skipped${ci ? ' (counted as failed: CI=true and a skip means a requirement was missing)' : ''}:`);
    notes.push(...skipped.slice(0, 20).map((s) => `  ${s}`));
    if (skipped.length > 20) notes.push(`  ... and ${skipped.length - 20} more`);
    if (ci) failed += skipped.length;
  }
  if (status !== 0 && failed === 0) {
    notes.push(`vitest exited with status ${status} although no test failed (an unhandled error? see its output above)`);
    failed = 1;
  }
  return { passed, failed, notes };
}
