"""The FlowAR model (FlowAR Definition B.13; Theorem 4.9).

K scales with factors ``r_i = a^(K−i)`` (the multi-scale tokenizer, Definition B.3): scale i is an
``h/r_i × w/r_i × c`` token map. Inference (Definition B.13), for i = 1, …, K:

* spatial aggregation: ``Z_1 = Z_init``; ``Z_i = Concat(Z_init, φ_up,1(Ỹ_1, a), …, φ_up,i−1(Ỹ_{i−1}, a))``
  (Definition B.1 up-sampling; the token maps flattened and concatenated, ``Σ_{j≤i} h/r_j · w/r_j`` tokens);
* autoregressive transformer (Definition B.9): ``layers`` blocks ``FFN_i ∘ Attn_i`` on ``Z_i``; ``Ŷ_i`` is
  the last ``h/r_i · w/r_i`` tokens (the last scale), reshaped to ``h/r_i × w/r_i × c``;
* flow (Definition B.10, or B.11 for ``flow="bezier"``): ``F_i^{t_i}`` from ``Ŷ_i`` and the noise ``F_i^0``;
* flow matching (Definition B.12): ``Ỹ_i = NN_i(Ŷ_i, F_i^{t_i}, t_i)``.

The output is ``Ỹ_K`` (``h × w × c``). With ``mode="training"`` the transformer reads the tokenizer's maps
``Y^j = φ_down(X, r_j)`` of a latent ``X`` (Definitions B.3 and B.9, teacher forcing) instead of ``Ỹ_j``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from tc0sim.errors import ConfigError
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.kind import Kind, Param
from tc0sim.models.common import tokens, weight
from tc0sim.ops.attention import attention
from tc0sim.ops.downsample import downsample
from tc0sim.ops.ffn import ffn
from tc0sim.ops.flow import flow, flow_bezier, flow_time
from tc0sim.ops.flow_matching import flow_matching, flow_matching_weight_shapes
from tc0sim.ops.upsample import upsample

REF = "FlowAR Definition B.13 / Theorem 4.9"
FLOWS = {"linear": flow, "bezier": flow_bezier}
"""The flow of Definition B.10 (linear) and the high-order flow of Definition B.11 (quadratic Bézier)."""
MODES = ("inference", "training")


PARAMS: tuple[Param, ...] = (
    Param("K", "int", 2, "the number of scales", min=1),
    Param("a", "int", 2, "the scale base: scale i has factor r_i = a^(K−i) (Definition B.3)", min=1),
    Param("t", "any", "1/2", "the flow time t_i in [0, 1] of every scale, or a list of K of them"),
    Param("flow", "str", "linear", "the flow: linear (Definition B.10) or bezier (Definition B.11)", choices=tuple(FLOWS), noun="flow type"),
    Param("layers", "int", 1, "transformer blocks FFN ∘ Attn per scale", min=1),
    Param("mode", "str", "inference", "inference (Definition B.13) or training (teacher forcing, B.9)", choices=MODES, noun="mode"),
)
"""The params of ``flowar`` (``fast_flowar`` adds the degree g)."""
DEFAULT_PARAMS: dict[str, Any] = {p.name: p.default for p in PARAMS}

Attend = Callable[[Builder, Tensor, Tensor, Tensor, Tensor], Tensor]
"""An attention layer ``attend(b, X, W_Q, W_K, W_V)`` on a token matrix X[n, c]."""
FlowMatching = Callable[[Builder, Tensor, Tensor, Fraction, dict[str, Tensor]], Tensor]
"""A flow-matching layer ``nn(b, Ŷ, F^t, t, weights)``."""


@dataclass(frozen=True)
class FlowARConfig:
    """A validated FlowAR configuration: scale sizes ``(h/r_i, w/r_i)``, times ``t_i`` and options."""

    kind: str
    sizes: tuple[tuple[int, int], ...]
    channels: int
    times: tuple[Fraction, ...]
    flow: str
    layers: int
    mode: str


def parse_config(kind: str, dims: dict[str, int], params: dict[str, Any]) -> FlowARConfig:
    """Validate the params of a FlowAR-like kind against its dims {h, w, c}."""
    scales, base = params["K"], params["a"]
    h, w = dims["h"], dims["w"]
    coarsest = base ** (scales - 1)
    for axis, size in (("h", h), ("w", w)):
        if size % coarsest:
            raise ConfigError(
                f"{kind}: the coarsest factor r_1 = a^(K−1) = {base}^{scales - 1} = {coarsest} does not divide "
                f"{axis} = {size} (Definition B.3 needs h/r_i and w/r_i integral)"
            )
    sizes = tuple((h // base ** (scales - i), w // base ** (scales - i)) for i in range(1, scales + 1))
    raw_times = params["t"]
    if isinstance(raw_times, (list, tuple)):
        if len(raw_times) != scales:
            raise ConfigError(f"{kind}: param 't' lists {len(raw_times)} flow times for K = {scales} scales")
    else:
        raw_times = [raw_times] * scales
    times = []
    for i, value in enumerate(raw_times, start=1):
        try:
            times.append(flow_time(value))
        except ConfigError as e:
            raise ConfigError(f"{kind}: flow time t_{i}: {e}") from None
    return FlowARConfig(kind, sizes, dims["c"], tuple(times), params["flow"], params["layers"], params["mode"])


def _transformer_block(b: Builder, x: Tensor, layer: int, attend: Attend) -> Tensor:
    """TF_i = FFN_i ∘ Attn_i (Definition B.9 step 3) on a token matrix [n, c]."""
    c = x.shape[1]
    w_q, w_k, w_v = (weight(b, f"L{layer}.{n}", (c, c)) for n in ("W_Q", "W_K", "W_V"))
    x = attend(b, x, w_q, w_k, w_v)
    w1, w2 = weight(b, f"L{layer}.FFN.W1", (c, c)), weight(b, f"L{layer}.FFN.W2", (c, c))
    b1, b2 = weight(b, f"L{layer}.FFN.b1", (c,)), weight(b, f"L{layer}.FFN.b2", (c,))
    return ffn(b, x, w1, w2, b1, b2)


def build_flowar(
    b: Builder, config: FlowARConfig, attend: Attend, nn: FlowMatching, ref: str = "FlowAR Definition B.13"
) -> dict[str, Tensor]:
    """The recursive construction of Definition B.13 (or B.9 with teacher forcing); outputs by name."""
    c = config.channels
    sizes = config.sizes
    z_init = b.input("Z_init", (*sizes[0], c))
    teacher: list[Tensor] = []
    if config.mode == "training":
        latent = b.input("X", (*sizes[-1], c))
        with b.scope("tokenizer", "FlowAR Definition B.3"):
            teacher = [latent if size == sizes[-1] else downsample(b, latent, *size) for size in sizes]
    upsampled: list[Tensor] = []
    outputs: dict[str, Tensor] = {}
    layer = 0
    for i, (h_i, w_i) in enumerate(sizes, start=1):
        with b.scope(f"scale{i}", ref):
            if i > 1:
                source = teacher[i - 2] if teacher else outputs[f"scale{i - 1}"]
                with b.scope("aggregate", "FlowAR Definition B.13 (spatial aggregation), Definition B.1"):
                    upsampled.append(upsample(b, source, h_i, w_i))
            x = tokens(b, [z_init] + upsampled)
            for _ in range(config.layers):
                layer += 1
                with b.scope(f"layer{layer}", "FlowAR Definition B.9"):
                    x = _transformer_block(b, x, layer, attend)
            n = x.shape[0]
            y_hat = b.reshape(b.slice(x, 0, n - h_i * w_i, n), (h_i, w_i, c))
            noise = b.input(f"F0_{i}", (h_i, w_i, c))
            f_t = FLOWS[config.flow](b, y_hat, noise, config.times[i - 1])
            weights = {name: weight(b, f"NN{i}.{name}", shape) for name, shape in flow_matching_weight_shapes(c).items()}
            outputs[f"scale{i}"] = nn(b, y_hat, f_t, config.times[i - 1], weights)
    return {"out": outputs[f"scale{len(sizes)}"], **outputs}


MIN_BLOCK_NODES = 30
"""At least this many tensor nodes per transformer layer and scale (measured: 68 for flowar, 81 for fast_flowar)."""


def estimate(dims: Mapping[str, int], params: Mapping[str, Any]) -> tuple[int, int]:
    """Lower bounds (nodes, bytes) of FlowAR or fast FlowAR: K scales × ``layers`` blocks (bytes: per node)."""
    return MIN_BLOCK_NODES * params["K"] * params["layers"], 0


def _build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    config = parse_config("flowar", dims, params)
    with b.scope("flowar", REF):
        return build_flowar(b, config, attention, flow_matching)


KINDS: tuple[Kind, ...] = (
    Kind(
        "flowar",
        ("h", "w", "c"),
        _build,
        REF,
        params=PARAMS,
        model=True,
        doc="FlowAR inference: per scale, aggregation (up-sampling), FFN∘Attn, flow, flow matching",
        estimate=estimate,
    ),
)
"""The kinds this module defines (listed by its package's __init__)."""
