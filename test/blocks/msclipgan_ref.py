# An independent PyTorch reference of one MS-CLIP-GAN training iteration, for
# test/blocks/gan-iteration.test.ts.
#
# Written by hand with torch.nn modules from models/ms-clip-gan.gan,
# models/lib/stackgan-blocks.gan and shared/reference/stackgan.md (StackGAN-v2's
# model.py / trainer.py): nothing here is generated from the compiler's graph.
# The only thing shared with the compiler is the table of parameter names
# (`names()` below, written out per module), so weights can be exchanged as a
# safetensors file.
#
# iteration(cfg, weights, inputs, dtype) runs the StackGAN-v2 loop once
# (iterations(...) runs it several times with the same optimizers and an EMA,
# for test/train/trainer-parity.test.ts):
#   one G forward (train mode: G's BatchNorm running stats move once);
#   for each stage i: D_i on (real_i, mu), (wrong_i, mu), (fake_i.detach(), mu),
#     mu detached, errD_i -> gradients of D_i -> Adam step of D_i;
#   one G step: D_i (already updated) on (fake_i, mu) -> errG -> gradients of G
#     -> Adam step of G.
# Losses, with y = real_label and u = uncond weight when use_uncond_loss, else 0:
#   u > 0: errD = BCE(real_c, y) + u BCE(real_u, y) + BCE(wrong_c, 0) + u BCE(wrong_u, y)
#                 + BCE(fake_c, 0) + u BCE(fake_u, 0)
#   u = 0: errD = BCE(real_c, y) + 0.5 (BCE(wrong_c, 0) + BCE(fake_c, 0))
#   errG = sum_i [BCE(fake_c_i, 1) + u BCE(fake_u_i, 1)] + kl_w KL
# plus MS-CLIP-GAN's alignment term (cosine of the D feature, projected to CLIP
# space, with the text embedding): align_w * mean(1 - align(real)) in errD_i and
# align_w * mean(1 - align(fake_i)) in errG.
#
# What it returns (float64 values, sent back as float32), by name:
#   d0.real.cond, ...      each D head on each pass of the D step; g.d0.fake.cond, ... in the G step
#   loss/d0, loss/G        errD_i, errG
#   term/d0/cond_real, weight/d0/cond_real, ...   each term (unweighted mean) and its weight;
#                          G's per stage judged (term/G/g0/cond_fake) and term/G/kl
#   image/g0, ...          the fake images of the one G forward
#   grad/P                 every parameter's gradient (D_i's from its D step, G's from the G step)
#   param/P                every parameter after the iteration (D_i's after its Adam step)
#   state_after_d/B        D's BatchNorm running statistics after the D steps; state/B at the end
import json
import math
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf8"))
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        assert h["dtype"] == "F32", (name, h["dtype"])
        b, e = h["data_offsets"]
        arr = np.frombuffer(raw[8 + n + b : 8 + n + e], dtype="<f4").reshape(h["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def bn_names(prefix, bn):
    return {prefix + "/weight": bn.weight, prefix + "/bias": bn.bias}


def bn_buffers(prefix, bn):
    return {prefix + "/running_mean": bn.running_mean, prefix + "/running_var": bn.running_var}


def conv3x3(cin, cout):
    return nn.Conv2d(cin, cout, 3, 1, 1, bias=False)


# ---- generator blocks (StackGAN-v2 upBlock, jointBlock, ResBlock, toImage) ----


class UpBlock(nn.Module):
    """nearest upsample x2 -> conv3x3(cin, 2 cout) -> BN -> GLU"""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = conv3x3(cin, 2 * cout)
        self.bn = nn.BatchNorm2d(2 * cout)

    def forward(self, x):
        return F.glu(self.bn(self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))), 1)

    def names(self, p):
        return {p + "/conv2d.0/weight": self.conv.weight, **bn_names(p + "/batchnorm.0", self.bn)}

    def buffers_by_name(self, p):
        return bn_buffers(p + "/batchnorm.0", self.bn)


class JointBlock(nn.Module):
    """conv3x3(cin, 2 cout) -> BN -> GLU"""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = conv3x3(cin, 2 * cout)
        self.bn = nn.BatchNorm2d(2 * cout)

    def forward(self, x):
        return F.glu(self.bn(self.conv(x)), 1)

    def names(self, p):
        return {p + "/conv2d.0/weight": self.conv.weight, **bn_names(p + "/batchnorm.0", self.bn)}

    def buffers_by_name(self, p):
        return bn_buffers(p + "/batchnorm.0", self.bn)


