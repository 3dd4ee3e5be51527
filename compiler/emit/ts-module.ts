// `gan compile MODEL --emit ts --out DIR`: a self-contained TypeScript module
// of a model's generator. DIR holds
//   index.ts          a class named after the model (written with ts-morph):
//                     load(), generate({ text, n?, seed?, stage? }), the
//                     inputs typed and documented, doc comments from the .gan
//   generator.json    the eval-mode plan, its layout and kernels (GeneratorSpec)
//   weights.safetensors  the weights, when given (else load() takes them)
//   runtime/          the runtime files it imports (nothing of compiler/ or grammar/)
// Names from the .gan file become identifiers only through safeIdentifier and
// enter strings and comments only escaped, so a hostile name cannot inject code.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Project, Scope, StructureKind, VariableDeclarationKind } from 'ts-morph';
import { encodeSafetensors } from '../../runtime/format/safetensors.ts';
import { serializeGeneratorSpec, type GeneratorSpec } from '../../runtime/module/generator.ts';
import { serializeTrainerSpec } from '../../runtime/module/trainer-spec.ts';
import type { TrainerSpec } from '../../runtime/train/trainer.ts';
import { importClosure } from './closure.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The runtime entry points a module imports; their import closure is copied. */
const RUNTIME_ENTRIES = [
  'runtime/module/generator.ts',
  'runtime/module/trainer-spec.ts',
  'runtime/module/frozen-weights.ts',
  'runtime/module/fed-batches.ts',
  'runtime/device.ts',
  'runtime/device-browser.ts',
  'runtime/format/safetensors.ts',
  'runtime/train/samples.ts',
  'runtime/train/trainer.ts',
  'runtime/train/data/index.ts',
];

const RESERVED = new Set(
  ('break case catch class const continue debugger default delete do else enum export extends false finally for function if import in instanceof new null return super switch this throw true try typeof var void while with ' +
    'as implements interface let package private protected public static yield any boolean constructor declare get module require number set string symbol type from of await async').split(' '),
);

/** A valid TypeScript identifier made from `name`: other characters become '_', a leading digit or a reserved word gets a prefix. */
export function safeIdentifier(name: string, prefix = 'Gan'): string {
  let id = name.replace(/[^A-Za-z0-9_$]/g, '_');
  if (!id || /^[0-9]/.test(id) || RESERVED.has(id)) id = `${prefix}${id.charAt(0).toUpperCase()}${id.slice(1)}`;
  return id;
}

