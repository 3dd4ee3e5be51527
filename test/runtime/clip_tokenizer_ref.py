"""Reference CLIP tokenizer for test/runtime/clip-tokenizer.test.ts.

Written after OpenAI CLIP's clip/simple_tokenizer.py and clip.tokenize, in
their style, independently of the TypeScript port. Unlike CLIP it does not run
ftfy.fix_text first (ftfy is not installed here, and the TypeScript tokenizer
cannot run it either); for text that is already clean ftfy is the identity.

A command-line tool: one JSON request on stdin, one JSON answer on stdout.

  {"op": "train", "corpus": [...], "merges": 300, "out_dir": DIR}
      learns merges by plain BPE training over CLIP's byte characters and
      writes DIR/bpe_simple_vocab.txt.gz (OpenAI's form) and DIR/vocab.json +
      DIR/merges.txt (Hugging Face's form, the same ids); answers {"merges": N}
  {"op": "tokenize", "bpe_path": P} or {"op": "tokenize", "vocab_path": V, "merges_path": M},
   with "texts": [...], "context_length": 77, optional "decode_prefixes": [...]
      answers {"sot", "eot", "vocab_size", "encode": [[id]], "tokens": [[id]]
      (clip.tokenize rows), "eot_positions", "decode": [decode(encode(text))],
      "prefix_decodes": [[decode(encode(t)[:k]) for every k]] for decode_prefixes}
  {"op": "unescape", "texts": [...]}
      answers {"unescaped": [html.unescape(text)]}
  {"op": "assigned"}
      answers {"code_points": [...]}, those assigned in this Python's Unicode database
"""
import gzip
import html
import json
import os
import sys
import unicodedata
from collections import Counter

import regex as re

SOT = '<|startoftext|>'
EOT = '<|endoftext|>'


def bytes_to_unicode():
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(2 ** 8):
        if b not in bs:
            bs.append(b)
            cs.append(2 ** 8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def get_pairs(word):
    return {(a, b) for a, b in zip(word, word[1:])}


def basic_clean(text):
    # CLIP: text = ftfy.fix_text(text) first; left out, see the module docstring.
    text = html.unescape(html.unescape(text))
    return text.strip()


def whitespace_clean(text):
    text = re.sub(r'\s+', ' ', text)
    return text.strip()


PAT = re.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", re.IGNORECASE)


class SimpleTokenizer:
    def __init__(self, merges, encoder):
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        self.encoder = encoder
        self.decoder = {v: k for k, v in encoder.items()}
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.cache = {SOT: SOT, EOT: EOT}

    @staticmethod
    def read_merges(text):
        lines = text.split('\n')
        if lines and lines[-1] == '':
            lines = lines[:-1]  # the file's final newline
        return [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]

    @classmethod
    def from_bpe(cls, path):
        merges = cls.read_merges(gzip.open(path).read().decode('utf-8'))
        vocab = list(bytes_to_unicode().values())
        vocab = vocab + [v + '</w>' for v in vocab]
        for merge in merges:
            vocab.append(''.join(merge))
        vocab.extend([SOT, EOT])
        return cls(merges, dict(zip(vocab, range(len(vocab)))))

    @classmethod
    def from_hf(cls, vocab_path, merges_path):
        with open(vocab_path, encoding='utf-8') as f:
            encoder = json.load(f)
        with open(merges_path, encoding='utf-8') as f:
            merges = cls.read_merges(f.read())
        return cls(merges, encoder)

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + '</w>',)
        pairs = get_pairs(word)
        if not pairs:
            return token + '</w>'
        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float('inf')))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new_word.extend(word[i:])
                    break
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = get_pairs(word)
        word = ' '.join(word)
        self.cache[token] = word
        return word

    def encode(self, text):
        bpe_tokens = []
        text = whitespace_clean(basic_clean(text)).lower()
        for token in re.findall(PAT, text):
            token = ''.join(self.byte_encoder[b] for b in token.encode('utf-8'))
            bpe_tokens.extend(self.encoder[bpe_token] for bpe_token in self.bpe(token).split(' '))
        return bpe_tokens

    def decode(self, tokens):
        text = ''.join([self.decoder[token] for token in tokens])
        return bytearray([self.byte_decoder[c] for c in text]).decode('utf-8', errors='replace').replace('</w>', ' ')

    def tokenize(self, texts, context_length=77):
        """clip.tokenize(texts, context_length, truncate=True), as lists instead of a torch tensor."""
        sot_token, eot_token = self.encoder[SOT], self.encoder[EOT]
        result = []
        for text in texts:
            tokens = [sot_token] + self.encode(text) + [eot_token]
            if len(tokens) > context_length:
                tokens = tokens[:context_length]
                tokens[-1] = eot_token
            result.append(tokens + [0] * (context_length - len(tokens)))
        return result