class ResBlock(nn.Module):
    """x + [conv3x3(C, 2C) -> BN -> GLU -> conv3x3(C, C) -> BN], no activation after the add"""

    def __init__(self, c):
        super().__init__()
        self.conv1 = conv3x3(c, 2 * c)
        self.bn1 = nn.BatchNorm2d(2 * c)
        self.conv2 = conv3x3(c, c)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        return x + self.bn2(self.conv2(F.glu(self.bn1(self.conv1(x)), 1)))

    def names(self, p):
        return {
            p + "/conv2d.0/weight": self.conv1.weight,
            **bn_names(p + "/batchnorm.0", self.bn1),
            p + "/conv2d.1/weight": self.conv2.weight,
            **bn_names(p + "/batchnorm.1", self.bn2),
        }

    def buffers_by_name(self, p):
        return {**bn_buffers(p + "/batchnorm.0", self.bn1), **bn_buffers(p + "/batchnorm.1", self.bn2)}


class ToImage(nn.Module):
    """conv3x3(C, 3) -> tanh"""

    def __init__(self, c):
        super().__init__()
        self.conv = conv3x3(c, 3)

    def forward(self, x):
        return torch.tanh(self.conv(x))

    def names(self, p):
        return {p + "/conv2d.0/weight": self.conv.weight}

    def buffers_by_name(self, p):
        return {}


class CA(nn.Module):
    """StackGAN-v2 conditioning augmentation: Linear(text, 4c) -> GLU -> (mu, logvar)"""

    def __init__(self, text_dim, c_dim):
        super().__init__()
        self.c_dim = c_dim
        self.fc = nn.Linear(text_dim, 4 * c_dim)

    def forward(self, text, eps):
        x = F.glu(self.fc(text), 1)
        mu, logvar = x[:, : self.c_dim], x[:, self.c_dim :]
        return mu + torch.exp(0.5 * logvar) * eps, mu, logvar

    def names(self, p):
        return {p + "/linear.0/weight": self.fc.weight, p + "/linear.0/bias": self.fc.bias}

    def buffers_by_name(self, p):
        return {}


class InitStage(nn.Module):
    """G0: cat(c_hat, z) -> Linear(no bias) -> BN1d -> GLU -> [16ngf, 4, 4] -> upBlock x4"""

    def __init__(self, ngf, c_dim, z_dim):
        super().__init__()
        self.ngf = ngf
        self.fc = nn.Linear(c_dim + z_dim, ngf * 16 * 4 * 4 * 2, bias=False)
        self.bn = nn.BatchNorm1d(ngf * 16 * 4 * 4 * 2)
        self.ups = nn.ModuleList([UpBlock(16 * ngf, 8 * ngf), UpBlock(8 * ngf, 4 * ngf), UpBlock(4 * ngf, 2 * ngf), UpBlock(2 * ngf, ngf)])
        self.image = ToImage(ngf)

    def forward(self, c_hat, z):
        h = F.glu(self.bn(self.fc(torch.cat([c_hat, z], 1))), 1).view(-1, 16 * self.ngf, 4, 4)
        for up in self.ups:
            h = up(h)
        return h, self.image(h)

    def names(self, p):
        out = {p + "/linear.0/weight": self.fc.weight, **bn_names(p + "/batchnorm.0", self.bn)}
        for i, up in enumerate(self.ups):
            out.update(up.names(f"{p}/Up.{i}"))
        out.update(self.image.names(p + "/ToImage.0"))
        return out

    def buffers_by_name(self, p):
        out = bn_buffers(p + "/batchnorm.0", self.bn)
        for i, up in enumerate(self.ups):
            out.update(up.buffers_by_name(f"{p}/Up.{i}"))
        return out


