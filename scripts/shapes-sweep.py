#!/usr/bin/env python3
# A fast PyTorch replica of `gan train` for models/ms-clip-gan.gan on the
# synthetic shapes data, plus a port of `gan eval colour`, to find which
# configuration learns caption colour in the fewest steps (at res 16, ngf =
# ndf = 16, batch 4: ~0.15 s/step on one CPU thread, our WebGPU trainer ~1 s).
#
# What it replicates (see test/blocks/msclipgan_ref.py, whose modules it reuses):
#   model   ms-clip-gan.gan with `param res` (g0 at res, g1/g2 at 2x/4x; G0's
#           linear to ngf*16*(res/16)^2*2; every D's Logit a k = stride =
#           res/16 conv over the res/16 feature map); weights initialised as
#           the compiler does (conv/linear orthogonal gain 1, biases 0, BN
#           weight N(1, 0.02)); BatchNorm momentum 0.1, eps 1e-5.
#   loop    runtime/train/trainer.ts: one G forward (shared z, CA noise ~ N(0,1));
#           per stage one D_i step (real, wrong, fake.detach(); own Adam);
#           then one G step on sum_i adversarial + align terms + kl * KL;
#           then the G EMA (runtime/train/ema.ts 'bias_corrected' mode:
#           acc = d acc + (1 - d) p, average = acc / (1 - d^t)).
#   data    runtime/train/data/loader.ts: resize to 76/64 of g2's size, random
#           crop to g2's size, random flip, one copy per stage (bilinear,
#           antialiased downscale), one of K captions at random, the wrong
#           image of another class; epochs in a fresh random order, drop-last.
#   metric  runtime/train/colour-metric.ts ported exactly (dominant_colour);
#           eval as `gan eval colour`: a fixed set of dataset captions and noise,
#           G with the EMA weights (or the live ones) and BatchNorm in eval mode
#           (running statistics of the live G), scored at g2.
#
# Needs the PNGs decoded once (this Python has no image library):
#   npx tsx scripts/decode-shapes.ts data/shapes /tmp/sweep/shapes-images.npy
# Then, e.g. (one training process at a time; it uses one thread):
#   /usr/bin/python3 scripts/shapes-sweep.py --name r16-n16 --res 16 --ngf 16 --ndf 16 \
#       --steps 2000 --data data/shapes --images /tmp/sweep/shapes-images.npy --out /tmp/sweep/results.jsonl
# Every --eval-every steps it appends one JSON line (config, step, agreement
# at g0/g1/g2 for the EMA and live generators, per-colour shares, ms/step,
# recent losses) to --out. It stops early at --stop-at agreement (EMA or live,
# two evaluations running) or when the best agreement has not improved for
# --patience evaluations.
#   --check-metric DIR writes real/noise/square images and the port's answers
#   there, for scripts/colour-metric-dump.ts to compare image for image.
# Two flags are deliberately NOT the trainer's, for diagnosis only:
#   --d-joint-bn  one D pass over real+wrong+fake (shared BatchNorm statistics);
#   --ca-gain G   the CA linear initialised with orthogonal gain G instead of 1.
import argparse
import copy
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "blocks"))
from msclipgan_ref import (  # noqa: E402  (the parity-test modules, reused as they are)
    CA,
    Encode16,
    NextStage,
    ToImage,
    UpBlock,
    bce,
    colour_term,
    d_terms,
    down,
    g_terms,
    kl_normal,
    lrelu3x3,
    weighted_sum,
)

# ---- the colour metric (runtime/train/colour-metric.ts, runtime/train/data/shapes-palette.ts) ----

PALETTE = [
    ("red", (220, 30, 30)),
    ("green", (30, 180, 40)),
    ("blue", (30, 60, 220)),
    ("yellow", (240, 220, 30)),
    ("purple", (150, 40, 190)),
    ("orange", (245, 140, 20)),
    ("cyan", (30, 210, 220)),
    ("pink", (250, 120, 190)),
]
PALETTE_RGB = np.array([rgb for _, rgb in PALETTE], dtype=np.float64)


def caption_colour(caption):
    """The first palette colour named as a whole word (the shape's colour comes before the background's)."""
    names = [n for n, _ in PALETTE]
    for w in re.split(r"[^a-z]+", caption.lower()):
        if w in names:
            return w
    return None


