# PyTorch references of three frozen encoders, for the encoder tests.
#
#   clip_image  OpenAI CLIP's VisionTransformer (openai/CLIP clip/model.py)
#   clip_text   OpenAI CLIP's text tower (CLIP.encode_text)
#   vgg16       torchvision's VGG16 `features[0:23]`, up to and including relu4_3
#
# Written by hand in plain torch.nn (no torchvision, clip or safetensors here),
# with the published modules and parameter names, so a published checkpoint's
# state dict loads by name. Usage:
#
#   /usr/bin/python3 test/encoders/encoders_ref.py run CONFIG.json OUTDIR
#       writes OUTDIR/weights.safetensors (random weights, published names) and
#       OUTDIR/io.safetensors (inputs, y, gy, and g_image = d sum(y*gy)/d image)
#   /usr/bin/python3 test/encoders/encoders_ref.py count CONFIG.json
#       prints {"parameters": N, "tensors": {name: shape}}; allocates nothing
#   /usr/bin/python3 test/encoders/encoders_ref.py selftest
#
# Configs (JSON objects; "seed" default 0, "batch" default 2):
#   {"net": "clip_image", "width", "layers", "heads", "patch", "res", "output_dim"}
#   {"net": "clip_text", "vocab", "context", "width", "layers", "heads", "output_dim"}
#   {"net": "vgg16", "res", "channels": [10 ints] (default torchvision's), "width_mult"}
# plus "dtype": "F32" | "F16" (of weights.safetensors; the reference then runs on
# the f16-rounded weights) and "compute": "F64" (default) | "F32", the precision
# the reference runs in. Every tensor in io.safetensors is F32.
import json
import os
import struct
import sys
import tempfile
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn

# ---------------------------------------------------------------- CLIP (OpenAI)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model, n_head, attn_mask=None, device=None):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_head, device=device)
        self.ln_1 = nn.LayerNorm(d_model, eps=1e-5, device=device)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(d_model, d_model * 4, device=device)),
            ("gelu", QuickGELU()),
            ("c_proj", nn.Linear(d_model * 4, d_model, device=device)),
        ]))
        self.ln_2 = nn.LayerNorm(d_model, eps=1e-5, device=device)
        self.attn_mask = attn_mask  # a plain attribute, as in OpenAI: not in the state dict

    def attention(self, x):
        mask = self.attn_mask.to(dtype=x.dtype) if self.attn_mask is not None else None
        return self.attn(x, x, x, need_weights=False, attn_mask=mask)[0]

    def forward(self, x):  # x: [L, B, width], sequence first as OpenAI runs it
        x = x + self.attention(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, attn_mask=None, device=None):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, attn_mask, device) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self, input_resolution, patch_size, width, layers, heads, output_dim, device=None):
        super().__init__()
        assert input_resolution % patch_size == 0, "res must be a multiple of patch"
        grid = input_resolution // patch_size
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False, device=device)
        self.class_embedding = nn.Parameter(torch.empty(width, device=device))
        self.positional_embedding = nn.Parameter(torch.empty(grid * grid + 1, width, device=device))
        self.ln_pre = nn.LayerNorm(width, eps=1e-5, device=device)
        self.transformer = Transformer(width, layers, heads, device=device)
        self.ln_post = nn.LayerNorm(width, eps=1e-5, device=device)
        self.proj = nn.Parameter(torch.empty(width, output_dim, device=device))

    def forward(self, x):
        x = self.conv1(x)  # [B, width, grid, grid]
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [B, grid^2, width]
        cls = self.class_embedding + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = torch.cat([cls, x], dim=1)
        x = x + self.positional_embedding
        x = self.ln_pre(x)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


def build_attention_mask(context):
    # additive causal mask: -inf strictly above the diagonal (CLIP.build_attention_mask)
    return torch.empty(context, context).fill_(float("-inf")).triu_(1)


class TextTransformer(nn.Module):
    """CLIP's text tower; its state-dict names are those of OpenAI's CLIP (no prefix)."""

    def __init__(self, vocab, context, width, layers, heads, output_dim, device=None):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width, device=device)
        self.positional_embedding = nn.Parameter(torch.empty(context, width, device=device))
        self.transformer = Transformer(width, layers, heads, build_attention_mask(context), device)
        self.ln_final = nn.LayerNorm(width, eps=1e-5, device=device)
        self.text_projection = nn.Parameter(torch.empty(width, output_dim, device=device))

    def forward(self, text, eot):
        # eot [B] replaces OpenAI's text.argmax(-1) (the same when EOT is the largest id)
        x = self.token_embedding(text) + self.positional_embedding
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), eot] @ self.text_projection