def train(corpus, n_merges):
    """Plain BPE training: count the pre-tokens, then repeatedly merge the most frequent adjacent pair."""
    byte_encoder = bytes_to_unicode()
    word_counts = Counter()
    for text in corpus:
        for token in re.findall(PAT, whitespace_clean(basic_clean(text)).lower()):
            if token not in (SOT, EOT):
                word_counts[''.join(byte_encoder[b] for b in token.encode('utf-8'))] += 1
    words = {w: tuple(w[:-1]) + (w[-1] + '</w>',) for w in word_counts}
    merges = []
    while len(merges) < n_merges:
        pair_counts = Counter()
        for w, count in word_counts.items():
            for pair in zip(words[w], words[w][1:]):
                pair_counts[pair] += count
        if not pair_counts:
            break
        best = max(pair_counts, key=lambda p: (pair_counts[p], p))  # ties broken by the pair itself: deterministic
        merges.append(best)
        for w, symbols in words.items():
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            words[w] = tuple(merged)
    return merges


def write_vocab(merges, out_dir):
    body = ''.join(f'{a} {b}\n' for a, b in merges)
    with gzip.open(os.path.join(out_dir, 'bpe_simple_vocab.txt.gz'), 'wb') as f:
        f.write(('"bpe_simple_vocab.txt#version: 0.2\n' + body).encode('utf-8'))
    with open(os.path.join(out_dir, 'merges.txt'), 'w', encoding='utf-8') as f:
        f.write('#version: 0.2\n' + body)
    encoder = SimpleTokenizer.from_bpe(os.path.join(out_dir, 'bpe_simple_vocab.txt.gz')).encoder
    with open(os.path.join(out_dir, 'vocab.json'), 'w', encoding='utf-8') as f:
        json.dump(encoder, f, ensure_ascii=False)


def main():
    req = json.loads(sys.stdin.buffer.read().decode('utf-8'))
    if req['op'] == 'train':
        merges = train(req['corpus'], req['merges'])
        write_vocab(merges, req['out_dir'])
        answer = {'merges': len(merges)}
    elif req['op'] == 'assigned':
        answer = {'code_points': [c for c in range(0x110000) if unicodedata.category(chr(c)) not in ('Cn', 'Cs')]}
    elif req['op'] == 'unescape':
        answer = {'unescaped': [html.unescape(t) for t in req['texts']]}
    elif req['op'] == 'tokenize':
        if 'bpe_path' in req:
            tok = SimpleTokenizer.from_bpe(req['bpe_path'])
        else:
            tok = SimpleTokenizer.from_hf(req['vocab_path'], req['merges_path'])
        texts = req['texts']
        rows = tok.tokenize(texts, req.get('context_length', 77))
        eot_id = tok.encoder[EOT]
        encoded = [tok.encode(t) for t in texts]
        prefix_texts = req.get('decode_prefixes', [])
        answer = {
            'sot': tok.encoder[SOT],
            'eot': eot_id,
            'vocab_size': len(tok.encoder),
            'encode': encoded,
            'tokens': rows,
            # CLIP's encode_text reads the features at text.argmax(dim=-1): the first maximum.
            'eot_positions': [max(range(len(row)), key=lambda j: row[j]) for row in rows],
            'decode': [tok.decode(ids) for ids in encoded],
            'prefix_decodes': [[tok.decode(ids[:k]) for k in range(len(ids) + 1)] for ids in map(tok.encode, prefix_texts)],
        }
    else:
        raise SystemExit(f'unknown op {req["op"]!r}')
    sys.stdout.write(json.dumps(answer))


if __name__ == '__main__':
    main()
