"""The released VAR models against Theorem 5.11 of "Circuit Complexity Bounds for Visual Autoregressive
Model" (Ke, Li, Liang, Shi, Song): a uniform threshold circuit of O(1) depth and
poly(n) size simulates VAR, assuming p ≤ poly(n) and, through Lemmas 5.2, 5.6 and 5.8, a constant
number m of transformer layers, contractions of length d ≤ n and convolution windows h_k·w_k·c ≤ n.

* Depth as a closed form in the number of scales K and of blocks L: every per-symbol maximum of the
  critical set, and the depth with every symbol = 1, is fitted as ``a·K·L + b·K + c`` on small
  configurations (exact rationals), then verified on held-out ones.
* Depth does not depend on widths: a ⊕ is one gate whatever its fan-in, and the circuit's layer
  structure is the same for any width, number of heads, channels or class count (the sampler's top-k
  step exists when 0 < top_k < codebook, kept as released). So depths are computed on a *depth proxy*
  (width 64, one head, one latent channel, decoder ch 32) with the released scales, decoder levels,
  codebook and sampler; ``tests/test_audit_var_release.py`` checks proxy and full graph agree.
* The verdict per released configuration is computed, not templated: each concrete precondition
  (contraction length ≤ n, width ≤ n) is evaluated under every reading of n the paper allows (the
  token count Σ pn², the pixel count, the image side); the asymptotic ones (p ≤ poly(n), m = O(1),
  k ≤ poly(n)) are not decidable on one fixed configuration, and the depth's growth along the
  official scale lists (the closed form in K) is reported instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

from tc0sim.interp.depth import depth
from tc0sim.interp.size import size
from tc0sim.ir.primitives import SYMBOLS
from tc0sim.ir.vectors import dot, fmt
from tc0sim.kinds import build
from tc0sim.models.var_release import RELEASED_SCALES, parse_config, released_configs

PROXY = {"width": 64, "heads": 1, "vae_channels": 1, "decoder_ch": 32}
"""Width-like params of the depth proxy (depth vectors do not depend on them)."""
FIT_POINTS: tuple[tuple[int, int], ...] = ((1, 2), (2, 2), (1, 3), (2, 3))
"""(L, K) of the configurations the closed form is fitted on (scales: the first K of the 1024 px list)."""
HELD_OUT: tuple[tuple[int, int], ...] = ((3, 3), (3, 4), (1, 5))
"""(L, K) where the closed form is checked against a direct computation."""
PAPER_PRIMITIVES = frozenset({"add", "sub", "mul", "div", "max", "min", "compare", "exp", "sqrt", "sum", "prod"})
"""The paper's primitives (Lemma 3.5; comparison covers max and min) — and wiring."""
NOT_IN_PAPER = (
    "AdaLN modulation", "multi-head split", "QK L2-normalisation with learned clamped scale", "tanh-GELU",
    "SiLU", "GroupNorm", "classifier-free guidance", "top-k/top-p sampling", "residual quantiser Φ",
)
"""Components of the released model that the paper's VAR (Definition 4.9) does not have."""


def _scales(k: int) -> list[int]:
    return list(RELEASED_SCALES[1024][:k])


def proxy_depth(params: Mapping[str, Any]) -> tuple[list[tuple[int, ...]], dict[str, int], int]:
    """(critical vectors, per-symbol maxima, depth at every symbol = 1) of the depth proxy of ``params``."""
    result = depth(build("var_release", {}, {**params, **PROXY}, share=True))
    ones = {s: 1 for s in SYMBOLS}
    return list(result.critical), dict(result.per_symbol), int(dot(result.best(ones), ones)) if result.critical else 0


@dataclass(frozen=True)
class Bilinear:
    """``a·K·L + b·K + c`` with exact coefficients."""

    a: Fraction
    b: Fraction
    c: Fraction

    def __call__(self, k: int, layers: int) -> Fraction:
        return self.a * k * layers + self.b * k + self.c

    def text(self) -> str:
        return f"{self.a}·K·L + {self.b}·K + {self.c}"


def fit_bilinear(points: Sequence[tuple[int, int]], values: Sequence[int]) -> Bilinear | None:
    """The unique a·KL + b·K + c through the first three (L, K) points if the rest fit too, else None."""
    rows = [[Fraction(k * l), Fraction(k), Fraction(1), Fraction(v)] for (l, k), v in zip(points, values)]
    m = [r[:] for r in rows[:3]]
    for col in range(3):  # Gauss–Jordan on the 3×4 system
        pivot = next((r for r in range(col, 3) if m[r][col] != 0), None)
        if pivot is None:
            return None
        m[col], m[pivot] = m[pivot], m[col]
        m[col] = [x / m[col][col] for x in m[col]]
        for r in range(3):
            if r != col:
                m[r] = [x - m[r][col] * y for x, y in zip(m[r], m[col])]
    form = Bilinear(m[0][3], m[1][3], m[2][3])
    return form if all(form(k, l) == v for (l, k), v in zip(points, values)) else None


