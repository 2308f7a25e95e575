"""The audit of FlowAR as released (kind ``flowar_release``): its depth as a closed form in the scales K,
AR blocks L (per stack), flow-head blocks B and Euler steps S, and the verdict of the FlowAR paper's
Theorem 4.9 (Gong et al., "On Computational Limits of FlowAR Models") on each released variant.

Closed form. Along the critical path every scale runs the AR stacks (2L blocks), then S Euler steps of
the flow head (B blocks each), then the next scale's input; guided steps add the guidance combination.
Each symbol of each Pareto-maximal depth vector is therefore fitted as an integer combination of
``1, K, K·L, K·S, K·B·S, (K − 1)·S, (K − 1)·u`` where u is the number of unguided steps of a guided
scale (steps with t above the guidance threshold). The fit is exact linear algebra over the rationals
on a grid of small configurations and is verified on held-out ones (a configuration's depth does not
depend on its widths: only the shapes of the operators' chains do). The VAE decoder adds a constant,
measured once on the decoder alone (its depth does not depend on channels or spatial size).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from tc0sim.errors import Tc0simError
from tc0sim.interp.depth import depth
from tc0sim.ir.graph import Builder
from tc0sim.ir.primitives import PRIMITIVES, SYMBOLS
from tc0sim.ir.vectors import Vec, add, fmt, pareto_max
from tc0sim.kinds import build
from tc0sim.models.flowar_release import FlowARReleaseConfig, parse_config, time_points
from tc0sim.models.vae_decoder import DecoderConfig, vae_decoder

TERMS = ("1", "K", "K·L", "K·S", "K·B·S", "(K−1)·S", "(K−1)·u")
"""The terms of the closed form."""
PAPER_SYMBOLS = ("d_std", "d_sum", "d_prod", "d_exp", "d_sqrt")
"""The gate depths the FlowAR paper's lemmas use (Lemmas 3.9–3.11): a primitive of another symbol is outside them."""
TINY = {"width": 8, "heads": 2, "head_width": 8, "head_heads": 2, "classes": 2, "vae": False, "next_scale": "latent"}
FIT_POINTS = tuple(
    {"K": K, "L": L, "B": B, "steps": steps, "guidance": g}
    for K, L, B, steps, g in ((2, 1, 1, 2, "1"), (3, 1, 1, 2, "1"), (2, 2, 1, 2, "1"), (2, 1, 2, 2, "1"), (2, 1, 1, 4, "1"),
                              (3, 2, 2, 4, "1"), (2, 1, 1, 2, "1/2"), (3, 1, 1, 4, "1/2"), (3, 2, 1, 2, "1/2"),
                              (2, 2, 2, 4, "1/2"))
)
"""The fitting design: ten small configurations (K, L, B, num_step, guidance) spanning the seven terms."""
HELD_OUT = ({"K": 5, "L": 3, "B": 3, "steps": 8, "guidance": "9/10"}, {"K": 3, "L": 4, "B": 1, "steps": 10, "guidance": "7/10"})
"""Configurations not used in the fit, on which the fitted form is verified."""


def euler_steps(steps: int) -> int:
    """The number of Euler steps of ``num_step`` = steps (one fewer than the time points)."""
    return len(time_points(steps)) - 1


def unguided_steps(steps: int, guidance: Fraction) -> int:
    """u: the steps of a guided scale whose time is above the guidance threshold."""
    return sum(1 for t in time_points(steps)[:-1] if t > guidance)


def term_values(K: int, L: int, B: int, S: int, u: int) -> tuple[int, ...]:
    return (1, K, K * L, K * S, K * B * S, (K - 1) * S, (K - 1) * u)


def _config(point: Mapping[str, Any], cross: bool) -> dict[str, Any]:
    return {**TINY, "cross": cross, "scales": [2**i for i in range(point["K"])], "blocks": point["L"],
            "head_blocks": point["B"], "steps": point["steps"], "guidance": point["guidance"], "cfg": "2"}


def _measure(point: Mapping[str, Any], cross: bool) -> tuple[tuple[int, ...], list[Vec]]:
    """((K, L, B, S, u), the critical vectors) of one configuration."""
    result = depth(build("flowar_release", {}, _config(point, cross), share=True))
    if not result.exact:
        raise Tc0simError("flowar_release depth fit: the depth of a fitting configuration is not exact")
    S = euler_steps(point["steps"])
    u = unguided_steps(point["steps"], Fraction(point["guidance"]))
    return (point["K"], point["L"], point["B"], S, u), sorted(result.critical)


