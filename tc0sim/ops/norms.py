"""Normalisations of the released models, lowered through ⊕, sqrt and div.

* ``layer_norm(x, eps)`` (PyTorch ``LayerNorm(elementwise_affine=False)``) over the last axis:
  ``μ = ⊕x ÷ c``, ``Δ = x − μ``, ``σ² = ⊕Δ² ÷ c`` (biased), ``y = Δ ÷ √(σ² + eps)``.
* ``group_norm(x, weight, bias, groups, eps)`` (PyTorch ``GroupNorm``) of a map [h, w, c]: the same
  statistics over each group of c/groups channels and all pixels, then ``y·weight + bias``.
* ``l2_normalize(x, eps)`` (PyTorch ``F.normalize(dim=-1)``): ``x ÷ max(√(⊕x²), eps)``.

``eps`` is an exact number (PyTorch's defaults are the float64 values of 1e-6, 1e-5 and 1e-12).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from tc0sim.errors import ConfigError, GraphError
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.kind import Kind, Param
from tc0sim.ir.params import exact_text
from tc0sim.ops.activations import scalar

REF = "PyTorch LayerNorm / GroupNorm / F.normalize"


def _normalize(b: Builder, x: Tensor, axes: tuple[int, ...], count: int, eps: Any) -> Tensor:
    """(x − μ) ÷ √(σ² + eps) with the statistics over ``axes`` (kept as size-1 axes for broadcast)."""
    kept = tuple(1 if a in axes else d for a, d in enumerate(x.shape))
    total = b.sum(x, axis=axes)
    width = scalar(b, count, total)
    mean = b.reshape(b.div(total, width), kept)
    centered = b.sub(x, mean)
    variance = b.div(b.sum(b.mul(centered, centered), axis=axes), width)
    return b.div(centered, b.reshape(b.sqrt(b.add(variance, scalar(b, eps, variance))), kept))


def layer_norm(b: Builder, x: Tensor, eps: Any = 1e-6, name: str = "layer_norm") -> Tensor:
    """Layer norm without affine weights over the last axis: 6 d_std + 2 d_sum + d_sqrt."""
    with b.scope(name, REF):
        return _normalize(b, x, (x.ndim - 1,), x.shape[-1], eps)


def group_norm(
    b: Builder, x: Tensor, weight: Tensor, bias: Tensor, groups: int, eps: Any = 1e-6, name: str = "group_norm"
) -> Tensor:
    """GroupNorm of X[h, w, c] with per-channel weight and bias [c]: 8 d_std + 2 d_sum + d_sqrt."""
    if x.ndim != 3 or weight.shape != (x.shape[2],) or bias.shape != (x.shape[2],):
        raise GraphError(f"{name}: expected X[h, w, c], weight[c], bias[c]; got {x.shape}, {weight.shape}, {bias.shape}")
    h, w, c = x.shape
    if groups < 1 or c % groups:
        raise ConfigError(f"{name}: {groups} groups do not divide {c} channels")
    per = c // groups
    with b.scope(name, REF):
        grouped = b.reshape(x, (h, w, groups, per))
        y = _normalize(b, grouped, (0, 1, 3), h * w * per, eps)
        scaled = b.add(b.mul(y, b.reshape(weight, (groups, per))), b.reshape(bias, (groups, per)))
        return b.reshape(scaled, (h, w, c))


def l2_normalize(b: Builder, x: Tensor, eps: Any = 1e-12, name: str = "l2_normalize") -> Tensor:
    """x ÷ max(‖x‖₂, eps) along the last axis: 3 d_std + d_sum + d_sqrt."""
    with b.scope(name, REF):
        norm = b.sqrt(b.sum(b.mul(x, x), axis=x.ndim - 1))
        norm = b.max(norm, scalar(b, eps, norm))
        return b.div(x, b.reshape(norm, x.shape[:-1] + (1,)))


def exact_eps(kind: str, value: Any) -> Fraction:
    """A non-negative exact eps from a number (a float is taken at its exact binary value)."""
    try:
        eps = Fraction(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        raise ConfigError(f"{kind}: param 'eps' must be a number, got {value!r}") from None
    if isinstance(value, bool) or eps < 0:
        raise ConfigError(f"{kind}: param 'eps' must be a number ≥ 0, got {value!r}")
    return eps


def _eps(kind: str, default: float) -> Param:
    """The eps param: a number ≥ 0, a float taken at its exact binary value, a text such as 1e-6 exactly."""
    return Param("eps", "any", default, "added to the variance (or the norm's floor): a number ≥ 0, exact",
                 parse=lambda v: exact_eps(kind, exact_text(v) if isinstance(v, str) else v))


def _build_layer_norm(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    return {"out": layer_norm(b, b.input("X", (dims["n"], dims["c"])), params["eps"])}


def _build_group_norm(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    h, w, c = dims["h"], dims["w"], dims["c"]
    groups = params["groups"]
    x = b.input("X", (h, w, c))
    weight, bias = b.input("weight", (c,), role="weight"), b.input("bias", (c,), role="weight")
    return {"out": group_norm(b, x, weight, bias, groups, params["eps"])}


def _build_l2(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    return {"out": l2_normalize(b, b.input("X", (dims["n"], dims["c"])), params["eps"])}


KINDS: tuple[Kind, ...] = (
    Kind("layer_norm", ("n", "c"), _build_layer_norm, REF, params=(_eps("layer_norm", 1e-6),), doc="(x − μ) ÷ √(σ² + eps) per row, no affine"),
    Kind(
        "group_norm",
        ("h", "w", "c"),
        _build_group_norm,
        REF,
        params=(Param("groups", "int", 32, "the channel groups (they divide c)", min=1), _eps("group_norm", 1e-6)),
        doc="GroupNorm of a map [h, w, c]: statistics per channel group, then ·weight + bias",
    ),
    Kind("l2_normalize", ("n", "c"), _build_l2, REF, params=(_eps("l2_normalize", 1e-12),), doc="x ÷ max(‖x‖₂, eps) per row"),
)
"""The kinds this module defines (listed by its package's __init__)."""
