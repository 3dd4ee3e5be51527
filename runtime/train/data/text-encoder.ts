// A deterministic STAND-IN text encoder for the synthetic shapes dataset, NOT
// CLIP: a caption's embedding is the L2-normalised sum of one fixed random
// vector per word (seeded by the word's hash). Captions sharing words get
// similar embeddings, which is all the shapes data needs. Real CLIP (or any
// other) embeddings made elsewhere drop in through embeddings.npy instead.
import { Rng } from './rng.ts';

/** Lower-case words: runs of letters and digits. */
export function captionWords(text: string): string[] {
  return text.toLowerCase().match(/[a-z0-9]+/g) ?? [];
}

/** FNV-1a over the word's UTF-16 code units. */
function wordHash(word: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const wordVectors = new Map<string, Float32Array>();

function wordVector(word: string, dim: number): Float32Array {
  const key = `${dim}:${word}`;
  let v = wordVectors.get(key);
  if (!v) {
    const rng = Rng.seeded(wordHash(word), 0x7e47);
    v = new Float32Array(dim);
    for (let i = 0; i < dim; i++) v[i] = rng.normal();
    wordVectors.set(key, v);
  }
  return v;
}

/** The stand-in embedding of a caption: unit length, `dim` wide. */
export function embedCaption(text: string, dim = 512): Float32Array {
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`embedCaption: dim must be a positive integer, got ${dim}`);
  const sum = new Float64Array(dim);
  for (const w of captionWords(text)) {
    const v = wordVector(w, dim);
    for (let i = 0; i < dim; i++) sum[i] += v[i];
  }
  let norm = 0;
  for (let i = 0; i < dim; i++) norm += sum[i] * sum[i];
  norm = Math.sqrt(norm);
  const out = new Float32Array(dim);
  if (norm === 0) return out; // no words: the zero vector
  for (let i = 0; i < dim; i++) out[i] = sum[i] / norm;
  return out;
}
