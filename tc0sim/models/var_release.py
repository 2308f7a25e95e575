"""VAR as released: the class-conditional inference circuit of the official VAR-d16 … d36 models.

Visual Autoregressive Modeling: Scalable Image Generation via Next-Scale Prediction (Tian, Jiang, Yuan,
Peng, Wang; arXiv 2404.02905). The circuit follows the released implementation's inference
(``autoregressive_infer_cfg``), for K scales ``pn_1 < … < pn_K`` (L = Σ pn_k² tokens):

* conditioning: ``cond = onehot(label) · class_emb[:classes]`` and the null class ``class_emb[classes]``:
  a batch of two streams (conditional, unconditional). Every AdaLN reads ``SiLU(cond)``.
* scale 1: ``cond + pos_start + lvl_pos[0]``; scale k > 1: ``word_embed(area(f_hat → pn_k)) + lvl_pos``,
  the same tokens in both streams; ``lvl_pos = lvl_embed[level of token] + pos_1LC``.
* ``depth`` AdaLN blocks: ``γ1, γ2, s1, s2, b1, b2`` = ``ada_lin(SiLU(cond))`` (one shared linear plus a
  per-block table ``ada_gss`` when ``shared_aln``); ``x += γ1·Attn(LN(x)(1 + s1) + b1)``,
  ``x += γ2·FFN(LN(x)(1 + s2) + b2)``. LN has no affine weights (eps 1e-6). Attention: one ``mat_qkv``
  linear with biases on q and v only, per head q and k L2-normalised (``F.normalize``, eps 1e-12), q
  times ``exp(min(s_h, ln 100))`` (the clamp is the float32 value of ln 100 the code computes), softmax
  with scale 1 over the keys of every scale so far (the key/value cache: a token of scale k attends to
  scales 1 … k), then ``proj``. FFN: ``fc2(GELU_tanh(fc1(·)))``, hidden ``round(width·mlp_ratio)``.
  The modulations depend only on the class, so they are computed once and read by every scale.
* head: ``head(LN(x)(1 + s) + b)`` with ``s, b`` from ``head_nm.ada_lin``; logits over the codebook.
* guidance: ``(1 + t)·logits_cond − t·logits_uncond`` with ``t = cfg · (k − 1)/(K − 1)`` at scale k
  (both constants are the float64 values the code computes).
* sampling: the official sampler (``tc0sim.ops.sampler.official_sample``: the exponential race of
  ``torch.multinomial`` on Exp(1) inputs), or by inverse CDF on one uniform per token (``sampler: inverse_cdf``).
* residual quantiser: the sampled rows of the codebook form an ``pn_k × pn_k`` map; except at the last
  scale it is resized bicubically to ``pn_K × pn_K``; then ``Φ(h) = ½h + ½Conv3×3(h)`` with the Φ
  picked for scale k by the code's nearest-tick rule; ``f_hat`` accumulates the results.
* VQ-VAE decoder (``vae_decoder``) with ``post_quant_conv``; ``clamp(−1, 1)``, then ``(· + 1)·½``.

Weight inputs carry the official state_dict names: the transformer's as in ``var_d{depth}.pth`` and the
VQ-VAE's under ``vae.`` as in ``vae_ch160v4096z32.pth``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from tc0sim.errors import ConfigError
from tc0sim.ir.dag import WeightSource
from tc0sim.ir.graph import Builder, Graph, Tensor
from tc0sim.ir.budget import CONSTANT_ELEMENT_BYTES, INDEX_BYTES
from tc0sim.ir.domains import domain_input
from tc0sim.ir.kind import Kind, Param
from tc0sim.limits import MAX_CHANNELS
from tc0sim.models.common import NamedWeights, Official, label_is_class, weight_groups
from tc0sim.models.vae_decoder import DecoderConfig, vae_decoder, var_decoder_config
from tc0sim.ops.activations import clamp, gelu_tanh, silu, softmax
from tc0sim.ops.linear import conv2d_torch, linear
from tc0sim.ops.norms import l2_normalize, layer_norm
from tc0sim.ops.resize import area, bicubic
from tc0sim.ops import torch_rng
from tc0sim.ops.sampler import index_triangle, inverse_cdf_sample, official_sample

REF = "VAR as released (arXiv 2404.02905; official autoregressive_infer_cfg)"
RELEASED_SCALES: dict[int, tuple[int, ...]] = {
    256: (1, 2, 3, 4, 5, 6, 8, 10, 13, 16),
    512: (1, 2, 3, 4, 6, 9, 13, 18, 24, 32),
    1024: (1, 2, 3, 4, 5, 7, 9, 12, 16, 21, 27, 36, 48, 64),
}
"""The official ``patch_nums`` for each resolution."""
RELEASED_DEPTHS = (16, 20, 24, 30, 36)
MAX_SIDE = 4096
"""Largest token map side of ``scales`` (the released models reach 64)."""
MAX_SCALES = 256
"""Most scales (the released models have up to 14)."""
MAX_PHI = 4096
"""Most Φ convolutions (the released models have 4)."""
MAX_BATCH = 4096
"""Most images per call."""
IDENTITY_RESI = 1e-6
"""The official quantiser makes Φ the identity when |quant_resi| ≤ 1e-6."""
MAX_LEVELS = 16
"""Most decoder levels (the released decoder has 5: ×16 upsampling)."""
MAX_SCALE_MUL = Fraction(float(np.float32(math.log(100))))
"""``torch.log(torch.tensor(100)).item()``: ln 100 rounded to float32, the clamp of the attention scale."""
VAE_PREFIX = "vae."
IGNORED_WEIGHTS = (
    "lvl_1L",
    "attn_bias_for_masking",
    "blocks.*.attn.zero_k_bias",
    "vae.encoder.*",
    "vae.quant_conv.*",
    "vae.quantize.ema_vocab_hit_SV",
)
"""Tensors of the official checkpoints that inference does not read (training buffers, the encoder)."""

PARAMS: tuple[Param, ...] = (
    Param("depth", "int", 16, "transformer blocks (VAR-d16 … d36)", min=1),
    Param("resolution", "int", 256, "image size: picks the official scales when 'scales' is null", choices=tuple(RELEASED_SCALES)),
    Param("width", "int", None, "model width C (null: 64 · depth)", min=1, max=MAX_CHANNELS, nullable=True),
    Param("heads", "int", None, "attention heads, dividing the width (null: depth)", min=1, max=MAX_CHANNELS, nullable=True),
    Param("mlp_ratio", "real", 4, "FFN hidden width = round(width · mlp_ratio), at least 1", min=1e-9, max=1e6),
    Param("scales", "ints", None, "token map sides pn_1 < … < pn_K (null: the official ones of the resolution)",
          min=1, max=MAX_SIDE, min_len=2, max_len=MAX_SCALES, increasing=True, nullable=True),
    Param("codebook", "int", 4096, "VQ codebook size V (the logits)", min=1, max=MAX_CHANNELS),
    Param("vae_channels", "int", 32, "latent channels of the codebook vectors", min=1, max=MAX_CHANNELS),
    Param("classes", "int", 1000, "class labels (the class embedding has one more row, the null class)", min=1, max=MAX_CHANNELS),
    Param("shared_aln", "bool", None, "one AdaLN linear shared by the blocks (null: depth = 36)", nullable=True),
    Param("cfg", "real", 1.5, "classifier-free guidance scale", min=-1e6, max=1e6),
    Param("top_k", "int", 900, "top-k sampling (0: off; at most the codebook size, as the official topk)", min=0),
    Param("top_p", "real", 0.96, "top-p (nucleus) sampling (0: off)", min=0.0, max=1.0),
    Param("phi_count", "int", 4, "Φ convolutions of the quantiser (0: one per scale)", min=0, max=MAX_PHI),
    Param("quant_resi", "real", 0.5, "Φ(h) = (1 − |q|)·h + |q|·Conv(h); |q| ≤ 1e-6: Φ is the identity (no weights)",
          min=-1.0, max=1.0),
    Param("decoder_ch", "int", 160, "decoder base channels", min=1, max=MAX_CHANNELS),
    Param("decoder_levels", "ints", [1, 1, 2, 2, 4], "decoder channel multipliers, one per level (each level but "
          "the last upsamples ×2)", min=1, max_len=MAX_LEVELS),
    Param("decoder_res_blocks", "int", 2, "ResBlocks per decoder level", min=0),
    Param("decoder_groups", "int", 32, "GroupNorm groups, dividing every decoder channel count", min=1),
    Param("sampler", "str", "official", "official: torch.multinomial's exponential race on Exp(1) inputs "
          "'exponentials'; inverse_cdf: one uniform per token (input 'uniform')", choices=("official", "inverse_cdf")),
    Param("more_smooth", "bool", False, "the official Gumbel-softmax codebook input (input 'gumbels'; official sampler)"),
    Param("label", "int", None, "class label; negative: the null class (unconditional); null: drawn at random, "
          "the input 'class_onehot' (official label_B None)", min=-MAX_CHANNELS, max=MAX_CHANNELS, nullable=True),
    Param("batch", "int", 1, "images B per call (the CFG batch is 2B)", min=1, max=MAX_BATCH),
    Param("attn_l2_norm", "bool", True, "q and k L2-normalised with a learned per-head scale (else scale 0.25/√head_dim)"),
)
"""The params of ``var_release``; null means "derived as the official code derives it"."""
DEFAULTS: dict[str, Any] = {p.name: p.default for p in PARAMS}


def _shape(p: Mapping[str, Any]) -> tuple[int, int, tuple[int, ...]]:
    """(width, heads, scales) of validated params, the nulls derived as the official ``build_vae_var``."""
    width = 64 * p["depth"] if p["width"] is None else p["width"]
    heads = p["depth"] if p["heads"] is None else p["heads"]
    return width, heads, tuple(RELEASED_SCALES[p["resolution"]] if p["scales"] is None else p["scales"])


def _heads_divide(p: Mapping[str, Any]) -> str | None:
    width, heads, _ = _shape(p)
    return f"{heads} heads do not divide width {width} (params 'heads', 'width')" if width % heads else None


def _hidden(p: Mapping[str, Any]) -> str | None:
    width = _shape(p)[0]
    if round(width * p["mlp_ratio"]) < 1:
        return f"param 'mlp_ratio' = {p['mlp_ratio']!r} makes the FFN hidden width round({width} · {p['mlp_ratio']!r}) = 0; it must be ≥ 1"
    return None


def _top_k_in_codebook(p: Mapping[str, Any]) -> str | None:
    if p["top_k"] > p["codebook"]:
        return f"param 'top_k' = {p['top_k']} exceeds the codebook size {p['codebook']} (param 'codebook'; the official topk raises)"
    return None


def _smooth_needs_official(p: Mapping[str, Any]) -> str | None:
    if p["more_smooth"] and p["sampler"] != "official":
        return "param 'more_smooth' needs sampler: official (its Gumbel path reads the official masks)"
    return None


def estimate(dims: Mapping[str, int], p: Mapping[str, Any]) -> tuple[int, int]:
    """Lower bounds (nodes, bytes) from validated params: a few nodes per block and scale; bytes for the
    codebook's exact constants, the token gather and the decoder's resize indices (each at least one
    index per output pixel and channel group)."""
    _, _, scales = _shape(p)
    tokens = sum(pn * pn for pn in scales)
    side = scales[-1] * 2 ** (len(p["decoder_levels"]) - 1)
    nodes = 2 * p["depth"] * len(scales) + len(p["decoder_levels"]) * (1 + p["decoder_res_blocks"])
    size = CONSTANT_ELEMENT_BYTES * p["codebook"] + INDEX_BYTES * (tokens + p["phi_count"] + side * side)
    return nodes, size


@dataclass(frozen=True)
class VarConfig:
    """A validated VAR configuration."""

    depth: int
    width: int
    heads: int
    mlp_hidden: int
    scales: tuple[int, ...]
    codebook: int
    vae_channels: int
    classes: int
    shared_aln: bool
    cfg: float
    top_k: int
    top_p: float
    phi_count: int
    quant_resi: float
    decoder: DecoderConfig
    sampler: str = "official"
    more_smooth: bool = False
    label: int | None = None
    batch: int = 1
    attn_l2_norm: bool = True

    @property
    def phi_identity(self) -> bool:
        """The official ``nn.Identity()`` in place of every Φ (|quant_resi| ≤ 1e-6)."""
        return abs(self.quant_resi) <= IDENTITY_RESI

    @property
    def tokens(self) -> int:
        return sum(pn * pn for pn in self.scales)

    @property
    def resolution(self) -> int:
        return self.scales[-1] * self.decoder.upsampling


def parse_config(params: Mapping[str, Any]) -> VarConfig:
    """The configuration the official ``build_vae_var`` makes, with any number overridden (validated)."""
    p = KINDS[0].validate(params)
    width, heads, scales = _shape(p)
    shared = p["depth"] == 36 if p["shared_aln"] is None else p["shared_aln"]
    decoder = var_decoder_config(p["decoder_ch"], p["decoder_levels"], p["decoder_res_blocks"], p["vae_channels"],
                                 p["decoder_groups"])
    return VarConfig(
        p["depth"], width, heads, round(width * p["mlp_ratio"]), scales, p["codebook"], p["vae_channels"], p["classes"],
        shared, p["cfg"], p["top_k"], p["top_p"], p["phi_count"], p["quant_resi"], decoder, p["sampler"],
        p["more_smooth"], p["label"], p["batch"], p["attn_l2_norm"],
    )


def phi_ticks(count: int) -> np.ndarray:
    """The official ticks of the Φ table: ``linspace(1/3/n, 1 − 1/3/n, n)`` for n = 4, else 1/2/n."""
    edge = 1 / 3 / count if count == 4 else 1 / 2 / count
    return np.linspace(edge, 1 - edge, count)


def phi_names(cfg: VarConfig) -> list[str]:
    """For each scale, the state_dict prefix of its Φ (the official nearest-tick rule in float64)."""
    k = len(cfg.scales)
    if cfg.phi_count == 1:
        return [f"{VAE_PREFIX}quantize.quant_resi.qresi"] * k
    count = cfg.phi_count or k
    ticks = phi_ticks(count)
    picks = [int(np.argmin(np.abs(ticks - si / (k - 1)))) for si in range(k)]
    table = "quant_resi.qresi_ls" if cfg.phi_count else "quant_resi"
    return [f"{VAE_PREFIX}quantize.{table}.{i}" for i in picks]


def phi_tables(cfg: VarConfig) -> list[str]:
    """The state_dict prefixes of every Φ of the quantiser's table (none when Φ is the identity)."""
    if cfg.phi_identity:
        return []
    if cfg.phi_count == 1:
        return [f"{VAE_PREFIX}quantize.quant_resi.qresi"]
    table = "quant_resi.qresi_ls" if cfg.phi_count else "quant_resi"
    return [f"{VAE_PREFIX}quantize.{table}.{i}" for i in range(cfg.phi_count or len(cfg.scales))]