class VisualPrefix(nn.Module):
    # the OpenAI checkpoint names the image tower `visual.*`
    def __init__(self, visual):
        super().__init__()
        self.visual = visual

    def forward(self, x):
        return self.visual(x)


# ---------------------------------------------------------------- VGG16 (torchvision)

VGG16_CHANNELS = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512]  # conv1_1 .. conv4_3
POOL_AFTER = {1, 3, 6}  # conv indices (0-based) followed by a 2x2 max pool, as in cfg "D"


class VGG16Features(nn.Module):
    def __init__(self, channels, device=None):
        super().__init__()
        assert len(channels) == 10, "vgg16 channels: one per conv, conv1_1 .. conv4_3"
        layers, c_in = [], 3
        for i, c in enumerate(channels):
            layers += [nn.Conv2d(c_in, c, kernel_size=3, padding=1, device=device), nn.ReLU(inplace=False)]
            if i in POOL_AFTER:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            c_in = c
        self.features = nn.Sequential(*layers)  # = torchvision's features[0:23]: ends on relu4_3

    def forward(self, x):
        return self.features(x)


def vgg_channels(cfg):
    if "channels" in cfg:
        return list(cfg["channels"])
    m = cfg.get("width_mult", 1)
    return [max(1, round(c * m)) for c in VGG16_CHANNELS]


# ---------------------------------------------------------------- building and initialising


def build(cfg, device=None):
    net = cfg["net"]
    if net == "clip_image":
        return VisualPrefix(VisionTransformer(cfg["res"], cfg["patch"], cfg["width"], cfg["layers"], cfg["heads"], cfg["output_dim"], device))
    if net == "clip_text":
        assert cfg["vocab"] >= 3, "vocab must hold a word, the start id and the EOT id"
        return TextTransformer(cfg["vocab"], cfg["context"], cfg["width"], cfg["layers"], cfg["heads"], cfg["output_dim"], device)
    if net == "vgg16":
        return VGG16Features(vgg_channels(cfg), device)
    raise ValueError(f"unknown net {net!r}")


@torch.no_grad()
def init_weights(model, cfg):
    """Random weights at the published inits' scales; every bias and LayerNorm
    affine is made non-trivial so a test notices when one is dropped."""
    for name, mod in model.named_modules():
        if isinstance(mod, nn.LayerNorm):
            mod.weight.copy_(1 + 0.1 * torch.randn_like(mod.weight))
            mod.bias.copy_(0.1 * torch.randn_like(mod.bias))
        elif isinstance(mod, nn.MultiheadAttention):
            # nn's defaults zero both attention biases; give them values
            mod.in_proj_bias.normal_(0, 0.02)
            mod.out_proj.bias.normal_(0, 0.02)
    if cfg["net"] == "clip_image":
        v = model.visual
        scale = cfg["width"] ** -0.5  # VisionTransformer.__init__'s scale
        v.class_embedding.normal_(0, scale)
        v.positional_embedding.normal_(0, scale)
        v.proj.normal_(0, scale)
    elif cfg["net"] == "clip_text":
        init_text(model, cfg)
    else:
        for mod in model.features:
            if isinstance(mod, nn.Conv2d):  # torchvision VGG's weight init; nn's default bias
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")


def init_text(model, cfg):
    # CLIP.initialize_parameters
    w, layers = cfg["width"], cfg["layers"]
    proj_std, attn_std, fc_std = w ** -0.5 * (2 * layers) ** -0.5, w ** -0.5, (2 * w) ** -0.5
    model.token_embedding.weight.normal_(0, 0.02)
    model.positional_embedding.normal_(0, 0.01)
    for block in model.transformer.resblocks:
        block.attn.in_proj_weight.normal_(0, attn_std)
        block.attn.out_proj.weight.normal_(0, proj_std)
        block.mlp.c_fc.weight.normal_(0, fc_std)
        block.mlp.c_proj.weight.normal_(0, proj_std)
    model.text_projection.normal_(0, w ** -0.5)


