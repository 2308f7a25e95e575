"""A float64 PyTorch implementation of released VAR's inference, written for the tests from the
architecture (not from tc0sim's lowering): the VQ-VAE decoder, the multi-scale residual quantiser and
the VAR transformer with classifier-free guidance and the sampler tc0sim documents (top-k, top-p,
inverse CDF on one uniform per token). ``infer_official`` restates the official
``autoregressive_infer_cfg`` sampling loop (FoundationVision/VAR @78b9539: ``sample_with_top_k_top_p_``,
``gumbel_softmax_with_rng``, a seeded generator, the label draw). Module and parameter names follow the
official state_dict.
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


# ---------------------------------------------------------------------------------------------
# the VQ-VAE parts inference reads, and the VAR transformer


class VQVAE(nn.Module):
    """post_quant_conv, decoder and the quantiser's codebook and Φ convolutions (plus two unused tensors
    of the official checkpoint: quant_conv and the ema_vocab_hit_SV buffer)."""

    def __init__(self, vocab: int, cvae: int, ch: int, ch_mult: tuple, nrb: int, groups: int, phis: int, scales: int,
                 quant_resi: float = 0.5) -> None:
        super().__init__()
        self.resi = abs(quant_resi)
        self.quant_conv = nn.Conv2d(cvae, cvae, 3, padding=1)
        self.post_quant_conv = nn.Conv2d(cvae, cvae, 3, padding=1)
        self.decoder = Decoder(ch, ch_mult, nrb, cvae, groups, {len(ch_mult) - 1})
        self.quantize = nn.Module()
        self.quantize.embedding = nn.Embedding(vocab, cvae)
        self.quantize.quant_resi = nn.Module()
        self.quantize.quant_resi.qresi_ls = nn.ModuleList(
            nn.Conv2d(cvae, cvae, 3, padding=1) if self.resi > 1e-6 else nn.Identity() for _ in range(phis))
        self.quantize.register_buffer("ema_vocab_hit_SV", torch.zeros(scales, vocab))

    def phi(self, si: int, k: int, h: torch.Tensor) -> torch.Tensor:
        n = len(self.quantize.quant_resi.qresi_ls)
        ticks = np.linspace(1 / 3 / n, 1 - 1 / 3 / n, n) if n == 4 else np.linspace(1 / 2 / n, 1 - 1 / 2 / n, n)
        conv = self.quantize.quant_resi.qresi_ls[int(np.argmin(np.abs(ticks - si / (k - 1))))]
        return conv(h) if isinstance(conv, nn.Identity) else h.mul(1 - self.resi) + conv(h).mul_(self.resi)


class Attn(nn.Module):
    def __init__(self, c: int, heads: int, l2_norm: bool = True) -> None:
        super().__init__()
        self.heads, self.l2_norm, self.scale = heads, l2_norm, 1 if l2_norm else 0.25 / math.sqrt(c // heads)
        self.mat_qkv = nn.Linear(c, 3 * c, bias=False)
        self.q_bias, self.v_bias = nn.Parameter(torch.zeros(c)), nn.Parameter(torch.zeros(c))
        self.register_buffer("zero_k_bias", torch.zeros(c))
        if l2_norm:
            self.scale_mul_1H11 = nn.Parameter(torch.zeros(1, heads, 1, 1))
        self.proj = nn.Linear(c, c)
        self.cache: list = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bsz, n, c = x.shape
        qkv = F.linear(x, self.mat_qkv.weight, torch.cat((self.q_bias, self.zero_k_bias, self.v_bias)))
        q, k, v = qkv.view(bsz, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        if self.l2_norm:
            q = F.normalize(q, dim=-1) * self.scale_mul_1H11.clamp_max(torch.log(torch.tensor(100)).item()).exp()
            k = F.normalize(k, dim=-1)
        self.cache.append((k, v))
        keys = torch.cat([kk for kk, _ in self.cache], dim=2)
        values = torch.cat([vv for _, vv in self.cache], dim=2)
        att = torch.softmax(q.mul(self.scale) @ keys.transpose(-1, -2), dim=-1)
        return self.proj((att @ values).transpose(1, 2).reshape(bsz, n, c))


class Block(nn.Module):
    def __init__(self, c: int, heads: int, hidden: int, shared: bool, l2_norm: bool = True) -> None:
        super().__init__()
        self.c = c
        self.attn = Attn(c, heads, l2_norm)
        self.ffn = nn.Module()
        self.ffn.fc1, self.ffn.fc2 = nn.Linear(c, hidden), nn.Linear(hidden, c)
        if shared:
            self.ada_gss = nn.Parameter(torch.zeros(1, 1, 6, c))
        else:
            self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(c, 6 * c))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "ada_gss"):
            mods = (self.ada_gss + cond).unbind(2)
        else:
            mods = self.ada_lin(cond).view(-1, 1, 6, self.c).unbind(2)
        g1, g2, s1, s2, b1, b2 = mods
        ln = lambda t: F.layer_norm(t, (self.c,), eps=1e-6)  # noqa: E731
        x = x + self.attn(ln(x) * (s1 + 1) + b1) * g1
        h = self.ffn.fc2(F.gelu(self.ffn.fc1(ln(x) * (s2 + 1) + b2), approximate="tanh"))
        return x + h * g2


class VAR(nn.Module):
    def __init__(self, depth: int, c: int, heads: int, hidden: int, scales: tuple, vocab: int, cvae: int, classes: int,
                 shared: bool = False, l2_norm: bool = True) -> None:
        super().__init__()
        self.c, self.scales, self.classes, self.vocab = c, scales, classes, vocab
        L = sum(pn * pn for pn in scales)
        self.word_embed = nn.Linear(cvae, c)
        self.class_emb = nn.Embedding(classes + 1, c)
        self.pos_start = nn.Parameter(torch.zeros(1, scales[0] ** 2, c))
        self.pos_1LC = nn.Parameter(torch.zeros(1, L, c))
        self.lvl_embed = nn.Embedding(len(scales), c)
        if shared:
            self.shared_ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(c, 6 * c))
        self.blocks = nn.ModuleList(Block(c, heads, hidden, shared, l2_norm) for _ in range(depth))
        self.head_nm = nn.Module()
        self.head_nm.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(c, 2 * c))
        self.head = nn.Linear(c, vocab)
        lvl = torch.cat([torch.full((pn * pn,), i) for i, pn in enumerate(scales)])
        self.register_buffer("lvl_1L", lvl.view(1, L))
        self.register_buffer("attn_bias_for_masking", torch.zeros(1, 1, L, L))


def sample_rows(logits: torch.Tensor, u: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """top-k, then top-p over a stable ascending sort, then the inverse CDF at u (index order)."""
    n, vocab = logits.shape
    out = []
    for row, ur in zip(logits, u):
        w = torch.exp(row)
        if 0 < top_k < vocab:
            w = w * (row >= torch.topk(row, top_k).values.min())
        if top_p > 0:
            p = w / w.sum()
            order = torch.sort(row, stable=True).indices
            drop_sorted = torch.cumsum(p[order], 0) <= 1 - top_p
            drop_sorted[-1] = False
            drop = torch.zeros(vocab, dtype=torch.bool)
            drop[order] = drop_sorted
            w = w * ~drop
        cdf = torch.cumsum(w, 0)
        hits = torch.nonzero(ur * cdf[-1] < cdf[:-1])
        out.append(int(hits[0]) if len(hits) else vocab - 1)
    return torch.tensor(out)


@torch.no_grad()
def run(var: VAR, vae: VQVAE, labels: torch.Tensor, cfg: float, draw) -> dict:
    """The official autoregressive_infer_cfg loop (batch B = len(labels), CFG batch 2B);
    ``draw(si, guided [B, n, V])`` gives the indices [B, n] and the codebook input [B, n, Cvae]."""
    c, scales, K, B = var.c, var.scales, len(var.scales), len(labels)
    for blk in var.blocks:
        blk.attn.cache = []
    cond = var.class_emb(torch.cat((labels, torch.full_like(labels, var.classes))))
    lvl_pos = var.lvl_embed(var.lvl_1L) + var.pos_1LC
    first = scales[0] ** 2
    x = cond.unsqueeze(1).expand(2 * B, first, -1) + var.pos_start.expand(2 * B, first, -1) + lvl_pos[:, :first]
    cond_in = var.shared_ada_lin(cond).view(-1, 1, 6, c) if hasattr(var, "shared_ada_lin") else cond
    big, cvae = scales[-1], vae.quantize.embedding.weight.shape[1]
    f_hat = torch.zeros(B, cvae, big, big, dtype=torch.float64)
    cur, indices, head = 0, [], []
    for si, pn in enumerate(scales):
        cur += pn * pn
        for blk in var.blocks:
            x = blk(x, cond_in)
        scale, shift = var.head_nm.ada_lin(cond).view(-1, 1, 2, c).unbind(2)
        logits = var.head(F.layer_norm(x, (c,), eps=1e-6) * (scale + 1) + shift)
        head.append(logits.numpy().copy())
        t = cfg * (si / (K - 1))
        idx, h = draw(si, (1 + t) * logits[:B] - t * logits[B:])
        indices.append(idx)
        h = h.transpose(1, 2).reshape(B, cvae, pn, pn)
        if si != K - 1:
            h = F.interpolate(h, size=(big, big), mode="bicubic")
        f_hat = f_hat + vae.phi(si, K, h)
        if si != K - 1:
            nxt = scales[si + 1]
            tok = F.interpolate(f_hat, size=(nxt, nxt), mode="area").view(B, -1, nxt * nxt).transpose(1, 2)
            x = (var.word_embed(tok) + lvl_pos[:, cur : cur + nxt * nxt]).repeat(2, 1, 1)
    image = vae.decoder(vae.post_quant_conv(f_hat)).clamp(-1, 1).add(1).mul(0.5)
    return {"image": image.permute(0, 2, 3, 1).numpy(), "indices": torch.cat(indices, dim=1).numpy(),
            "f_hat": f_hat.permute(0, 2, 3, 1).numpy(), "logits": head}


def infer(var: VAR, vae: VQVAE, label: int, u: torch.Tensor, cfg: float, top_k: int, top_p: float) -> dict:
    """Batch 1 with the documented inverse-CDF sampler, one uniform per token."""
    starts = np.cumsum([0] + [pn * pn for pn in var.scales])

    def draw(si: int, guided: torch.Tensor) -> tuple:
        idx = sample_rows(guided[0], u[starts[si] : starts[si + 1]], top_k, top_p)
        return idx[None], vae.quantize.embedding(idx)[None]

    return {k: v[0] for k, v in run(var, vae, torch.tensor([label]), cfg, draw).items() if k != "logits"}


def sample_with_top_k_top_p_(logits_BlV: torch.Tensor, top_k: int, top_p: float, rng: torch.Generator) -> torch.Tensor:
    """The official sampler (models/helpers.py), in place on the logits, one sample per row."""
    B, l, V = logits_BlV.shape
    if top_k > 0:
        idx_to_remove = logits_BlV < logits_BlV.topk(top_k, largest=True, sorted=False, dim=-1)[0].amin(dim=-1, keepdim=True)
        logits_BlV.masked_fill_(idx_to_remove, -torch.inf)
    if top_p > 0:
        sorted_logits, sorted_idx = logits_BlV.sort(dim=-1, descending=False)
        sorted_idx_to_remove = sorted_logits.softmax(dim=-1).cumsum_(dim=-1) <= (1 - top_p)
        sorted_idx_to_remove[..., -1:] = False
        logits_BlV.masked_fill_(sorted_idx_to_remove.scatter(sorted_idx.ndim - 1, sorted_idx, sorted_idx_to_remove), -torch.inf)
    return torch.multinomial(logits_BlV.softmax(dim=-1).view(-1, V), num_samples=1, replacement=True, generator=rng).view(B, l, 1)


def gumbel_softmax_with_rng(logits: torch.Tensor, tau: float, rng: torch.Generator) -> torch.Tensor:
    """The official soft Gumbel-softmax with a generator (hard=False, dim=-1)."""
    gumbels = -torch.empty_like(logits, memory_format=torch.legacy_contiguous_format).exponential_(generator=rng).log()
    return ((logits + gumbels) / tau).softmax(-1)


def infer_official(var: VAR, vae: VQVAE, B: int, label_B: int | None, g_seed: int, cfg: float, top_k: int, top_p: float,
                   more_smooth: bool = False) -> dict:
    """autoregressive_infer_cfg(B, label_B, g_seed, cfg, top_k, top_p, more_smooth) in float64."""
    rng = torch.Generator().manual_seed(g_seed)
    if label_B is None:
        uniform_prob = torch.full((1, var.classes), fill_value=1.0 / var.classes, dtype=torch.float32)
        labels = torch.multinomial(uniform_prob, num_samples=B, replacement=True, generator=rng).reshape(B)
    else:
        labels = torch.full((B,), fill_value=var.classes if label_B < 0 else label_B)
    K = len(var.scales)

    def draw(si: int, logits: torch.Tensor) -> tuple:
        idx = sample_with_top_k_top_p_(logits, top_k, top_p, rng)[:, :, 0]
        if not more_smooth:
            return idx, vae.quantize.embedding(idx)
        ratio = si / (K - 1)
        soft = gumbel_softmax_with_rng(logits.mul(1 + ratio), max(0.27 * (1 - ratio * 0.95), 0.005), rng)
        return idx, soft @ vae.quantize.embedding.weight.unsqueeze(0)

    return {**run(var, vae, labels, cfg, draw), "labels": labels.numpy()}


__all__ = ["Decoder", "VQVAE", "VAR", "infer", "infer_official", "run", "sample_rows", "randomize", "state_arrays", "count"]
