#!/usr/bin/python3
"""Writes the PyTorch parity fixture of mugs-vit's tests (needs Debian's python3-torch: /usr/bin/python3).

A small DINO/Mugs-style ViT (dim 32, depth 2, 2 heads, patch 4, 16 px grayscale) with random weights, written as
  vit.pth          torch.save({'teacher': {'backbone.' + k: v}, 'epoch': 3, 'args': Namespace(...)}) plus a
                   transposed view, a sliced view and an fp16 copy of one weight under 'extra/...'
  vit.safetensors  the plain state dict (F32)
  io.safetensors   inputs at 16 and 8 px and the model's CLS, patch tokens and last attention for each
  evil.pth         a checkpoint whose pickle would call os.system (must be rejected)
into mugs-vit/src/test/resources/io/mugs/vit/parity/.
"""
import argparse
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "mugs-vit", "src", "test", "resources",
                   "io", "mugs", "vit", "parity")


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c)), attn


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x):
        y, attn = self.attn(self.norm1(x))
        x = x + y
        return x + self.mlp(self.norm2(x)), attn


class PatchEmbed(nn.Module):
    def __init__(self, patch, chans, dim):
        super().__init__()
        self.patch_size = patch
        self.proj = nn.Conv2d(chans, dim, kernel_size=patch, stride=patch)


class ViT(nn.Module):
    def __init__(self, img=16, patch=4, chans=1, dim=32, depth=2, heads=2):
        super().__init__()
        self.patch_embed = PatchEmbed(patch, chans, dim)
        n = (img // patch) ** 2
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def interpolate_pos_encoding(self, x, w, h):   # DINO / Mugs
        npatch = x.shape[1] - 1
        n = self.pos_embed.shape[1] - 1
        if npatch == n and w == h:
            return self.pos_embed
        class_pos = self.pos_embed[:, 0]
        patch_pos = self.pos_embed[:, 1:]
        dim = x.shape[-1]
        w0 = w // self.patch_embed.patch_size + 0.1
        h0 = h // self.patch_embed.patch_size + 0.1
        patch_pos = nn.functional.interpolate(
            patch_pos.reshape(1, int(math.sqrt(n)), int(math.sqrt(n)), dim).permute(0, 3, 1, 2),
            scale_factor=(w0 / math.sqrt(n), h0 / math.sqrt(n)), mode="bicubic")
        patch_pos = patch_pos.permute(0, 2, 3, 1).view(1, -1, dim)
        return torch.cat((class_pos.unsqueeze(0), patch_pos), dim=1)

    def forward(self, x):
        b, _, w, h = x.shape
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(b, -1, -1), x), dim=1)
        x = x + self.interpolate_pos_encoding(x, w, h)
        attn = None
        for blk in self.blocks:
            x, attn = blk(x)
        x = self.norm(x)
        return x[:, 0], x[:, 1:], attn


def write_safetensors(path, tensors, metadata=None):
    header = {}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name].detach().numpy().astype("<f4"))
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def main():
    torch.manual_seed(0)
    model = ViT()
    with torch.no_grad():                      # non-trivial norms and biases
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.3 * torch.randn_like(p))
    model.eval()
    sd = model.state_dict()
    w = sd["blocks.0.mlp.fc1.weight"]
    extra = {"extra/transposed": w.t(), "extra/sliced": w[3:7, 5:9], "extra/half": w.half()}
    teacher = {"backbone." + k: v for k, v in sd.items()}
    teacher.update(extra)
    torch.save({"teacher": teacher, "epoch": 3, "args": argparse.Namespace(arch="vit_test", lr=0.5)},
               os.path.join(OUT, "vit.pth"))
    write_safetensors(os.path.join(OUT, "vit.safetensors"), sd, {"format": "pt"})
    io = {}
    with torch.no_grad():
        for size in (16, 8):
            x = torch.randn(2, 1, size, size)
            cls, patches, attn = model(x)
            io[f"input{size}"] = x
            io[f"cls{size}"] = cls
            io[f"patch{size}"] = patches
            io[f"attn{size}"] = attn
    write_safetensors(os.path.join(OUT, "io.safetensors"), io, {"torch": torch.__version__})
    torch.save({"x": Evil()}, os.path.join(OUT, "evil.pth"))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