# ---------------------------------------------------------------- inputs


def make_tokens(cfg, batch, g):
    """[start, words..., EOT, 0...] per row, EOT = vocab-1 (the largest id, as
    49407 in CLIP), start = vocab-2, words in [1, vocab-3]. Row 0 fills the whole
    context (EOT on the last position); the other rows' lengths are random."""
    vocab, context = cfg["vocab"], cfg["context"]
    assert context >= 2, "context must hold the start id and EOT"
    tokens = torch.zeros(batch, context, dtype=torch.long)
    eot = torch.zeros(batch, dtype=torch.long)
    for b in range(batch):
        n_words = context - 2 if b == 0 else int(torch.randint(0, context - 1, (1,), generator=g))
        tokens[b, 0] = vocab - 2
        tokens[b, 1 : 1 + n_words] = torch.randint(1, max(2, vocab - 2), (n_words,), generator=g)
        tokens[b, 1 + n_words] = vocab - 1
        eot[b] = 1 + n_words
    assert torch.equal(eot, tokens.argmax(-1)), "EOT must be each row's largest id"
    return tokens, eot


def make_inputs(cfg, g):
    batch = cfg.get("batch", 2)
    if cfg["net"] == "clip_text":
        tokens, eot = make_tokens(cfg, batch, g)
        return {"tokens": tokens, "eot": eot}
    return {"image": torch.randn(batch, 3, cfg["res"], cfg["res"], generator=g)}


# ---------------------------------------------------------------- safetensors by hand

DTYPES = {"F32": (torch.float32, "<f4"), "F16": (torch.float16, "<f2"), "F64": (torch.float64, "<f8"), "I32": (torch.int32, "<i4")}
NAME_OF = {v[0]: k for k, v in DTYPES.items()}


