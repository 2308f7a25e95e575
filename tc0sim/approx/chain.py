"""The ``var`` model cut into its chain of layers u_1, …, u_m (Lemmas 6.3–6.5 of Chen et al.,
arXiv:2502.06167): per level the pyramid up-interpolation Φ_up,k, then each transformer layer's
attention and g components; the feature-map reconstruction (phase 2); each decoder block. Each
layer carries its Lipschitz bound L(ρ) (``tc0sim.approx.lipschitz``); ``tc0sim.approx.perturbation``
measures the chain, and ``tc0sim.approx.flowar_chain`` builds FlowAR's from the same ``Layer``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tc0sim.approx.exact import float_up
from tc0sim.approx.lipschitz import (
    attention_bound,
    attention_growth,
    attention_norms,
    bicubic_matrix,
    conv_matrix,
    resampler_dense,
    resampler_norm,
    spectral_norm,
)
from tc0sim.ir.graph import Builder, Graph, Tensor
from tc0sim.kinds import get_kind
from tc0sim.models.common import check_positive_int, split_maps, tokens, weight
from tc0sim.models.var import _g, decoder_block, feature_map, parse_decoder, parse_g, parse_scales
from tc0sim.ops.aattc import aattc
from tc0sim.ops.upsample import upsample

Attend = Callable[[Builder, Tensor, str], Tensor]


@dataclass
class Layer:
    """One layer u_i of the chain: how to build it on the state, and its Lipschitz bound L(ρ)."""

    name: str
    role: str
    in_shape: tuple[int, ...]
    build: Callable[[Builder, Tensor, Attend], Tensor]
    lipschitz: Callable[[float], float] | None
    growth: Callable[[float], float] | None = None
    attention: bool = False

    def graph(self, attend: Attend) -> Graph:
        b = Builder()
        state = b.input("state", self.in_shape)
        b.output("out", self.build(b, state, attend))
        return b.graph


def aattc_attend(degree: int) -> Attend:
    """Attention replaced by aattc of degree g, with the same weight names as the exact layer."""

    def attend(b: Builder, x: Tensor, prefix: str) -> Tensor:
        c = x.shape[1]
        w_q, w_k, w_v = (weight(b, f"{prefix}.{n}", (c, c)) for n in ("W_Q", "W_K", "W_V"))
        return aattc(b, x, w_q, w_k, w_v, degree)

    return attend


def _constant(value: float) -> Callable[[float], float]:
    return lambda radius: value


def attention_layer(name: str, prefix: str, shape: tuple[int, ...], weights: Mapping[str, np.ndarray], wrap: bool) -> Layer:
    w_q, w_k, w_v = (np.asarray(weights[f"{prefix}.{n}"], dtype=np.float64) for n in ("W_Q", "W_K", "W_V"))
    tokens_count = shape[0] * shape[1] if wrap else shape[0]
    growth = attention_growth(w_v, tokens_count)
    m_norm, v_norm = attention_norms(w_q, w_k, w_v)

    def build(b: Builder, x: Tensor, attend: Attend) -> Tensor:
        return decoder_block(b, x, "attn", 1, prefix, attend) if wrap else attend(b, x, prefix)

    return Layer(
        name, "attention", shape, build,
        lambda radius: attention_bound(m_norm, v_norm, tokens_count, radius),
        lambda radius: float_up(growth * radius), attention=True,
    )


def _component_layer(name: str, component: str, prefix: str, shape: tuple[int, ...], weights: Mapping[str, np.ndarray]) -> Layer:
    def build(b: Builder, x: Tensor, attend: Attend) -> Tensor:
        return _g(b, x, (component,), prefix)

    if component == "ffn":
        w1, w2 = (np.asarray(weights[f"{prefix}.FFN.{n}"], dtype=np.float64) for n in ("W1", "W2"))
        bound: float | None = float_up(1 + spectral_norm(w1) * spectral_norm(w2))
    elif component == "mlp":
        bound = spectral_norm(np.asarray(weights[f"{prefix}.MLP.W"], dtype=np.float64))
    else:
        bound = None
    return Layer(name, component, shape, build, None if bound is None else _constant(bound))


def _pyramid_layer(level: int, sizes: list[tuple[int, int]], c: int) -> Layer:
    shape = (sum(h * w for h, w in sizes[: max(level - 1, 1)]), c)

    def build(b: Builder, state: Tensor, attend: Attend) -> Tensor:
        if level == 1:
            return state
        x_init = b.input("X_init", (1, 1, c), role="weight")
        maps = split_maps(b, state, sizes[: level - 1])
        return tokens(b, [x_init] + [upsample(b, m, *sizes[i + 1]) for i, m in enumerate(maps)])

    norm = 1.0 if level == 1 else max(resampler_norm(bicubic_matrix, sizes[i], sizes[i + 1]) for i in range(level - 1))
    return Layer(f"level{level}/pyramid_up", "pyramid_up", shape, build, _constant(norm))


def _conv_weights(weights: Mapping[str, np.ndarray], prefix: str) -> np.ndarray:
    return np.asarray(weights[f"{prefix}.K"], dtype=np.float64)


def _phase2_layer(sizes: list[tuple[int, int]], c: int, kernel: int, weights: Mapping[str, np.ndarray]) -> Layer:
    h, w = sizes[-1]
    blocks = []
    for k, grid in enumerate(sizes, start=1):
        conv = conv_matrix(_conv_weights(weights, f"phase2.conv{k}"), h, w)
        blocks.append(conv if grid == (h, w) else conv @ resampler_dense(bicubic_matrix, grid, (h, w), c))

    def build(b: Builder, state: Tensor, attend: Attend) -> Tensor:
        return feature_map(b, split_maps(b, state, sizes), kernel)

    shape = (sum(a * b for a, b in sizes), c)
    return Layer("phase2", "phase2", shape, build, _constant(spectral_norm(np.hstack(blocks))))


def _decoder_layer(j: int, block: str, shape: tuple[int, int, int], kernel: int, weights: Mapping[str, np.ndarray]) -> Layer:
    prefix = f"dec{j}"
    name = f"phase3/block{j}_{block}"
    if block == "attn":
        return attention_layer(name, prefix, shape, weights, wrap=True)
    h, w, c = shape
    if block == "resnet":
        c1 = spectral_norm(conv_matrix(_conv_weights(weights, f"{prefix}.conv1"), h, w))
        c2 = spectral_norm(conv_matrix(_conv_weights(weights, f"{prefix}.conv2"), h, w))
        bound = float_up(1 + c1 * c2)
    else:
        up = resampler_dense(bicubic_matrix, (h, w), (2 * h, 2 * w), c)
        bound = spectral_norm(conv_matrix(_conv_weights(weights, f"{prefix}.conv"), 2 * h, 2 * w) @ up)

    def build(b: Builder, x: Tensor, attend: Attend) -> Tensor:
        return decoder_block(b, x, block, kernel, prefix, attend)

    return Layer(name, block, shape, build, _constant(bound))


def var_chain(dims: Mapping[str, int], params: Mapping[str, Any], weights: Mapping[str, np.ndarray]) -> list[Layer]:
    """The layers of a ``var`` model in order (phase 1 per level, phase 2, each decoder block)."""
    full = {**get_kind("var").defaults, **params}
    sizes = parse_scales(full["scales"], dims["h"], dims["w"])
    layers = check_positive_int("var", "layers", full["layers"])
    components = parse_g(full["g"])
    kernel = check_positive_int("var", "kernel", full["kernel"])
    blocks = parse_decoder(full["decoder"])
    c = dims["c"]
    chain: list[Layer] = []
    index = 0
    for level in range(1, len(sizes) + 1):
        chain.append(_pyramid_layer(level, sizes, c))
        shape = (sum(h * w for h, w in sizes[:level]), c)
        for _ in range(layers):
            index += 1
            where = f"level{level}/layer{index}"
            chain.append(attention_layer(f"{where}/attention", f"L{index}", shape, weights, wrap=False))
            chain += [_component_layer(f"{where}/{name}", name, f"L{index}", shape, weights) for name in components]
    chain.append(_phase2_layer(sizes, c, kernel, weights))
    shape = (sizes[-1][0], sizes[-1][1], c)
    for j, block in enumerate(blocks, start=1):
        chain.append(_decoder_layer(j, block, shape, kernel, weights))
        if block == "up":
            shape = (2 * shape[0], 2 * shape[1], c)
    return chain
