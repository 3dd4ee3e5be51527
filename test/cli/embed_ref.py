"""Reference for test/cli/embed.test.ts: what `gan embed` should write,
recomputed from the same files without any of its code.

  /usr/bin/python3 test/cli/embed_ref.py CAPTIONS.jsonl BPE_VOCAB.txt.gz WEIGHTS.safetensors

Tokenizes every caption of every line with test/runtime/clip_tokenizer_ref.py
(OpenAI's simple_tokenizer.py and clip.tokenize, truncate=True) at the context
of the weights' config (encoders_ref.py records it in the file's metadata),
runs encoders_ref.py's text tower in float64 with the end-of-text position
taken as OpenAI's encode_text takes it (the argmax of the ids: EOT is the
largest id), and L2-normalises as CLIP does. Prints one JSON object:
{"shape": [N, K, D], "embeddings": [N*K*D floats, row-major], "truncated": n}.
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'encoders'))
sys.path.insert(0, os.path.join(HERE, '..', 'runtime'))

import clip_tokenizer_ref  # noqa: E402
import encoders_ref  # noqa: E402


def main(captions_path, vocab_path, weights_path):
    meta, weights = encoders_ref.read_safetensors(weights_path)
    cfg = json.loads(meta['config'])
    with open(captions_path, encoding='utf-8') as f:
        lines = [json.loads(line) for line in f if line.strip()]
    k = len(lines[0]['captions'])
    texts = [t for line in lines for t in line['captions']]

    tok = clip_tokenizer_ref.SimpleTokenizer.from_bpe(vocab_path)
    ids = torch.tensor(tok.tokenize(texts, cfg['context']), dtype=torch.long)
    truncated = sum(len(tok.encode(t)) + 2 > cfg['context'] for t in texts)

    model = encoders_ref.build(cfg)
    model.load_state_dict({name: w.float() for name, w in weights.items()})
    model.double().eval()
    with torch.no_grad():
        y = model(ids, ids.argmax(dim=-1))
        y = y / y.norm(dim=-1, keepdim=True)

    print(json.dumps({'shape': [len(lines), k, y.shape[-1]], 'embeddings': y.reshape(-1).tolist(), 'truncated': truncated}))


if __name__ == '__main__':
    if len(sys.argv) != 4:
        sys.exit('usage: embed_ref.py CAPTIONS.jsonl BPE_VOCAB.txt.gz WEIGHTS.safetensors')
    main(*sys.argv[1:])