@dataclass(frozen=True)
class ClosedForm:
    """Per-symbol maxima and unit-symbol depth as bilinear forms, with their held-out checks."""

    per_symbol: dict[str, Bilinear]
    unit: Bilinear
    checked: tuple[tuple[int, int, bool], ...]
    """(L, K, agrees) for every held-out configuration."""

    @property
    def verified(self) -> bool:
        return all(ok for _, _, ok in self.checked)

    def maxima(self, k: int, layers: int) -> dict[str, int]:
        return {s: int(f(k, layers)) for s, f in self.per_symbol.items()}


def closed_form(extra: Mapping[str, Any] | None = None, held_out: Sequence[tuple[int, int]] = HELD_OUT) -> ClosedForm:
    """Fit on FIT_POINTS and check on ``held_out``; ``extra`` params (e.g. shared_aln) apply to all."""
    extra = dict(extra or {})
    measured = {(l, k): proxy_depth({**extra, "depth": l, "scales": _scales(k)}) for l, k in (*FIT_POINTS, *held_out)}
    fitted: dict[str, Bilinear] = {}
    for s in SYMBOLS:
        form = fit_bilinear(FIT_POINTS, [measured[p][1][s] for p in FIT_POINTS])
        if form is None:
            raise ArithmeticError(f"var_release: the {s} maxima are not bilinear in K and L on {FIT_POINTS}")
        fitted[s] = form
    unit = fit_bilinear(FIT_POINTS, [measured[p][2] for p in FIT_POINTS])
    if unit is None:
        raise ArithmeticError(f"var_release: the unit depth is not bilinear in K and L on {FIT_POINTS}")
    checked = []
    for l, k in held_out:
        _, maxima, number = measured[(l, k)]
        checked.append((l, k, all(fitted[s](k, l) == maxima[s] for s in SYMBOLS) and unit(k, l) == number))
    return ClosedForm(fitted, unit, tuple(checked))


def agrees(form: ClosedForm, extra: Mapping[str, Any], points: Sequence[tuple[int, int]]) -> bool:
    """Whether ``form`` predicts the proxy depth of ``extra`` params (e.g. shared_aln) at every (L, K) point."""
    for l, k in points:
        _, maxima, number = proxy_depth({**extra, "depth": l, "scales": _scales(k)})
        if any(form.per_symbol[s](k, l) != maxima[s] for s in SYMBOLS) or form.unit(k, l) != number:
            return False
    return True


SHARED_CHECKS: tuple[tuple[int, int], ...] = ((1, 2), (2, 3))
"""(L, K) where the closed form is checked with shared AdaLN (the released d36)."""


@lru_cache(maxsize=1)
def closed_forms() -> dict[bool, ClosedForm]:
    """The closed form for shared_aln False and True (fitted again only if the shared checks disagree)."""
    form = closed_form()
    shared = form if agrees(form, {"shared_aln": True}, SHARED_CHECKS) else closed_form({"shared_aln": True})
    return {False: form, True: shared}


ASYMPTOTIC = ("p ≤ poly(n)", "m = O(1) transformer layers (Lemma 5.8)", "k ≤ poly(n) kernels (Lemma 5.9)")
"""Theorem 5.11's hypotheses (with its lemmas') that no single configuration decides."""


def readings(cfg: Any) -> dict[str, int]:
    """The readings of n the paper allows on a configuration: tokens (Σ pn²), pixels, image side."""
    return {"tokens": cfg.tokens, "pixels": cfg.resolution ** 2, "side": cfg.resolution}


@dataclass(frozen=True)
class Verdict:
    """Theorem 5.11 on one configuration: each concrete precondition under each reading of n.

    ``checks``: (text, value, {reading: holds}); ``failing``: the checks failing under some reading,
    as text; ``joint``: the readings under which every check holds; ``word``: ``precondition`` when
    there is none, else ``unchecked`` (the asymptotic hypotheses are not decidable); ``growth``: the
    depth along the official scale lists.
    """

    depth: int
    resolution: int
    scales: int
    tokens: int
    width: int
    contraction: tuple[int, str]
    failing: tuple[str, ...]
    primitives_ok: bool
    readings: dict[str, int]
    checks: tuple[tuple[str, int, dict[str, bool]], ...]
    joint: tuple[str, ...]
    word: str
    growth: str


def longest_contraction(cfg: Any) -> tuple[int, str]:
    """The longest inner dimension of a matrix product or convolution window, and where it is."""
    dec = max(cfg.decoder.channels())
    candidates = [
        (cfg.mlp_hidden, f"fc2 reads {cfg.mlp_hidden} hidden units"),
        (cfg.codebook, f"the codebook lookup sums over {cfg.codebook} rows"),
        (cfg.classes, f"the class embedding sums over {cfg.classes} classes"),
        (9 * dec, f"a 3×3 decoder conv over {dec} channels"),
    ]
    return max(candidates)


def verdict(depth_: int, resolution: int, primitives: set[str]) -> Verdict:
    """Theorem 5.11's preconditions evaluated for one released configuration."""
    return verdict_of(parse_config({"depth": depth_, "resolution": resolution}), primitives)


