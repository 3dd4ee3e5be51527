// Node-side loading of a CLIP vocabulary from disk, in either of its published
// forms (clip-tokenizer.ts parses the text and stays browser-safe):
//
//   loadClipTokenizer('bpe_simple_vocab_16e6.txt.gz')   // OpenAI's merges file, gzipped or not
//   loadClipTokenizer('clip/vocab.json')                 // Hugging Face's, with clip/merges.txt
//   loadClipTokenizer('v.json', 'm.txt')                 // Hugging Face's, merges named
//
// Every error names the file it is about.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ClipTokenizer, ClipVocabError } from './clip-tokenizer.ts';

/**
 * The form is read from the content, not the name: gzip's magic bytes mean
 * OpenAI's merges file gzipped; text starting with '{' (or a second path) a
 * Hugging Face vocab.json; other text OpenAI's merges file.
 */
export function loadClipTokenizer(path: string, mergesPath?: string): ClipTokenizer {
  const bytes = readBytes(path);
  const gzipped = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
  const text = gzipped ? gunzip(bytes, path) : utf8(bytes, path);
  if (gzipped || (mergesPath === undefined && !text.trimStart().startsWith('{'))) {
    if (mergesPath !== undefined) {
      throw new Error(`${path}: is a gzipped BPE merges file (OpenAI's form), but a merges file was also given (${mergesPath}); pass a vocab.json with it`);
    }
    return withPath(() => ClipTokenizer.fromBpeMerges(text), { 'bpe merges': path });
  }
  let vocab: Record<string, number>;
  try {
    vocab = JSON.parse(text) as Record<string, number>;
  } catch (e) {
    throw new Error(`${path}: invalid JSON (${(e as Error).message})`);
  }
  const mergesFile = mergesPath ?? join(dirname(path), 'merges.txt');
  const mergesTxt = utf8(readBytes(mergesFile), mergesFile);
  return withPath(() => ClipTokenizer.fromVocabJson(vocab, mergesTxt), { 'vocab.json': path, 'merges.txt': mergesFile });
}

function readBytes(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(err.code === 'ENOENT' ? `${path}: no such file (a CLIP vocabulary: bpe_simple_vocab_16e6.txt.gz, or vocab.json with merges.txt)` : `${path}: cannot read (${err.message})`);
  }
}

function gunzip(bytes: Buffer, path: string): string {
  let raw: Buffer;
  try {
    raw = gunzipSync(bytes);
  } catch (e) {
    throw new Error(`${path}: starts like gzip but does not gunzip (${(e as Error).message})`);
  }
  return utf8(raw, `${path} (gunzipped)`);
}

function utf8(bytes: Buffer, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`${what}: not UTF-8 text`);
  }
}

/** Runs a parse, prefixing its ClipVocabError with the path of the file it is about. */
function withPath(parse: () => ClipTokenizer, paths: Partial<Record<ClipVocabError['source'], string>>): ClipTokenizer {
  try {
    return parse();
  } catch (e) {
    if (e instanceof ClipVocabError) throw new Error(`${paths[e.source] ?? '?'}: ${e.message}`, { cause: e });
    throw e;
  }
}
