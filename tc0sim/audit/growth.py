"""What an O(1) depth verdict rests on: the depth's growth in each quantity the claim's instances hold fixed.

A sweep over n shows the depth constant in n; it is constant only because the number of scales,
layers or kernel rows is held fixed. For each ``Growth`` entry of a claim the kind is built at the
entry's n with the quantity at each of its values; the per-symbol maxima of the critical set are
fitted as a line on the first two values (exact integers) and verified on the rest, as the release
audits fit their closed forms (tc0sim.audit.var_release).
"""

from __future__ import annotations

from typing import Any

from tc0sim.audit.instances import claim_maker
from tc0sim.audit.record import Claim, Growth
from tc0sim.errors import Tc0simError
from tc0sim.interp.depth import depth
from tc0sim.ir.primitives import SYMBOLS
from tc0sim.ir.vectors import fmt


def maxima(claim: Claim, g: Growth, value: int) -> tuple[int, ...]:
    """The per-symbol maxima of the critical set of the claim's kind with the quantity at ``value``."""
    dims = dict(claim.dims) | ({g.dim: str(value)} if g.dim else {})
    params = {g.param: value} if g.param else {}
    _, graph = claim_maker(claim.kind, dims, params)(g.n)
    per_symbol = depth(graph).per_symbol
    return tuple(per_symbol[s] for s in SYMBOLS)


def measure(claim: Claim, g: Growth) -> dict[str, Any]:
    """The growth of one held quantity: depth per added unit, fitted on two values and verified on the rest."""
    name = g.param or g.dim
    out: dict[str, Any] = {"quantity": g.quantity, "varied": name, "n": g.n, "at": list(g.at)}
    try:
        values = [maxima(claim, g, v) for v in g.at]
    except Tc0simError as error:
        return out | {"linear": False, "text": f"{g.quantity}: not measured ({error})"}
    (x0, x1), (v0, v1) = g.at[:2], values[:2]
    step = x1 - x0
    slope = tuple((b - a) // step for a, b in zip(v0, v1))
    exact = all((b - a) % step == 0 for a, b in zip(v0, v1))
    linear = exact and all(
        v == tuple(a + s * (x - x0) for a, s in zip(v0, slope)) for x, v in zip(g.at[2:], values[2:])
    )
    out["depth"] = {str(x): fmt(v) for x, v in zip(g.at, values)}
    out["linear"] = linear
    if linear:
        out["per_unit"] = fmt(slope)
        out["text"] = (
            f"per added {g.quantity}: {fmt(slope)} (fitted on {name} = {x0}, {x1}, verified at "
            f"{name} = {', '.join(map(str, g.at[2:]))}; n = {g.n}; at {name} = {x0} the depth is {fmt(v0)})"
        )
    else:
        listed = "; ".join(f"{name} = {x}: {fmt(v)}" for x, v in zip(g.at, values))
        out["text"] = f"{g.quantity}: the depth is not linear in {name} at n = {g.n} ({listed})"
    return out


def growth(claim: Claim) -> list[dict[str, Any]]:
    """The growth of the claim's depth in each quantity its instances hold fixed."""
    return [measure(claim, g) for g in claim.growth]
