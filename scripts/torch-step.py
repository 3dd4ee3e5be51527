#!/usr/bin/env python3
# The PyTorch row of `npm run bench`: one MS-CLIP-GAN training iteration (one G
# forward, per stage one D step on real / wrong / fake, one G step; Adam) of the
# same architecture at the same widths as the bench's WebGPU step, on this CPU
# with PyTorch's default threads: what a user would otherwise run. Random data;
# the modules are scripts/shapes-sweep.py's (themselves test/blocks/msclipgan_ref.py's).
#
#   /usr/bin/python3 scripts/torch-step.py --res 64 --ngf 4 --ndf 4 --batch 4 [--iters 5]
#
# Prints one JSON line: median ms per iteration and the GEMM-class GFLOP per iteration.
import argparse
import importlib.util
import json
import os
import time

import torch

spec = importlib.util.spec_from_file_location("shapes_sweep", os.path.join(os.path.dirname(os.path.abspath(__file__)), "shapes-sweep.py"))
sweep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sweep)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--ngf", type=int, default=4)
    ap.add_argument("--ndf", type=int, default=4)
    ap.add_argument("--z-dim", type=int, default=16)
    ap.add_argument("--c-dim", type=int, default=16)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--iters", type=int, default=5)
    a = ap.parse_args()
    torch.manual_seed(0)
    cfg = dict(res=a.res, ngf=a.ngf, ndf=a.ndf, z_dim=a.z_dim, c_dim=a.c_dim, r_num=2, text_dim=512, clip_dim=512, use_align=True)
    res = [a.res, 2 * a.res, 4 * a.res]
    G = sweep.Generator(cfg)
    Ds = [sweep.Discriminator(cfg, i) for i in range(3)]
    for net in [G, *Ds]:
        sweep.init_weights(net)
    adam = lambda ps: torch.optim.Adam(ps, lr=2e-4, betas=(0.5, 0.999))  # noqa: E731
    optG, optDs = adam(G.parameters()), [adam(D.parameters()) for D in Ds]
    B = a.batch
    text = torch.nn.functional.normalize(torch.randn(B, 512), dim=1)
    reals = [torch.rand(B, 3, r, r) * 2 - 1 for r in res]
    wrongs = [torch.rand(B, 3, r, r) * 2 - 1 for r in res]
    z, eps = torch.randn(B, a.z_dim), torch.randn(B, a.c_dim)
    flops = sweep.flops_per_step(G, Ds, text, z, eps, reals, cfg)

    def step():
        fakes, mu, logvar = G(text, z, eps)
        for i, (D, opt) in enumerate(zip(Ds, optDs)):
            real, wrong, fake = D(reals[i], mu.detach(), text), D(wrongs[i], mu.detach(), text), D(fakes[i].detach(), mu.detach(), text)
            errD = sweep.weighted_sum(sweep.d_terms(real, wrong, fake, 1.0, 0.0, 1.0))
            opt.zero_grad(set_to_none=True)
            errD.backward()
            opt.step()
        terms = {}
        for i, D in enumerate(Ds):
            for k, tw in sweep.g_terms(D(fakes[i], mu, text), 0.0, 1.0).items():
                terms[f"g{i}/{k}"] = tw
        terms["kl"] = (sweep.kl_normal(mu, logvar), 2.0)
        errG = sweep.weighted_sum(terms)
        optG.zero_grad(set_to_none=True)
        errG.backward()
        optG.step()

    step()
    times = []
    for _ in range(a.iters):
        t = time.perf_counter()
        step()
        times.append(1000 * (time.perf_counter() - t))
    times.sort()
    print(json.dumps({"ms": times[len(times) // 2], "gflop": flops / 1e9, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
