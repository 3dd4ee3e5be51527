// A small CLIP BPE vocabulary for tests, learned by the Python reference
// tokenizer (test/runtime/clip_tokenizer_ref.py) from a caption corpus and
// written in both published forms; and the way to ask that reference.
// Shared by the tokenizer's tests and `gan embed`'s.
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';

const PYTHON = '/usr/bin/python3';
const REFERENCE = join(import.meta.dirname, '..', 'runtime', 'clip_tokenizer_ref.py');

/** One JSON request to clip_tokenizer_ref.py, its JSON answer (see the script's docstring). */
export function tokenizerReference<T>(request: object): T {
  const out = execFileSync(PYTHON, [REFERENCE], { input: JSON.stringify(request), maxBuffer: 1 << 28 });
  return JSON.parse(out.toString('utf8')) as T;
}

/** Like the PyTorch oracle: false without Python's `regex` module (a warning says so), except under CI, where it must be there. */
export function tokenizerReferenceAvailable(): boolean {
  const r = spawnSync(PYTHON, ['-c', 'import regex'], { encoding: 'utf8' });
  if (!r.error && r.status === 0) return true;
  const why = r.error?.message ?? r.stderr.trim().split('\n').pop();
  if (/^(1|true|yes)$/i.test(process.env.CI ?? '')) return true;
  console.warn(`[clip-tokenizer] skipping the Python comparisons: ${PYTHON} cannot import regex (${why}); apt-get install python3-regex`);
  return false;
}

/** The captions the Python script learns its merges from: common words, repeated letters, several scripts. */
export const BPE_CORPUS = [
  'a photo of a cat sitting on a red sofa',
  'a red circle on a blue background',
  'a blue square next to a green triangle',
  'two dogs playing in the snow',
  'the quick brown fox jumps over the lazy dog',
  'a painting of a lighthouse at sunset',
  'a close up photo of a yellow flower',
  'a small bird standing on a branch',
  'a white plate with a banana and an apple',
  'a man riding a bicycle down the street',
  'people walking in a park on a sunny day',
  'a black and white photo of a train station',
  'a bowl of soup with bread on the side',
  "it's a dog, they'll play, we've seen, you're right, i'm here, i'd go, don't stop",
  'bananas bananas banana mississippi lollipop aaaa bookkeeper',
  'the shapes are red green blue yellow purple orange',
  'photo photography photographer photographs',
  'café crème brûlée naïve façade',
  'Ελληνικά ελληνικά γλώσσα',
  '日本語 日本 語 テキスト',
  '한국어 한국 문장',
  'مرحبا بالعالم مرحبا',
  'a dog 🐶 and a cat 🐱 🐶🐶',
  'wow!!! wait... well -- maybe ?!',
  'in 2024 a 3.5mm jack cost 10 dollars',
];

/** The files of a learned vocabulary: OpenAI's gzipped merges file, and Hugging Face's vocab.json + merges.txt (same ids). */
export interface ClipVocabFiles {
  gz: string;
  vocab: string;
  merges: string;
  /** How many merges were learned: the vocabulary has 512 + merges + 2 ids. */
  learned: number;
}

/** Learns `merges` merges from BPE_CORPUS and writes both forms into `dir`. */
export function trainClipVocab(dir: string, merges = 300): ClipVocabFiles {
  const { merges: learned } = tokenizerReference<{ merges: number }>({ op: 'train', corpus: BPE_CORPUS, merges, out_dir: dir });
  return { gz: join(dir, 'bpe_simple_vocab.txt.gz'), vocab: join(dir, 'vocab.json'), merges: join(dir, 'merges.txt'), learned };
}
