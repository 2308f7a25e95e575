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

from collections.abc import Mapping
from typing import Any

import numpy as np

from tc0sim.ir.graph import Builder, Graph, Tensor
from tc0sim.ir.kind import Kind
from tc0sim.models.common import Official, weight_groups
from tc0sim.models.flowar_release.circuit import build_circuit, noise_name
from tc0sim.models.flowar_release.config import (HEAD_PREFIX, PARAMS, REF, RULES, VAE_PREFIX, VARIANTS,
                                                FlowARReleaseConfig, estimate, filled)
from tc0sim.models.flowar_release.schedule import guidance_scale, guided, time_features, time_index, time_points
from tc0sim.models.vae_decoder import DecoderConfig
from tc0sim.ops import torch_rng


def parse_config(params: Mapping[str, Any]) -> FlowARReleaseConfig:
    """Fill the variant's numbers into the params left at None; everything validated by the schema."""
    p = filled(KINDS[0].validate(params))
    latent = p["latent_channels"]
    vae = None
    if p["vae"]:
        vae = DecoderConfig(p["vae_channels"], tuple(p["vae_mult"]), p["vae_res_blocks"], latent, 3, frozenset(), True,
                            False, 32, (latent, 1))
    return FlowARReleaseConfig(
        p["width"], p["blocks"], p["heads"], p["head_width"], p["head_blocks"], p["head_heads"], p["cross"],
        p["mlp_ratio"], tuple(p["scales"]), latent, p["classes"], p["steps"], p["cfg"], p["guidance"],
        p["rope_seq_len"], vae, p["vae_scale"], p["attention"], p["aattc_degree"], p["label"], p["next_scale"], p["batch"])


def _build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    return build_circuit(b, parse_config(params))


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
        rules=RULES,
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
