#!/usr/bin/env python3
"""PyTorch twin of examples' VitBenchmark: the same ViT shapes, forward and forward+backward times.

A plain pre-norm ViT (patch embedding as a stride-p convolution, CLS token, learned positional embedding,
blocks of LayerNorm -> multi-head attention with a fused qkv -> residual, LayerNorm -> Linear -> exact GELU ->
Linear -> residual, final LayerNorm) with the benchmark's loss mean(cls^2) + mean(patch mean). Written for the
comparison only; it shares no code with any other project.

Usage (VitBenchmark --torch runs it with the same shapes and prints the ratio):
  /usr/bin/python3 scripts/vit_torch_twin.py --dim 192 --depth 12 --heads 3 --patch 4 --image 28 --channels 1 \
      --batch 64 --iters 5 --threads 1
Debian's python3-torch calls libblas.so.3; install libopenblas0-openmp and put
/usr/lib/x86_64-linux-gnu/openblas-openmp first on LD_LIBRARY_PATH (VitBenchmark --torch does), or it runs the
reference BLAS, about 12x slower.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, dim, heads, hidden, eps):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = nn.GELU()

    def forward(self, x):
        b, t, d = x.shape
        h = self.heads
        qkv = self.qkv(self.norm1(x)).reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q * (d // h) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class Vit(nn.Module):
    def __init__(self, a):
        super().__init__()
        n = (a.image // a.patch) ** 2
        self.patch = nn.Conv2d(a.channels, a.dim, a.patch, a.patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, a.dim).normal_(std=0.02))
        self.pos = nn.Parameter(torch.zeros(1, n + 1, a.dim).normal_(std=0.02))
        self.blocks = nn.ModuleList(Block(a.dim, a.heads, a.dim * 4, a.eps) for _ in range(a.depth))
        self.norm = nn.LayerNorm(a.dim, eps=a.eps)

    def forward(self, images):
        x = self.patch(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return x[:, 0], x[:, 1:].mean(dim=1)


def median_seconds(iters, fn):
    fn()
    fn()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in [("dim", 192), ("depth", 12), ("heads", 3), ("patch", 4), ("image", 28), ("channels", 1),
                          ("batch", 64), ("iters", 5), ("threads", 1)]:
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--eps", type=float, default=1e-6)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Vit(a)
    images = torch.randn(a.batch, a.channels, a.image, a.image)

    def forward():
        with torch.no_grad():
            model(images)

    def train():
        model.zero_grad(set_to_none=True)
        cls, patch_mean = model(images)
        ((cls * cls).mean() + patch_mean.mean()).backward()

    fwd = median_seconds(a.iters, forward)
    trn = median_seconds(a.iters, train)
    print(json.dumps({"torch": torch.__version__, "threads": a.threads, "forward_ms": fwd * 1e3,
                      "train_ms": trn * 1e3}))


if __name__ == "__main__":
    main()
