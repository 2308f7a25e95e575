"""A float64 PyTorch implementation of released FlowAR's sampling, written for the tests from the
official code's structure (models/flowar.py, flowmodel.py, rope.py, sampler.py of the FlowAR training
code), not from tc0sim's lowering. Module and parameter names follow the official state_dict.

It runs the official control flow literally: the batch of two (conditional, null class) through the AR
transformer with a KV cache, the Euler sampler on both halves (each with its own noise) until guidance
starts, then on the conditional state twice, and the next-scale input from the conditional sample.
Without given noise (``sample_seeded``) it draws the noise where ``sample_tokens`` does: after
``torch.manual_seed(seed)``, one ``torch.randn([z.shape[0], z.shape[1], 16])`` per scale on the global
CPU generator, in the default dtype (float64 here, the model run in double).
"""

from __future__ import annotations

import functools
import math

import mpmath
import torch
from torch import nn
from torch.nn import functional as F

from reference_var import Decoder


class RMSNorm(nn.Module):
    def __init__(self, dim: int, weight: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim)) if weight else None

    def forward(self, x):
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
        return y if self.weight is None else y * self.weight


def rope_apply(x, rope_len: int = 16):
    """VisionRotaryEmbeddingFast on x[B, H, s², d], in float64."""
    d = x.shape[-1]
    dim = d // 2
    freqs = 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.float64)[: dim // 2] / dim))
    side = int(math.isqrt(x.shape[2]))
    t = torch.arange(side, dtype=torch.float64) / side * rope_len
    f = torch.einsum("i,f->if", t, freqs).repeat_interleave(2, dim=-1)
    grid = torch.cat([f[:, None, :].expand(side, side, dim), f[None, :, :].expand(side, side, dim)], dim=-1)
    cos, sin = grid.cos().reshape(-1, d), grid.sin().reshape(-1, d)
    pairs = x.reshape(*x.shape[:-1], d // 2, 2)
    rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).reshape(x.shape)
    return x * cos + rotated * sin


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1_g, self.fc1_x, self.fc2 = nn.Linear(dim, hidden), nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1_g(x)) * self.fc1_x(x))


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim, bias=qkv_bias), nn.Linear(dim, dim)
        self.cache = None

    def forward(self, x, cached: bool = False):
        bsz, n, c = x.shape
        q, k, v = self.qkv(x).reshape(bsz, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = rope_apply(q), rope_apply(k)
        if cached:
            if self.cache is not None:
                k, v = torch.cat([self.cache[0], k], dim=2), torch.cat([self.cache[1], v], dim=2)
            self.cache = (k, v)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(bsz, n, c))


