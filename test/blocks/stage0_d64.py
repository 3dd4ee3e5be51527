# The PyTorch oracle for test/blocks/network.test.ts, written plainly with nn
# modules: a conditioning augmentation, stage G0 at 16x16 and a D64-style
# discriminator at 16x16, at small widths (ngf = ndf = 4, text 12, z 6, c 4).
#
# step(path, text, z, eps) loads the weights and BatchNorm buffers from the
# safetensors file at `path` (names as the gan compiler lays them out), runs
# one training step in train mode, and returns a dict of tensors:
#   out/*     forward values (image, mu, logvar, uncond, cond, kl, lossD, lossG)
#   grad/*    gradient of every param (D params from lossD, G params from lossG)
#   param/*   every param after one Adam step (lr 2e-4, betas (0.5, 0.999))
#   state/*   BatchNorm running statistics after the step
import json
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
        assert h["dtype"] == "F32", h
        b, e = h["data_offsets"]
        arr = np.frombuffer(raw[8 + n + b : 8 + n + e], dtype="<f4").reshape(h["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


NGF, NDF, TEXT, ZDIM, CDIM = 4, 4, 12, 6, 4


class CA(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(TEXT, 4 * CDIM)

    def forward(self, text, eps):
        x = F.glu(self.fc(text), 1)
        mu, logvar = x[:, :CDIM], x[:, CDIM:]
        return mu + torch.exp(0.5 * logvar) * eps, mu, logvar


def up_block(cin, cout):
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(cin, 2 * cout, 3, 1, 1, bias=False),
        nn.BatchNorm2d(2 * cout),
        nn.GLU(1),
    )


class G0(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(CDIM + ZDIM, NGF * 4 * 4 * 4, bias=False)
        self.bn = nn.BatchNorm1d(NGF * 4 * 4 * 4)
        self.up1 = up_block(NGF * 2, NGF)
        self.up2 = up_block(NGF, NGF)
        self.img = nn.Conv2d(NGF, 3, 3, 1, 1, bias=False)

    def forward(self, c_hat, z):
        h = F.glu(self.bn(self.fc(torch.cat([c_hat, z], 1))), 1).view(-1, NGF * 2, 4, 4)
        return torch.tanh(self.img(self.up2(self.up1(h))))


class D(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(3, NDF, 4, 2, 1, bias=False)
        self.conv1 = nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(NDF * 2)
        self.uncond = nn.Conv2d(NDF * 2, 1, 4, 4, bias=True)
        self.joint = nn.Conv2d(CDIM + NDF * 2, NDF * 2, 3, 1, 1, bias=False)
        self.bnj = nn.BatchNorm2d(NDF * 2)
        self.cond = nn.Conv2d(NDF * 2, 1, 4, 4, bias=True)

    def forward(self, image, mu):
        f = F.leaky_relu(self.conv0(image), 0.2)
        f = F.leaky_relu(self.bn1(self.conv1(f)), 0.2)
        uncond = self.uncond(f).view(-1, 1)
        t = mu.view(-1, CDIM, 1, 1).repeat(1, 1, 4, 4)
        cond = self.cond(F.leaky_relu(self.bnj(self.joint(torch.cat([t, f], 1))), 0.2))
        return uncond, cond


def step(path, text, z, eps):
    ca, g0, d = CA(), G0(), D()
    params = {
        "G/ca/linear.0/weight": ca.fc.weight,
        "G/ca/linear.0/bias": ca.fc.bias,
        "G/g0/linear.0/weight": g0.fc.weight,
        "G/g0/batchnorm.0/weight": g0.bn.weight,
        "G/g0/batchnorm.0/bias": g0.bn.bias,
        "G/g0/Up.0/conv2d.0/weight": g0.up1[1].weight,
        "G/g0/Up.0/batchnorm.0/weight": g0.up1[2].weight,
        "G/g0/Up.0/batchnorm.0/bias": g0.up1[2].bias,
        "G/g0/Up.1/conv2d.0/weight": g0.up2[1].weight,
        "G/g0/Up.1/batchnorm.0/weight": g0.up2[2].weight,
        "G/g0/Up.1/batchnorm.0/bias": g0.up2[2].bias,
        "G/g0/conv2d.0/weight": g0.img.weight,
        "d0/conv2d.0/weight": d.conv0.weight,
        "d0/conv2d.1/weight": d.conv1.weight,
        "d0/batchnorm.0/weight": d.bn1.weight,
        "d0/batchnorm.0/bias": d.bn1.bias,
        "d0/conv2d.2/weight": d.uncond.weight,
        "d0/conv2d.2/bias": d.uncond.bias,
        "d0/conv2d.3/weight": d.joint.weight,
        "d0/batchnorm.1/weight": d.bnj.weight,
        "d0/batchnorm.1/bias": d.bnj.bias,
        "d0/conv2d.4/weight": d.cond.weight,
        "d0/conv2d.4/bias": d.cond.bias,
    }
    bns = {"G/g0/batchnorm.0": g0.bn, "G/g0/Up.0/batchnorm.0": g0.up1[2], "G/g0/Up.1/batchnorm.0": g0.up2[2],
           "d0/batchnorm.0": d.bn1, "d0/batchnorm.1": d.bnj}
    buffers = {}
    for k, m in bns.items():
        buffers[k + "/running_mean"] = m.running_mean
        buffers[k + "/running_var"] = m.running_var
    weights = read_safetensors(path)
    assert set(weights) == set(params) | set(buffers), sorted(set(weights) ^ (set(params) | set(buffers)))
    with torch.no_grad():
        for k, p in {**params, **buffers}.items():
            assert p.shape == weights[k].shape, (k, p.shape, weights[k].shape)
            p.copy_(weights[k])
    for m in (ca, g0, d):
        m.train()

    c_hat, mu, logvar = ca(text, eps)
    image = g0(c_hat, z)
    uncond, cond = d(image, mu.detach())
    bce = lambda x: F.binary_cross_entropy_with_logits(x, torch.ones_like(x))
    kl = -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())
    lossD = bce(cond) + bce(uncond)
    lossG = bce(cond) + 2.0 * kl

    gnames = [k for k in params if k.startswith("G/")]
    dnames = [k for k in params if k.startswith("d0/")]
    gg = torch.autograd.grad(lossG, [params[k] for k in gnames], retain_graph=True)
    dg = torch.autograd.grad(lossD, [params[k] for k in dnames])
    out = {"out/image": image, "out/mu": mu, "out/logvar": logvar, "out/uncond": uncond, "out/cond": cond,
           "out/kl": kl, "out/lossD": lossD, "out/lossG": lossG}
    for k, g in zip(gnames + dnames, list(gg) + list(dg)):
        out["grad/" + k] = g
        params[k].grad = g.detach().clone()
    for names in (gnames, dnames):
        opt = torch.optim.Adam([params[k] for k in names], lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
        opt.step()
    for k, p in params.items():
        out["param/" + k] = p.detach().clone()
    for k, b in buffers.items():
        out["state/" + k] = b.detach().clone()
    return {k: v.detach() for k, v in out.items()}
