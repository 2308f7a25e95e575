"""A float64 PyTorch implementation of released VAR's inference, written for the tests from the
architecture (not from tc0sim's lowering): the VQ-VAE decoder, the multi-scale residual quantiser and
the VAR transformer with classifier-free guidance and the sampler tc0sim documents (top-k, top-p,
inverse CDF on one uniform per token). Module and parameter names follow the official state_dict.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def gn(c: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, c, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = gn(cin, groups), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = gn(cout, groups), nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.nin_shortcut(x) + h


class AttnBlock(nn.Module):
    def __init__(self, c: int, groups: int, fused: bool) -> None:
        super().__init__()
        self.c, self.fused = c, fused
        self.norm = gn(c, groups)
        if fused:
            self.qkv = nn.Conv2d(c, 3 * c, 1)
        else:
            self.q, self.k, self.v = (nn.Conv2d(c, c, 1) for _ in range(3))
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.norm(x)
        q, k, v = self.qkv(n).chunk(3, dim=1) if self.fused else (self.q(n), self.k(n), self.v(n))
        bsz, c, hh, ww = q.shape
        q, k, v = (t.reshape(bsz, c, hh * ww) for t in (q, k, v))
        att = torch.softmax(torch.einsum("bci,bcj->bij", q, k) * (c ** -0.5), dim=-1)
        out = torch.einsum("bij,bcj->bci", att, v).reshape(bsz, c, hh, ww)
        return x + self.proj_out(out)


class Decoder(nn.Module):
    def __init__(self, ch: int, ch_mult: tuple, nrb: int, z: int, groups: int, attn_levels: set, mid_attn: bool = True,
                 fused: bool = True) -> None:
        super().__init__()
        self.nrb, self.levels = nrb, len(ch_mult)
        block_in = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z, block_in, 3, padding=1)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in, groups)
        self.mid.attn_1 = AttnBlock(block_in, groups, fused) if mid_attn else nn.Identity()
        self.mid.block_2 = ResnetBlock(block_in, block_in, groups)
        ups = [None] * self.levels
        for i in reversed(range(self.levels)):
            up = nn.Module()
            up.block, up.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(nrb + 1):
                up.block.append(ResnetBlock(block_in, ch * ch_mult[i], groups))
                block_in = ch * ch_mult[i]
                if i in attn_levels:
                    up.attn.append(AttnBlock(block_in, groups, fused))
            if i != 0:
                up.upsample = nn.Module()
                up.upsample.conv = nn.Conv2d(block_in, block_in, 3, padding=1)
            ups[i] = up
        self.up = nn.ModuleList(ups)
        self.norm_out = gn(block_in, groups)
        self.conv_out = nn.Conv2d(block_in, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(self.conv_in(z))))
        for i in reversed(range(self.levels)):
            for j in range(self.nrb + 1):
                h = self.up[i].block[j](h)
                if len(self.up[i].attn):
                    h = self.up[i].attn[j](h)
            if i != 0:
                h = self.up[i].upsample.conv(F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


def randomize(module: nn.Module, seed: int, scale: float = 0.3) -> None:
    """Convert to float64; every parameter drawn normal(0, scale²), reproducibly."""
    module.double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * scale)


def state_arrays(module: nn.Module, prefix: str = "") -> dict[str, np.ndarray]:
    return {prefix + k: v.detach().numpy() for k, v in module.state_dict().items()}


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["Decoder", "randomize", "state_arrays", "count", "math"]