class CrossAttention(nn.Module):
    def __init__(self, dim: int, semantic: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.kv = nn.Linear(dim, dim, bias=False), nn.Linear(semantic, 2 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, cond):
        bsz, n, c = x.shape
        q = self.q(x).reshape(bsz, n, self.heads, c // self.heads).permute(0, 2, 1, 3)
        k, v = self.kv(cond).reshape(bsz, n, 2, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(rope_apply(q), rope_apply(k), v)
        return self.proj(out.transpose(1, 2).reshape(bsz, n, c))


def hidden_of(dim: int) -> int:
    return int(dim * 4.0 * 2 / 3.0)


class ARBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.dim = dim
        self.norm1, self.norm2 = RMSNorm(dim), RMSNorm(dim)
        self.attn = SelfAttention(dim, heads, qkv_bias=True)
        self.mlp = SwiGLU(dim, hidden_of(dim))
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x, condition):
        g1, g2, s1, s2, b1, b2 = self.ada_lin(condition).view(-1, 1, 6, self.dim).unbind(2)
        x = x + self.attn(self.norm1(x) * (s1 + 1) + b1, cached=True) * g1
        return x + self.mlp(self.norm2(x) * (s2 + 1) + b2) * g2


class BlockV1(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.dim = dim
        self.norm1, self.norm2 = RMSNorm(dim), RMSNorm(dim)
        self.attn = SelfAttention(dim, heads, qkv_bias=False)
        self.mlp = SwiGLU(dim, hidden_of(dim))
        self.ada_lin = nn.Linear(dim, 6 * dim)

    def forward(self, x, t, c, condition):
        bsz, n, _ = condition.shape
        g1, g2, s1, s2, b1, b2 = self.ada_lin(F.silu(t + c)).view(bsz, n, 6, self.dim).unbind(2)
        x = x + self.attn(self.norm1(x) * (s1 + 1) + b1) * g1
        return x + self.mlp(self.norm2(x) * (s2 + 1) + b2) * g2


class BlockV2(nn.Module):
    def __init__(self, dim: int, heads: int, semantic: int) -> None:
        super().__init__()
        self.dim = dim
        self.norm1, self.norm3 = RMSNorm(dim), RMSNorm(dim)
        self.norm2_1, self.norm2_2 = RMSNorm(dim, True), RMSNorm(semantic, True)
        self.attn = SelfAttention(dim, heads, qkv_bias=False)
        self.crossattn = CrossAttention(dim, semantic, heads)
        self.mlp = SwiGLU(dim, hidden_of(dim))
        self.ada_lin_attn, self.ada_lin_mlp = nn.Linear(dim, 3 * dim), nn.Linear(dim, 3 * dim)

    def forward(self, x, t, c, condition):
        bsz, n, _ = condition.shape
        g1, s1, b1 = self.ada_lin_attn(F.silu(t)).view(bsz, 1, 3, self.dim).unbind(2)
        g2, s2, b2 = self.ada_lin_mlp(F.silu(c + t)).view(bsz, n, 3, self.dim).unbind(2)
        x = x + self.attn(self.norm1(x) * (s1 + 1) + b1) * g1
        x = x + self.crossattn(self.norm2_1(x), self.norm2_2(condition))
        return x + self.mlp(self.norm3(x) * (s2 + 1) + b2) * g2


@functools.lru_cache(maxsize=None)
def exact_time_features(index: int) -> tuple[float, ...]:
    """[cos(n f_j), sin(n f_j)], f_j = 10000^(−j/128), by mpmath at 40 digits, each rounded once to float64."""
    with mpmath.workdps(40):
        args = [index * mpmath.power(10000, mpmath.mpf(-j) / 128) for j in range(128)]
        return tuple(float(mpmath.cos(a)) for a in args) + tuple(float(mpmath.sin(a)) for a in args)


class TimestepEmbedder(nn.Module):
    def __init__(self, width: int, exact: bool = False) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(256, width), nn.SiLU(), nn.Linear(width, width))
        self.exact = exact

    def forward(self, index):
        """Float64 features (the float64 frequency times n ≤ 1000: about 1e-13 off), or with ``exact`` the
        correctly rounded ones."""
        if self.exact:
            return self.mlp(torch.tensor([exact_time_features(int(n)) for n in index], dtype=torch.float64))
        freqs = torch.exp(-math.log(10000) * torch.arange(128, dtype=torch.float64) / 128)
        args = index[:, None].to(torch.float64) * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class FinalLayer(nn.Module):
    def __init__(self, width: int, out: int) -> None:
        super().__init__()
        self.norm_final = RMSNorm(width)
        self.linear = nn.Linear(width, out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(self.norm_final(x) * (1 + scale) + shift)


class FlowNet(nn.Module):
    def __init__(self, channels: int, width: int, semantic: int, blocks: int, cross: bool, heads: int) -> None:
        super().__init__()
        self.time_embed = TimestepEmbedder(width)
        self.cond_embed = nn.Linear(semantic, width)
        self.input_proj = nn.Linear(channels, width)
        self.res_blocks = nn.ModuleList(
            [BlockV2(width, heads, semantic) if cross else BlockV1(width, heads) for _ in range(blocks)]
        )
        self.final_layer = FinalLayer(width, channels)

    def forward(self, x, t, condition):
        index = (t.to(torch.float32) * 1000).long()
        x = self.input_proj(x)
        t = self.time_embed(index).unsqueeze(1)
        c = self.cond_embed(condition)
        for block in self.res_blocks:
            x = block(x, t, c, condition)
        return self.final_layer(x, c + t)


class FlowARRef(nn.Module):
    def __init__(self, width: int, blocks: int, heads: int, head_width: int, head_blocks: int, cross: bool,
                 scales=(1, 2, 4, 8, 16), channels: int = 16, classes: int = 1000, head_heads: int | None = None,
                 upsample_side: int = 16) -> None:
        """The official modules: a 1001-row class table (null class 1000) whatever the classes, flow head
        heads head_width // 64, the sampler's bicubic next-scale target 16 × 16 (``upsample_side``)."""
        super().__init__()
        self.scales, self.channels, self.classes, self.upsample_side = list(scales), channels, classes, upsample_side
        tokens = sum(s * s for s in scales)
        self.class_emb = nn.Embedding(1000 + 1, width)
        self.z_proj = nn.Linear(channels, width)
        self.z_proj_ln = RMSNorm(width, True)
        self.encoder_pos_embed_learned = nn.Parameter(torch.zeros(1, tokens, width))
        self.encoder_blocks = nn.ModuleList([ARBlock(width, heads) for _ in range(blocks)])
        self.encoder_norm = RMSNorm(width, True)
        self.decoder_embed = nn.Linear(width, width)
        self.decoder_pos_embed_learned = nn.Parameter(torch.zeros(1, tokens, width))
        self.decoder_blocks = nn.ModuleList([ARBlock(width, heads) for _ in range(blocks)])
        self.decoder_norm = RMSNorm(width, True)
        self.diffusion_pos_embed_learned = nn.Parameter(torch.zeros(1, tokens, width))
        self.flownet = FlowNet(channels, head_width, width, head_blocks, cross, head_heads or head_width // 64)

    def euler(self, latents, z, steps: int, cfg_scale: float, guidance: float):
        t_steps = torch.cat([torch.linspace(1, 0.3, steps // 2, dtype=torch.float64),
                             torch.linspace(0.25, 0, steps // 2 + 1, dtype=torch.float64)])
        if steps == 50:
            t_steps = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
        x = latents
        for t_cur, t_next in zip(t_steps[:-1], t_steps[1:]):
            guide = cfg_scale > 1.0 and guidance >= t_cur >= 0.0
            model_input = torch.cat([x[: x.shape[0] // 2]] * 2) if guide else x
            d = self.flownet(model_input, torch.ones(model_input.shape[0], dtype=torch.float64) * t_cur, z)
            if guide:
                d_cond, d_uncond = d.chunk(2)
                d = d_uncond + cfg_scale * (d_cond - d_uncond)
                d = torch.cat([d, d])
            x = x + (t_next - t_cur) * d
        return x

    def sample(self, label, noises, uncond_noises, steps: int, cfg: float, guidance: float):
        """The conditional latent [1, 16, s, s] and each scale's conditional sample [s², 16]; with
        ``noises`` None, each scale's noise is drawn from torch's global generator as the official loop.
        ``label`` a list of B labels: latents [B, 16, s, s] and samples [B, s², 16] (the batch of 2B)."""
        batch = None if isinstance(label, int) else len(label)
        rows = [label] if batch is None else list(label)
        labels = torch.tensor([1000 if r < 0 else r for r in rows] + [1000] * len(rows))
        cond = self.class_emb(labels)
        x = cond.unsqueeze(1)
        starts = [0]
        for s in self.scales:
            starts.append(starts[-1] + s * s)
        for blk in list(self.encoder_blocks) + list(self.decoder_blocks):
            blk.attn.cache = None
        samples = []
        for k, s in enumerate(self.scales):
            a, e = starts[k], starts[k + 1]
            h = self.z_proj_ln(x + self.encoder_pos_embed_learned[:, a:e])
            for blk in self.encoder_blocks:
                h = blk(h, cond)
            h = self.decoder_embed(self.encoder_norm(h)) + self.decoder_pos_embed_learned[:, a:e]
            for blk in self.decoder_blocks:
                h = blk(h, cond)
            z = self.decoder_norm(h) + self.diffusion_pos_embed_learned[:, a:e]
            scaled_cfg = (cfg - 1) * k / (len(self.scales) - 1) + 1
            if noises is None:  # models/flowar.py: randn([z.shape[0], z.shape[1], 16]) on the CPU, then .cuda()
                noise = torch.randn([z.shape[0], z.shape[1], 16])
            else:
                noise = torch.cat([noises[k], uncond_noises[k]])
            out = self.euler(noise, z, steps, scaled_cfg, guidance)
            sample = out[:len(rows)]
            samples.append(sample[0] if batch is None else sample)
            if k == len(self.scales) - 1:
                break
            m = sample.repeat(2, 1, 1).permute(0, 2, 1).reshape(2 * len(rows), self.channels, s, s)
            big = self.upsample_side
            m = F.interpolate(F.interpolate(m, (big, big), mode="bicubic"), (self.scales[k + 1],) * 2, mode="area")
            x = self.z_proj(m.reshape(2 * len(rows), self.channels, -1).permute(0, 2, 1))
        side = self.scales[-1]
        latent = samples[-1].reshape(len(rows), side, side, self.channels).permute(0, 3, 1, 2)
        return latent, samples


def sample_seeded(model: FlowARRef, label: int, seed: int, steps: int, cfg: float, guidance: float):
    """``torch.manual_seed(seed)`` then the official loop drawing its own noise, with the default dtype
    float64 (so that ``randn`` draws in double, as a float64 run of the official code); restored after."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(seed)
        return model.sample(label, None, None, steps, cfg, guidance)
    finally:
        torch.set_default_dtype(previous)


class KLDecoder(nn.Module):
    """The KL-16 autoencoder's decoding path: post_quant_conv 1×1, then the LDM decoder."""

    def __init__(self, ch: int, ch_mult: tuple, nrb: int, z: int = 16) -> None:
        super().__init__()
        self.post_quant_conv = nn.Conv2d(z, z, 1)
        self.decoder = Decoder(ch, ch_mult, nrb, z, 32, set(), True, fused=False)

    def forward(self, latent):
        return self.decoder(self.post_quant_conv(latent / 0.2325))


__all__ = ["FlowARRef", "KLDecoder", "rope_apply", "sample_seeded"]
