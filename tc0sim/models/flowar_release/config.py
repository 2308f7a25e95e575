"""FlowAR as released: the kind's params and the variants' numbers (S, L, H), their cross-checks
(``RULES``) and size estimate, and the parsed configuration ``FlowARReleaseConfig``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from tc0sim.ir.budget import CONSTANT_ELEMENT_BYTES, INDEX_BYTES
from tc0sim.ir.kind import Param
from tc0sim.ir.params import short
from tc0sim.limits import MAX_CHANNELS
from tc0sim.models.common import label_is_class
from tc0sim.models.vae_decoder import DecoderConfig
from tc0sim.ops.aattc import feature_rank

REF = "FlowAR (arXiv 2412.15205), released code"
VAE_PREFIX = "vae."
HEAD_PREFIX = "flownet."
MAX_SIDE = 4096
"""Largest token map side of ``scales`` (the released models reach 16)."""
MAX_SCALES = 256
"""Most scales (the released models have 5)."""
MAX_STEPS = 10_000
"""Most Euler steps (the released models take 25 or 50; the audit's closed form lists every time point)."""
NULL_CLASS = 1000
"""The official class table has 1001 rows whatever the classes; row 1000 is the null class."""
SAMPLER_SIDE = 16
"""The official sampler resizes every sample bicubically to 16 × 16 before the next scale's area resize."""
HEAD_MLP_RATIO = 4.0
"""The flow head's blocks keep the official MLP ratio 4 (``mlp_ratio`` sets the AR blocks only)."""
MAX_LEVELS = 16
"""Most VAE decoder levels (the released decoder has 5: ×16 upsampling)."""
MAX_BATCH = 4096
"""Most images per call (``batch``)."""

VARIANTS: dict[str, dict[str, Any]] = {
    "S": {"width": 768, "blocks": 6, "heads": 12, "head_width": 1024, "head_blocks": 2, "cross": False,
          "steps": 25, "cfg": "4.3", "guidance": "0.9"},
    "L": {"width": 1024, "blocks": 8, "heads": 16, "head_width": 1024, "head_blocks": 12, "cross": True,
          "steps": 25, "cfg": "2.4", "guidance": "0.9"},
    "H": {"width": 1536, "blocks": 15, "heads": 16, "head_width": 1536, "head_blocks": 12, "cross": True,
          "steps": 50, "cfg": "2.4", "guidance": "0.7"},
}
"""The released variants: ``flowar_small/large/huge`` with the flow heads of their run commands and
the sampling settings of their evaluation commands (num_step, cfg, guidance)."""

PARAMS: tuple[Param, ...] = (
    Param("variant", "str", "S", "the released model whose numbers fill the params left null", choices=tuple(VARIANTS)),
    Param("width", "int", None, "AR transformer width E (null: the variant's)", min=1, max=MAX_CHANNELS, nullable=True),
    Param("blocks", "int", None, "encoder blocks, and as many decoder blocks (null: the variant's)", min=1, nullable=True),
    Param("heads", "int", None, "AR attention heads; width/heads divisible by 4 (null: the variant's)", min=1, max=MAX_CHANNELS, nullable=True),
    Param("head_width", "int", None, "flow head width w (null: the variant's)", min=1, max=MAX_CHANNELS, nullable=True),
    Param("head_blocks", "int", None, "flow head blocks (null: the variant's)", min=1, nullable=True),
    Param("cross", "bool", None, "flow head Block_v2 with cross-attention (null: the variant's)", nullable=True),
    Param("steps", "int", None, "Euler steps of the sampler (null: the variant's)", min=2, max=MAX_STEPS, nullable=True),
    Param("cfg", "rational", None, "classifier-free guidance scale (null: the variant's)", min=1, max=10**6, nullable=True),
    Param("guidance", "rational", None, "guide while t ≤ guidance (null: the variant's)", min=0, max=10**6, nullable=True),
    Param("head_heads", "int", None, "flow head attention heads (null: head_width // 64, the official head dim 64)",
          min=1, max=MAX_CHANNELS, nullable=True),
    Param("mlp_ratio", "real", 4, "AR blocks' GEGLU hidden width int(E · mlp_ratio · 2/3), at least 1 (the flow head "
          "keeps ratio 4, as the official head)", min=1e-9, max=1e6),
    Param("scales", "ints", [1, 2, 4, 8, 16], "token map sides 1 = s_1 < … < s_K", min=1, max=MAX_SIDE, min_len=2,
          max_len=MAX_SCALES, increasing=True),
    Param("latent_channels", "int", 16, "channels of the flow's latent tokens", min=1, max=MAX_CHANNELS),
    Param("classes", "int", 1000, "class labels 0 … classes − 1 (the class table always has the official 1001 rows, "
          "the null class 1000)", min=1, max=NULL_CLASS),
    Param("label", "int", None, "class label; negative: the null class; null: the input 'class_onehot'",
          min=-MAX_CHANNELS, max=NULL_CLASS - 1, nullable=True),
    Param("batch", "int", 1, "images B per call, all of the label (or rows of 'class_onehot'); the CFG batch is 2B",
          min=1, max=MAX_BATCH),
    Param("next_scale", "str", "sampler", "bicubic target of the next scale's input: sampler: 16 × 16 as the official "
          "sampler hard-codes; latent: the last scale's side (as in training)", choices=("sampler", "latent")),
    Param("rope_seq_len", "int", 16, "the RoPE table's sequence length (official: 16)", min=1, max=MAX_CHANNELS),
    Param("vae", "bool", True, "decode the latent with the KL-16 VAE decoder"),
    Param("vae_channels", "int", 128, "VAE decoder base channels", min=1, max=MAX_CHANNELS),
    Param("vae_mult", "ints", [1, 1, 2, 2, 4], "VAE decoder channel multipliers (each level but the last upsamples ×2)",
          min=1, max_len=MAX_LEVELS),
    Param("vae_res_blocks", "int", 2, "ResBlocks per VAE decoder level", min=0),
    Param("vae_scale", "rational", "0.2325", "the latent is divided by it before decoding (> 0)", min=0, max=10**6),
    Param("attention", "str", "exact", "exact (softmax, as released) or aattc (polynomial, FlowAR Section 5)",
          choices=("exact", "aattc")),
    Param("aattc_degree", "int", 2, "degree of AAttC's polynomial (with attention: aattc)", min=1),
)
"""The params of ``flowar_release``; null means "the variant's number"."""
DEFAULTS: dict[str, Any] = {p.name: p.default for p in PARAMS}
TIME_FEATURES = 256
MAX_PERIOD = 10000
ATTENTIONS = ("exact", "aattc")
"""``exact``: softmax attention as released; ``aattc``: every attention through the polynomial AAttC of
the FlowAR paper's fast FlowAR (Section 5), of degree ``aattc_degree``."""


@dataclass(frozen=True)
class FlowARReleaseConfig:
    """A validated configuration (the numbers of ``flowar_*`` and of the run/eval commands)."""

    width: int
    blocks: int
    heads: int
    head_width: int
    head_blocks: int
    head_heads: int
    cross: bool
    mlp_ratio: float
    scales: tuple[int, ...]
    latent_channels: int
    classes: int
    steps: int
    cfg: Fraction
    guidance: Fraction
    rope_seq_len: int
    vae: DecoderConfig | None
    vae_scale: Fraction
    attention: str = "exact"
    aattc_degree: int = 2
    label: int | None = None
    next_scale: str = "sampler"
    batch: int = 1

    @property
    def tokens(self) -> int:
        return sum(s * s for s in self.scales)

    def hidden(self, width: int, ratio: float | None = None) -> int:
        """timm SwiGLU hidden width ``int(width · ratio · 2/3.)`` (float arithmetic, as the code; ratio:
        ``mlp_ratio``)."""
        return int(width * (self.mlp_ratio if ratio is None else ratio) * 2 / 3.0)

    @property
    def upsample_side(self) -> int:
        """The side of the bicubic next-scale target (``next_scale``)."""
        return SAMPLER_SIDE if self.next_scale == "sampler" else self.scales[-1]


def filled(p: Mapping[str, Any]) -> dict[str, Any]:
    """Validated params with the nulls filled from the variant (and head_heads = head_width // 64)."""
    out = {**p, **{k: v for k, v in VARIANTS[p["variant"]].items() if p[k] is None}}
    out["cfg"], out["guidance"] = Fraction(out["cfg"]), Fraction(out["guidance"])
    if out["head_heads"] is None:
        out["head_heads"] = max(out["head_width"] // 64, 1)
    return out


def _rope_heads(p: Mapping[str, Any]) -> str | None:
    f = filled(p)
    for what, w, h in (("width", f["width"], f["heads"]), ("head_width", f["head_width"], f["head_heads"])):
        if w % h or (w // h) % 4:
            heads = "heads" if what == "width" else "head_heads"
            return f"{what} {w} over {h} heads must give a head width divisible by 4 (2-D RoPE; params {what!r}, {heads!r})"
    return None


def _first_scale(p: Mapping[str, Any]) -> str | None:
    return None if p["scales"][0] == 1 else f"param 'scales' must start at 1 (the class token), got {short(p['scales'])}"


def _hidden(p: Mapping[str, Any]) -> str | None:
    f = filled(p)
    if int(f["width"] * f["mlp_ratio"] * 2 / 3.0) < 1:
        return f"param 'mlp_ratio' = {f['mlp_ratio']!r} makes the width {f['width']} MLP hidden width 0; it must be ≥ 1"
    return None


def _vae_scale(p: Mapping[str, Any]) -> str | None:
    if p["vae_scale"] == 0:
        return "param 'vae_scale' must be > 0: the official sampler divides the latent by it before decoding"
    return None


RULES = (_rope_heads, _first_scale, _hidden, _vae_scale, label_is_class)
"""The cross-parameter checks of ``flowar_release`` (``Kind.rules``), in order."""


def estimate(dims: Mapping[str, int], p: Mapping[str, Any]) -> tuple[int, int]:
    """Lower bounds (nodes, bytes) from validated params: per scale, the AR blocks and the Euler steps
    and the flow head's blocks (a few nodes each), the decoder's blocks (one decoder per image); bytes for the time features of every step, the decoder's
    resize indices and, with AAttC, its monomial features (one index each)."""
    f = filled(p)
    k = len(f["scales"])
    levels = len(f["vae_mult"]) if f["vae"] else 0
    nodes = k * (4 * f["blocks"] + 2 * (f["steps"] - 1) + f["head_blocks"]) + f["batch"] * levels * (1 + f["vae_res_blocks"])
    side = f["scales"][-1] * 2 ** (levels - 1) if levels else 0
    size = CONSTANT_ELEMENT_BYTES * TIME_FEATURES * min(f["steps"], 1001) + INDEX_BYTES * side * side
    if f["attention"] == "aattc":
        head = min(f["width"] // f["heads"], f["head_width"] // f["head_heads"])
        size += INDEX_BYTES * feature_rank(head, f["aattc_degree"])
    return nodes, size
