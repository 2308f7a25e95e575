"""FlowAR's two-layer step τ_i ∘ Φ_down,i of Corollary 7.1 (Chen et al., arXiv:2502.06167) as a layer chain.

The universal-approximation paper's Corollary 7.1 pairs a one-layer transformer τ_i with the
down-sampling Φ_down,i of FlowAR (FlowAR paper, Definition B.2): here the chain is the area
down-sampling of an h × h × c map by r (Lipschitz constant its operator norm 1/r, computed from the
matrix) followed by one attention layer on the (h/r)² tokens (Lipschitz on a ball,
``tc0sim.approx.lipschitz.attention_bound``). ``tc0sim.approx.perturbation.perturbation`` measures it
like a ``var`` chain (each layer replaced at p bits, or the attention by AAttC).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tc0sim.approx.chain import Layer, attention_layer
from tc0sim.approx.lipschitz import area_matrix, resampler_norm
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ops.downsample import downsample

PREFIX = "tau"
"""The attention layer's weight prefix: weights ``tau.W_Q``, ``tau.W_K``, ``tau.W_V`` and the input ``X_init``."""


def down_chain(h: int, c: int, r: int, weights: Mapping[str, np.ndarray]) -> list[Layer]:
    """[Φ_down by r on [h, h, c] → (h/r)² tokens, attention τ]: the two layers of Corollary 7.1."""
    side = h // r
    norm = resampler_norm(area_matrix, (h, h), (side, side))

    def build(b: Builder, x: Tensor, attend: object) -> Tensor:
        return b.reshape(downsample(b, x, side, side), (side * side, c))

    down = Layer("phi_down", "phi_down", (h, h, c), build, lambda radius: norm, lambda radius: norm * radius)
    return [down, attention_layer("tau", PREFIX, (side * side, c), weights, wrap=False)]


def chain_weights(h: int, c: int, seed: int, scale: float) -> dict[str, np.ndarray]:
    """Seeded input X_init [h, h, c] and attention weights (normal, times ``scale``)."""
    rng = np.random.default_rng(seed)
    out = {"X_init": rng.standard_normal((h, h, c)) * scale}
    out.update({f"{PREFIX}.{n}": rng.standard_normal((c, c)) * scale for n in ("W_Q", "W_K", "W_V")})
    return out