def dominant_colour(img, threshold=48.0, min_foreground=0.005, core_share=0.6):
    """The dominant foreground palette colour of one [3, R, R] image in [-1, 1], or 'none'.

    Same arithmetic as the TypeScript, in float64 from the float32 values:
    background = per channel the element at index 2R of the sorted 4R border
    values (corners twice), foreground = distance > threshold, only pixels at
    least core_share of the 90th-percentile distance vote, ties to the first."""
    R = img.shape[-1]
    px = ((img.astype(np.float32).astype(np.float64) + 1) / 2) * 255
    bg = []
    for c in range(3):
        p = px[c]
        border = np.concatenate([np.stack([p[0, k], p[R - 1, k], p[k, 0], p[k, R - 1]]) for k in range(R)])
        bg.append(np.sort(border)[len(border) >> 1])
    r, g, b = px[0].ravel(), px[1].ravel(), px[2].ravel()
    d = np.sqrt((r - bg[0]) ** 2 + (g - bg[1]) ** 2 + (b - bg[2]) ** 2)
    fg = d > threshold
    n = int(fg.sum())
    if n == 0 or n < min_foreground * R * R:
        return "none"
    ds = np.sort(d[fg])
    core = max(threshold, core_share * ds[int(math.floor(0.9 * (n - 1)))])
    vote = fg & ~(d < core)
    rgb = np.stack([r[vote], g[vote], b[vote]], 1)
    dist = (rgb[:, None, 0] - PALETTE_RGB[None, :, 0]) ** 2 + (rgb[:, None, 1] - PALETTE_RGB[None, :, 1]) ** 2 + (rgb[:, None, 2] - PALETTE_RGB[None, :, 2]) ** 2
    votes = np.bincount(np.argmin(dist, 1), minlength=len(PALETTE))
    return PALETTE[int(np.argmax(votes))][0]


BACKGROUNDS = [("grey", (128, 128, 128)), ("white", (245, 245, 245)), ("black", (15, 15, 15)), ("brown", (110, 75, 45))]


def background_agreement(images, captions):
    """Diagnostic: share of images whose border median is nearest their caption's background colour."""
    hit = scored = 0
    for im, cap in zip(images, captions):
        want = next((n for n, _ in BACKGROUNDS if re.search(r"\b%s\b" % n, cap)), None)
        if want is None:
            continue
        px = ((np.asarray(im, np.float64) + 1) / 2) * 255
        border = np.concatenate([px[:, 0, :], px[:, -1, :], px[:, :, 0], px[:, :, -1]], axis=1)
        med = np.median(border, axis=1)
        got = min(BACKGROUNDS, key=lambda b: sum((med[c] - b[1][c]) ** 2 for c in range(3)))[0]
        scored += 1
        hit += got == want
    return round(hit / scored, 3) if scored else 0.0


def colour_agreement(images, captions):
    """Share of images ([N, 3, R, R] in [-1, 1]) whose dominant colour is their caption's; per colour too."""
    dominant = [dominant_colour(im) for im in images]
    per, matched, scored = {}, 0, 0
    for got, cap in zip(dominant, captions):
        want = caption_colour(cap)
        if want is None:
            continue
        scored += 1
        matched += got == want
        n, m = per.get(want, (0, 0))
        per[want] = (n + 1, m + (got == want))
    return {
        "share": matched / scored if scored else 0.0,
        "per_colour": {k: round(m / n, 3) for k, (n, m) in sorted(per.items())},
        "dominant": dominant,
    }


# ---- the model at any res (a multiple of 16) ----


class InitStage(nn.Module):
    """G0: cat(c_hat, z) -> Linear(no bias) -> BN1d -> GLU -> [16ngf, res/16, res/16] -> upBlock x4 -> image"""

    def __init__(self, ngf, c_dim, z_dim, res):
        super().__init__()
        self.ngf, self.s = ngf, res // 16
        self.fc = nn.Linear(c_dim + z_dim, ngf * 16 * self.s * self.s * 2, bias=False)
        self.bn = nn.BatchNorm1d(ngf * 16 * self.s * self.s * 2)
        self.ups = nn.ModuleList([UpBlock(16 * ngf, 8 * ngf), UpBlock(8 * ngf, 4 * ngf), UpBlock(4 * ngf, 2 * ngf), UpBlock(2 * ngf, ngf)])
        self.image = ToImage(ngf)

    def forward(self, c_hat, z):
        h = F.glu(self.bn(self.fc(torch.cat([c_hat, z], 1))), 1).view(-1, 16 * self.ngf, self.s, self.s)
        for up in self.ups:
            h = up(h)
        return h, self.image(h)