def write_safetensors(path, tensors, metadata=None):
    header, blobs, at = ({"__metadata__": metadata} if metadata else {}), [], 0
    for name, t in tensors.items():
        b = t.detach().contiguous().numpy().astype(DTYPES[NAME_OF[t.dtype]][1]).tobytes()
        header[name] = {"dtype": NAME_OF[t.dtype], "shape": list(t.shape), "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-(8 + len(h)) % 8)  # data starts 8-byte aligned, as the format recommends
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        b, e = h["data_offsets"]
        arr = np.frombuffer(raw[8 + n + b : 8 + n + e], dtype=DTYPES[h["dtype"]][1]).reshape(h["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return header.get("__metadata__"), out


# ---------------------------------------------------------------- modes


def shapes(cfg):
    # built on the meta device: shapes only, no memory, no init
    return {k: list(v.shape) for k, v in build(cfg, device="meta").state_dict().items()}


def count(cfg):
    tensors = shapes(cfg)
    return {"parameters": int(sum(np.prod(s, dtype=np.int64) for s in tensors.values())), "tensors": tensors}


def run(cfg, outdir):
    """Writes weights.safetensors and io.safetensors into outdir; returns both dicts."""
    torch.manual_seed(cfg.get("seed", 0))  # the nn default inits draw from the global generator
    g = torch.Generator().manual_seed(cfg.get("seed", 0) + 1)
    model = build(cfg)
    init_weights(model, cfg)
    wdtype = DTYPES[cfg.get("dtype", "F32")][0]
    weights = {k: v.detach().to(wdtype) for k, v in model.state_dict().items()}
    compute = DTYPES[cfg.get("compute", "F64")][0]
    # the reference runs on exactly the weights written (f16-rounded when F16)
    model.load_state_dict({k: v.to(torch.float32) for k, v in weights.items()})
    model.to(compute).eval()

    inputs = make_inputs(cfg, g)
    if cfg["net"] == "clip_text":
        y = model(inputs["tokens"], inputs["eot"])
        gy = torch.randn(y.shape, generator=g)
        io = {"tokens": inputs["tokens"].float(), "eot": inputs["eot"].float(), "y": y.detach().float(), "gy": gy}
    else:
        image = inputs["image"].to(compute).requires_grad_(True)
        y = model(image)
        gy = torch.randn(y.shape, generator=g)
        (g_image,) = torch.autograd.grad((y * gy.to(compute)).sum(), image)
        io = {"image": inputs["image"], "y": y.detach().float(), "gy": gy, "g_image": g_image.float()}

    os.makedirs(outdir, exist_ok=True)
    meta = {"config": json.dumps(cfg)}
    write_safetensors(os.path.join(outdir, "weights.safetensors"), weights, meta)
    write_safetensors(os.path.join(outdir, "io.safetensors"), io, meta)
    return weights, io


# ---------------------------------------------------------------- self-check

SMALL = [
    {"net": "clip_image", "width": 16, "layers": 2, "heads": 2, "patch": 4, "res": 16, "output_dim": 8, "batch": 2, "seed": 0},
    {"net": "clip_text", "vocab": 50, "context": 8, "width": 16, "layers": 2, "heads": 2, "output_dim": 8, "batch": 3, "seed": 0},
    {"net": "vgg16", "channels": [4, 4, 8, 8, 8, 8, 8, 16, 16, 16], "res": 16, "batch": 2, "seed": 0},
]
FULL = {
    "clip_image": ({"net": "clip_image", "width": 768, "layers": 12, "heads": 12, "patch": 32, "res": 224, "output_dim": 512}, 87_849_216),
    # CLIP ViT-B/32 total 151,277,313 - visual 87,849,216 - logit_scale 1
    "clip_text": ({"net": "clip_text", "vocab": 49408, "context": 77, "width": 512, "layers": 12, "heads": 8, "output_dim": 512}, 63_428_096),
    "vgg16": ({"net": "vgg16", "res": 224}, 7_635_264),
}


def manual_block(x, w, p, heads, mask):
    """One ResidualAttentionBlock written out batch-first from the state dict,
    independently of nn.MultiheadAttention: a check that the towers compute
    softmax(q k^T / sqrt(d) + mask) v per head, as the published model does."""
    ln = lambda t, n: torch.nn.functional.layer_norm(t, t.shape[-1:], w[n + ".weight"], w[n + ".bias"], 1e-5)
    B, L, D = x.shape
    d = D // heads
    q, k, v = (ln(x, p + "ln_1") @ w[p + "attn.in_proj_weight"].T + w[p + "attn.in_proj_bias"]).split(D, dim=-1)
    q, k, v = (t.reshape(B, L, heads, d).transpose(1, 2) for t in (q, k, v))
    a = torch.softmax(q @ k.transpose(-1, -2) / d ** 0.5 + mask, dim=-1) @ v
    x = x + a.transpose(1, 2).reshape(B, L, D) @ w[p + "attn.out_proj.weight"].T + w[p + "attn.out_proj.bias"]
    h = ln(x, p + "ln_2") @ w[p + "mlp.c_fc.weight"].T + w[p + "mlp.c_fc.bias"]
    h = h * torch.sigmoid(1.702 * h)
    return x + h @ w[p + "mlp.c_proj.weight"].T + w[p + "mlp.c_proj.bias"]


def manual_clip(cfg, w, x):
    ln = lambda t, n: torch.nn.functional.layer_norm(t, t.shape[-1:], w[n + ".weight"], w[n + ".bias"], 1e-5)
    if cfg["net"] == "clip_image":
        w = {k[len("visual."):]: v for k, v in w.items()}
        P = cfg["patch"]
        img = x["image"]
        B, G = img.shape[0], cfg["res"] // P
        # a stride-P conv is a matmul on the flattened patches (c, i, j order)
        patches = img.reshape(B, 3, G, P, G, P).permute(0, 2, 4, 1, 3, 5).reshape(B, G * G, 3 * P * P)
        h = patches @ w["conv1.weight"].reshape(cfg["width"], -1).T
        h = torch.cat([w["class_embedding"].expand(B, 1, -1), h], dim=1) + w["positional_embedding"]
        h, mask = ln(h, "ln_pre"), torch.zeros(())
    else:
        tokens = x["tokens"].long()
        h = w["token_embedding.weight"][tokens] + w["positional_embedding"]
        mask = build_attention_mask(cfg["context"]).double()
    for i in range(cfg["layers"]):
        h = manual_block(h, w, f"transformer.resblocks.{i}.", cfg["heads"], mask)
    if cfg["net"] == "clip_image":
        return ln(h[:, 0], "ln_post") @ w["proj"]
    return ln(h, "ln_final")[torch.arange(h.shape[0]), x["eot"].long()] @ w["text_projection"]


def expected_y_shape(cfg):
    b = cfg.get("batch", 2)
    if cfg["net"] == "vgg16":
        return [b, vgg_channels(cfg)[-1], cfg["res"] // 8, cfg["res"] // 8]
    return [b, cfg["output_dim"]]


def selftest():
    for name, (cfg, n) in FULL.items():
        got = count(cfg)["parameters"]
        assert got == n, (name, got, n)
        print(f"count {name}: {got:,}")
    vis = count(FULL["clip_image"][0])["tensors"]
    assert vis["visual.conv1.weight"] == [768, 3, 32, 32] and vis["visual.positional_embedding"] == [50, 768]
    vgg = [k for k in count(FULL["vgg16"][0])["tensors"] if k.endswith(".weight")]
    assert vgg == [f"features.{i}.weight" for i in (0, 2, 5, 7, 10, 12, 14, 17, 19, 21)], vgg

    with tempfile.TemporaryDirectory() as tmp:
        for cfg in SMALL:
            f32 = None
            for dtype, compute in (("F32", "F64"), ("F16", "F64"), ("F32", "F32")):
                c = dict(cfg, dtype=dtype, compute=compute)
                t0 = time.time()
                weights, io = run(c, tmp)
                dt = time.time() - t0
                check_files(c, tmp, weights, io)
                if dtype == "F32" and f32 is None:
                    f32 = weights
                if dtype == "F16":  # the same draw, rounded to f16
                    assert all(torch.equal(weights[k], f32[k].half()) for k in f32)
                    assert any(not torch.equal(weights[k].float(), f32[k]) for k in f32)
                print(f"run {c['net']} {dtype} (compute {compute}): ok, {dt * 1000:.0f} ms")
    print("selftest passed")


def check_files(cfg, outdir, weights, io):
    meta, w = read_safetensors(os.path.join(outdir, "weights.safetensors"))
    _, x = read_safetensors(os.path.join(outdir, "io.safetensors"))
    assert json.loads(meta["config"]) == cfg
    assert list(w) == list(weights) and {k: list(v.shape) for k, v in w.items()} == shapes(cfg)
    for k in w:  # the weights round-trip bit for bit, in their dtype
        assert w[k].dtype == DTYPES[cfg["dtype"]][0] and torch.equal(w[k], weights[k]), k
    assert all(v.dtype == torch.float32 for v in x.values())
    assert list(x["y"].shape) == expected_y_shape(cfg) and x["gy"].shape == x["y"].shape
    if cfg["net"] == "clip_text":
        tokens = x["tokens"].long()
        assert torch.equal(x["eot"].long(), tokens.argmax(-1))
        assert torch.equal(tokens.float(), x["tokens"])  # ids are exact in f32
        assert "g_image" not in x
    else:
        assert x["g_image"].shape == x["image"].shape and x["g_image"].abs().sum() > 0
    # y recomputed from the files alone, the way OpenAI's encode_text picks EOT
    model = build(cfg)
    model.load_state_dict({k: v.float() for k, v in w.items()})
    model.double()
    with torch.no_grad():
        if cfg["net"] == "clip_text":
            y = model(x["tokens"].long(), x["tokens"].long().argmax(-1))
        else:
            y = model(x["image"].double())
    assert torch.allclose(y.float(), x["y"], rtol=1e-5, atol=1e-6), (y.float() - x["y"]).abs().max()
    if cfg["net"] != "vgg16":
        wd = {k: v.double() for k, v in w.items()}
        xd = {k: v.double() for k, v in x.items()}
        ym = manual_clip(cfg, wd, xd)
        assert torch.allclose(ym, y, rtol=1e-9, atol=1e-12), (ym - y).abs().max()


def main(argv):
    if len(argv) >= 1 and argv[0] == "selftest":
        return selftest()
    if len(argv) == 2 and argv[0] == "count":
        with open(argv[1]) as f:
            print(json.dumps(count(json.load(f))))
        return
    if len(argv) == 3 and argv[0] == "run":
        with open(argv[1]) as f:
            run(json.load(f), argv[2])
        return
    sys.exit("usage: encoders_ref.py run CONFIG.json OUTDIR | count CONFIG.json | selftest")


if __name__ == "__main__":
    main(sys.argv[1:])
