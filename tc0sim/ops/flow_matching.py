"""The flow-matching layer NN(Yhat, F^t, t) of FlowAR (FlowAR Definition B.12, Lemma 4.8).

    α1, α2, β1, β2, γ1, γ2 = MLP(Yhat + t·1, c, 6c)          (split in that order along channels)
    F'  = Attn(γ1 ∘ LN(F^t) + β1) ∘ α1
    F'' = MLP(γ2 ∘ LN(F') + β2, c, c) ∘ α2

Spatial [h, w, c] tensors are flattened to [h·w, c] token matrices (wiring), as Definitions B.5,
B.6 and B.8 do; the result is reshaped back to [h, w, c].
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tc0sim.errors import GraphError
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.kind import Kind
from tc0sim.ops.attention import attention
from tc0sim.ops.flow import TIME, flow_time
from tc0sim.ops.layernorm import layernorm
from tc0sim.ops.mlp import mlp

REF = "FlowAR Definition B.12 / Lemma 4.8"
MODULATION_ORDER = ("alpha1", "alpha2", "beta1", "beta2", "gamma1", "gamma2")
"""The order in which MLP(Yhat + t, c, 6c) is split along channels (Definition B.12)."""


def flow_matching_weight_shapes(c: int) -> dict[str, tuple[int, ...]]:
    """The weights of one flow-matching layer with c channels, by name."""
    return {
        "W_ada": (c, 6 * c),
        "b_ada": (6 * c,),
        "W_Q": (c, c),
        "W_K": (c, c),
        "W_V": (c, c),
        "W_mlp": (c, c),
        "b_mlp": (c,),
    }


def _check(yhat: Tensor, ft: Tensor, weights: Mapping[str, Tensor]) -> None:
    if yhat.ndim != 3 or yhat.shape != ft.shape:
        raise GraphError(f"flow_matching: Yhat {yhat.shape} and Ft {ft.shape} must be equal [h, w, c] tensors")
    expected = flow_matching_weight_shapes(yhat.shape[2])
    missing = [name for name in expected if name not in weights]
    extra = [name for name in weights if name not in expected]
    if missing or extra:
        raise GraphError(
            "flow_matching: weights must be exactly " + ", ".join(expected)
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(extra)}" if extra else "")
        )
    for name, shape in expected.items():
        if weights[name].shape != shape:
            raise GraphError(f"flow_matching: {name} must have shape {shape}, got {weights[name].shape}")


def flow_matching(
    b: Builder,
    yhat: Tensor,
    ft: Tensor,
    t: Any,
    weights: Mapping[str, Tensor],
    attend: Callable[[Builder, Tensor, Tensor, Tensor, Tensor], Tensor] = attention,
) -> Tensor:
    """NN(Yhat, F^t, t) of FlowAR Definition B.12 on [h, w, c] tensors, lowered in the order of
    the proof of Lemma 4.8 (its three steps). ``attend(b, X, W_Q, W_K, W_V)`` is the attention
    layer: Attn (Definition B.5) by default, AAttC for the fast flow matching of Definition 5.3.

    Critical depth 23 d_std + 9 d_sum + 2 d_sqrt + d_exp (the modulation MLP runs in parallel
    with LN(F^t)); Lemma 4.8 claims 26 d_std + 12 d_sum + 2 d_sqrt + d_exp.
    """
    _check(yhat, ft, weights)
    t = flow_time(t)
    h, w, c = yhat.shape
    tokens = h * w
    with b.scope("flow_matching", ref=REF):
        conditioned = b.add(b.reshape(yhat, (tokens, c)), b.constant(t, name="t"))
        modulation = mlp(b, conditioned, weights["W_ada"], weights["b_ada"])
        alpha1, alpha2, beta1, beta2, gamma1, gamma2 = (
            b.slice(modulation, 1, i * c, (i + 1) * c) for i in range(len(MODULATION_ORDER))
        )
        attn_in = b.add(b.mul(gamma1, layernorm(b, b.reshape(ft, (tokens, c)))), beta1)
        intermediate = b.mul(attend(b, attn_in, weights["W_Q"], weights["W_K"], weights["W_V"]), alpha1)
        mlp_in = b.add(b.mul(gamma2, layernorm(b, intermediate)), beta2)
        projected = b.mul(mlp(b, mlp_in, weights["W_mlp"], weights["b_mlp"]), alpha2)
        return b.reshape(projected, (h, w, c))


def _build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    t = flow_time(params["t"])
    h, w, c = dims["h"], dims["w"], dims["c"]
    yhat = b.input("Yhat", (h, w, c))
    ft = b.input("Ft", (h, w, c))
    weights = {name: b.input(name, shape, role="weight") for name, shape in flow_matching_weight_shapes(c).items()}
    return {"out": flow_matching(b, yhat, ft, t, weights)}


KINDS: tuple[Kind, ...] = (
    Kind(
        "flow_matching", ("h", "w", "c"), _build, REF, params=(TIME,),
        doc="F'' = MLP(γ2·LN(Attn(γ1·LN(Ft)+β1)·α1)+β2)·α2 with α,β,γ = MLP(Yhat+t)",
    ),
)
"""The kinds this module defines (listed by its package's __init__)."""
