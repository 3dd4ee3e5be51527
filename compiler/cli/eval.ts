// `gan eval colour RUN_OR_CHECKPOINT --data DIR [--n N] [--seed S] [--stage S]
// [--json]`: how well samples follow their captions on the synthetic shapes
// data. Draws N (image, caption) pairs of the data (seeded), generates from
// their embeddings with the EMA generator in eval mode, and prints the share
// of images whose dominant foreground colour is the caption's colour, next to
// chance (1 / colours) and per colour; then the same for the background
// colour word (runtime/train/colour-metric.ts), which a generator follows first.
import { join } from 'node:path';
import { backgroundAgreement, colourAgreement, renderBackgroundAgreement, renderColourAgreement, type BackgroundAgreement, type ColourAgreement } from '../../runtime/train/colour-metric.ts';
import { sampleFixture } from '../../runtime/train/samples.ts';
import { UserError } from './user-error.ts';
import { openSampleSource, pickRows, positiveInt, readCaptionTable, readEmbeddingTable, sampleImages, seedOf, type SourceOptions } from './sample.ts';

export interface EvalCliOptions extends SourceOptions {
  data: string;
  n?: string;
  seed?: string;
  stage?: string;
  json?: boolean;
}

/** The colour agreement of a source's samples on the data's own captions (what `gan eval colour` prints). */
export async function evalColour(target: string, opts: EvalCliOptions): Promise<{ result: ColourAgreement; background: BackgroundAgreement; stage: string; describe: string; n: number; seed: number }> {
  const n = positiveInt('--n', opts.n, 64);
  const seed = seedOf(opts.seed);
  const src = openSampleSource(target, opts);
  const emb = readEmbeddingTable(join(opts.data, 'embeddings.npy'));
  const table = readCaptionTable(join(opts.data, 'captions.jsonl'));
  if (table.length !== emb.N) throw new UserError(`${join(opts.data, 'captions.jsonl')} has ${table.length} lines, embeddings.npy has ${emb.N} images`);
  const fx = sampleFixture({ n, size: emb.N, captionsPer: emb.K, noise: {}, seed });
  const picks = fx.indices.map((i, j) => ({ i, k: fx.captions[j] }));
  const captions = picks.map(({ i, k }) => table[i][Math.min(k, table[i].length - 1)]);
  const stages = await sampleImages(src, pickRows(emb, picks), n, seed);
  const s = opts.stage ? stages.find((x) => x.name === opts.stage) : stages.at(-1);
  if (!s) throw new UserError(`no stage '${opts.stage}' (stages: ${stages.map((x) => x.name).join(', ')})`);
  return { result: colourAgreement(s.images, captions), background: backgroundAgreement(s.images, captions), stage: s.name, describe: src.describe, n, seed };
}

export async function runEval(what: string, target: string, opts: EvalCliOptions): Promise<number> {
  if (what !== 'colour') throw new UserError(`unknown evaluation '${what}' (available: colour)`);
  const r = await evalColour(target, opts);
  if (opts.json) {
    const { dominant: _, ...rest } = r.result;
    process.stdout.write(`${JSON.stringify({ source: r.describe, stage: r.stage, n: r.n, seed: r.seed, ...rest, background: r.background }, null, 2)}\n`);
  } else {
    process.stdout.write(`${r.describe}; stage ${r.stage}, ${r.n} samples of ${opts.data}'s captions, seed ${r.seed}\n${renderColourAgreement(r.result)}\n${renderBackgroundAgreement(r.background)}\n`);
  }
  return 0;
}
