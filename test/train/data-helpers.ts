// Shared fixtures for the data tests: one small shapes dataset per test file.
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateShapes } from '../../runtime/train/data/shapes.ts';

export async function makeShapes(n = 24, size = 64, dim = 32, seed = 7): Promise<string> {
  const dir = join(mkdtempSync(join(tmpdir(), 'gan-data-')), 'shapes');
  await generateShapes({ out: dir, n, size, dim, seed });
  return dir;
}

/** A fresh copy of a dataset, to break one thing in. */
export function copyOf(dir: string): string {
  const to = join(mkdtempSync(join(tmpdir(), 'gan-data-bad-')), 'ds');
  cpSync(dir, to, { recursive: true });
  return to;
}
