"""VAR as released: the kind's params, their cross-checks (``RULES``) and size estimate, and the
parsed configuration ``VarConfig`` (the scales of the released checkpoints, the Φ tables of the
residual quantiser)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from tc0sim.ir.budget import CONSTANT_ELEMENT_BYTES, INDEX_BYTES
from tc0sim.ir.kind import Param
from tc0sim.limits import MAX_CHANNELS
from tc0sim.models.common import label_is_class
from tc0sim.models.vae_decoder import DecoderConfig

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


def model_shape(p: Mapping[str, Any]) -> tuple[int, int, tuple[int, ...]]:
    """(width, heads, scales) of validated params, the nulls derived as the official ``build_vae_var``."""
    width = 64 * p["depth"] if p["width"] is None else p["width"]
    heads = p["depth"] if p["heads"] is None else p["heads"]
    return width, heads, tuple(RELEASED_SCALES[p["resolution"]] if p["scales"] is None else p["scales"])


def _heads_divide(p: Mapping[str, Any]) -> str | None:
    width, heads, _ = model_shape(p)
    return f"{heads} heads do not divide width {width} (params 'heads', 'width')" if width % heads else None


def _hidden(p: Mapping[str, Any]) -> str | None:
    width = model_shape(p)[0]
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


RULES = (_heads_divide, _hidden, label_is_class, _top_k_in_codebook, _smooth_needs_official)
"""The cross-parameter checks of ``var_release`` (``Kind.rules``), in order."""


def estimate(dims: Mapping[str, int], p: Mapping[str, Any]) -> tuple[int, int]:
    """Lower bounds (nodes, bytes) from validated params: a few nodes per block and scale; bytes for the
    codebook's exact constants, the token gather and the decoder's resize indices (each at least one
    index per output pixel and channel group)."""
    _, _, scales = model_shape(p)
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
