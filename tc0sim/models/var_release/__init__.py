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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tc0sim.errors import ConfigError
from tc0sim.ir.graph import Builder, Graph, Tensor
from tc0sim.ir.kind import Kind
from tc0sim.models.common import Official, weight_groups
from tc0sim.models.vae_decoder import var_decoder_config
from tc0sim.models.var_release.circuit import build_circuit
from tc0sim.models.var_release.config import (IGNORED_WEIGHTS, PARAMS, REF, RELEASED_SCALES, RULES, VAE_PREFIX,
                                              VarConfig, estimate, model_shape, phi_names)
from tc0sim.ops import torch_rng


def parse_config(params: Mapping[str, Any]) -> VarConfig:
    """The configuration the official ``build_vae_var`` makes, with any number overridden (validated)."""
    p = KINDS[0].validate(params)
    width, heads, scales = model_shape(p)
    shared = p["depth"] == 36 if p["shared_aln"] is None else p["shared_aln"]
    decoder = var_decoder_config(p["decoder_ch"], p["decoder_levels"], p["decoder_res_blocks"], p["vae_channels"],
                                 p["decoder_groups"])
    return VarConfig(
        p["depth"], width, heads, round(width * p["mlp_ratio"]), scales, p["codebook"], p["vae_channels"], p["classes"],
        shared, p["cfg"], p["top_k"], p["top_p"], p["phi_count"], p["quant_resi"], decoder, p["sampler"],
        p["more_smooth"], p["label"], p["batch"], p["attn_l2_norm"],
    )


def _build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    return build_circuit(b, parse_config(params))


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
        rules=RULES,
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