@dataclass
class _Block:
    """One block's class-dependent values (computed once): modulations [2, 1, C] and head scales [H]."""

    gamma1: Tensor
    gamma2: Tensor
    scale1: Tensor
    scale2: Tensor
    shift1: Tensor
    shift2: Tensor
    q_scale: Tensor | None
    """exp(min(s_h, ln 100)) per head (None without ``attn_l2_norm``)."""


def _split(b: Builder, mod: Tensor, parts: int) -> list[Tensor]:
    """[2B, parts, C] → ``parts`` tensors [2B, 1, C]."""
    return [b.slice(mod, 1, i, i + 1) for i in range(parts)]


def _modulations(b: Builder, w: NamedWeights, cfg: VarConfig, cond: Tensor) -> list[_Block]:
    c, one, rows = cfg.width, b.constant(1), cond.shape[0]
    with b.scope("adaln", REF):
        act = silu(b, cond)
        shared = b.reshape(w.linear(act, "shared_ada_lin.1", 6 * c), (rows, 6, c)) if cfg.shared_aln else None
        blocks = []
        for j in range(cfg.depth):
            if shared is not None:
                mod = b.add(shared, b.reshape(w(f"blocks.{j}.ada_gss", (1, 1, 6, c)), (1, 6, c)))
            else:
                mod = b.reshape(w.linear(act, f"blocks.{j}.ada_lin.1", 6 * c), (rows, 6, c))
            g1, g2, s1, s2, h1, h2 = _split(b, mod, 6)
            q_scale = None
            if cfg.attn_l2_norm:
                log_scale = b.reshape(w(f"blocks.{j}.attn.scale_mul_1H11", (1, cfg.heads, 1, 1)), (1, cfg.heads, 1, 1))
                q_scale = b.exp(b.min(log_scale, b.constant(MAX_SCALE_MUL)))
            blocks.append(_Block(g1, g2, b.add(s1, one), b.add(s2, one), h1, h2, q_scale))
        return blocks