def _solve(rows: Sequence[Sequence[int]], values: Sequence[int]) -> list[Fraction] | None:
    """The exact solution of the (consistent, full column rank) system rows · x = values, else None."""
    m = [[Fraction(v) for v in row] + [Fraction(y)] for row, y in zip(rows, values)]
    cols = len(rows[0])
    pivot_rows = []
    r = 0
    for c in range(cols):
        pivot = next((i for i in range(r, len(m)) if m[i][c] != 0), None)
        if pivot is None:
            return None
        m[r], m[pivot] = m[pivot], m[r]
        m[r] = [v / m[r][c] for v in m[r]]
        for i in range(len(m)):
            if i != r and m[i][c] != 0:
                m[i] = [a - m[i][c] * b for a, b in zip(m[i], m[r])]
        pivot_rows.append(r)
        r += 1
    if any(row[-1] != 0 for row in m[r:]):
        return None
    return [m[i][-1] for i in pivot_rows]


@dataclass(frozen=True)
class DepthForm:
    """The fitted closed form: one coefficient vector per term for each Pareto-maximal depth vector."""

    cross: bool
    coefficients: tuple[tuple[Vec, ...], ...]
    fitted: int
    verified: tuple[dict[str, Any], ...]

    def at(self, K: int, L: int, B: int, S: int, u: int) -> list[Vec]:
        values = term_values(K, L, B, S, u)
        out = []
        for coeffs in self.coefficients:
            out.append(tuple(int(sum(Fraction(c[i]) * t for c, t in zip(coeffs, values))) for i in range(len(SYMBOLS))))
        return pareto_max(out)

    def text(self) -> list[str]:
        """Each vector as 'symbol: a·1 + b·K + …'."""
        lines = []
        for j, coeffs in enumerate(self.coefficients, start=1):
            parts = []
            for i, s in enumerate(SYMBOLS):
                terms = [f"{c[i]}·{t}" if t != "1" else f"{c[i]}" for c, t in zip(coeffs, TERMS) if c[i]]
                parts.append(f"{s} = {' + '.join(terms) or '0'}")
            lines.append(f"vector {j}: " + "; ".join(parts))
        return lines


def fit_depth(cross: bool, points: Sequence[Mapping[str, Any]] = FIT_POINTS,
              held_out: Iterable[Mapping[str, Any]] = HELD_OUT) -> DepthForm:
    """Fit the closed form on ``points`` and verify it on ``held_out``; an inconsistent fit raises."""
    measured = [_measure(p, cross) for p in points]
    count = {len(vectors) for _, vectors in measured}
    if len(count) != 1:
        raise Tc0simError(f"flowar_release depth fit: the number of critical vectors varies ({sorted(count)})")
    coefficients = []
    for j in range(count.pop()):
        per_symbol = []
        for i in range(len(SYMBOLS)):
            solution = _solve([term_values(*k) for k, _ in measured], [v[j][i] for _, v in measured])
            if solution is None or any(c.denominator != 1 for c in solution):
                raise Tc0simError(f"flowar_release depth fit: {SYMBOLS[i]} of vector {j + 1} is not an integer form in {TERMS}")
            per_symbol.append([int(c) for c in solution])
        coefficients.append(tuple(tuple(per_symbol[i][t] for i in range(len(SYMBOLS))) for t in range(len(TERMS))))
    form = DepthForm(cross, tuple(coefficients), len(points), ())
    checks = []
    for p in held_out:
        klbsu, vectors = _measure(p, cross)
        predicted = form.at(*klbsu)
        if predicted != vectors:
            raise Tc0simError(f"flowar_release depth fit: held-out {dict(p)} has {vectors}, the form predicts {predicted}")
        checks.append({**p, "critical": [fmt(v) for v in vectors]})
    return DepthForm(cross, tuple(coefficients), len(points), tuple(checks))