class NextStage(nn.Module):
    """G1/G2: cat(tile(c_hat), h) -> jointBlock(c + C, C) -> ResBlock(C) x r -> upBlock(C, out)"""

    def __init__(self, c_in, c_dim, r_num, out):
        super().__init__()
        self.joint = JointBlock(c_dim + c_in, c_in)
        self.res = nn.ModuleList([ResBlock(c_in) for _ in range(r_num)])
        self.up = UpBlock(c_in, out)
        self.image = ToImage(out)

    def forward(self, h, c_hat):
        s = h.shape[2]
        c = c_hat.view(c_hat.shape[0], -1, 1, 1).repeat(1, 1, s, s)
        x = self.joint(torch.cat([c, h], 1))
        for r in self.res:
            x = r(x)
        x = self.up(x)
        return x, self.image(x)

    def names(self, p):
        out = self.joint.names(p + "/Refine.0/Joint.0")
        for i, r in enumerate(self.res):
            out.update(r.names(f"{p}/Refine.0/Res.{i}"))
        out.update(self.up.names(p + "/Refine.0/Up.0"))
        out.update(self.image.names(p + "/ToImage.0"))
        return out

    def buffers_by_name(self, p):
        out = self.joint.buffers_by_name(p + "/Refine.0/Joint.0")
        for i, r in enumerate(self.res):
            out.update(r.buffers_by_name(f"{p}/Refine.0/Res.{i}"))
        out.update(self.up.buffers_by_name(p + "/Refine.0/Up.0"))
        return out