def scale_growth(cfg: Any, form: ClosedForm | None = None) -> str:
    """The depth along the official scale lists at this configuration's number of blocks L."""
    form = form or closed_forms()[cfg.shared_aln]
    layers = cfg.depth
    per_scale = tuple(int(form.per_symbol[s].a * layers + form.per_symbol[s].b) for s in SYMBOLS)
    points = [(res, len(scales)) for res, scales in sorted(RELEASED_SCALES.items())]
    along = ", ".join(f"K = {k} at {res} px: {int(form.unit(k, layers)):,}" for res, k in points)
    return (f"each added scale adds {fmt(per_scale)} at L = {layers} blocks (closed form in K and L); along the "
            f"official lists the depth with every symbol = 1 is {along}")


def verdict_of(cfg: Any, primitives: set[str], form: ClosedForm | None = None) -> Verdict:
    """Theorem 5.11's preconditions for a configuration (a ``VarConfig``), each under every reading of n."""
    n_of = readings(cfg)
    length, where = longest_contraction(cfg)
    concrete = (
        (f"d ≤ n, h_k·w_k·c ≤ n (Lemmas 5.2, 5.6): {where}", length),
        ("width ≤ n (Lemma 5.2's d ≤ n for the projections; the abstract's d ≤ O(n))", cfg.width),
    )
    checks = tuple((text, value, {r: value <= n for r, n in n_of.items()}) for text, value in concrete)
    failing = []
    for text, value, holds in checks:
        if not all(holds.values()):
            bad = ", ".join(f"{r} {n_of[r]:,}" for r, ok in holds.items() if not ok)
            good = ", ".join(f"{r} {n_of[r]:,}" for r, ok in holds.items() if ok)
            failing.append(f"{text}: {value:,} > n for n = {bad}" + (f"; holds for n = {good}" if good else ""))
    joint = tuple(r for r in n_of if all(h[r] for _, _, h in checks))
    return Verdict(cfg.depth, cfg.resolution, len(cfg.scales), cfg.tokens, cfg.width, (length, where), tuple(failing),
                   primitives <= PAPER_PRIMITIVES, n_of, checks, joint, "unchecked" if joint else "precondition",
                   scale_growth(cfg, form))


def audit_release(params: Mapping[str, Any]) -> dict[str, Any]:
    """Theorem 5.11 on the configuration ``params`` describe: the exact critical depth of its whole
    circuit, the failing preconditions, the primitives outside the paper's set, and whether the
    closed form in K and L gives the exact per-symbol maxima of this configuration."""
    cfg = parse_config(params)
    graph = build("var_release", {}, dict(params), share=True)
    result = depth(graph)
    counted = size(graph).by_primitive  # once: a size inside the comprehension ran once per occurrence
    used = {n.prim.name for n, _, _ in graph.occurrences() if n.prim.name in counted}
    form = closed_forms()[cfg.shared_aln]
    k, layers = len(cfg.scales), cfg.depth
    return {
        "verdict": verdict_of(cfg, used, form),
        "critical": [fmt(v) for v in result.critical],
        "outside_primitives": sorted(used - PAPER_PRIMITIVES),
        "closed_form": {s: f.text() for s, f in form.per_symbol.items()},
        "closed_form_agrees": form.maxima(k, layers) == dict(result.per_symbol),
        "K": k,
        "L": layers,
    }


@dataclass(frozen=True)
class ReleasedRow:
    """One configuration of the table: parameters, gates, depth (closed form) and verdict."""

    name: str
    depth: int
    resolution: int
    parameters: dict[str, Any]
    gates: int
    maxima: dict[str, int]
    unit_depth: int
    verdict: Verdict


def released_rows(forms: Mapping[bool, ClosedForm], configs: Sequence[tuple[int, int]] | None = None) -> list[ReleasedRow]:
    """Rows for ``configs`` ((depth, resolution); default: the released checkpoints); ``forms`` maps
    shared_aln to its closed form."""
    from tc0sim.models.var_release import parameters

    rows = []
    for layers, resolution in configs or released_configs():
        graph = build("var_release", {}, {"depth": layers, "resolution": resolution}, share=True)
        report = size(graph)
        cfg = parse_config({"depth": layers, "resolution": resolution})
        form = forms[cfg.shared_aln]
        k = len(cfg.scales)
        used = {n.prim.name for n, _, _ in graph.occurrences() if n.prim.name in report.by_primitive}
        rows.append(
            ReleasedRow(
                f"VAR-d{layers}" + ("-s" if cfg.shared_aln else ""), layers, resolution, parameters(graph), report.total,
                form.maxima(k, layers), int(form.unit(k, layers)),
                verdict_of(cfg, used, form),
            )
        )
    return rows


__all__ = ["PROXY", "proxy_depth", "fit_bilinear", "closed_form", "closed_forms", "agrees", "ClosedForm", "Bilinear", "verdict", "verdict_of", "audit_release", "released_rows",
           "NOT_IN_PAPER", "ASYMPTOTIC", "readings", "scale_growth"]
