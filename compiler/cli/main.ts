// The `gan` command line. Each subcommand returns an exit code; user errors
// print diagnostics (never a stack trace) and exit 1.
import { Command, CommanderError } from 'commander';
import { runCheck } from './check.ts';
import { runCompile } from './compile.ts';
import { UserError } from './user-error.ts';
import { doctorReport, renderDoctor } from './doctor.ts';
import { runEmbed, type EmbedCliOptions } from './embed.ts';
import { runEval, type EvalCliOptions } from './eval.ts';
import { runSample, type SampleCliOptions } from './sample.ts';
import { registerData } from './data.ts';
import { runTrain, type TrainCliOptions } from './train.ts';

const collect = (v: string, prev: string[] = []) => [...prev, v];

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command('gan')
    .description('gan-dsl: declarative GAN architectures compiled to WGSL, trained on WebGPU')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('check')
    .description('parse a .gan file, check every shape, print a model summary')
    .argument('<file>', 'the .gan model')
    .option('--set <key=value>', 'override a param (ngf=16) or a setting (train.batch=4); repeatable', collect)
    .option('--preset <name>', "apply a preset declared in the model (e.g. 'tiny')")
    .option('--json', 'print one JSON object instead of the table')
    .option('--no-layers', 'print only per-network totals')
    .option('--memory', 'plan each network and report peak memory')
    .option('--batch <n>', 'batch size for --memory (default: train.batch)')
    .action((file: string, opts: { set?: string[]; preset?: string; json?: boolean; layers?: boolean; memory?: boolean; batch?: string }) => {
      code = runCheck(file, opts);
    });

  program
    .command('compile')
    .description('lower a .gan file to the tensor IR (--emit ir), or write its generator as a TypeScript module (--emit ts --out DIR)')
    .argument('<file>', 'the .gan model')
    .option('--emit <what>', 'ir: print the tensor IR; ts: write a TypeScript module of the generator to --out', 'ir')
    .option('--out <dir>', '--emit ts: the module directory (index.ts, generator.json, runtime/, weights.safetensors)')
    .option('--weights <ckpt>', "--emit ts: a checkpoint (run folder or ckpt-*.json) whose generator weights (EMA) the module carries")
    .option('--batch <n>', 'batch size (default: train.batch; --emit ts: min(train.batch, 16), the samples per run)')
    .option('--eval', 'BatchNorm in eval mode (running statistics)')
    .option('--net <name>', 'only this network (G, d0, ...)')
    .option('--set <key=value>', 'override a param or a setting; repeatable', collect)
    .option('--preset <name>', 'apply a preset declared in the model')
    .action((file: string, opts: { emit?: string; batch?: string; eval?: boolean; net?: string; set?: string[]; preset?: string; out?: string; weights?: string }) => {
      code = runCompile(file, opts);
    });

  program
    .command('sample')
    .description('generate images from a checkpoint (EMA weights, BatchNorm in eval mode) for caption embeddings')
    .argument('<source>', 'a run folder or checkpoint (or a .gan file: its untrained initial weights)')
    .option('--embeddings <file>', 'caption embeddings, .npy [N, D] or [N, K, D] (caption 0 of each)')
    .option('--caption <text>', 'a caption to embed with CLIP instead of --embeddings (as gan embed does); repeatable', collect)
    .requiredOption('--out <path>', "grid.png, or a folder ending in '/' for one PNG per image")
    .option('--captions <file>', 'captions.jsonl of the embeddings: their texts go in an HTML page beside the grid')
    .option('--weights <file>', "with --caption: the CLIP checkpoint (safetensors, OpenAI's tensor names)")
    .option('--vocab <file>', 'with --caption: the CLIP vocabulary (bpe_simple_vocab_16e6.txt.gz, or vocab.json)')
    .option('--merges <file>', 'with --caption: merges.txt for a vocab.json (default: beside it)')
    .option('--clip-model <file>', 'with --caption: the CLIP .gan file (default: the bundled models/encoders/clip-vit-b32.gan)')
    .option('--clip-preset <name>', 'with --caption: apply a preset of the CLIP .gan file')
    .option('--clip-set <key=value>', 'with --caption: override a param of the CLIP .gan file; repeatable', collect)
    .option('--n <n>', 'images (default 16; embeddings are cycled when fewer)')
    .option('--stage <name>', "which stage's images (default: the last; 'all' for every stage)")
    .option('--seed <s>', 'noise seed (default 0)')
    .option('--live', 'the live generator weights instead of the EMA')
    .option('--set <key=value>', 'for a .gan source: override a param or a setting; repeatable', collect)
    .option('--preset <name>', 'for a .gan source: apply a preset')
    .action(async (source: string, opts: SampleCliOptions) => {
      code = await runSample(source, opts);
    });

  program
    .command('embed')
    .description("embed a dataset's captions with CLIP's text tower: captions.jsonl -> embeddings.npy, L2-normalised")
    .argument('<captions>', 'captions.jsonl: one line per image, {"file": ..., "captions": [K texts]}')
    .requiredOption('--weights <file>', "the CLIP checkpoint (safetensors, OpenAI's tensor names)")
    .requiredOption('--vocab <file>', 'the CLIP vocabulary: bpe_simple_vocab_16e6.txt.gz, or vocab.json (merges.txt beside it)')
    .requiredOption('--out <file>', 'the .npy to write: [N, K, D], or [N, D] when K = 1 (written atomically)')
    .option('--merges <file>', 'merges.txt for a vocab.json (default: beside it)')
    .option('--model <file>', 'the CLIP .gan file, encoder text (default: the bundled models/encoders/clip-vit-b32.gan)')
    .option('--preset <name>', 'apply a preset of the CLIP .gan file')
    .option('--set <key=value>', 'override a param of the CLIP .gan file (vocab=..., context=...); repeatable', collect)
    .option('--batch <n>', 'captions per GPU batch (default 32)')
    .action(async (captions: string, opts: EmbedCliOptions) => {
      code = await runEmbed(captions, opts);
    });

  program
    .command('eval')
    .description("measure samples against their captions: 'colour' = share whose dominant colour is the caption's (shapes data)")
    .argument('<what>', 'colour')
    .argument('<source>', 'a run folder or checkpoint (or a .gan file: its untrained initial weights)')
    .requiredOption('--data <dir>', 'the dataset whose captions and embeddings to sample from')
    .option('--n <n>', 'samples (default 64)')
    .option('--seed <s>', 'choice of captions and noise (default 0)')
    .option('--stage <name>', 'which stage (default: the last)')
    .option('--live', 'the live generator weights instead of the EMA')
    .option('--json', 'print one JSON object')
    .option('--set <key=value>', 'for a .gan source: override a param or a setting; repeatable', collect)
    .option('--preset <name>', 'for a .gan source: apply a preset')
    .action(async (what: string, source: string, opts: EvalCliOptions) => {
      code = await runEval(what, source, opts);
    });

  program
    .command('train')
    .description('train a .gan model on a dataset: checkpoints, metrics, samples in the run folder')
    .argument('<file>', 'the .gan model')
    .requiredOption('--data <dir>', 'dataset folder: images/, embeddings.npy, captions.jsonl')
    .option('--preset <name>', 'apply a preset declared in the model')
    .option('--set <key=value>', 'override a param or a setting; repeatable', collect)
    .option('--steps <n>', 'iterations to train (default: train.steps)')
    .option('--epochs <n>', 'passes over the data instead of --steps')
    .option('--batch <n>', 'batch size (default: train.batch)')
    .option('--seed <n>', 'seed of weights, noise and data order (default: train.seed)')
    .option('--out <dir>', 'run folder (default: runs/<model name>)')
    .option('--resume [ckpt]', "continue from a checkpoint (default: the run folder's newest)")
    .option('--ckpt-every <n>', 'checkpoint every n steps (default: min(steps, 1000)); one is always written at the end')
    .option('--keep <k>', 'keep the newest k checkpoints (default 3)')
    .option('--sample-every <n>', 'write sample grids every n steps')
    .option('--ema <mode>', "G EMA to sample from: 'bias_corrected' (default) or StackGAN's 'plain'")
    .option('--strict', 'refuse to train when the model asks for objective terms not implemented yet')
    .action(async (file: string, opts: TrainCliOptions) => {
      code = await runTrain(file, opts);
    });

  program
    .command('doctor')
    .description('show Node, the WebGPU adapter Dawn chose and its limits')
    .option('--json', 'print one JSON object')
    .option('--adapter <kind>', 'auto, hardware or software (default: $GAN_ADAPTER or auto)')
    .action(async (opts: { json?: boolean; adapter?: string }) => {
      if (opts.adapter) process.env.GAN_ADAPTER = opts.adapter;
      const r = await doctorReport();
      console.log(opts.json ? JSON.stringify(r, null, 2) : renderDoctor(r));
      code = r.adapter && r.nodeOk ? 0 : 1;
    });

  registerData(program, collect, (c) => (code = c));

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 1;
    if (e instanceof UserError) {
      process.stderr.write(`gan: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  return code;
}