/** Text for a doc comment: nothing in it can close the comment early, no control characters. */
export function docText(s: string): string {
  return s.replace(/\*\//g, '*\\/').replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, ' ');
}

export interface ModuleInfo {
  /** The model's name (`gan MSClipGAN`): the class is named after it. */
  name: string;
  /** Where it came from, for the header (`models/ms-clip-gan.gan --preset tiny`). */
  source: string;
  /** The .gan file's leading comment, as prose. */
  doc: string;
  /** The `text` input's own comment (`L2-normalised CLIP text embedding`). */
  textDoc: string;
}

/** The training programs a module carries: what `gan train` runs, and how it opens the data. */
export interface ModuleTraining {
  spec: TrainerSpec;
  /** openDataset's settings beside the spec's batch and seed. */
  data: { resolutions: number[]; textDim: number; wrongSameGroup: number };
  /** Frozen encoders' weights: their checkpoint files and which tensor fills each param (by layout name). */
  frozen: { checkpoint: string; tensors: Record<string, string> }[];
}

/** Writes the module directory; returns the class name. */
export function emitGeneratorModule(spec: GeneratorSpec, info: ModuleInfo, outDir: string, weights?: Record<string, Float32Array>, training?: ModuleTraining): string {
  mkdirSync(outDir, { recursive: true });
  for (const f of importClosure(ROOT, RUNTIME_ENTRIES)) {
    mkdirSync(join(outDir, dirname(f)), { recursive: true });
    copyFileSync(join(ROOT, f), join(outDir, f));
  }
  writeFileSync(join(outDir, 'generator.json'), serializeGeneratorSpec(spec));
  if (training) writeFileSync(join(outDir, 'training.json'), JSON.stringify({ data: training.data, frozen: training.frozen, spec: JSON.parse(serializeTrainerSpec(training.spec)) }));
  if (weights) writeFileSync(join(outDir, 'weights.safetensors'), encodeSafetensors(Object.fromEntries(Object.entries(weights).map(([k, v]) => [k, { shape: [v.length], data: v }]))));
  const cls = safeIdentifier(info.name);
  writeFileSync(join(outDir, 'index.ts'), indexSource(cls, spec, info, weights !== undefined, training));
  writeFileSync(join(outDir, 'browser.ts'), browserSource(cls, info));
  return cls;
}

/**
 * browser.ts: the same generator in a web page (navigator.gpu, fetch), for
 * bundling (examples/web). Imports nothing of Node (test/runtime/browser-bundle.test.ts).
 */
function browserSource(cls: string, info: ModuleInfo): string {
  return `// Generated by \`gan compile --emit ts\` from ${info.source.replace(/[\r\n]/g, ' ')}. Do not edit: compile again.
// ${cls} in a web page: WebGPU from navigator.gpu, files by fetch. Bundle it (npm run build:web).
import { browserDevice, NoWebGpuError } from './runtime/device-browser.ts';
import { decodeSafetensors, toFloat32 } from './runtime/format/safetensors-codec.ts';
import { Generator, GeneratorInputError, parseGeneratorSpec, type GenerateOptions, type StageImages } from './runtime/module/generator.ts';

export { GeneratorInputError, NoWebGpuError };
export type { GenerateOptions, StageImages };

/** Loads generator.json and weights.safetensors from \`base\` (the module directory's URL) onto the page's WebGPU device. */
export async function load${cls}(base: URL | string): Promise<Generator> {
  const ctx = await browserDevice();
  const get = async (name: string) => {
    const r = await fetch(new URL(name, base));
    if (!r.ok) throw new Error(\`\${name}: HTTP \${r.status}\`);
    return r;
  };
  const spec = parseGeneratorSpec(await (await get('generator.json')).text());
  const file = decodeSafetensors(new Uint8Array(await (await get('weights.safetensors')).arrayBuffer()), 'weights.safetensors');
  const weights: Record<string, Float32Array> = {};
  for (const [name, t] of Object.entries(file.tensors)) {
    const v = toFloat32(t);
    if (!v) throw new GeneratorInputError(\`weights.safetensors: tensor '\${name}' is \${t.dtype}, not floating point\`);
    weights[name] = v;
  }
  return Generator.create(spec, weights, { ctx, what: 'weights.safetensors' });
}
`;
}

function indexSource(cls: string, spec: GeneratorSpec, info: ModuleInfo, bundled: boolean, training: ModuleTraining | undefined): string {
  const trains = training !== undefined;
  const trainBatch = training?.spec.batch ?? spec.batch;
  const project = new Project({ useInMemoryFileSystem: true });
  const f = project.createSourceFile('index.ts');
  const stageType = `${cls}Stage`;
  const D = spec.textDim;
  const stages = spec.stages.map((s) => ({ name: s.name, resolution: s.resolution }));
  f.addImportDeclarations([
    { moduleSpecifier: 'node:fs', namedImports: ['readFileSync'] },
    { moduleSpecifier: 'node:path', namedImports: ['dirname', 'join'] },
    { moduleSpecifier: 'node:url', namedImports: ['fileURLToPath'] },
    { moduleSpecifier: './runtime/device.ts', namedImports: ['getDevice'] },
    { moduleSpecifier: './runtime/format/safetensors.ts', namedImports: ['readSafetensors', 'toFloat32'] },
    { moduleSpecifier: './runtime/module/generator.ts', namedImports: ['Generator', 'GeneratorInputError', 'parseGeneratorSpec', { name: 'StageImages', isTypeOnly: true }] },
    { moduleSpecifier: './runtime/train/samples.ts', namedImports: ['writeGridPng'] },
    ...(trains
      ? [
          { moduleSpecifier: './runtime/module/trainer-spec.ts', namedImports: ['parseTrainerSpec'] },
          { moduleSpecifier: './runtime/train/trainer.ts', namedImports: ['Trainer', { name: 'TrainerOptions', isTypeOnly: true }] },
          { moduleSpecifier: './runtime/train/data/index.ts', namedImports: ['openDataset'] },
          { moduleSpecifier: './runtime/module/frozen-weights.ts', namedImports: ['readFrozenWeights'] },
          { moduleSpecifier: './runtime/module/fed-batches.ts', namedImports: ['BatchInputError', 'FedBatches'] },
        ]
      : []),
  ]);
  f.addStatements(`export { GeneratorInputError, writeGridPng${trains ? ', Trainer, BatchInputError' : ''} };\nexport type { StageImages };`);
  f.addTypeAlias({
    name: stageType,
    isExported: true,
    type: stages.map((s) => JSON.stringify(s.name)).join(' | '),
    docs: [`A stage of ${docText(info.name)}, in generation order.`],
  });
  f.addInterface({
    name: `${cls}Input`,
    isExported: true,
    docs: ['What generate() takes.'],
    properties: [
      { name: 'text', type: 'Float32Array', docs: [`[n, ${D}] caption embeddings, row after row${info.textDoc ? `: ${docText(info.textDoc)}` : ''}.`] },
      { name: 'n', type: 'number', hasQuestionToken: true, docs: [`Samples (default: the rows of \`text\`).`] },
      { name: 'seed', type: 'number', hasQuestionToken: true, docs: ['Device noise seed (default 0): the same seed, text and weights give the same images.'] },
      { name: 'stage', type: stageType, hasQuestionToken: true, docs: ['Only this stage (default: every stage).'] },
    ],
  });
  if (trains) {
    // A stage name is an identifier of the .gan file; quoted where it is not one in TypeScript.
    const key = (name: string) => (safeIdentifier(name) === name ? name : JSON.stringify(name));
    const images = (what: string) =>
      `{\n${stages.map((s) => `  /** [${trainBatch}, 3, ${s.resolution}, ${s.resolution}] ${what} at ${s.name}, in [-1, 1]. */\n  ${key(s.name)}: Float32Array;`).join('\n')}\n}`;
    f.addInterface({
      name: `${cls}Batch`,
      isExported: true,
      docs: [`One training batch of ${docText(info.name)} from your own data pipeline (the trainer's \`data\` as \`{ next() }\`); checked against the programs before it reaches the device.`],
      properties: [
        { name: 'text', type: 'Float32Array', docs: [`[${trainBatch}, ${D}] caption embeddings, row after row${info.textDoc ? `: ${docText(info.textDoc)}` : ''}.`] },
        { name: 'real', type: images('real images'), docs: ['Real images per stage, matching `text`.'] },
        { name: 'wrong', type: images('images mismatched with `text`'), docs: ['Mismatched ("wrong") images per stage, for the mismatched-pair terms.'] },
      ],
    });
  }
  f.addVariableStatement({
    declarationKind: VariableDeclarationKind.Const,
    declarations: [{ name: 'HERE', initializer: 'dirname(fileURLToPath(import.meta.url))' }],
  });
  f.addClass({
    name: cls,
    isExported: true,
    docs: [
      `${docText(info.name)}${info.doc ? `: ${docText(info.doc)}` : ''}\n\n` +
        `Compiled for runs of ${spec.batch} samples; any n is generated in runs of that many. ` +
        `Stages: ${stages.map((s) => `${s.name} (${s.resolution}x${s.resolution})`).join(', ')}.`,
    ],
    properties: [
      { name: 'textDim', isStatic: true, isReadonly: true, initializer: String(D), docs: ['Width of a caption embedding (the model\'s `text` input).'] },
      { name: 'stages', isStatic: true, isReadonly: true, initializer: `${JSON.stringify(stages)} as const`, docs: ['Stages in generation order, with their image sizes.'] },
    ],
    ctors: [{ scope: Scope.Private, parameters: [{ name: 'generator', type: 'Generator', isReadonly: true, scope: Scope.Private }] }],
    methods: [
      {
        name: 'load',
        isStatic: true,
        isAsync: true,
        returnType: `Promise<${cls}>`,
        docs: [`Compiles the kernels on the WebGPU device and loads the weights (${bundled ? 'weights.safetensors beside this file' : 'a safetensors file of the generator, by layout name'}).`],
        parameters: [{ name: 'weightsFile', type: 'string', initializer: bundled ? "join(HERE, 'weights.safetensors')" : undefined }],
        statements: [
          "const spec = parseGeneratorSpec(readFileSync(join(HERE, 'generator.json'), 'utf8'));",
          'const weights: Record<string, Float32Array> = {};',
          'for (const [name, t] of Object.entries(readSafetensors(weightsFile).tensors)) {',
          '  const v = toFloat32(t);',
          '  if (!v) throw new GeneratorInputError(`${weightsFile}: tensor \'${name}\' is ${t.dtype}, not floating point`);',
          '  weights[name] = v;',
          '}',
          `return new ${cls}(await Generator.create(spec, weights, { ctx: await getDevice(), what: weightsFile }));`,
        ],
      },
      {
        name: 'generate',
        isAsync: true,
        returnType: 'Promise<StageImages[]>',
        docs: [`Images for caption embeddings: per stage, [n, 3, R, R] float32 in [-1, 1] (writeGridPng writes a grid).`],
        parameters: [{ name: 'input', type: `${cls}Input` }],
        statements: [
          'if (!(input.text instanceof Float32Array)) throw new GeneratorInputError(`text: expected a Float32Array [n, ${' + cls + '.textDim}]`);',
          'const all = await this.generator.generate(input);',
          'if (input.stage === undefined) return all;',
          'const one = all.filter((s) => s.name === input.stage);',
          `if (one.length === 0) throw new GeneratorInputError(\`stage: '\${String(input.stage)}' is not one of \${${cls}.stages.map((s) => s.name).join(', ')}\`);`,
          'return one;',
        ],
      },
      { name: 'destroy', returnType: 'void', docs: ['Frees the device buffers.'], statements: ['this.generator.destroy();'] },
      ...(trains
        ? [
            {
              name: 'trainer',
              isStatic: true,
              isAsync: true,
              returnType: 'Promise<Trainer>',
              docs: [
                'The training programs `gan train` runs (D and G steps, optimizers, EMA), from fresh weights of `seed` (default: the model\'s). ' +
                  `\`data\`: a dataset folder (images/, embeddings.npy, captions.jsonl), or your own pipeline, \`{ next(): ${cls}Batch }\` (called once per batch; a batch that does not fit throws BatchInputError). ` +
                  'Loop with `await t.trainStep()` (one iteration, its losses), `t.saveCheckpoint(dir)`, `t.resume(dir)`; or `t.run({ steps, out })`. Close with `await t.source.close(); t.destroy()`.',
              ],
              parameters: [{ name: 'opts', type: `{ data: string | { next(): ${cls}Batch | Promise<${cls}Batch> }; seed?: number } & Omit<TrainerOptions, 'ctx'>` }],
              statements: [
                "const { data, frozen, spec } = JSON.parse(readFileSync(join(HERE, 'training.json'), 'utf8')) as { data: { resolutions: number[]; textDim: number; wrongSameGroup: number }; frozen: { checkpoint: string; tensors: Record<string, string> }[]; spec: unknown };",
                'const training = parseTrainerSpec(JSON.stringify(spec));',
                'const seed = opts.seed ?? training.seed;',
                'const source =',
                "  typeof opts.data === 'string'",
                '    ? await openDataset(opts.data, { batch: training.batch, resolutions: data.resolutions, seed, textDim: data.textDim, wrongSameGroup: data.wrongSameGroup })',
                `    : new FedBatches(opts.data, { batch: training.batch, textDim: data.textDim, stages: ${cls}.stages });`,
                'try {',
                '  return await Trainer.create({ ...training, seed }, source, { ...opts, ctx: await getDevice(), frozen: readFrozenWeights(frozen) });',
                '} catch (e) {',
                '  await source.close();',
                '  throw e;',
                '}',
              ],
            },
          ]
        : []),
    ],
  });
  f.addExportAssignment({ expression: cls, isExportEquals: false });
  f.formatText({ indentSize: 2 });
  const header = [
    `// Generated by \`gan compile --emit ts\` from ${info.source.replace(/[\r\n]/g, ' ')}. Do not edit: compile again.`,
    '// It needs the `webgpu` package (Dawn for Node) and, for PNGs, `sharp`; nothing of the gan-dsl compiler.',
  ];
  return `${header.join('\n')}\n${f.getFullText()}`;
}