class Generator(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ngf, c = cfg["ngf"], cfg["c_dim"]
        self.ca = CA(cfg["text_dim"], c)
        self.g0 = InitStage(ngf, c, cfg["z_dim"])
        self.g1 = NextStage(ngf, c, cfg["r_num"], ngf // 2)
        self.g2 = NextStage(ngf // 2, c, cfg["r_num"], ngf // 4)
        self.ca_text_scale = cfg.get("ca_text_scale", 1.0)  # the model's param ca_text_scale

    def forward(self, text, z, eps):
        c_hat, mu, logvar = self.ca(text * self.ca_text_scale, eps)
        h0, img0 = self.g0(c_hat, z)
        h1, img1 = self.g1(h0, c_hat)
        _, img2 = self.g2(h1, c_hat)
        return [img0, img1, img2], mu, logvar

    def names(self):
        return {**self.ca.names("G/ca"), **self.g0.names("G/g0"), **self.g1.names("G/g1"), **self.g2.names("G/g2")}

    def buffers_by_name(self):
        return {**self.g0.buffers_by_name("G/g0"), **self.g1.buffers_by_name("G/g1"), **self.g2.buffers_by_name("G/g2")}


# ---- discriminators (encode_image_by_16times, downBlock, block3x3_leakRelu, heads) ----


class ConvBnLrelu(nn.Module):
    """conv (k4 s2 p1 for downBlock, k3 s1 p1 for block3x3_leakRelu) -> BN -> LeakyReLU(0.2)"""

    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.leaky_relu(self.bn(self.conv(x)), 0.2)

    def names(self, p):
        return {p + "/conv2d.0/weight": self.conv.weight, **bn_names(p + "/batchnorm.0", self.bn)}

    def buffers_by_name(self, p):
        return bn_buffers(p + "/batchnorm.0", self.bn)


def down(cin, cout):
    return ConvBnLrelu(cin, cout, 4, 2)


def lrelu3x3(cin, cout):
    return ConvBnLrelu(cin, cout, 3, 1)


class Encode16(nn.Module):
    """conv k4 s2 p1 (3 -> ndf) -> LeakyReLU [no BN], then three downBlocks doubling to 8 ndf"""

    def __init__(self, ndf):
        super().__init__()
        self.conv = nn.Conv2d(3, ndf, 4, 2, 1, bias=False)
        self.downs = nn.ModuleList([down(ndf, 2 * ndf), down(2 * ndf, 4 * ndf), down(4 * ndf, 8 * ndf)])

    def forward(self, x):
        x = F.leaky_relu(self.conv(x), 0.2)
        for d in self.downs:
            x = d(x)
        return x

    def names(self, p):
        out = {p + "/conv2d.0/weight": self.conv.weight}
        for i, d in enumerate(self.downs):
            out.update(d.names(f"{p}/Down.{i}"))
        return out

    def buffers_by_name(self, p):
        out = {}
        for i, d in enumerate(self.downs):
            out.update(d.buffers_by_name(f"{p}/Down.{i}"))
        return out


class Logit(nn.Module):
    """4x4 stride-4 conv with bias on the 4x4 map -> one logit"""

    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, 1, 4, 4, bias=True)

    def forward(self, f):
        return self.conv(f)

    def names(self, p):
        return {p + "/conv2d.0/weight": self.conv.weight, p + "/conv2d.0/bias": self.conv.bias}


class Discriminator(nn.Module):
    """D64 / D128 / D256 with uncond, cond and (optionally) align heads on the 4x4 feature."""

    def __init__(self, cfg, level):
        super().__init__()
        ndf, c = cfg["ndf"], cfg["c_dim"]
        self.c_dim = c
        self.encode = Encode16(ndf)
        # Extra layers after the trunk: D128 = down(16) + 3x3(8); D256 = down(16) + down(32) + 3x3(16) + 3x3(8).
        if level == 0:
            downs, threes = [], []
        elif level == 1:
            downs, threes = [down(8 * ndf, 16 * ndf)], [lrelu3x3(16 * ndf, 8 * ndf)]
        else:
            downs = [down(8 * ndf, 16 * ndf), down(16 * ndf, 32 * ndf)]
            threes = [lrelu3x3(32 * ndf, 16 * ndf), lrelu3x3(16 * ndf, 8 * ndf)]
        self.downs = nn.ModuleList(downs)
        self.threes = nn.ModuleList(threes)
        self.uncond = Logit(8 * ndf)
        self.joint = lrelu3x3(c + 8 * ndf, 8 * ndf)
        self.cond = Logit(8 * ndf)
        self.align = nn.Linear(8 * ndf, cfg["clip_dim"]) if cfg["use_align"] else None
        # d_text_cond: the cond head reads D's own projection of the text (scaled to unit-variance components), not mu.
        self.text_proj = nn.Linear(cfg["text_dim"], c) if cfg.get("d_text_cond") else None
        self.text_scale = math.sqrt(cfg["text_dim"])

    def forward(self, image, mu, text):
        f = self.encode(image)
        for m in list(self.downs) + list(self.threes):
            f = m(f)
        out = {"uncond": self.uncond(f)}
        c = self.text_proj(text * self.text_scale) if self.text_proj is not None else mu
        t = c.view(c.shape[0], self.c_dim, 1, 1).repeat(1, 1, f.shape[2], f.shape[3])
        out["cond"] = self.cond(self.joint(torch.cat([t, f], 1)))
        if self.align is not None:
            out["align"] = F.cosine_similarity(self.align(f.mean(dim=(2, 3))), text, dim=1)
        return out

    def names(self, p):
        out = self.encode.names(p + "/Encode16.0")
        for i, m in enumerate(self.downs):
            out.update(m.names(f"{p}/Down.{i}"))
        for i, m in enumerate(self.threes):
            out.update(m.names(f"{p}/Conv3Lrelu.{i}"))
        out.update(self.uncond.names(p + "/Logit.0"))
        out.update(self.joint.names(p + "/CondHead.0/CondLogit.0/Conv3Lrelu.0"))
        out.update(self.cond.names(p + "/CondHead.0/CondLogit.0/Logit.0"))
        if self.text_proj is not None:
            out[p + "/CondHead.0/linear.0/weight"] = self.text_proj.weight
            out[p + "/CondHead.0/linear.0/bias"] = self.text_proj.bias
        if self.align is not None:
            out[p + "/AlignScore.0/linear.0/weight"] = self.align.weight
            out[p + "/AlignScore.0/linear.0/bias"] = self.align.bias
        return out

    def buffers_by_name(self, p):
        out = self.encode.buffers_by_name(p + "/Encode16.0")
        for i, m in enumerate(self.downs):
            out.update(m.buffers_by_name(f"{p}/Down.{i}"))
        for i, m in enumerate(self.threes):
            out.update(m.buffers_by_name(f"{p}/Conv3Lrelu.{i}"))
        out.update(self.joint.buffers_by_name(p + "/CondHead.0/CondLogit.0/Conv3Lrelu.0"))
        return out


# ---- the iteration ----


def bce(x, target):
    return F.binary_cross_entropy_with_logits(x, torch.full_like(x, target))


def kl_normal(mu, logvar):
    return -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())


def d_terms(real, wrong, fake, y, u, align_w):
    """errD's terms: name -> (unweighted mean, weight). Names as the step signature's LossTerm."""
    side = 1.0 if u > 0 else 0.5
    t = {
        "cond_real": (bce(real["cond"], y), 1.0),
        "cond_wrong": (bce(wrong["cond"], 0.0), side),
        "cond_fake": (bce(fake["cond"], 0.0), side),
    }
    if u > 0:
        t["uncond_real"] = (bce(real["uncond"], y), u)
        t["uncond_wrong"] = (bce(wrong["uncond"], y), u)  # a wrong pair's image is still a real image
        t["uncond_fake"] = (bce(fake["uncond"], 0.0), u)
    if "align" in real and align_w != 0:
        t["align_real"] = (torch.mean(1 - real["align"]), align_w)
    return t


def g_terms(fake, u, align_w):
    """errG's terms through one discriminator."""
    t = {"cond_fake": (bce(fake["cond"], 1.0), 1.0)}
    if u > 0:
        t["uncond_fake"] = (bce(fake["uncond"], 1.0), u)
    if "align" in fake and align_w != 0:
        t["align_fake"] = (torch.mean(1 - fake["align"]), align_w)
    return t


def colour_term(img, earlier):
    """StackGAN-v2's colour consistency of a stage's images with the (detached) images of the stage
    it refines: MSE of the per-image pixel means + 5 MSE of the 3x3 pixel covariances (unweighted)."""
    def stats(x):
        mu = x.mean(dim=(2, 3), keepdim=True)
        h = (x - mu).flatten(2)
        return mu, h @ h.transpose(1, 2) / h.shape[2]
    mu1, cov1 = stats(img)
    mu2, cov2 = stats(earlier.detach())
    return F.mse_loss(mu1, mu2) + 5 * F.mse_loss(cov1, cov2)


def weighted_sum(terms):
    return sum(w * t for t, w in terms.values())


def adam(params, settings):
    return torch.optim.Adam(params, lr=settings["lr"], betas=tuple(settings["betas"]), eps=settings["eps"], weight_decay=0)


def build(cfg, weights_path, dtype):
    """G and D0..D2 in train mode, loaded from the weights file; (netG, netsD, params, buffers) by our names."""
    netG = Generator(cfg).to(dtype)
    netsD = [Discriminator(cfg, i).to(dtype) for i in range(3)]
    params = {**netG.names()}
    buffers = {**netG.buffers_by_name()}
    for name, d in zip(DNAMES, netsD):
        params.update(d.names(name))
        buffers.update(d.buffers_by_name(name))
    # Every tensor of each module is named exactly once, and the file has exactly these.
    assert len(set(map(id, params.values()))) == len(list(netG.parameters())) + sum(len(list(d.parameters())) for d in netsD)
    w = read_safetensors(weights_path)
    named = set(params) | set(buffers)
    assert set(w) == named, ("names differ: not in the file", sorted(named - set(w)), "not in the reference", sorted(set(w) - named))
    with torch.no_grad():
        for k, t in {**params, **buffers}.items():
            assert tuple(t.shape) == tuple(w[k].shape), (k, tuple(t.shape), tuple(w[k].shape))
            t.copy_(w[k].to(dtype))
    netG.train()
    for d in netsD:
        d.train()
    return netG, netsD, params, buffers


DNAMES = ["d0", "d1", "d2"]


def step(cfg, nets, optD, optG, x, out):
    """One iteration on inputs x (text, z, eps, real.gI, wrong.gI); writes named results into out."""
    netG, netsD, params, buffers = nets
    y, u, kl_w, align_w = cfg["real_label"], cfg["uncond"] if cfg["use_uncond_loss"] else 0.0, cfg["kl"], cfg["align"]
    text, z, eps = x["text"], x["z"], x["eps"]

    # One G forward for the whole iteration (StackGAN-v2 trainer.py).
    fakes, mu, logvar = netG(text, z, eps)

    for i, (name, netD, opt) in enumerate(zip(DNAMES, netsD, optD)):
        real = netD(x[f"real.g{i}"], mu.detach(), text)
        wrong = netD(x[f"wrong.g{i}"], mu.detach(), text)
        fake = netD(fakes[i].detach(), mu.detach(), text)
        terms = d_terms(real, wrong, fake, y, u, align_w)
        errD = weighted_sum(terms)
        names = [k for k in params if k.startswith(name + "/")]
        # allow_unused: with u = 0 the uncond head is in no D loss (its gradient is zero).
        grads = torch.autograd.grad(errD, [params[k] for k in names], allow_unused=True)
        for k, g in zip(names, grads):
            g = torch.zeros_like(params[k]) if g is None else g
            out["grad/" + k] = g
            params[k].grad = g.detach().clone()
        opt.step()
        out[f"loss/{name}"] = errD
        for k, (t, wt) in terms.items():
            out[f"term/{name}/{k}"] = t
            out[f"weight/{name}/{k}"] = torch.tensor(wt)
        for kind, heads in (("real", real), ("wrong", wrong), ("fake", fake)):
            for h, v in heads.items():
                out[f"{name}.{kind}.{h}"] = v
    # D's running statistics after the D steps (the G step moves them once more).
    for k, b in buffers.items():
        if not k.startswith("G/"):
            out["state_after_d/" + k] = b.clone()

    terms = {}
    for i, (name, netD) in enumerate(zip(DNAMES, netsD)):
        fake = netD(fakes[i], mu, text)  # mu not detached: the cond head's gradient reaches CA
        for h, v in fake.items():
            out[f"g.{name}.fake.{h}"] = v
        for k, tw in g_terms(fake, u, align_w).items():
            terms[f"g{i}/{k}"] = tw
    if cfg.get("colour", 0):
        for i in (1, 2):
            terms[f"g{i}/colour"] = (colour_term(fakes[i], fakes[i - 1]), cfg["colour"])
    terms["kl"] = (kl_normal(mu, logvar), kl_w)
    errG = weighted_sum(terms)
    gnames = [k for k in params if k.startswith("G/")]
    grads = torch.autograd.grad(errG, [params[k] for k in gnames])
    for k, g in zip(gnames, grads):
        out["grad/" + k] = g
        params[k].grad = g.detach().clone()
    optG.step()
    out["loss/G"] = errG
    for k, (t, wt) in terms.items():
        out["term/G/" + k] = t
        out["weight/G/" + k] = torch.tensor(wt)
    for i, img in enumerate(fakes):
        out[f"image/g{i}"] = img


def optimizers(cfg, nets):
    """One Adam per D_i and one for G, over the params by our names (the order is immaterial to Adam)."""
    _, _, params, _ = nets
    optD = [adam([p for k, p in params.items() if k.startswith(n + "/")], cfg["d"]) for n in DNAMES]
    optG = adam([p for k, p in params.items() if k.startswith("G/")], cfg["g"])
    return optD, optG


def iteration(cfg, weights_path, inputs_path, float64=True):
    """One D step per stage and one G step; returns a dict of named tensors (see the test)."""
    dtype = torch.float64 if float64 else torch.float32
    nets = build(cfg, weights_path, dtype)
    x = {k: v.to(dtype) for k, v in read_safetensors(inputs_path).items()}
    optD, optG = optimizers(cfg, nets)
    out = {}
    step(cfg, nets, optD, optG, x, out)
    _, _, params, buffers = nets
    for k, p in params.items():
        out["param/" + k] = p
    for k, b in buffers.items():
        out["state/" + k] = b
    return {k: v.detach() for k, v in out.items()}


def iterations(cfg, weights_path, inputs_path, steps, float64=True):
    """`steps` iterations with the same optimizers (Adam's moments and step count carry over) and,
    when cfg["g_ema"] > 0, runtime/train/ema.ts's bias-corrected EMA of G's params
    (acc = d acc + (1 - d) p after each G step; average = acc / (1 - d^t)).
    Inputs are named "sK/text", "sK/real.g0", ... for K = 1..steps. Returns per step
    "sK/loss/NET" and "sK/term/NET/TERM"; at the end "param/P", "state/B" and "ema/P"."""
    dtype = torch.float64 if float64 else torch.float32
    nets = build(cfg, weights_path, dtype)
    xs = {k: v.to(dtype) for k, v in read_safetensors(inputs_path).items()}
    optD, optG = optimizers(cfg, nets)
    _, _, params, buffers = nets
    gnames = [k for k in params if k.startswith("G/")]
    decay = cfg.get("g_ema", 0)
    acc = {k: torch.zeros_like(params[k]) for k in gnames}
    out = {}
    for s in range(1, steps + 1):
        x = {k[len(f"s{s}/"):]: v for k, v in xs.items() if k.startswith(f"s{s}/")}
        o = {}
        step(cfg, nets, optD, optG, x, o)
        for k, v in o.items():
            if k.startswith(("loss/", "term/")):
                out[f"s{s}/{k}"] = v
        with torch.no_grad():
            for k in gnames:
                acc[k].mul_(decay).add_(params[k], alpha=1 - decay)
    for k, p in params.items():
        out["param/" + k] = p
    for k, b in buffers.items():
        out["state/" + k] = b
    if decay > 0:
        for k in gnames:
            out["ema/" + k] = acc[k] / (1 - decay**steps)
    return {k: v.detach() for k, v in out.items()}
