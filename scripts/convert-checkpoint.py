#!/usr/bin/env python3
"""Converts a PyTorch checkpoint to safetensors, keeping its tensor names, for
the frozen encoders of models/encoders (their `weights` rules map the
publishers' names): OpenAI's CLIP `ViT-B-32.pt` (a TorchScript archive, float16)
and torchvision's `vgg16-397923af.pth` (a plain state dict). Needs PyTorch; run
it with /usr/bin/python3 on Debian (python3-torch).

    /usr/bin/python3 scripts/convert-checkpoint.py ViT-B-32.pt weights/clip-vit-b32.safetensors
    /usr/bin/python3 scripts/convert-checkpoint.py vgg16-397923af.pth weights/vgg16.safetensors

Tensors keep their dtype (F32, F16, BF16, F64) unless --float32 is given;
non-tensor entries (OpenAI's input_resolution, ...) are dropped. The output is
written through a temporary file and a rename.
"""
import argparse
import json
import os
import struct
import sys

import torch

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}


def load_state_dict(path):
    """A TorchScript archive's state dict, or a plain (possibly wrapped) one."""
    try:
        return torch.jit.load(path, map_location="cpu").state_dict()
    except RuntimeError:
        pass
    obj = torch.load(path, map_location="cpu")
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise SystemExit(f"{path}: neither a TorchScript archive nor a state dict (got {type(obj).__name__})")
    return obj


def raw_bytes(t):
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: its bits are the top half of a float32
        return (t.float().view(torch.int32) >> 16).to(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors):
    header, blobs, at = {}, [], 0
    for name, t in tensors.items():
        b = raw_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (len(h) + 8) % 8) % 8)  # the data starts 8-byte aligned
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--float32", action="store_true", help="store every tensor as F32")
    a = p.parse_args(argv)
    state = load_state_dict(a.input)
    tensors, dropped = {}, []
    for name, v in state.items():
        if not torch.is_tensor(v) or v.dtype not in DTYPES:
            dropped.append(name)
            continue
        t = v.detach().cpu().contiguous()
        tensors[name] = t.float() if a.float32 else t
    write_safetensors(a.output, tensors)
    n = sum(t.numel() for t in tensors.values())
    kinds = sorted({DTYPES[t.dtype] for t in tensors.values()})
    print(f"{a.output}: {len(tensors)} tensors, {n:,} values ({', '.join(kinds)})" + (f"; dropped {len(dropped)} non-float entries: {', '.join(dropped[:5])}" if dropped else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