FORMS: dict[bool, tuple[tuple[Vec, ...], ...]] = {
    False: (
        ((-12, -3, 0, 1, -2, 0), (26, 7, 0, 1, 2, 0), (64, 16, 0, 2, 4, 2), (11, 3, 0, 0, 1, 0), (32, 8, 0, 1, 2, 1),
         (3, 0, 0, 0, 0, 0), (-3, 0, 0, 0, 0, 0)),
        ((-4, -2, 0, 0, 0, 0), (26, 7, 0, 1, 2, 0), (64, 16, 0, 2, 4, 2), (11, 3, 0, 0, 1, 0), (32, 8, 0, 1, 2, 1),
         (3, 0, 0, 0, 0, 0), (-3, 0, 0, 0, 0, 0)),
    ),
    True: (
        ((-12, -3, 0, 1, -2, 0), (8, 1, 0, -1, 2, 0), (64, 16, 0, 2, 4, 2), (11, 3, 0, 0, 1, 0), (47, 13, 0, 2, 3, 1),
         (3, 0, 0, 0, 0, 0), (-3, 0, 0, 0, 0, 0)),
        ((-4, -2, 0, 0, 0, 0), (8, 1, 0, -1, 2, 0), (64, 16, 0, 2, 4, 2), (11, 3, 0, 0, 1, 0), (47, 13, 0, 2, 3, 1),
         (3, 0, 0, 0, 0, 0), (-3, 0, 0, 0, 0, 0)),
    ),
}
"""The fitted forms (``fit_depth`` on FIT_POINTS, verified on HELD_OUT; the tests re-fit them), keyed by
``cross`` (Block_v2 heads): per critical vector, one coefficient vector per term of TERMS."""
FORMS = {cross: tuple(tuple(v + (0,) * (len(SYMBOLS) - len(v)) for v in form) for form in forms) for cross, forms in FORMS.items()}
"""Stored with the symbols of their fit; a symbol added since (d_log, d_trig) has coefficient 0."""


def closed_form(cross: bool) -> DepthForm:
    """The stored closed form of the sampler's depth (without the VAE decoder)."""
    return DepthForm(cross, FORMS[cross], len(FIT_POINTS), ())


def vae_depth(cfg: DecoderConfig) -> list[Vec]:
    """The decoder's critical depth from its input (the division by the latent scale included), built with
    one channel per unit and one GroupNorm group on a 1×1 latent: the chain of primitives, hence the
    depth, does not depend on channels, groups or spatial size (the tests check this)."""
    small = DecoderConfig(1, cfg.ch_mult, cfg.num_res_blocks, 1, cfg.out_ch, cfg.attn_levels,
                          cfg.mid_attn, cfg.fused_qkv, 1, (1, cfg.post_quant[1]) if cfg.post_quant else None)
    b = Builder()
    z = b.input("z", (1, 1, 1))
    b.output("out", vae_decoder(b, b.div(z, b.constant(1)), small))
    return sorted(depth(b.graph).critical)


def released_depth(variant: str, form: DepthForm | None = None) -> dict[str, Any]:
    """The depth of a released variant from the closed form plus the VAE decoder."""
    return config_depth(parse_config({"variant": variant}), form) | {"variant": variant}


def config_depth(cfg: FlowARReleaseConfig, form: DepthForm | None = None) -> dict[str, Any]:
    """(K, L, B, S, u), the sampler's and the whole circuit's critical depth from the closed form."""
    form = form or closed_form(cfg.cross)
    K, L, B = len(cfg.scales), cfg.blocks, cfg.head_blocks
    S, u = euler_steps(cfg.steps), unguided_steps(cfg.steps, cfg.guidance)
    sampler = form.at(K, L, B, S, u)
    total = pareto_max(add(a, v) for a in sampler for v in vae_depth(cfg.vae)) if cfg.vae else sampler
    return {"K": K, "L": L, "B": B, "S": S, "u": u, "sampler": sampler, "critical": total}


OUTSIDE_FEATURES = (
    "AdaLN modulation from the class embedding (AR) and from the time embedding and condition (flow head)",
    "multi-head attention with 2-D rotary position embeddings and a KV cache over scales",
    "RMSNorm (with and without weights) instead of the paper's layer norm",
    "the GEGLU MLP (exact GELU, hence erf) and SiLU",
    "a transformer flow head per scale evaluated at every Euler step instead of one flow-matching layer",
    "classifier-free guidance (a batch of two, a guidance scale ramping over the scales)",
    "a sinusoidal time embedding and a VAE decoder after the last scale",
)
"""Structures of the released model that the paper's FlowAR (its Definition B.13) does not have."""


ASYMPTOTIC = ("p ≤ poly(n)", "K = O(1)", "d_std, d_⊕, d_sqrt, d_exp = O(1)")
"""Theorem 4.9's hypotheses that no single configuration decides."""


def readings(cfg: FlowARReleaseConfig) -> dict[str, int]:
    """The readings of n on a configuration: the latent side (the paper's h = w = n), the tokens of all
    scales, the pixels of the decoded image (the VAE decoder up-samples by 2 per level after the first)."""
    side = cfg.scales[-1]
    image = side * 2 ** (len(cfg.vae.ch_mult) - 1) if cfg.vae else side
    return {"side": side, "tokens": cfg.tokens, "pixels": image * image}


