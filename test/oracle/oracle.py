# PyTorch oracle for the vitest suites (driven by test/oracle/torch.ts).
#
# Protocol: newline-delimited JSON on stdin/stdout, one request per line:
#   {"id": 1, "code": "...", "inputs": {"a": {"shape": [2, 3], "data": "<b64 f32 LE>"}},
#    "grad": ["a"], "vars": {"stride": 2}, "seed": 0, "float64": false}
# The code runs with each input bound as a torch tensor (requires_grad for names in
# "grad"), each var bound as a plain Python value, and torch / F / nn / math in scope.
# It must assign a dict `out` of tensors (or numbers); each is returned as float32:
#   {"id": 1, "ok": true, "out": {"y": {"shape": [...], "data": "..."}}}
#   {"id": 1, "ok": false, "error": "traceback text"}
# Anything the snippet prints goes to stderr so it cannot corrupt the protocol.
import base64
import json
import math
import sys
import traceback

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

protocol_out = sys.stdout
sys.stdout = sys.stderr


def decode(t, float64):
    arr = np.frombuffer(base64.b64decode(t["data"]), dtype="<f4").reshape(t["shape"])
    x = torch.from_numpy(arr.copy())
    return x.double() if float64 else x


def encode(value):
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value)
    arr = value.detach().to(torch.float32).contiguous().numpy().astype("<f4")
    return {"shape": list(arr.shape), "data": base64.b64encode(arr.tobytes()).decode("ascii")}


def handle(req):
    float64 = bool(req.get("float64", False))
    grad = set(req.get("grad", []))
    scope = {"torch": torch, "F": F, "nn": nn, "math": math, "np": np}
    for name, t in req.get("inputs", {}).items():
        x = decode(t, float64)
        if name in grad:
            x.requires_grad_(True)
        scope[name] = x
    scope.update(req.get("vars", {}))
    torch.manual_seed(int(req.get("seed", 0)))
    exec(req["code"], scope)
    out = scope.get("out")
    if not isinstance(out, dict):
        raise ValueError("the snippet must assign a dict `out` of tensors")
    return {name: encode(v) for name, v in out.items()}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            reply = {"id": req["id"], "ok": True, "out": handle(req)}
        except Exception:
            reply = {"id": req.get("id"), "ok": False, "error": traceback.format_exc()}
        protocol_out.write(json.dumps(reply) + "\n")
        protocol_out.flush()


if __name__ == "__main__":
    main()
