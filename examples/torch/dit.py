"""A DiT block with adaLN-Zero conditioning and the sinusoidal timestep embedder, for `kind: torch`.

Plain PyTorch, no tc0sim. The timestep t is an input, so its sinusoidal features are computed in
the circuit (the primitives sin and cos); the frequency table reads no input and is folded.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class TimestepEmbedder(nn.Module):
    def __init__(self, width: int, frequencies: int = 16) -> None:
        super().__init__()
        self.frequencies = frequencies
        self.mlp = nn.Sequential(nn.Linear(frequencies, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.frequencies // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=t.dtype) / half)
        args = t[:, None] * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class DiTBlock(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.fc1 = nn.Linear(width, mlp_ratio * width)
        self.fc2 = nn.Linear(mlp_ratio * width, width)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attention(modulate(self.norm1(x), shift_msa, scale_msa))
        h = self.fc2(F.gelu(self.fc1(modulate(self.norm2(x), shift_mlp, scale_mlp)), approximate="tanh"))
        return x + gate_mlp.unsqueeze(1) * h


class DiT(nn.Module):
    """Timestep and class embeddings summed into c, then DiT blocks on the tokens."""

    def __init__(self, depth: int = 2, width: int = 32, heads: int = 4, classes: int = 10) -> None:
        super().__init__()
        self.t_embedder = TimestepEmbedder(width)
        self.y_embedder = nn.Embedding(classes, width)
        self.blocks = nn.ModuleList(DiTBlock(width, heads) for _ in range(depth))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c = self.t_embedder(t) + self.y_embedder(y)
        for block in self.blocks:
            x = block(x, c)
        return x


def make_model(depth: int = 2, width: int = 32, heads: int = 4, classes: int = 10, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = DiT(depth, width, heads, classes)
    for block in model.blocks:  # adaLN-Zero starts at zero; small random values keep every path live here
        nn.init.normal_(block.adaLN_modulation[-1].weight, std=0.02)
    return model.eval()
