"""The convolutional image decoder of taming-transformers / latent diffusion, as the released VQ-VAE of
VAR and the KL-16 autoencoder of FlowAR build it (``Decoder`` of their ``basic_vae.py`` / ``vae.py``).

``z → [post_quant_conv] → conv_in → mid(ResBlock, [AttnBlock], ResBlock) → levels → GN → SiLU → conv_out``.
Levels run from the lowest resolution (``i_level = len(ch_mult) − 1``) to the highest (0); level i has
``num_res_blocks + 1`` ResBlocks to ``ch·ch_mult[i]`` channels, an AttnBlock after each of them when
i is in ``attn_levels``, and (except level 0) an Upsample: nearest ×2, then a 3×3 conv.

* ResBlock: ``h = conv2(SiLU(GN2(conv1(SiLU(GN1(x)))))); out = x' + h`` with ``x' = nin_shortcut(x)``
  (1×1 conv) when the channel count changes, else x (dropout is the identity at inference).
* AttnBlock: ``q, k, v`` = 1×1 convs of GN(x) (one fused ``qkv`` conv in VAR, three ``q``, ``k``, ``v``
  convs in latent diffusion), single head over the h·w pixels, ``softmax(q kᵀ · c^−½) v``, a 1×1
  ``proj_out`` conv, plus x. The factor ``c^−½`` is the float64 value ``int(c) ** −0.5`` the code uses.
* GroupNorm: ``groups`` groups (32), eps 1e-6, affine; SiLU is ``x·sigmoid(x)``.

Weights are circuit inputs named with the official state_dict names under ``prefix`` (e.g.
``vae.decoder.up.3.block.0.conv1.weight``), in PyTorch's layouts. Feature maps are [h, w, c].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from tc0sim.errors import ConfigError
from tc0sim.ir.dag import WeightSource
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ops.activations import silu, softmax
from tc0sim.ops.linear import conv2d_torch
from tc0sim.ops.norms import group_norm
from tc0sim.ops.resize import nearest

REF = "taming/LDM Decoder (VAR basic_vae.py)"
GN_EPS = 1e-6
"""GroupNorm eps of the decoder (``Normalize`` in the official code)."""


@dataclass(frozen=True)
class DecoderConfig:
    """A decoder's architecture: the numbers of the official ``ddconfig``."""

    ch: int
    ch_mult: tuple[int, ...]
    num_res_blocks: int
    z_channels: int
    out_ch: int = 3
    attn_levels: frozenset[int] = frozenset()
    mid_attn: bool = True
    fused_qkv: bool = True
    groups: int = 32
    post_quant: tuple[int, int] | None = None
    """(input channels, kernel size) of ``post_quant_conv`` before the decoder, or None."""

    def __post_init__(self) -> None:
        if self.ch < 1 or not self.ch_mult or min(self.ch_mult) < 1 or self.num_res_blocks < 0:
            raise ConfigError(f"vae decoder: bad ch={self.ch}, ch_mult={self.ch_mult}, num_res_blocks={self.num_res_blocks}")
        bad = [c for c in self.channels() if c % self.groups]
        if bad:
            raise ConfigError(f"vae decoder: {self.groups} GroupNorm groups do not divide {bad[0]} channels")
        if any(not 0 <= i < len(self.ch_mult) for i in self.attn_levels):
            raise ConfigError(f"vae decoder: attention levels {sorted(self.attn_levels)} outside 0..{len(self.ch_mult) - 1}")

    @property
    def upsampling(self) -> int:
        """Output pixels per latent pixel along each axis: 2^(levels − 1)."""
        return 2 ** (len(self.ch_mult) - 1)

    def channels(self) -> list[int]:
        return [self.ch * m for m in self.ch_mult]


def var_decoder_config(ch: int = 160, ch_mult: Sequence[int] = (1, 1, 2, 2, 4), num_res_blocks: int = 2,
                       z_channels: int = 32, groups: int = 32) -> DecoderConfig:
    """VAR's VQ-VAE decoder: attention at the lowest resolution and in the middle, fused qkv, a 3×3
    post_quant_conv z → z (``VQVAE(ch=160, z_channels=32)``, ``ch_mult=(1,1,2,2,4)``, 2 res blocks)."""
    return DecoderConfig(ch, tuple(ch_mult), num_res_blocks, z_channels, 3, frozenset({len(ch_mult) - 1}), True, True,
                         groups, (z_channels, 3))