def scale_growth(cfg: FlowARReleaseConfig, form: DepthForm | None = None) -> str:
    """What each added scale adds to the depth (the closed form's derivative in K at this L, B, S, u)."""
    form = form or closed_form(cfg.cross)
    L, B = cfg.blocks, cfg.head_blocks
    S, u = euler_steps(cfg.steps), unguided_steps(cfg.steps, cfg.guidance)
    derivative = (0, 1, L, S, B * S, S, u)
    added = pareto_max(tuple(sum(c[t][i] * derivative[t] for t in range(len(TERMS))) for i in range(len(SYMBOLS)))
                       for c in form.coefficients)
    K = len(cfg.scales)
    return (f"each added scale adds {' | '.join(fmt(v) for v in added)} (closed form at L = {L}, B = {B}, S = {S}, "
            f"u = {u}); the released scale list doubles up to the latent side, K = log2(side) + 1 = {K}, so K grows "
            "with the resolution")


def theorem_4_9(variant: str | None = None, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The verdict of Theorem 4.9 on a released configuration: each concrete precondition under each
    reading of n, the asymptotic ones as not decidable, and what is outside the paper's model."""
    cfg = parse_config(dict(params or {"variant": variant}))
    n_of = readings(cfg)
    side = cfg.scales[-1]
    widest = max(cfg.width, cfg.head_width, cfg.hidden(cfg.width), cfg.hidden(cfg.head_width))
    concrete = (
        ("h = w = n", {r: side == n for r, n in n_of.items()}, f"the final latent is {side} × {side}"),
        ("c ≤ n", {r: widest <= n for r, n in n_of.items()},
         f"latent channels c = {cfg.latent_channels}, but the attention/MLP widths reach {widest}; the paper's layers are c × c"),
    )
    preconditions = [
        {"text": text, "holds": holds, "why": why} for text, holds, why in concrete
    ] + [{"text": text, "holds": None, "why": "fixed configuration: not decidable"} for text in ASYMPTOTIC]
    used = sorted({PRIMITIVES[n].symbol for n in PRIMITIVES if PRIMITIVES[n].symbol} - set(PAPER_SYMBOLS))
    outside_primitives = ["erf (d_erf): the exact GELU of every MLP; no lemma of the paper covers it"] if "d_erf" in used else []
    failed = [p["text"] for p in preconditions if p["holds"] is not None and not any(p["holds"].values())]
    joint = [r for r in n_of if all(p["holds"][r] for p in preconditions if p["holds"] is not None)]
    growth = scale_growth(cfg)
    return {
        "claim": "FlowAR-T4.9",
        "verdict": "unchecked" if joint else "precondition",
        "failed": failed,
        "readings": n_of,
        "joint": joint,
        "preconditions": preconditions,
        "outside_primitives": outside_primitives,
        "outside_structures": list(OUTSIDE_FEATURES),
        "growth": growth,
        "summary": (
            ("" if joint else "no reading of n satisfies the concrete hypotheses together; ")
            + f"fixed configuration: asymptotic hypotheses are not decidable; the growth along the official scale "
            f"lists is: {growth}"
        ),
    }


def gate_exponents(sides: Sequence[int] = (16, 32), params: Mapping[str, Any] | None = None) -> dict[str, float]:
    """The measured growth exponent of the gate count in the latent side s (scales [1, s]) between the two
    sides, for exact attention and for AAttC: log₂(G(s₂)/G(s₁)) / log₂(s₂/s₁). Exact attention tends to 4
    (s⁴ = N² scores), AAttC to 2 (linear in the N = s² tokens)."""
    import math

    from tc0sim.interp.size import size

    base = {**TINY, "blocks": 1, "head_blocks": 1, "steps": 2, **(params or {})}
    out = {}
    for attention in ("exact", "aattc"):
        g1, g2 = (size(build("flowar_release", {}, {**base, "scales": [1, s], "attention": attention}, share=True)).total for s in sides)
        out[attention] = math.log2(g2 / g1) / math.log2(sides[1] / sides[0])
    return out


def audit_release(params: Mapping[str, Any]) -> dict[str, Any]:
    """The audit of one flowar_release configuration: Theorem 4.9's verdict and the closed-form depth."""
    cfg = parse_config(dict(params))
    result = theorem_4_9(params=params)
    form = config_depth(cfg)
    result["depth"] = {key: form[key] for key in ("K", "L", "B", "S", "u")}
    result["depth"]["critical"] = [fmt(v) for v in form["critical"]]
    result["depth"]["closed_form"] = closed_form(cfg.cross).text()
    return result


__all__ = ["ASYMPTOTIC", "readings", "scale_growth", "audit_release", "gate_exponents", "TERMS", "DepthForm", "fit_depth", "released_depth", "theorem_4_9", "vae_depth", "euler_steps",
           "unguided_steps"]