class Generator(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ngf, c = cfg["ngf"], cfg["c_dim"]
        self.ca = CA(cfg["text_dim"], c)
        self.g0 = InitStage(ngf, c, cfg["z_dim"], cfg["res"])
        self.g1 = NextStage(ngf, c, cfg["r_num"], ngf // 2)
        self.g2 = NextStage(ngf // 2, c, cfg["r_num"], ngf // 4)
        self.ca_text_scale = cfg.get("ca_text_scale", 1.0)

    def forward(self, text, z, eps):
        c_hat, mu, logvar = self.ca(text * self.ca_text_scale, eps)
        h0, img0 = self.g0(c_hat, z)
        h1, img1 = self.g1(h0, c_hat)
        _, img2 = self.g2(h1, c_hat)
        return [img0, img1, img2], mu, logvar


class Logit(nn.Module):
    """A conv with bias covering the whole s x s feature map (k = stride = s) -> one logit"""

    def __init__(self, c, s):
        super().__init__()
        self.conv = nn.Conv2d(c, 1, s, s, bias=True)

    def forward(self, f):
        return self.conv(f)


class Discriminator(nn.Module):
    """D_level (at res * 2^level) with uncond, cond and (optionally) align heads on the res/16 feature map."""

    def __init__(self, cfg, level):
        super().__init__()
        ndf, c, s = cfg["ndf"], cfg["c_dim"], cfg["res"] // 16
        self.c_dim = c
        self.encode = Encode16(ndf)
        if level == 0:
            extra = []
        elif level == 1:
            extra = [down(8 * ndf, 16 * ndf), lrelu3x3(16 * ndf, 8 * ndf)]
        else:
            extra = [down(8 * ndf, 16 * ndf), down(16 * ndf, 32 * ndf), lrelu3x3(32 * ndf, 16 * ndf), lrelu3x3(16 * ndf, 8 * ndf)]
        self.extra = nn.ModuleList(extra)
        self.uncond = Logit(8 * ndf, s)
        self.joint = lrelu3x3(c + 8 * ndf, 8 * ndf)
        self.cond = Logit(8 * ndf, s)
        self.align = nn.Linear(8 * ndf, cfg["clip_dim"]) if cfg["use_align"] else None
        # (not the model's head) a projection-discriminator cond head: uncond logit + <embed(mu), pooled f>
        self.proj_cond = nn.Linear(c, 8 * ndf, bias=False) if cfg.get("proj_cond") else None
        # (not the model's head) D's own projection of the text instead of G's detached CA mean
        self.d_text = nn.Linear(cfg["text_dim"], c) if cfg.get("d_text") else None
        self.d_text_scale = cfg.get("d_text_scale", 1.0)

    def forward(self, image, mu, text):
        f = self.encode(image)
        for m in self.extra:
            f = m(f)
        out = {"uncond": self.uncond(f)}
        if self.d_text is not None:
            mu = self.d_text(text * self.d_text_scale)
        t = mu.view(mu.shape[0], self.c_dim, 1, 1).repeat(1, 1, f.shape[2], f.shape[3])
        if self.proj_cond is not None:
            out["cond"] = out["uncond"].flatten(1) + (self.proj_cond(mu) * f.mean(dim=(2, 3))).sum(1, keepdim=True)
        else:
            out["cond"] = self.cond(self.joint(torch.cat([t, f], 1)))
        if self.align is not None:
            p = self.align(f.mean(dim=(2, 3)))
            out["align"] = F.cosine_similarity(p, text, dim=1)
            out["proj"] = F.normalize(p, dim=1)
        return out


def align_nce(proj, text, tau):
    """(not the model's term) contrastive alignment: cross-entropy of each image's projection
    against every caption of the batch (cosine / tau), its own caption the target."""
    logits = proj @ F.normalize(text, dim=1).t() / tau
    return F.cross_entropy(logits, torch.arange(proj.shape[0]))


def init_weights(net):
    """As the compiler: conv/linear weights orthogonal (gain 1), biases 0, BN weight N(1, 0.02), BN bias 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.orthogonal_(m.weight, 1.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Ema:
    """runtime/train/ema.ts, 'bias_corrected': acc starts at 0, average = acc / (1 - decay^t)."""

    def __init__(self, net, decay):
        self.decay, self.t = decay, 0
        self.acc = [torch.zeros_like(p) for p in net.parameters()]

    @torch.no_grad()
    def update(self, net):
        self.t += 1
        for a, p in zip(self.acc, net.parameters()):
            a.mul_(self.decay).add_(p, alpha=1 - self.decay)

    @torch.no_grad()
    def averaged(self, net):
        """A copy of net with the averaged params (buffers, i.e. BN running stats, are the live ones)."""
        out = copy.deepcopy(net)
        corr = 1 - self.decay**self.t
        for q, a in zip(out.parameters(), self.acc):
            q.copy_(a / corr)
        return out


# ---- data (runtime/train/data/loader.ts) ----


class ShapesData:
    def __init__(self, data_dir, images_npy, largest, resolutions, batch, seed):
        self.emb = torch.from_numpy(np.load(os.path.join(data_dir, "embeddings.npy")))  # [N, K, D]
        rows = [json.loads(l) for l in open(os.path.join(data_dir, "captions.jsonl")) if l.strip()]
        self.captions = [r["captions"] for r in rows]
        self.classes = np.array([r["class"] for r in rows])
        self.attrs = [(r["colour"], r["shape"], r["size"], r["background"]) for r in rows]
        self.N, self.K, self.D = self.emb.shape
        imgs = torch.from_numpy(np.load(images_npy)).permute(0, 3, 1, 2).float()  # [N, 3, 64, 64], 0..255
        assert imgs.shape[0] == self.N
        self.L, self.res, self.B = largest, sorted(resolutions), batch
        base = largest * 76 // 64
        # Resized once, rounded to bytes as sharp does.
        self.base = F.interpolate(imgs, size=(base, base), mode="bilinear", align_corners=False, antialias=base < imgs.shape[-1]).round().clamp(0, 255).to(torch.uint8)
        self.rng = np.random.default_rng(seed)
        self.epoch_rng = np.random.default_rng(seed + 1000)
        self.order, self.cursor = self.epoch_rng.permutation(self.N), 0
        self.others = [np.flatnonzero(self.classes != c) for c in range(self.classes.max() + 1)]
        # (not the trainer's choice) hard negatives: another class on the same background
        bgs = np.array([a[3] for a in self.attrs])
        self.hard = [np.flatnonzero((self.classes != self.classes[i]) & (bgs == bgs[i])) for i in range(self.N)]
        self.p_hard = 0.0

    def crops(self, idx):
        n = self.base.shape[-1] - self.L + 1
        out = []
        for i in idx:
            x, y = self.rng.integers(n), self.rng.integers(n)
            c = self.base[i, :, y : y + self.L, x : x + self.L]
            out.append(c.flip(-1) if self.rng.integers(2) else c)
        crop = torch.stack(out).float() / 127.5 - 1
        return {R: crop if R == self.L else F.interpolate(crop, size=(R, R), mode="bilinear", align_corners=False, antialias=True) for R in self.res}

    def next(self):
        if self.cursor + self.B > self.N:
            self.order, self.cursor = self.epoch_rng.permutation(self.N), 0
        idx = self.order[self.cursor : self.cursor + self.B]
        self.cursor += self.B
        ks = self.rng.integers(self.K, size=self.B)
        wrong = [self.rng.choice(self.hard[i] if self.p_hard and self.rng.random() < self.p_hard else self.others[self.classes[i]]) for i in idx]
        return self.emb[idx, ks], self.crops(idx), self.crops(wrong)


# ---- training ----


def flops_per_step(G, Ds, text, z, eps, reals, cfg):
    """Multiply-adds of conv/linear layers in one step's forwards x 2 (FLOPs) x 3 (fwd + bwd), roughly."""
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            total[0] += out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        else:
            total[0] += out.numel() * m.in_features

    hs = [m.register_forward_hook(hook) for net in [G, *Ds] for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        fakes, mu, _ = G(text, z, eps)
        for i, D in enumerate(Ds):
            for _ in range(4):  # real, wrong, fake in the D step; fake in the G step
                D(reals[i], mu, text)
    for h in hs:
        h.remove()
    return 2 * 3 * total[0]


def swap_pairs(data, n=96, seed=4321):
    """For n images: a partner that differs only in colour, and one that differs only in background."""
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.permutation(data.N):
        c, k, z, b = data.attrs[i]
        col = [j for j, a in enumerate(data.attrs) if a[0] != c and a[1:] == (k, z, b)]
        bgs = [j for j, a in enumerate(data.attrs) if a[:3] == (c, k, z) and a[3] != b]
        if col and bgs:
            out.append((i, int(rng.choice(col)), int(rng.choice(bgs))))
        if len(out) == n:
            break
    return out


@torch.no_grad()
def d_swap_gaps(Ds, data, stage_res, pairs):
    """Diagnostic: how much each D's cond head prefers a real image's own caption over one that
    differs only in colour, and only in background: mean sigmoid(true) - mean sigmoid(swapped).
    Near 0: that D cannot tell such pairs apart (and gives G no signal for that attribute)."""
    L = data.L
    o = (data.base.shape[-1] - L) // 2
    idx = [p[0] for p in pairs]
    crop = data.base[idx, :, o : o + L, o : o + L].float() / 127.5 - 1
    own, col, bg = (data.emb[[p[j] for p in pairs], 0] for j in range(3))
    gaps = []
    for D, R in zip(Ds, stage_res):
        img = crop if R == L else F.interpolate(crop, size=(R, R), mode="bilinear", align_corners=False, antialias=True)
        p = lambda t: torch.sigmoid(D(img, None, t)["cond"]).mean().item()  # noqa: E731
        base = p(own)
        gaps.append((round(base - p(col), 3), round(base - p(bg), 3)))
    return gaps


def evaluate(G, captions, text, z, eps):
    """Agreement at every stage of G (BatchNorm in eval mode) on fixed captions and noise."""
    G.eval()
    with torch.no_grad():
        imgs, _, _ = G(text, z, eps)
    G.train()
    return [colour_agreement(im.numpy(), captions) for im in imgs], imgs


def caption_sensitivity(G, text, z, eps, n=16):
    """How much g2's pixels move with the caption vs with the noise (BatchNorm in eval mode):
    the mean over pixels of the std across n captions at fixed noise, over the std across n
    noise draws at a fixed caption. Near 0: G ignores its caption."""
    n = min(n, text.shape[0])
    G.eval()
    with torch.no_grad():
        by_caption = G(text[:n], z[:1].repeat(n, 1), eps[:1].repeat(n, 1))[0][-1]
        by_noise = G(text[:1].repeat(n, 1), z[:n], eps[:n])[0][-1]
    G.train()
    return float(by_caption.std(dim=0).mean() / by_noise.std(dim=0).mean().clamp_min(1e-8))


def main():
    ap = argparse.ArgumentParser(description="MS-CLIP-GAN replica trainer + colour metric on the shapes data (see the header)")
    ap.add_argument("--name", required=True)
    ap.add_argument("--res", type=int, default=16)
    ap.add_argument("--ngf", type=int, default=4)
    ap.add_argument("--ndf", type=int, default=4)
    ap.add_argument("--z-dim", type=int, default=16)
    ap.add_argument("--c-dim", type=int, default=16)
    ap.add_argument("--r-num", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--kl", type=float, default=0.02)
    ap.add_argument("--lr", type=float, default=5e-4, help="G and D Adam lr (betas 0.5, 0.999)")
    ap.add_argument("--lr-d", type=float, default=0.0, help="D Adam lr when not 0 (train.d.lr; --lr is then G's alone)")
    ap.add_argument("--align", type=float, default=1.0, help="align weight; 0 = no align head")
    ap.add_argument("--uncond", type=float, default=0.0, help="uncond weight when use_uncond_loss; 0 = off")
    ap.add_argument("--real-label", type=float, default=1.0)
    ap.add_argument("--ema", type=float, default=0.999, help="g_ema decay (bias-corrected)")
    ap.add_argument("--ema2", type=float, default=0.99, help="a second, faster EMA reported beside it (0 = none)")
    ap.add_argument("--d-joint-bn", action="store_true", help="(not the trainer's loop) D step on real+wrong+fake as one BatchNorm batch")
    ap.add_argument("--proj-cond", action="store_true", help="(not the model's head) projection-discriminator cond head")
    ap.add_argument("--align-nce", type=float, default=0.0, help="(not the model's term) contrastive align term at this temperature instead of 1 - cos")
    ap.add_argument("--d-text", action="store_true", help="D conditions on its own linear projection of the text, not G's CA mean (the model's d_text_cond; with --d-text-scale 22.6 = sqrt(512) as there)")
    ap.add_argument("--d-text-scale", type=float, default=1.0)
    ap.add_argument("--colour", type=float, default=0.0, help="StackGAN-v2 colour-consistency weight (objective.colour; 50 in its unconditional configs)")
    ap.add_argument("--wrong-same-bg", type=float, default=0.0, help="(not the trainer's choice) share of wrong images drawn from another class on the same background")
    ap.add_argument("--ca-text-scale", type=float, default=1.0, help="the CA reads text * S (22.6 = sqrt(512): unit-variance components)")
    ap.add_argument("--ca-gain", type=float, default=1.0, help="(not the compiler's init) orthogonal gain of the CA linear")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--n-eval", type=int, default=128)
    ap.add_argument("--stop-at", type=float, default=0.8)
    ap.add_argument("--patience", type=int, default=6, help="evaluations without a new best before stopping (after --min-steps)")
    ap.add_argument("--min-steps", type=int, default=800)
    ap.add_argument("--max-minutes", type=float, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default="data/shapes")
    ap.add_argument("--images", default="/tmp/sweep/shapes-images.npy")
    ap.add_argument("--out", default="/tmp/sweep/results.jsonl")
    ap.add_argument("--samples", default="", help="folder: save the final g2 samples (EMA, live) as .npy")
    ap.add_argument("--check-metric", default="", help="folder: write images + the port's answers for the TS comparison")
    a = ap.parse_args()
    if a.n_eval < 2:
        ap.error("--n-eval must be at least 2 (the caption/noise ratio takes a spread over samples)")

    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    cfg = dict(res=a.res, ngf=a.ngf, ndf=a.ndf, z_dim=a.z_dim, c_dim=a.c_dim, r_num=a.r_num, text_dim=512, clip_dim=512, use_align=a.align != 0, proj_cond=a.proj_cond, d_text=a.d_text, d_text_scale=a.d_text_scale, ca_text_scale=a.ca_text_scale)
    stage_res = [a.res, 2 * a.res, 4 * a.res]
    data = ShapesData(a.data, a.images, stage_res[-1], stage_res, a.batch, a.seed)
    data.p_hard = a.wrong_same_bg
    G = Generator(cfg)
    Ds = [Discriminator(cfg, i) for i in range(3)]
    for net in [G, *Ds]:
        init_weights(net)
    if a.ca_gain != 1:
        # Not the compiler's init: a larger CA weight, so mu (a projection of a unit-norm
        # text embedding, ~0.05 per component at gain 1) is not drowned by the N(0, 1) CA noise.
        nn.init.orthogonal_(G.ca.fc.weight, a.ca_gain)
    adam = lambda ps, lr: torch.optim.Adam(ps, lr=lr, betas=(0.5, 0.999), eps=1e-8)  # noqa: E731
    optG, optDs = adam(G.parameters(), a.lr), [adam(D.parameters(), a.lr_d or a.lr) for D in Ds]
    emas = [Ema(G, a.ema)] + ([Ema(G, a.ema2)] if a.ema2 else [])

    # The fixed evaluation set: dataset captions and noise from a seed of its own.
    er = np.random.default_rng(12345)
    pick, pk = er.integers(data.N, size=a.n_eval), er.integers(data.K, size=a.n_eval)
    ev_caps = [data.captions[i][k] for i, k in zip(pick, pk)]
    eg = torch.Generator().manual_seed(12345)
    ev = (data.emb[pick, pk], torch.randn(a.n_eval, a.z_dim, generator=eg), torch.randn(a.n_eval, a.c_dim, generator=eg))

    if a.check_metric:
        check_metric_dump(a.check_metric, a.images, data, pick)

    pairs = swap_pairs(data) if a.d_text else None
    config = {k: v for k, v in vars(a).items() if k not in ("data", "images", "out", "samples", "check_metric", "name")}
    noise = torch.Generator().manual_seed(a.seed + 1)
    u, y = a.uncond, a.real_label
    nparams = {"G": sum(p.numel() for p in G.parameters()), "D": sum(p.numel() for D in Ds for p in D.parameters())}
    flops = None
    train_s, recent, best, best_at, hits = 0.0, [], -1.0, 0, 0
    t_start = time.time()
    for step in range(1, a.steps + 1):
        text, reals, wrongs = data.next()
        z = torch.randn(a.batch, a.z_dim, generator=noise)
        eps = torch.randn(a.batch, a.c_dim, generator=noise)
        if flops is None:
            flops = flops_per_step(G, Ds, text, z, eps, [reals[r] for r in stage_res], cfg)
        t0 = time.perf_counter()
        fakes, mu, logvar = G(text, z, eps)
        losses = {}
        for i, (D, opt) in enumerate(zip(Ds, optDs)):
            R = stage_res[i]
            if a.d_joint_bn:
                # Not what the trainer does: one D pass over real, wrong and fake together, so D's
                # BatchNorm statistics are shared by the three (the trainer normalises each alone).
                m, tx = mu.detach(), text
                out = D(torch.cat([reals[R], wrongs[R], fakes[i].detach()]), torch.cat([m, m, m]), torch.cat([tx, tx, tx]))
                real, wrong, fake = ({k: v.chunk(3)[j] for k, v in out.items()} for j in range(3))
            else:
                real = D(reals[R], mu.detach(), text)
                wrong = D(wrongs[R], mu.detach(), text)
                fake = D(fakes[i].detach(), mu.detach(), text)
            dt = d_terms(real, wrong, fake, y, u, a.align)
            if a.align_nce and "align_real" in dt:
                dt["align_real"] = (align_nce(real["proj"], text, a.align_nce), a.align)
            errD = weighted_sum(dt)
            opt.zero_grad(set_to_none=True)
            errD.backward()
            opt.step()
            losses[f"d{i}"] = errD.item()
        terms = {}
        for i, D in enumerate(Ds):
            out = D(fakes[i], mu, text)
            for k, tw in g_terms(out, u, a.align).items():
                terms[f"g{i}/{k}"] = tw
            if a.align_nce and f"g{i}/align_fake" in terms:
                terms[f"g{i}/align_fake"] = (align_nce(out["proj"], text, a.align_nce), a.align)
        terms["kl"] = (kl_normal(mu, logvar), a.kl)
        if a.colour:
            for i in (1, 2):
                terms[f"g{i}/colour"] = (colour_term(fakes[i], fakes[i - 1]), a.colour)
        errG = weighted_sum(terms)
        optG.zero_grad(set_to_none=True)
        errG.backward()
        optG.step()
        for e in emas:
            e.update(G)
        train_s += time.perf_counter() - t0
        losses["G"] = errG.item()
        losses["kl"] = terms["kl"][0].item()
        recent.append(losses)

        if step % a.eval_every == 0 or step == a.steps:
            res_live, imgs_live = evaluate(G, ev_caps, *ev)
            res_emas = [evaluate(e.averaged(G), ev_caps, *ev) for e in emas]
            mean_losses = {k: round(float(np.mean([r[k] for r in recent])), 4) for k in recent[0]}
            recent = []
            g2 = lambda rs: rs[-1]  # noqa: E731
            rec = {
                "name": a.name,
                **config,
                "step": step,
                "ema_g2": g2(res_emas[0][0])["share"],
                "live_g2": g2(res_live)["share"],
                "ema2_g2": g2(res_emas[1][0])["share"] if len(emas) > 1 else None,
                "ema_g0": res_emas[0][0][0]["share"],
                "ema_g1": res_emas[0][0][1]["share"],
                "live_g0": res_live[0]["share"],
                "live_g1": res_live[1]["share"],
                "ema_per_colour": g2(res_emas[0][0])["per_colour"],
                "live_per_colour": g2(res_live)["per_colour"],
                "ema_dominant_hist": hist(g2(res_emas[0][0])["dominant"]),
                "live_dominant_hist": hist(g2(res_live)["dominant"]),
                "caption_vs_noise": round(caption_sensitivity(G, *ev), 3),
                "live_bg_g2": background_agreement(imgs_live[-1].numpy(), ev_caps),
                "d_gaps_colour_bg": d_swap_gaps(Ds, data, stage_res, pairs) if pairs else None,
                "ms_per_step": round(1000 * train_s / step, 2),
                "gflops_per_step": round(flops / 1e9, 4),
                "params": nparams,
                "losses": mean_losses,
                "elapsed_s": round(time.time() - t_start, 1),
            }
            with open(a.out, "a") as f:
                f.write(json.dumps(rec) + "\n")
            print(
                f"{a.name} step {step}: g2 EMA {rec['ema_g2']:.3f} live {rec['live_g2']:.3f}"
                + (f" ema{a.ema2} {rec['ema2_g2']:.3f}" if rec["ema2_g2"] is not None else "")
                + f" | g0 EMA {rec['ema_g0']:.3f} live {rec['live_g0']:.3f} | caption/noise {rec['caption_vs_noise']} bg {rec['live_bg_g2']}"
                + (f" | D gaps colour/bg {rec['d_gaps_colour_bg']}" if pairs else "")
                + f" | {rec['ms_per_step']} ms/step | {mean_losses}",
                flush=True,
            )
            if a.samples:
                os.makedirs(a.samples, exist_ok=True)
                np.save(os.path.join(a.samples, f"{a.name}-live-g2.npy"), imgs_live[-1].numpy())
                np.save(os.path.join(a.samples, f"{a.name}-ema-g2.npy"), res_emas[0][1][-1].numpy())
                save_grid_png(os.path.join(a.samples, f"{a.name}-live-g2.png"), imgs_live[-1][:64].numpy())
                save_grid_png(os.path.join(a.samples, f"{a.name}-ema-g2.png"), res_emas[0][1][-1][:64].numpy())
                json.dump(ev_caps, open(os.path.join(a.samples, "captions.json"), "w"))
            score = max(rec["ema_g2"], rec["live_g2"])
            hits = hits + 1 if score >= a.stop_at else 0
            if score > best:
                best, best_at = score, step
            if hits >= 2:
                print(f"{a.name}: reached {a.stop_at} twice running at step {step}; stopping", flush=True)
                break
            if step >= a.min_steps and (step - best_at) >= a.patience * a.eval_every:
                print(f"{a.name}: no new best ({best:.3f} at {best_at}) for {a.patience} evaluations; stopping", flush=True)
                break
            if time.time() - t_start > 60 * a.max_minutes:
                print(f"{a.name}: time box of {a.max_minutes} min reached at step {step}; stopping", flush=True)
                break


def save_grid_png(path, imgs, cols=16):
    """[N, 3, R, R] in [-1, 1] -> one RGB PNG grid (zlib; this Python has no image library)."""
    import struct
    import zlib

    n, _, R, _ = imgs.shape
    rows = (n + cols - 1) // cols
    grid = np.zeros((rows * R, cols * R, 3), np.uint8)
    px = np.clip((imgs + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    for i in range(n):
        grid[(i // cols) * R : (i // cols + 1) * R, (i % cols) * R : (i % cols + 1) * R] = px[i]
    raw = b"".join(b"\x00" + grid[y].tobytes() for y in range(grid.shape[0]))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)  # noqa: E731
    ihdr = struct.pack(">IIBBBBB", grid.shape[1], grid.shape[0], 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def hist(dominant):
    out = {}
    for d in dominant:
        out[d] = out.get(d, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def check_metric_dump(folder, images_npy, data, pick):
    """Writes image sets (float32 [N, 3, R, R] in [-1, 1]) with their captions and the port's answers:
    the dataset's own images (64 px), clipped Gaussian noise, and flat 16 px squares of random colours."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(7)
    caps = [data.captions[i][0] for i in pick[:64]]
    real = (np.load(images_npy).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1).astype(np.float32)
    noise = np.clip(rng.normal(0, 0.6, size=(64, 3, 64, 64)), -1, 1).astype(np.float32)
    squares = np.clip(rng.normal(0, 0.15, size=(64, 3, 16, 16)) + rng.uniform(-1, 1, size=(64, 3, 1, 1)), -1, 1).astype(np.float32)
    squares[:, :, 4:12, 4:12] = rng.uniform(-1, 1, size=(64, 3, 1, 1))
    sets = {"real": (real, [c[0] for c in data.captions]), "noise": (noise, caps), "squares16": (squares, caps)}
    for name, (imgs, cs) in sets.items():
        np.save(os.path.join(folder, f"{name}.npy"), imgs)
        json.dump(cs, open(os.path.join(folder, f"{name}-captions.json"), "w"))
        r = colour_agreement(imgs, cs)
        json.dump({"share": r["share"], "dominant": r["dominant"]}, open(os.path.join(folder, f"{name}-py.json"), "w"))
        print(f"metric port on {name}: {r['share']:.3f} ({hist(r['dominant'])})", flush=True)


if __name__ == "__main__":
    main()