def ldm_attn_levels(resolution: int, ch_mult: Sequence[int], attn_resolutions: Sequence[int]) -> frozenset[int]:
    """Latent diffusion's rule: level i attends when its resolution ``resolution / 2^i`` is listed."""
    return frozenset(i for i in range(len(ch_mult)) if resolution // 2**i in set(attn_resolutions))


class _Weights:
    """Weights with PyTorch shapes from ``source(name, shape)`` (default: inputs named ``prefix + name``)."""

    def __init__(self, b: Builder, prefix: str = "", source: WeightSource | None = None) -> None:
        self.b = b
        self.source = source or (lambda name, shape: b.input(prefix + name, shape, role="weight"))

    def __call__(self, name: str, shape: tuple[int, ...]) -> Tensor:
        return self.source(name, shape)

    def under(self, module: str) -> WeightSource:
        """The weights of one module (``module.name``), for a shared body."""
        return lambda name, shape: self(f"{module}.{name}", shape)

    def conv(self, x: Tensor, name: str, out: int, kernel: int) -> Tensor:
        c = x.shape[2]
        return conv2d_torch(self.b, x, self(f"{name}.weight", (out, c, kernel, kernel)), self(f"{name}.bias", (out,)))

    def norm(self, x: Tensor, name: str, groups: int) -> Tensor:
        c = x.shape[2]
        return group_norm(self.b, x, self(f"{name}.weight", (c,)), self(f"{name}.bias", (c,)), groups, GN_EPS)


def _res_block(w: _Weights, x: Tensor, name: str, out: int, groups: int) -> Tensor:
    """A ResBlock (a shared body per channel counts and map size)."""

    def body(b: Builder, args: dict[str, Tensor], weight: WeightSource) -> dict[str, Tensor]:
        bw, x = _Weights(b, source=weight), args["x"]
        h = bw.conv(silu(b, bw.norm(x, "norm1", groups)), "conv1", out, 3)
        h = bw.conv(silu(b, bw.norm(h, "norm2", groups)), "conv2", out, 3)
        shortcut = x if x.shape[2] == out else bw.conv(x, "nin_shortcut", out, 1)
        return {"x": b.add(shortcut, h)}

    with w.b.scope("res_block", REF):
        return w.b.call(("vae_res_block", out, groups), body, {"x": x}, w.under(name))["x"]


def _attn_block(w: _Weights, x: Tensor, name: str, cfg: DecoderConfig) -> Tensor:
    """An AttnBlock (a shared body per map size)."""

    def body(b: Builder, args: dict[str, Tensor], weight: WeightSource) -> dict[str, Tensor]:
        bw, x = _Weights(b, source=weight), args["x"]
        hh, ww, c = x.shape
        normed = bw.norm(x, "norm", cfg.groups)
        if cfg.fused_qkv:
            qkv = bw.conv(normed, "qkv", 3 * c, 1)
            q, k, v = (b.slice(qkv, 2, i * c, (i + 1) * c) for i in range(3))
        else:
            q, k, v = (bw.conv(normed, n, c, 1) for n in ("q", "k", "v"))
        q, k, v = (b.reshape(t, (hh * ww, c)) for t in (q, k, v))
        logits = b.sum(b.mul(b.reshape(q, (hh * ww, 1, c)), b.reshape(k, (1, hh * ww, c))), axis=2)
        weights = softmax(b, b.mul(logits, b.constant(Fraction(int(c) ** -0.5))))
        mixed = b.sum(b.mul(b.reshape(weights, (hh * ww, hh * ww, 1)), b.reshape(v, (1, hh * ww, c))), axis=1)
        return {"x": b.add(x, bw.conv(b.reshape(mixed, (hh, ww, c)), "proj_out", c, 1))}

    with w.b.scope("attn_block", REF):
        return w.b.call(("vae_attn_block", cfg.fused_qkv, cfg.groups), body, {"x": x}, w.under(name))["x"]


def vae_decoder(b: Builder, z: Tensor, cfg: DecoderConfig, prefix: str = "", source: WeightSource | None = None) -> Tensor:
    """Decode a latent map z[h, w, z_channels] (or post_quant's input channels) to [h·2^(L−1), w·2^(L−1), out_ch].
    ``source`` (default: new inputs named ``prefix + name``) gives the weights, e.g. one source shared by
    the images of a batch."""
    w = _Weights(b, prefix, source)
    levels = len(cfg.ch_mult)
    with b.scope("vae_decoder", REF):
        h = z
        if cfg.post_quant is not None:
            h = w.conv(h, "post_quant_conv", cfg.z_channels, cfg.post_quant[1])
        d = "decoder."
        h = w.conv(h, f"{d}conv_in", cfg.channels()[-1], 3)
        with b.scope("mid", REF):
            h = _res_block(w, h, f"{d}mid.block_1", h.shape[2], cfg.groups)
            if cfg.mid_attn:
                h = _attn_block(w, h, f"{d}mid.attn_1", cfg)
            h = _res_block(w, h, f"{d}mid.block_2", h.shape[2], cfg.groups)
        for i in reversed(range(levels)):
            with b.scope(f"up{i}", REF):
                for j in range(cfg.num_res_blocks + 1):
                    h = _res_block(w, h, f"{d}up.{i}.block.{j}", cfg.channels()[i], cfg.groups)
                    if i in cfg.attn_levels:
                        h = _attn_block(w, h, f"{d}up.{i}.attn.{j}", cfg)
                if i != 0:
                    h = nearest(b, h, 2 * h.shape[0], 2 * h.shape[1])
                    h = w.conv(h, f"{d}up.{i}.upsample.conv", h.shape[2], 3)
        h = silu(b, w.norm(h, f"{d}norm_out", cfg.groups))
        return w.conv(h, f"{d}conv_out", cfg.out_ch, 3)


def decoder_weight_shapes(cfg: DecoderConfig, latent: int = 1, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """Every weight the decoder reads, name → shape, from building it on a latent×latent map (shapes only)."""
    b = Builder()
    in_ch = cfg.post_quant[0] if cfg.post_quant is not None else cfg.z_channels
    b.output("out", vae_decoder(b, b.input("z", (latent, latent, in_ch)), cfg, prefix))
    return {n: b.graph.node(i).shape for n, i in b.graph.inputs.items() if b.graph.node(i).attrs["role"] == "weight"}


def decoder_parameter_count(cfg: DecoderConfig) -> int:
    """The exact number of weight scalars of the decoder (post_quant_conv included when configured)."""
    return sum(math.prod(s) for s in decoder_weight_shapes(cfg).values())


__all__ = ["DecoderConfig", "var_decoder_config", "ldm_attn_levels", "vae_decoder", "decoder_weight_shapes",
           "decoder_parameter_count"]


