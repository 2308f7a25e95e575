"""The flow of FlowAR (FlowAR Definition B.10) and its quadratic Bézier variant (Definition B.11).

Linear flow:      F^t = (t · Yhat) + ((1−t) · F0)
High-order flow:  C = (F0 + Yhat)/2;  F^t = ⊕((1−t)² · F0, 2t(1−t) · C, t² · Yhat)

The time t is exact (a Fraction); every coefficient (t, 1−t, (1−t)², 2t(1−t), t²) is computed
exactly from t when the circuit is built and held as an exact constant, which evaluation rounds
once to p bits.
"""

from __future__ import annotations

import math
from fractions import Fraction
from numbers import Rational
from typing import Any

from tc0sim.errors import ConfigError, GraphError
from tc0sim.expr import parse_number
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.kind import Kind, Param

REF_LINEAR = "FlowAR Definition B.10"
REF_BEZIER = "FlowAR Definition B.11"
DEFAULT_T = Fraction(1, 2)


def flow_time(t: Any) -> Fraction:
    """The flow time t ∈ [0, 1] (FlowAR Definition B.10) as an exact Fraction.

    Accepts int, float (converted exactly), Fraction or a string such as "1/3" or "0.25";
    anything else, or a value outside [0, 1], is a ConfigError.
    """
    if isinstance(t, bool):
        raise ConfigError(f"flow time t={t!r} is not a number")
    if isinstance(t, float) and not math.isfinite(t):
        raise ConfigError(f"flow time t={t!r} is not a finite number")
    if not isinstance(t, (int, float, str, Rational)):
        raise ConfigError(f"flow time t={t!r} is not a number (int, float, Fraction or 'p/q' string)")
    try:
        value = parse_number(t) if isinstance(t, str) else Fraction(t)
    except ConfigError as e:
        raise ConfigError(f"flow time t: {e}") from None
    if not 0 <= value <= 1:
        raise ConfigError(f"flow time t={value} outside [0, 1]")
    return value


TIME = Param("t", "any", DEFAULT_T, "the flow time t in [0, 1]: a number or a ratio such as 1/3 (read exactly)",
             parse=flow_time)
"""The param of the flow kinds (and of ``flow_matching``)."""


def _check_pair(name: str, yhat: Tensor, f0: Tensor) -> None:
    if yhat.ndim != 3 or yhat.shape != f0.shape:
        raise GraphError(f"{name}: Yhat {yhat.shape} and F0 {f0.shape} must be equal [h, w, c] tensors")


def flow(b: Builder, yhat: Tensor, f0: Tensor, t: Any) -> Tensor:
    """Linear flow F^t = (t · Yhat) + ((1−t) · F0) (FlowAR Definition B.10); depth 2 d_std."""
    _check_pair("flow", yhat, f0)
    t = flow_time(t)
    with b.scope("flow", ref=REF_LINEAR):
        towards_target = b.mul(b.constant(t, name="t"), yhat)
        from_noise = b.mul(b.constant(1 - t, name="one_minus_t"), f0)
        return b.add(towards_target, from_noise)


def flow_bezier(b: Builder, yhat: Tensor, f0: Tensor, t: Any) -> Tensor:
    """Quadratic Bézier flow (FlowAR Definition B.11): three products, then one ⊕ of fan-in 3.

    C = (F0 + Yhat)/2; F^t = (1−t)²·F0 + 2t(1−t)·C + t²·Yhat; depth 3 d_std + d_sum.
    """
    _check_pair("flow_bezier", yhat, f0)
    t = flow_time(t)
    with b.scope("flow_bezier", ref=REF_BEZIER):
        control = b.div(b.add(f0, yhat), b.constant(2, name="two"))
        terms = [
            b.mul(b.constant((1 - t) ** 2, name="coef_noise"), f0),
            b.mul(b.constant(2 * t * (1 - t), name="coef_control"), control),
            b.mul(b.constant(t**2, name="coef_target"), yhat),
        ]
        stacked = b.concat([b.reshape(term, term.shape + (1,)) for term in terms], axis=3)
        return b.sum(stacked, axis=3)


def _inputs(b: Builder, dims: dict[str, int]) -> tuple[Tensor, Tensor]:
    shape = (dims["h"], dims["w"], dims["c"])
    return b.input("Yhat", shape), b.input("F0", shape)


def _build_linear(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    yhat, f0 = _inputs(b, dims)
    return {"out": flow(b, yhat, f0, params["t"])}


def _build_bezier(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    yhat, f0 = _inputs(b, dims)
    return {"out": flow_bezier(b, yhat, f0, params["t"])}


KINDS: tuple[Kind, ...] = (
    Kind(
        "flow", ("h", "w", "c"), _build_linear, REF_LINEAR, params=(TIME,),
        doc="F^t = (t·Yhat) + ((1−t)·F0)",
    ),
    Kind(
        "flow_bezier", ("h", "w", "c"), _build_bezier, REF_BEZIER, params=(TIME,),
        doc="C = (F0+Yhat)/2; F^t = ⊕((1−t)²·F0, 2t(1−t)·C, t²·Yhat)",
    ),
)
"""The kinds this module defines (listed by its package's __init__)."""
