// `gan data check DIR [--model FILE]` and `gan data shapes --out DIR ...`:
// dataset validation on its own (the same checks `gan train` runs before its
// first step) and the synthetic shapes dataset.
import type { Command } from 'commander';
import { validateDataset } from '../../runtime/train/data/validate.ts';
import { generateShapes } from '../../runtime/train/data/shapes.ts';
import { checkFile } from '../index.ts';
import { printDiagnostics } from './diagnostics.ts';

export interface DataCheckOptions {
  model?: string;
  set?: string[];
  preset?: string;
}

/** The width of the model's `text` input, or a message saying why there is none. */
function modelTextWidth(file: string, opts: DataCheckOptions): number | string | null {
  const r = checkFile(file, { set: opts.set, preset: opts.preset });
  printDiagnostics(r);
  if (!r.model) return null;
  const g = r.model.networks.find((n) => n.kind === 'generator');
  const id = g?.inputs.text;
  if (!g || id === undefined) return `${file}: the model has no 'text' input, so it takes no caption embeddings`;
  const shape = g.graph.nodes[id].shape;
  if (shape.length !== 1) return `${file}: the model's 'text' input has shape [${shape.join(', ')}]; caption embeddings need a vector input`;
  return shape[0];
}

export async function runDataCheck(dir: string, opts: DataCheckOptions): Promise<number> {
  let textDim: number | undefined;
  if (opts.model) {
    const w = modelTextWidth(opts.model, opts);
    if (w === null) return 1;
    if (typeof w === 'string') {
      process.stderr.write(`gan: ${w}\n`);
      return 1;
    }
    textDim = w;
  }
  const { dataset, problems } = await validateDataset(dir, { textDim });
  if (!dataset) {
    process.stderr.write(`gan: ${dir} is not a valid dataset (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  ${p}\n`).join('')}`);
    return 1;
  }
  const width = textDim === undefined ? `${dataset.d}-wide embeddings` : `${dataset.d}-wide embeddings, as ${opts.model}'s text input takes`;
  const classes = dataset.classes ? `, ${new Set(dataset.classes).size} classes` : '';
  process.stdout.write(`${dir}: ok: ${dataset.n} images, ${dataset.k} caption${dataset.k === 1 ? '' : 's'} each, ${width}${classes}\n`);
  return 0;
}

export interface ShapesCliOptions {
  out: string;
  n?: string;
  size?: string;
  seed?: string;
  dim?: string;
}

function intOption(name: string, v: string | undefined, fallback: number): number | string {
  if (v === undefined) return fallback;
  const n = Number(v);
  return /^\d+$/.test(v.trim()) && Number.isSafeInteger(n) ? n : `--${name} must be a non-negative integer, got '${v}'`;
}

export async function runDataShapes(opts: ShapesCliOptions): Promise<number> {
  const parsed = {
    n: intOption('n', opts.n, 1000),
    size: intOption('size', opts.size, 64),
    seed: intOption('seed', opts.seed, 0),
    dim: intOption('dim', opts.dim, 512),
  };
  const bad = Object.values(parsed).find((v) => typeof v === 'string');
  if (bad !== undefined) {
    process.stderr.write(`gan: ${bad}\n`);
    return 1;
  }
  const { n, size, seed, dim } = parsed as Record<keyof typeof parsed, number>;
  if (n > 1_000_000 || size > 4096 || dim > 65536) {
    process.stderr.write(`gan: --n at most 1000000, --size at most 4096, --dim at most 65536\n`);
    return 1;
  }
  try {
    const t0 = Date.now();
    const r = await generateShapes({ out: opts.out, n, size, seed, dim });
    process.stdout.write(`${r.dir}: ${r.n} images of ${r.size}x${r.size}, ${r.k} captions each, ${r.dim}-wide stand-in embeddings (not CLIP) in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`gan: ${(e as Error).message}\n`);
    return 1;
  }
}

/** Adds `gan data check` and `gan data shapes` to the program; `done` receives the exit code. */
export function registerData(program: Command, collect: (v: string, prev?: string[]) => string[], done: (code: number) => void): void {
  const data = program.command('data').description('dataset tools: validate a dataset, make the synthetic shapes dataset');
  data
    .command('check')
    .description('validate a dataset (images/, embeddings.npy, captions.jsonl) as gan train does before its first step')
    .argument('<dir>', 'the dataset folder')
    .option('--model <file>', "also check the embedding width against this model's text input")
    .option('--set <key=value>', 'override a param of --model; repeatable', collect)
    .option('--preset <name>', 'apply a preset of --model')
    .action(async (dir: string, opts: DataCheckOptions) => done(await runDataCheck(dir, opts)));
  data
    .command('shapes')
    .description('write a synthetic dataset of coloured shapes with captions and stand-in (not CLIP) caption embeddings')
    .requiredOption('--out <dir>', 'where to write it')
    .option('--n <n>', 'number of images (default 1000)')
    .option('--size <px>', 'image side in pixels (default 64)')
    .option('--seed <s>', 'random seed (default 0)')
    .option('--dim <d>', "embedding width (default 512, ms-clip-gan's text input)")
    .action(async (opts: ShapesCliOptions) => done(await runDataShapes(opts)));
}
