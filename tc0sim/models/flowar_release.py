"""FlowAR as released (Ren et al., "FlowAR: Scale-wise Autoregressive Image Generation Meets Flow
Matching", arXiv 2412.15205): the whole class-conditional sampling circuit of FlowAR-S/L/H.

Per scale k = 1 … K (sizes s_k, default 1, 2, 4, 8, 16; N_k = s_k² tokens), for the conditional and
the unconditional (null-class) half of the classifier-free-guidance batch at once:

* input: scale 1 reads the class embedding (one row of ``class_emb``, always 1001 × E, the null class
  row 1000); scale k ≥ 2 reads the previous sample resized bicubically to 16 × 16 (the official
  sampler's fixed size; ``next_scale: latent``: s_K × s_K as in training), area-averaged to s_k × s_k,
  and ``z_proj`` (Linear 16 → E);
* AR transformer: ``+ encoder_pos``, ``z_proj_ln`` (RMSNorm with weight), ``blocks`` encoder blocks,
  ``encoder_norm``; ``decoder_embed`` (Linear E → E), ``+ decoder_pos``, ``blocks`` decoder blocks,
  ``decoder_norm``, ``+ diffusion_pos``: the condition z_k [N_k, E]. A block is
  ``x += γ1·Attn(RMSNorm(x)(1 + s1) + b1)``; ``x += γ2·MLP(RMSNorm(x)(1 + s2) + b2)`` with
  ``γ1, γ2, s1, s2, b1, b2`` from ``Linear(SiLU(class embedding))``; attention has a biased qkv, 2-D
  RoPE on q and k, scale 1/√d and sees the keys and values of every scale so far (the KV cache);
  the MLP is a GEGLU (exact, erf-based GELU) of hidden width ⌊8E/3⌋ (``mlp_ratio`` 4; the flow head's
  blocks keep ratio 4 whatever ``mlp_ratio``);
* flow head (``flownet``, width w): Euler steps from the noise x = ε_k (a circuit input) on the time
  points of the official schedule; each step evaluates the velocity net on the time embedding
  (``(t·1000)`` truncated → 256 cos/sin features → Linear, SiLU, Linear) and z_k, with
  ``Block_v1`` (6 per-token AdaLN vectors from SiLU(t + c), c = ``cond_embed(z_k)``) or ``Block_v2``
  (3 from SiLU(t) for self-attention, RMSNorm'd cross-attention to z_k, 3 per-token from SiLU(c + t)
  for the MLP), then RMSNorm, AdaLN shift/scale from SiLU(c + t) and Linear(w → 16). While guided
  (guidance scale g_k = 1 + (cfg − 1)(k − 1)/(K − 1) > 1 and t ≤ ``guidance``) the velocity is
  ``v_u + g_k (v_c − v_u)`` of the net on the conditional state with both halves' z_k;
  ``x ← x + (t_next − t)·v``.

The conditional sample of the last scale is the 16 × 16 × 16 latent (output ``latent``; each scale's
sample is ``sample.k``); divided by 0.2325 it enters the KL-16 VAE decoder (``post_quant_conv`` 1×1,
then the LDM decoder, channels 128·(1, 1, 2, 2, 4), three ResBlocks per level, attention only in the
middle): the image, output ``out`` [256, 256, 3] (the latent when ``vae: false``).

Values computed identically by the official code at every scale or step (the AdaLN vectors of the
AR blocks, the time embeddings and the SiLU(t) modulations, which do not depend on the scale, the
cross-attention keys and values, which do not depend on the step) are computed once. The
unconditional half's own flow state never reaches the output (the official sampler discards it
when guidance starts, and scale 1 is never guided), so it is not built and only the conditional
noise is an input; ``official_inputs`` draws it from a torch seed as the official sampler does.
``batch: B`` samples B images as the official code does on B labels: the CFG batch is 2B (the labels'
rows, then B null-class rows), each image with its own resizes and VAE decoder (one set of weights).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import gmpy2
import numpy as np

from tc0sim.ir.dag import WeightSource
from tc0sim.ir.graph import Builder, Graph, Tensor
from tc0sim.ir.budget import CONSTANT_ELEMENT_BYTES, INDEX_BYTES
from tc0sim.ir.domains import domain_input
from tc0sim.ir.kind import Kind, Param
from tc0sim.ir.params import short
from tc0sim.limits import MAX_CHANNELS
from tc0sim.models.common import NamedWeights, Official, label_is_class, weight_groups
from tc0sim.models.vae_decoder import DecoderConfig, vae_decoder
from tc0sim.ops import torch_rng
from tc0sim.ops.aattc import feature_rank
from tc0sim.ops.activations import silu
from tc0sim.ops.constants import cos_sin, real
from tc0sim.ops.glu import glu
from tc0sim.ops.linear import linear
from tc0sim.ops.mha import merge_heads, modulate, sdpa, sdpa_aattc, split_heads
from tc0sim.ops.resize import area, bicubic
from tc0sim.ops.rmsnorm import rms_norm
from tc0sim.ops.rope import rope, rope_tables

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


def _filled(p: Mapping[str, Any]) -> dict[str, Any]:
    """Validated params with the nulls filled from the variant (and head_heads = head_width // 64)."""
    out = {**p, **{k: v for k, v in VARIANTS[p["variant"]].items() if p[k] is None}}
    out["cfg"], out["guidance"] = Fraction(out["cfg"]), Fraction(out["guidance"])
    if out["head_heads"] is None:
        out["head_heads"] = max(out["head_width"] // 64, 1)
    return out


def _rope_heads(p: Mapping[str, Any]) -> str | None:
    f = _filled(p)
    for what, w, h in (("width", f["width"], f["heads"]), ("head_width", f["head_width"], f["head_heads"])):
        if w % h or (w // h) % 4:
            heads = "heads" if what == "width" else "head_heads"
            return f"{what} {w} over {h} heads must give a head width divisible by 4 (2-D RoPE; params {what!r}, {heads!r})"
    return None


def _first_scale(p: Mapping[str, Any]) -> str | None:
    return None if p["scales"][0] == 1 else f"param 'scales' must start at 1 (the class token), got {short(p['scales'])}"


def _hidden(p: Mapping[str, Any]) -> str | None:
    f = _filled(p)
    if int(f["width"] * f["mlp_ratio"] * 2 / 3.0) < 1:
        return f"param 'mlp_ratio' = {f['mlp_ratio']!r} makes the width {f['width']} MLP hidden width 0; it must be ≥ 1"
    return None


def _vae_scale(p: Mapping[str, Any]) -> str | None:
    if p["vae_scale"] == 0:
        return "param 'vae_scale' must be > 0: the official sampler divides the latent by it before decoding"
    return None


def estimate(dims: Mapping[str, int], p: Mapping[str, Any]) -> tuple[int, int]:
    """Lower bounds (nodes, bytes) from validated params: per scale, the AR blocks and the Euler steps
    and the flow head's blocks (a few nodes each), the decoder's blocks (one decoder per image); bytes for the time features of every step, the decoder's
    resize indices and, with AAttC, its monomial features (one index each)."""
    f = _filled(p)
    k = len(f["scales"])
    levels = len(f["vae_mult"]) if f["vae"] else 0
    nodes = k * (4 * f["blocks"] + 2 * (f["steps"] - 1) + f["head_blocks"]) + f["batch"] * levels * (1 + f["vae_res_blocks"])
    side = f["scales"][-1] * 2 ** (levels - 1) if levels else 0
    size = CONSTANT_ELEMENT_BYTES * TIME_FEATURES * min(f["steps"], 1001) + INDEX_BYTES * side * side
    if f["attention"] == "aattc":
        head = min(f["width"] // f["heads"], f["head_width"] // f["head_heads"])
        size += INDEX_BYTES * feature_rank(head, f["aattc_degree"])
    return nodes, size


def parse_config(params: Mapping[str, Any]) -> FlowARReleaseConfig:
    """Fill the variant's numbers into the params left at None; everything validated by the schema."""
    p = _filled(KINDS[0].validate(params))
    latent = p["latent_channels"]
    vae = None
    if p["vae"]:
        vae = DecoderConfig(p["vae_channels"], tuple(p["vae_mult"]), p["vae_res_blocks"], latent, 3, frozenset(), True,
                            False, 32, (latent, 1))
    return FlowARReleaseConfig(
        p["width"], p["blocks"], p["heads"], p["head_width"], p["head_blocks"], p["head_heads"], p["cross"],
        p["mlp_ratio"], tuple(p["scales"]), latent, p["classes"], p["steps"], p["cfg"], p["guidance"],
        p["rope_seq_len"], vae, p["vae_scale"], p["attention"], p["aattc_degree"], p["label"], p["next_scale"], p["batch"])


# --- the official sampler's schedule ------------------------------------------------------------


def linspace(start: Fraction, end: Fraction, steps: int) -> list[Fraction]:
    """``steps`` equally spaced exact points from start to end (both included)."""
    if steps == 1:
        return [start]
    return [start + (end - start) * Fraction(i, steps - 1) for i in range(steps)]


def time_points(steps: int) -> list[Fraction]:
    """The time points of the official ``euler_sampler``, as exact rationals: linspace(1, 0.3, n//2) then
    linspace(0.25, 0, n//2 + 1), or linspace(1, 0, 51) for n = 50. (PyTorch's float64 linspace may
    differ from these in the last bit, depending on the CPU's vector width.)"""
    if steps == 50:
        return linspace(Fraction(1), Fraction(0), 51)
    return linspace(Fraction(1), Fraction(3, 10), steps // 2) + linspace(Fraction(1, 4), Fraction(0), steps // 2 + 1)


def time_index(t: Fraction) -> int:
    """``(t·1000).long()`` of the time the velocity net receives: float64, then float32, times 1000 in
    float32, truncated."""
    return int(np.float32(np.float32(float(t)) * np.float32(1000)))


def guidance_scale(cfg: Fraction, scale: int, scales: int) -> Fraction:
    """The guidance of scale index ``scale`` (0-based): 1 + (cfg − 1)·scale/(K − 1), ramping over the scales."""
    return 1 + (cfg - 1) * Fraction(scale, scales - 1)


def guided(cfg: Fraction, scale: int, scales: int, t: Fraction, guidance: Fraction) -> bool:
    """Whether the sampler guides this step: guidance scale > 1 and 0 ≤ t ≤ guidance."""
    return guidance_scale(cfg, scale, scales) > 1 and 0 <= t <= guidance


def time_features(index: int) -> list[Fraction]:
    """The 256 sinusoidal features [cos(n f_j), sin(n f_j)], f_j = 10⁴^(−j/128), of time index n."""
    half = TIME_FEATURES // 2
    with gmpy2.context(gmpy2.get_context(), precision=320):
        angles = [index * gmpy2.exp(-gmpy2.log(MAX_PERIOD) * j / half) for j in range(half)]
    cos, sin = cos_sin(angles)
    return cos + sin


# --- the circuit -------------------------------------------------------------------------------


_MODS = ("gamma1", "gamma2", "scale1", "scale2", "shift1", "shift2")


class _Circuit:
    """Builds the circuit; caches the values shared by several scales or steps."""

    def __init__(self, b: Builder, cfg: FlowARReleaseConfig) -> None:
        self.b, self.cfg, self.w = b, cfg, NamedWeights(b)
        self.bodies: dict[int, _Circuit] = {}
        self.tables: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}
        self.time_embeds: dict[int, dict[str, Tensor]] = {}
        self.inv_sqrt: dict[int, Fraction] = {}

    # shared pieces
    def rope_tables(self, head_dim: int, side: int) -> tuple[Tensor, Tensor]:
        key = (head_dim, side)
        if key not in self.tables:
            shape, seq = (side * side, head_dim), self.cfg.rope_seq_len
            self.tables[key] = (self.b.lazy_constant(shape, lambda: rope_tables(head_dim, side, seq)[0], name=f"rope_cos_{head_dim}_{side}"),
                                self.b.lazy_constant(shape, lambda: rope_tables(head_dim, side, seq)[1], name=f"rope_sin_{head_dim}_{side}"))
        return self.tables[key]

    def scale(self, head_dim: int) -> Fraction:
        if head_dim not in self.inv_sqrt:
            self.inv_sqrt[head_dim] = real(lambda x: 1 / gmpy2.sqrt(x), head_dim)
        return self.inv_sqrt[head_dim]

    def attention(self, q: Tensor, k: Tensor, v: Tensor, heads: int, side: int) -> Tensor:
        """Heads, RoPE on q and k, sdpa, heads merged ([..., n, C] in and out); k/v may be pre-split."""
        b = self.b
        head_dim = q.shape[-1] // heads
        cos, sin = self.rope_tables(head_dim, side)
        qh = rope(b, split_heads(b, q, heads), cos, sin)
        if self.cfg.attention == "aattc":
            return merge_heads(b, sdpa_aattc(b, qh, k, v, self.scale(head_dim), self.cfg.aattc_degree))
        return merge_heads(b, sdpa(b, qh, k, v, self.scale(head_dim)))

    def mods(self, x: Tensor, count: int) -> list[Tensor]:
        """[..., count·C] → count tensors [..., C] (the official ``view(..., count, C).unbind``)."""
        c = x.shape[-1] // count
        return [self.b.slice(x, x.ndim - 1, i * c, (i + 1) * c) for i in range(count)]

    def shared(self, key: Hashable, body: Callable[[_Circuit, NamedWeights, dict[str, Tensor]], dict[str, Tensor]],
               args: dict[str, Tensor], weights: WeightSource) -> dict[str, Tensor]:
        """``body`` as a shared sub-circuit (``Builder.call``) reading ``weights``; in the body,
        ``self`` is the circuit of the body's own builder (its constants are its own)."""

        def build(b: Builder, inner: dict[str, Tensor], weight: WeightSource) -> dict[str, Tensor]:
            circuit = self if b is self.b else self.bodies.get(id(b))
            if circuit is None:
                circuit = self.bodies[id(b)] = _Circuit(b, self.cfg)
            return body(circuit, NamedWeights(b, weight), inner)

        return self.b.call(key, build, args, weights)

    # AR transformer
    def ar_block(self, x: Tensor, name: str, mods: list[Tensor], cache: list[list[Tensor]], side: int) -> Tensor:
        """One AR block (a shared body per scale): x, its six AdaLN vectors and the cache in; x, k, v out."""
        args = {"x": x, **dict(zip(_MODS, mods))}
        args.update({f"k{i}": t for i, t in enumerate(cache[0])})
        args.update({f"v{i}": t for i, t in enumerate(cache[1])})
        with self.b.scope("block", REF):
            out = self.shared(("flowar_ar_block", side), lambda c, w, a: c.ar_block_body(w, a, side), args, self.w.under(f"{name}."))
        cache[0].append(out["k"])
        cache[1].append(out["v"])
        return out["x"]

    def ar_block_body(self, w: NamedWeights, args: dict[str, Tensor], side: int) -> dict[str, Tensor]:
        b, cfg = self.b, self.cfg
        x = args["x"]
        gamma1, gamma2, scale1, scale2, shift1, shift2 = (args[m] for m in _MODS)
        seen = sum(1 for name in args if name.startswith("k"))
        h = modulate(b, rms_norm(b, x), scale1, shift1)
        qkv = w.linear(h, "attn.qkv", 3 * cfg.width)
        q, k, v = self.mods(qkv, 3)
        head_dim = cfg.width // cfg.heads
        cos, sin = self.rope_tables(head_dim, side)
        k = rope(b, split_heads(b, k, cfg.heads), cos, sin)
        v = split_heads(b, v, cfg.heads)
        keys = b.concat([args[f"k{i}"] for i in range(seen)] + [k], axis=2)
        values = b.concat([args[f"v{i}"] for i in range(seen)] + [v], axis=2)
        q = b.broadcast(q, keys.shape[:1] + q.shape[1:])
        attn = w.linear(self.attention(q, keys, values, cfg.heads, side), "attn.proj", cfg.width)
        x = b.add(x, b.mul(attn, gamma1))
        h = modulate(b, rms_norm(b, x), scale2, shift2)
        mlp = glu(b, h, cfg.hidden(cfg.width), lambda t, n, o: w.linear(t, n, o), name="mlp")
        return {"x": b.add(x, b.mul(mlp, gamma2)), "k": k, "v": v}

    def ar_modulations(self, cond: Tensor, stack: str) -> list[list[Tensor]]:
        """Every block's six AdaLN vectors [B, 1, E] from SiLU(class embedding) (the same at every scale)."""
        b, w, cfg = self.b, self.w, self.cfg
        act = silu(b, cond)
        out = []
        for j in range(cfg.blocks):
            with b.scope(f"{stack}{j}_adaln", REF):
                out.append(self.mods(w.linear(act, f"{stack}.{j}.ada_lin.1", 6 * cfg.width), 6))
        return out

    # flow head
    def time_conditioning(self, index: int) -> dict[str, Tensor]:
        """t_emb [1, 1, w] of time index n and, for Block_v2, every block's gamma1, scale1, shift1
        from SiLU(t_emb) (a shared body on the constant time features; computed once per n)."""
        if index not in self.time_embeds:
            features = self.b.lazy_constant((1, 1, TIME_FEATURES), lambda: np.array(time_features(index), dtype=object).reshape(1, 1, TIME_FEATURES))
            self.time_embeds[index] = self.shared("flowar_time", lambda c, w, a: c.time_body(w, a), {"features": features},
                                                  self.w.under(HEAD_PREFIX))
        return self.time_embeds[index]

    def time_body(self, w: NamedWeights, args: dict[str, Tensor]) -> dict[str, Tensor]:
        b, wid = self.b, self.cfg.head_width
        with b.scope("time_embed", REF):
            hidden = silu(b, w.linear(args["features"], "time_embed.mlp.0", wid))
            out = {"t_emb": w.linear(hidden, "time_embed.mlp.2", wid)}
        if self.cfg.cross:
            with b.scope("time_adaln", REF):
                for j in range(self.cfg.head_blocks):
                    lin = w.linear(silu(b, out["t_emb"]), f"res_blocks.{j}.ada_lin_attn", 3 * wid)
                    out.update({f"{m}{j}": t for m, t in zip(("gamma1", "scale1", "shift1"), self.mods(lin, 3))})
        return out

    def velocity(self, x: Tensor, index: int, cond: dict[str, Any], side: int) -> Tensor:
        """The flow head on x [B, N, 16] at time index n with the scale's conditioning tensors (a
        shared body per scale; the time embedding and Block_v2's time modulations are arguments)."""
        cfg = self.cfg
        args = {"x": x, "c": cond["c"], **self.time_conditioning(index)}
        if cfg.cross:
            for j in range(cfg.head_blocks):
                args[f"cross_k{j}"], args[f"cross_v{j}"] = cond["kv"][j]
        with self.b.scope("velocity", REF):
            return self.shared(("flowar_velocity", side), lambda c, w, a: c.velocity_body(w, a, side), args, self.w.under(HEAD_PREFIX))["v"]

    def velocity_body(self, w: NamedWeights, args: dict[str, Tensor], side: int) -> dict[str, Tensor]:
        b, cfg = self.b, self.cfg
        wid = cfg.head_width
        act = silu(b, b.add(args["c"], args["t_emb"]))
        h = w.linear(args["x"], "input_proj", wid)
        for j in range(cfg.head_blocks):
            name = f"res_blocks.{j}"
            with b.scope("head_block", REF):
                if cfg.cross:
                    gamma1, scale1, shift1 = (args[f"{m}{j}"] for m in ("gamma1", "scale1", "shift1"))
                    gamma2, scale2, shift2 = self.mods(w.linear(act, f"{name}.ada_lin_mlp", 3 * wid), 3)
                else:
                    gamma1, gamma2, scale1, scale2, shift1, shift2 = self.mods(w.linear(act, f"{name}.ada_lin", 6 * wid), 6)
                block = {"h": h, **dict(zip(_MODS, (gamma1, gamma2, scale1, scale2, shift1, shift2)))}
                if cfg.cross:
                    block["cross_k"], block["cross_v"] = args[f"cross_k{j}"], args[f"cross_v{j}"]
                h = self.shared(("flowar_head_block", side), lambda c, bw, a: c.head_block_body(bw, a, side), block, w.under(f"{name}."))["h"]
        shift, scale = self.mods(w.linear(act, "final_layer.adaLN_modulation.1", 2 * wid), 2)
        out = modulate(b, rms_norm(b, h), scale, shift)
        return {"v": w.linear(out, "final_layer.linear", cfg.latent_channels)}

    def head_block_body(self, w: NamedWeights, args: dict[str, Tensor], side: int) -> dict[str, Tensor]:
        """One flow-head block (Block_v1, or Block_v2 with cross-attention) on h, given its AdaLN vectors."""
        b, cfg = self.b, self.cfg
        wid = cfg.head_width
        h = args["h"]
        gamma1, gamma2, scale1, scale2, shift1, shift2 = (args[m] for m in _MODS)
        normed = modulate(b, rms_norm(b, h), scale1, shift1)
        qkv = w.linear(normed, "attn.qkv", 3 * wid, bias=False)
        q, k, v = self.mods(qkv, 3)
        cos, sin = self.rope_tables(wid // cfg.head_heads, side)
        keys = rope(b, split_heads(b, k, cfg.head_heads), cos, sin)
        attn = self.attention(q, keys, split_heads(b, v, cfg.head_heads), cfg.head_heads, side)
        h = b.add(h, b.mul(w.linear(attn, "attn.proj", wid), gamma1))
        if cfg.cross:
            query = w.linear(rms_norm(b, h, w("norm2_1.weight", (wid,))), "crossattn.q", wid, bias=False)
            cross = self.attention(query, args["cross_k"], args["cross_v"], cfg.head_heads, side)
            h = b.add(h, w.linear(cross, "crossattn.proj", wid))
        normed = modulate(b, rms_norm(b, h), scale2, shift2)
        mlp = glu(b, normed, cfg.hidden(wid, HEAD_MLP_RATIO), lambda t, n, o: w.linear(t, n, o), name="mlp")
        return {"h": b.add(h, b.mul(mlp, gamma2))}

    def head_conditioning(self, z: Tensor, side: int) -> dict[str, Any]:
        """c = cond_embed(z) and, for Block_v2, each block's cross-attention keys (RoPE'd) and values."""
        b, w, cfg = self.b, self.w, self.cfg
        wid = cfg.head_width
        with b.scope("head_conditioning", REF):
            out: dict[str, Any] = {"c": w.linear(z, f"{HEAD_PREFIX}cond_embed", wid), "kv": []}
            if cfg.cross:
                cos, sin = self.rope_tables(wid // cfg.head_heads, side)
                for j in range(cfg.head_blocks):
                    name = f"{HEAD_PREFIX}res_blocks.{j}"
                    normed = rms_norm(b, z, w(f"{name}.norm2_2.weight", (cfg.width,)))
                    k, v = self.mods(w.linear(normed, f"{name}.crossattn.kv", 2 * wid, bias=False), 2)
                    out["kv"].append((rope(b, split_heads(b, k, cfg.head_heads), cos, sin), split_heads(b, v, cfg.head_heads)))
        return out

    def twice(self, x: Tensor) -> Tensor:
        """The CFG batch of x [B, …]: [2B, …], the same rows in both halves (the official ``repeat(2, 1, 1)``)."""
        return self.b.broadcast(x, (2,) + x.shape[1:]) if x.shape[0] == 1 else self.b.concat([x, x], axis=0)

    def sample(self, z: Tensor, noise: Tensor, k: int) -> Tensor:
        """The Euler sampler of scale index k on noise [B, N, 16]: the conditional samples [B, N, 16]."""
        b, cfg, batch = self.b, self.cfg, self.cfg.batch
        side = cfg.scales[k]
        both = self.head_conditioning(z, side)
        first = {"c": b.slice(both["c"], 0, 0, batch), "kv": [tuple(b.slice(t, 0, 0, batch) for t in kv) for kv in both["kv"]]}
        points = time_points(cfg.steps)
        g = guidance_scale(cfg.cfg, k, len(cfg.scales))
        x = noise
        for i, (t, t_next) in enumerate(zip(points[:-1], points[1:])):
            with b.scope(f"step{i + 1}", REF):
                index = time_index(t)
                if z.shape[0] == 2 * batch and guided(cfg.cfg, k, len(cfg.scales), t, cfg.guidance):
                    v = self.velocity(self.twice(x), index, both, side)
                    v_cond, v_uncond = b.slice(v, 0, 0, batch), b.slice(v, 0, batch, 2 * batch)
                    v = b.add(v_uncond, b.mul(b.constant(g), b.sub(v_cond, v_uncond)))
                else:
                    v = self.velocity(x, index, first, side)
                x = b.add(x, b.mul(b.constant(t_next - t), v))
        return x


def noise_name(k: int) -> str:
    """The input holding the conditional flow noise of scale index k (0-based): ``noise.{k + 1}``."""
    return f"noise.{k + 1}"


def _build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    cfg = parse_config(params)
    fb = _Circuit(b, cfg)
    w, e, ch = fb.w, cfg.width, cfg.latent_channels
    starts = np.cumsum([0] + [s * s for s in cfg.scales]).tolist()
    two, batch = 2 if cfg.cfg != 1 else 1, cfg.batch
    lead = () if batch == 1 else (batch,)  # one image: no batch axis
    outputs: dict[str, Tensor] = {}
    with b.scope("flowar_release", REF):
        table = w("class_emb.weight", (NULL_CLASS + 1, e))
        with b.scope("class_embedding", REF):
            if cfg.label is None:
                label = domain_input(b, "class_onehot", lead + (cfg.classes,), "onehot")
                cond = linear(b, label, b.transpose(b.slice(table, 0, 0, cfg.classes), (1, 0)), name="class_emb")
            else:
                cond = b.gather(table, np.full(batch, NULL_CLASS if cfg.label < 0 else cfg.label), axis=0)
            rows = [b.reshape(cond, (batch, e))]
            if two == 2:
                rows.append(b.broadcast(b.slice(table, 0, NULL_CLASS, NULL_CLASS + 1), (batch, e)))
            cond = b.reshape(b.concat(rows, axis=0), (two * batch, 1, e))
        enc_mods, dec_mods = fb.ar_modulations(cond, "encoder_blocks"), fb.ar_modulations(cond, "decoder_blocks")
        positions = {n: w(f"{n}_pos_embed_learned", (1, cfg.tokens, e)) for n in ("encoder", "decoder", "diffusion")}
        caches = {stack: [[[], []] for _ in range(cfg.blocks)] for stack in ("encoder", "decoder")}
        x = cond
        sample = None
        for k, side in enumerate(cfg.scales):
            with b.scope(f"scale{k + 1}", REF):
                if k > 0:
                    with b.scope("next_scale_input", REF):
                        big, rows = cfg.upsample_side, []
                        for i in range(batch):
                            row = sample if batch == 1 else b.slice(sample, 0, i, i + 1)
                            m = bicubic(b, b.reshape(row, (cfg.scales[k - 1],) * 2 + (ch,)), big, big)
                            rows.append(b.reshape(area(b, m, side, side), (1, side * side, ch)))
                        x = w.linear(b.concat(rows, axis=0) if batch > 1 else rows[0], "z_proj", e)
                        x = fb.twice(x) if batch > 1 and two == 2 else x
                pos = {n: b.slice(t, 1, starts[k], starts[k + 1]) for n, t in positions.items()}
                with b.scope("encoder", REF):
                    h = rms_norm(b, b.add(x, pos["encoder"]), w("z_proj_ln.weight", (e,)))
                    for j in range(cfg.blocks):
                        h = fb.ar_block(h, f"encoder_blocks.{j}", enc_mods[j], caches["encoder"][j], side)
                    h = rms_norm(b, h, w("encoder_norm.weight", (e,)))
                with b.scope("decoder", REF):
                    h = b.add(w.linear(h, "decoder_embed", e), pos["decoder"])
                    for j in range(cfg.blocks):
                        h = fb.ar_block(h, f"decoder_blocks.{j}", dec_mods[j], caches["decoder"][j], side)
                    z = b.add(rms_norm(b, h, w("decoder_norm.weight", (e,))), pos["diffusion"])
                with b.scope("flow_head", REF):
                    noise = domain_input(b, noise_name(k), (batch, side * side, ch), "noise")
                    sample = fb.sample(z, noise, k)
                outputs[f"sample.{k + 1}"] = b.reshape(sample, lead + (side, side, ch))
        latent = outputs[f"sample.{len(cfg.scales)}"]
        image = None
        if cfg.vae is not None:
            with b.scope("vae", REF):
                if batch == 1:
                    image = vae_decoder(b, b.div(latent, b.constant(cfg.vae_scale)), cfg.vae, prefix=VAE_PREFIX)
                else:  # one decoder per image, one set of weights
                    images = [vae_decoder(b, b.div(b.reshape(b.slice(latent, 0, i, i + 1), latent.shape[1:]), b.constant(cfg.vae_scale)),
                                          cfg.vae, source=w.under(VAE_PREFIX)) for i in range(batch)]
                    image = b.concat([b.reshape(t, (1, *t.shape)) for t in images], axis=0)
    return {"out": latent if image is None else image, "latent": latent, **outputs}


def component_of(name: str) -> tuple[str, str]:
    """(group, component) of a weight name: transformer / flow_head / vae_decoder and its module."""
    if name.startswith(VAE_PREFIX):
        parts = name[len(VAE_PREFIX):].split(".")
        return "vae_decoder", ".".join(parts[:2]) if parts[0] == "decoder" else parts[0]
    if name.startswith(HEAD_PREFIX):
        return "flow_head", name[len(HEAD_PREFIX):].split(".")[0]
    return "transformer", name.split(".")[0]


def parameters(graph: Graph) -> dict[str, Any]:
    """The weight scalars of the circuit by group (transformer, flow_head, vae_decoder) and component."""
    return weight_groups(graph, component_of, ("transformer", "flow_head", "vae_decoder"))


IGNORED_WEIGHTS = ("mask", "*.rope.freqs", f"{VAE_PREFIX}encoder.*", f"{VAE_PREFIX}quant_conv.*")
"""Checkpoint tensors the sampling circuit does not read: the training attention mask and the RoPE
frequency buffers (the circuit holds its own rotary tables), and the KL-16 encoder."""

def image_bytes(image: np.ndarray) -> np.ndarray:
    """The decoded image in 8 bits as the official evaluation saves it (MAR's saver): ``(x + 1)/2``,
    ``np.round(np.clip(·255, 0, 255))`` (half to even); its ``[:, :, ::-1]`` to BGR for ``cv2.imwrite``
    is undone by the writer, so the file holds these RGB values."""
    return np.round(np.clip((image + 1) / 2 * 255, 0, 255)).astype(np.uint8)


def official_inputs(params: Mapping[str, Any], seed: int, p: int) -> dict[str, np.ndarray]:
    """The noise inputs of ``torch.manual_seed(seed); sample_tokens(num_steps, guidance, cfg, labels)``:
    each scale's ``torch.randn([2B, s², C])`` (``[B, s², C]`` at cfg 1) on torch's CPU generator in
    ``torch_rng.draw_dtype(p)``, its conditional rows [B, s², C] as ``noise.k`` (docs/samplers.md). The label is not
    random in the official code: it stays the param or the input ``class_onehot``."""
    cfg = parse_config(params)
    draws = torch_rng.flowar_noise(seed, cfg.batch, cfg.scales, cfg.latent_channels, cfg.cfg != 1, torch_rng.draw_dtype(p))
    return {noise_name(k): d for k, d in enumerate(draws)}


OFFICIAL = Official(official_inputs, "out", image_bytes)
"""The official random stream (the flow noise) and saved image of ``flowar_release``."""

KINDS: tuple[Kind, ...] = (
    Kind(
        "flowar_release",
        (),
        _build,
        REF,
        params=PARAMS,
        rules=(_rope_heads, _first_scale, _hidden, _vae_scale, label_is_class),
        estimate=estimate,
        model=True,
        doc="FlowAR-S/L/H as released: AR transformer (RMSNorm, AdaLN, 2-D RoPE, GEGLU) with KV cache, "
        "per-scale flow head with Euler sampling and CFG, KL-16 VAE decoder",
        parameters=parameters,
        ignored_weights=IGNORED_WEIGHTS,
    ),
)
"""The kinds this module defines (listed by its package's __init__)."""

__all__ = ["FlowARReleaseConfig", "VARIANTS", "parse_config", "time_points", "time_index", "guided",
           "guidance_scale", "time_features", "noise_name", "official_inputs", "component_of", "parameters"]