def _modulate(b: Builder, x: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
    """LN(x)·(1 + s) + b (the 1 + s is precomputed)."""
    return b.add(b.mul(layer_norm(b, x), scale), shift)


def _heads(b: Builder, x: Tensor, heads: int) -> Tensor:
    """[2B, n, C] → [2B, H, n, C/H]."""
    two, n, c = x.shape
    return b.transpose(b.reshape(x, (two, n, heads, c // heads)), (0, 2, 1, 3))


def _attention(b: Builder, w: NamedWeights, cfg: VarConfig, x: Tensor, blk: _Block, cache: list[list[Tensor]]) -> Tensor:
    """Self-attention of one scale's tokens over the cached keys/values of every scale so far."""
    two, n, c = x.shape
    with b.scope("attention", REF):
        bias = b.concat([w("attn.q_bias", (c,)), b.broadcast(b.constant(0), (c,)), w("attn.v_bias", (c,))])
        qkv = linear(b, x, w("attn.mat_qkv.weight", (3 * c, c)), bias, name="mat_qkv")
        q, k, v = (_heads(b, b.slice(qkv, 2, i * c, (i + 1) * c), cfg.heads) for i in range(3))
        if blk.q_scale is None:  # the official slow_attn: query.mul(0.25 / √head_dim), keys as they are
            q = b.mul(q, b.constant(Fraction(0.25 / math.sqrt(c // cfg.heads))))
        else:
            q, k = b.mul(l2_normalize(b, q), blk.q_scale), l2_normalize(b, k)
        cache[0].append(k)
        cache[1].append(v)
        keys, values = b.concat(cache[0], axis=2), b.concat(cache[1], axis=2)  # [2B, H, L_k, hd]
        hd, seen = c // cfg.heads, keys.shape[2]
        logits = b.sum(b.mul(b.reshape(q, (two, cfg.heads, n, 1, hd)), b.reshape(keys, (two, cfg.heads, 1, seen, hd))), axis=4)
        weights = softmax(b, logits)
        mixed = b.sum(b.mul(b.reshape(weights, (two, cfg.heads, n, seen, 1)), b.reshape(values, (two, cfg.heads, 1, seen, hd))), axis=3)
        mixed = b.reshape(b.transpose(mixed, (0, 2, 1, 3)), (two, n, c))
        return w.linear(mixed, "attn.proj", c)


_BLOCK_FIELDS = tuple(_Block.__dataclass_fields__)


def _block_body(cfg: VarConfig) -> Callable[[Builder, dict[str, Tensor], WeightSource], dict[str, Tensor]]:
    """One AdaLN block as a shared body: x, the block's modulations and the cache in; x, k, v out."""

    def body(b: Builder, args: dict[str, Tensor], weight: WeightSource) -> dict[str, Tensor]:
        w = NamedWeights(b, weight)
        blk = _Block(*(args.get(f) for f in _BLOCK_FIELDS))
        seen = sum(1 for name in args if name.startswith("k"))
        cache = [[args[f"k{i}"] for i in range(seen)], [args[f"v{i}"] for i in range(seen)]]
        x = args["x"]
        x = b.add(x, b.mul(_attention(b, w, cfg, _modulate(b, x, blk.scale1, blk.shift1), blk, cache), blk.gamma1))
        with b.scope("ffn", REF):
            h = w.linear(_modulate(b, x, blk.scale2, blk.shift2), "ffn.fc1", cfg.mlp_hidden)
            h = w.linear(gelu_tanh(b, h), "ffn.fc2", cfg.width)
        return {"x": b.add(x, b.mul(h, blk.gamma2)), "k": cache[0][-1], "v": cache[1][-1]}

    return body


def _block(b: Builder, w: NamedWeights, cfg: VarConfig, x: Tensor, j: int, blk: _Block, cache: list[list[Tensor]]) -> Tensor:
    """Block j on one scale's tokens (a shared body: the same circuit for every block of a scale)."""
    args = {"x": x, **{f: getattr(blk, f) for f in _BLOCK_FIELDS if getattr(blk, f) is not None}}
    args.update({f"k{i}": t for i, t in enumerate(cache[0])})
    args.update({f"v{i}": t for i, t in enumerate(cache[1])})
    with b.scope("adaln_block", f"block {j}; {REF}"):
        out = b.call("var_block", _block_body(cfg), args, w.under(f"blocks.{j}."))
    cache[0].append(out["k"])
    cache[1].append(out["v"])
    return out["x"]


def _conditioning(b: Builder, w: NamedWeights, cfg: VarConfig) -> Tensor:
    """``class_emb`` rows [2B, C]: the B labels, then B null rows (``label_B``, then the null class).

    An integer label is a gather of its row (a negative one: the null row); with ``label: null`` the
    classes are the input ``class_onehot`` (one-hot rows, as the official code draws them)."""
    c, n, batch = cfg.width, cfg.classes, cfg.batch
    class_emb = w("class_emb.weight", (n + 1, c))
    with b.scope("conditioning", REF):
        if cfg.label is None:
            onehot = domain_input(b, "class_onehot", (n,) if batch == 1 else (batch, n), "onehot")
            cond = linear(b, b.reshape(onehot, (batch, n)), b.transpose(b.slice(class_emb, 0, 0, n), (1, 0)), name="class_emb")
        else:
            cond = b.gather(class_emb, np.full(batch, n if cfg.label < 0 else cfg.label), axis=0)
        return b.concat([cond, b.gather(class_emb, np.full(batch, n), axis=0)], axis=0)


class _Sampler:
    """The sampler's inputs and one scale's draw (``sampler: official`` or ``inverse_cdf``)."""

    def __init__(self, b: Builder, cfg: VarConfig) -> None:
        self.b, self.cfg, rows, vocab = b, cfg, cfg.batch * cfg.tokens, cfg.codebook
        if cfg.sampler == "official":
            self.noise = domain_input(b, "exponentials", (rows, vocab), "exponential")
            self.gumbels = domain_input(b, "gumbels", (rows, vocab), "gumbel") if cfg.more_smooth else None
        else:
            self.noise = domain_input(b, "uniform", (rows,), "unit")
            self.tri = index_triangle(b, vocab)

    def __call__(self, guided: Tensor, si: int, start: int, stop: int) -> tuple[Tensor, Tensor]:
        """Codebook weights [B·pn², V] and indices [B·pn²] of scale ``si`` (rows ``start:stop`` of the inputs)."""
        b, cfg = self.b, self.cfg
        if cfg.sampler == "inverse_cdf":
            return inverse_cdf_sample(b, guided, b.slice(self.noise, 0, start, stop), cfg.top_k, cfg.top_p, self.tri)
        gumbels = None if self.gumbels is None else b.slice(self.gumbels, 0, start, stop)
        return official_sample(b, guided, b.slice(self.noise, 0, start, stop), cfg.top_k, cfg.top_p, gumbels=gumbels,
                               scale_index=si, scales=len(cfg.scales))


def _phi(b: Builder, w: NamedWeights, cfg: VarConfig, h: Tensor, name: str) -> Tensor:
    """``Φ(h) = (1 − |q|)·h + |q|·Conv3×3(h)``, or h when Φ is the identity."""
    if cfg.phi_identity:
        return h
    ratio, cv = abs(cfg.quant_resi), cfg.vae_channels
    conv = conv2d_torch(b, h, w(f"{name}.weight", (cv, cv, 3, 3)), w(f"{name}.bias", (cv,)), name="phi")
    return b.add(b.mul(h, b.constant(Fraction(1 - ratio))), b.mul(conv, b.constant(Fraction(ratio))))


def _build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    cfg = parse_config(params)
    c, vocab, cv, big, batch = cfg.width, cfg.codebook, cfg.vae_channels, cfg.scales[-1], cfg.batch
    starts = np.cumsum([0] + [pn * pn for pn in cfg.scales]).tolist()
    first = cfg.scales[0] ** 2
    w = NamedWeights(b)
    with b.scope("var_release", REF):
        cond = _conditioning(b, w, cfg)
        sampler = _Sampler(b, cfg)
        with b.scope("conditioning", REF):
            levels = np.repeat(np.arange(len(cfg.scales)), [pn * pn for pn in cfg.scales])
            lvl_pos = b.add(b.gather(w("lvl_embed.weight", (len(cfg.scales), c)), levels, axis=0),
                            b.reshape(w("pos_1LC", (1, cfg.tokens, c)), (cfg.tokens, c)))
            x = b.add(b.add(b.reshape(cond, (2 * batch, 1, c)), b.reshape(w("pos_start", (1, first, c)), (1, first, c))),
                      b.slice(lvl_pos, 0, 0, first))
        blocks = _modulations(b, w, cfg, cond)
        with b.scope("head_adaln", REF):
            head_mod = b.reshape(w.linear(silu(b, cond), "head_nm.ada_lin.1", 2 * c), (2 * batch, 2, c))
            head_scale, head_shift = _split(b, head_mod, 2)
            head_scale = b.add(head_scale, b.constant(1))
        codebook = b.transpose(w(f"{VAE_PREFIX}quantize.embedding.weight", (vocab, cv)), (1, 0))
        phis = phi_names(cfg)
        for name in dict.fromkeys(phi_tables(cfg)):  # every Φ of the table is a weight, read or not
            w(f"{name}.weight", (cv, cv, 3, 3)), w(f"{name}.bias", (cv,))
        caches: list[list[list[Tensor]]] = [[[], []] for _ in range(cfg.depth)]
        f_hat: list[Tensor | None] = [None] * batch
        indices = []
        last = len(cfg.scales) - 1
        for si, pn in enumerate(cfg.scales):
            n = pn * pn
            with b.scope(f"scale{si + 1}", REF):
                for j in range(cfg.depth):
                    x = _block(b, w, cfg, x, j, blocks[j], caches[j])
                with b.scope("head", REF):
                    logits = w.linear(_modulate(b, x, head_scale, head_shift), "head", vocab)
                with b.scope("guidance", REF):
                    t = cfg.cfg * (si / last)
                    guided = b.sub(b.mul(b.constant(Fraction(1 + t)), b.reshape(b.slice(logits, 0, 0, batch), (batch * n, vocab))),
                                   b.mul(b.constant(Fraction(t)), b.reshape(b.slice(logits, 0, batch, 2 * batch), (batch * n, vocab))))
                weights, index = sampler(guided, si, batch * starts[si], batch * starts[si + 1])
                indices.append(b.reshape(index, (batch, n)))
                with b.scope("quantiser", REF):
                    rows = linear(b, weights, codebook, name="codebook")
                    nxt = None if si == last else cfg.scales[si + 1]
                    tokens = []
                    for i in range(batch):
                        h = b.reshape(b.slice(rows, 0, i * n, (i + 1) * n), (pn, pn, cv))
                        h = _phi(b, w, cfg, h if si == last else bicubic(b, h, big, big), phis[si])
                        f_hat[i] = h if f_hat[i] is None else b.add(f_hat[i], h)
                        if nxt is not None:
                            tokens.append(b.reshape(area(b, f_hat[i], nxt, nxt), (nxt * nxt, cv)))
                if nxt is None:
                    break
                with b.scope("word_embed", REF):
                    x = b.reshape(w.linear(b.concat(tokens, axis=0), "word_embed", c), (batch, nxt * nxt, c))
                    x = b.add(x, b.slice(lvl_pos, 0, starts[si + 1], starts[si + 2]))
                    x = b.concat([x, x], axis=0)  # the CFG batch: the same tokens in both halves
        images = []
        for i in range(batch):
            image = vae_decoder(b, f_hat[i], cfg.decoder, source=w.under(VAE_PREFIX))
            with b.scope("output", REF):
                images.append(b.mul(b.add(clamp(b, image, -1, 1), b.constant(1)), b.constant(Fraction(1, 2))))
    tokens_out = b.concat(indices, axis=1)
    if batch == 1:  # one image: no batch axis
        return {"image": images[0], "indices": b.reshape(tokens_out, (cfg.tokens,)), "f_hat": f_hat[0]}
    stack = lambda ts: b.concat([b.reshape(t, (1, *t.shape)) for t in ts], axis=0)  # noqa: E731
    return {"image": stack(images), "indices": tokens_out, "f_hat": stack(f_hat)}


draw_dtype = torch_rng.draw_dtype
"""float32 for p ≤ 24, float64 above: torch draws its Exp(1) numbers in the probs' dtype, the model's."""


def official_inputs(params: Mapping[str, Any], seed: int, p: int) -> dict[str, np.ndarray]:
    """The random inputs of ``autoregressive_infer_cfg(B, label_B, g_seed=seed, more_smooth)``, drawn from
    torch's own CPU generator in the official order (``torch_rng.official_draws``), in ``draw_dtype(p)``:
    ``exponentials`` (and ``gumbels``) stacked scale by scale, and ``class_onehot`` when the label is drawn."""
    cfg = parse_config(params)
    if cfg.sampler != "official":
        raise ConfigError("a torch seed draws the official sampler's inputs; this model has sampler: inverse_cdf")
    draws = torch_rng.official_draws(seed, cfg.batch, cfg.scales, cfg.codebook, cfg.classes, cfg.label, draw_dtype(p),
                                     cfg.more_smooth)
    out = {"exponentials": np.concatenate(draws.exponentials, axis=0)}
    if draws.gumbels is not None:
        out["gumbels"] = np.concatenate(draws.gumbels, axis=0)
    if cfg.label is None:
        onehot = np.eye(cfg.classes)[draws.labels]
        out["class_onehot"] = onehot[0] if cfg.batch == 1 else onehot
    return out


def image_bytes(unit: np.ndarray) -> np.ndarray:
    """The image output (in [0, 1]: ``add_(1).mul_(0.5)`` is in the circuit) in 8 bits as torchvision's
    ``save_image``: ``mul(255).add_(0.5).clamp_(0, 255)``, then truncation to uint8."""
    return np.floor(np.clip(unit * 255 + 0.5, 0, 255)).astype(np.uint8)


OFFICIAL = Official(official_inputs, "image", image_bytes)
"""The official random stream and saved image of ``var_release``."""


def component_of(name: str) -> tuple[str, str]:
    """(group, component) of a weight name: transformer / vae_decoder / quantiser and its module."""
    if name.startswith(f"{VAE_PREFIX}quantize."):
        return "quantiser", ".".join(name.split(".")[1:3])
    if name.startswith(VAE_PREFIX):
        parts = name.split(".")[1:]
        if parts[0] == "post_quant_conv":
            return "vae_decoder", "post_quant_conv"
        head = parts[1] if len(parts) > 2 else ""
        return "vae_decoder", f"decoder.{head}.{parts[2]}" if head == "up" else f"decoder.{head}"
    return "transformer", "blocks" if name.startswith("blocks.") else name.split(".")[0]


def parameters(graph: Graph) -> dict[str, Any]:
    """The weight scalars the circuit reads, by group and component (every weight input is read)."""
    return weight_groups(graph, component_of, ("transformer", "vae_decoder", "quantiser"))


KINDS: tuple[Kind, ...] = (
    Kind(
        "var_release",
        (),
        _build,
        REF,
        params=PARAMS,
        rules=(_heads_divide, _hidden, label_is_class, _top_k_in_codebook, _smooth_needs_official),
        estimate=estimate,
        model=True,
        doc="VAR-d{depth} as released: AdaLN transformer with KV cache over scales, CFG, top-k/top-p sampling, "
        "residual quantiser, VQ-VAE decoder",
        parameters=parameters,
        ignored_weights=IGNORED_WEIGHTS,
    ),
)
"""The kinds this module defines (listed by its package's __init__)."""


def released_configs() -> list[tuple[int, int]]:
    """(depth, resolution) of the released checkpoints: d16–d30 at 256 px, d36 (shared AdaLN) at 512 px."""
    return [(16, 256), (20, 256), (24, 256), (30, 256), (36, 512)]


__all__: Sequence[str] = ["VarConfig", "parse_config", "official_inputs", "draw_dtype", "parameters", "component_of", "phi_names",
                          "released_configs", "RELEASED_SCALES", "IGNORED_WEIGHTS"]
