"""Fast FlowAR (FlowAR Definitions 5.3 and 5.4): FlowAR with every attention layer replaced by AAttC.

Definition 5.4 replaces ``Attn_i`` of the autoregressive transformer and Definition 5.3 the attention
of the flow-matching layer (``FNN_i``) by the approximate attention AAttC (Definition 5.1), here the
degree-``g`` polynomial kernel of ``tc0sim.ops.aattc``. Everything else is the FlowAR model
(``tc0sim.models.flowar``): the same scales, flows, flow matching and params, plus ``g``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.kind import Kind, Param
from tc0sim.models.flowar import PARAMS, Attend, build_flowar, estimate, parse_config
from tc0sim.ops.aattc import DEFAULT_DEGREE, aattc, taylor_degree
from tc0sim.ops.flow_matching import flow_matching

REF = "FlowAR Definitions 5.3, 5.4"


def approximate_attention(degree: int) -> Attend:
    """``attend(b, X, W_Q, W_K, W_V)`` = AAttC of the given polynomial degree (Definition 5.1)."""

    def attend(b: Builder, x: Tensor, w_q: Tensor, w_k: Tensor, w_v: Tensor) -> Tensor:
        return aattc(b, x, w_q, w_k, w_v, degree)

    return attend


def _build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    degree = params["g"]
    config = parse_config("fast_flowar", dims, {k: v for k, v in params.items() if k != "g"})
    attend = approximate_attention(degree)

    def fast_flow_matching(b: Builder, yhat: Tensor, ft: Tensor, t: Fraction, weights: dict[str, Tensor]) -> Tensor:
        return flow_matching(b, yhat, ft, t, weights, attend=attend)

    with b.scope("fast_flowar", REF):
        return build_flowar(b, config, attend, fast_flow_matching, "FlowAR Definition 5.4")


KINDS: tuple[Kind, ...] = (
    Kind(
        "fast_flowar",
        ("h", "w", "c"),
        _build,
        REF,
        params=(*PARAMS, Param("g", "any", DEFAULT_DEGREE, "the degree of AAttC's polynomial kernel (an integer ≥ 1)",
                               parse=taylor_degree)),
        model=True,
        doc="fast FlowAR: FlowAR with every attention (transformer and flow matching) replaced by AAttC of degree g",
        estimate=estimate,
    ),
)
"""The kinds this module defines (listed by its package's __init__)."""
