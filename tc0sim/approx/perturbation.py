"""Perturbation of a composition (Lemmas 6.3–6.5, Theorem 6.6) measured on a ``var`` model.

The ``var`` model is cut into its chain of layers ``u_1, …, u_m`` (:func:`tc0sim.approx.chain.var_chain`): per level
the pyramid up-interpolation Φ_up,k, then each transformer layer's attention and g components; the
feature-map reconstruction (phase 2); each decoder block. The state between two layers is one
tensor (phase 1: the pyramid's token maps concatenated). Composing the layers at precision p gives
the model's own output bit for bit (tested).

Two replacements ``v_j`` of the exact layers ``u_j`` (exact = evaluated at the reference precision,
default 256 bits):

* ``precision`` — v_j is u_j evaluated at p bits (every primitive rounded once);
* ``aattc`` — v_j replaces every attention by the approximate attention aattc of degree g.

Measured: the approximate trajectory ``y_j = v_j(y_{j−1})``, the replacement errors
``ε_j = ‖u_j(y_{j−1}) − v_j(y_{j−1})‖``, the hybrids ``W_j = u_m ∘ … ∘ u_{j+1}(y_j)`` (W_0 is the
exact output, W_m the approximate one), and the end-to-end error ``‖W_0 − W_m‖``. All norms are
Frobenius norms of exact rationals.

Bound (Lemma 6.5 telescoping, Lemma 6.4 with Lipschitz constants): ‖W_{j−1} − W_j‖ ≤
``ε_j · Π_{i>j} L_i(ρ_i)``, where L_i(ρ) bounds u_i's Lipschitz constant on inputs of norm ≤ ρ
(:mod:`tc0sim.approx.lipschitz`) and ρ_i bounds the norm on the segment between the two points that
u_i receives. Two choices of ρ_i, both rigorous:

* ``bound`` (a posteriori): ρ_i = the larger norm of the two points, which the hybrid chains give
  exactly (a segment lies in the ball of its larger endpoint);
* ``bound_a_priori``: only the two points after layer j are known, ρ_j = their larger norm, then
  ρ_i = G_i(ρ_{i−1}) with G_i a bound on ‖u_i(X)‖ over that ball (L_i ρ + ‖u_i(0)‖ for globally
  Lipschitz layers, √n ‖W_V‖ ρ for attention) — the form the papers' constants would give.

The telescoping is taken along the approximate trajectory so only the exact layers' Lipschitz
constants are needed: the rounded layers v_j are not Lipschitz at all (rounding is a step function).
Float arithmetic in the bound is enlarged by a relative :data:`BOUND_MARGIN`; the reference
precision stands in for exact real arithmetic: its own error is not added to the bounds, but the exact
output is recomputed at twice the reference precision and the difference reported (``reference_gap``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from tc0sim.approx.chain import Layer, aattc_attend, var_chain
from tc0sim.approx.exact import float_up, norm_up, squared_frobenius
from tc0sim.approx.lipschitz import attention_growth, attention_lipschitz
from tc0sim.errors import ConfigError
from tc0sim.limits import DEFAULT_MAX_CHAIN_GATES
from tc0sim.interp.evaluate import evaluate, random_inputs
from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder, Graph
from tc0sim.models.var import _attention
from tc0sim.ops.aattc import taylor_degree
from tc0sim.ops.attention import attention as _attention_exact

REFERENCE_PRECISION = 256
BOUND_MARGIN = 1e-9
REPLACEMENTS = ("precision", "aattc")


@dataclass
class LayerRow:
    """Per layer j: replacement error ε_j, the bound on ‖W_{j−1} − W_j‖ and its measured value."""

    name: str
    role: str
    epsilon: float
    lipschitz_next: float | None
    term_bound: float
    term_measured: float | None
    two_layer_measured: float | None = None
    two_layer_bound: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: _finite(value) if isinstance(value, float) else value for key, value in self.__dict__.items()}


@dataclass
class PerturbationReport:
    """The chain's measured errors next to Lemma 6.4/6.5 and Theorem 6.6's bounds."""

    replace: str
    p: int
    reference: int
    rows: list[LayerRow]
    measured: float
    measured_squared: Fraction
    bound: float
    bound_a_priori: float
    telescoped: float | None
    k2: float
    paper_sum: float
    paper_closed: float
    violations: list[str] = field(default_factory=list)
    instance: dict[str, Any] = field(default_factory=dict)
    unbounded: list[str] = field(default_factory=list)
    reference_gap: float = 0.0

    @property
    def ratio(self) -> float | None:
        return None if not self.measured else self.bound / self.measured

    def as_dict(self) -> dict[str, Any]:
        return {
            "replace": self.replace,
            "precision": self.p,
            "reference_precision": self.reference,
            "instance": self.instance,
            "layers": [r.as_dict() for r in self.rows],
            "measured_end_to_end": self.measured,
            "bound_lemma_6_4_6_5": _finite(self.bound),
            "bound_a_priori": _finite(self.bound_a_priori),
            "ratio_bound_over_measured": _finite(self.ratio),
            "sum_of_measured_hybrid_differences": self.telescoped,
            "k2": _finite(self.k2),
            "theorem_6_6_sum": _finite(self.paper_sum),
            "theorem_6_6_closed_form": _finite(self.paper_closed),
            "unbounded_layers": self.unbounded,
            "reference_gap": self.reference_gap,
            "holds": not self.violations,
            "violations": self.violations,
        }


def _evaluate(graph: Graph, p: int, state: Any, weights: Mapping[str, np.ndarray]) -> np.ndarray:
    given = {name: weights[name] for name in graph.inputs if name != "state"}
    return evaluate(graph, p, {"state": state, **given})["out"]


def _norm_at_zero(layer: Layer, graph: Graph, reference: int, weights: Mapping[str, np.ndarray]) -> float:
    """‖u(0)‖ for the growth bound L ρ + ‖u(0)‖ of a globally Lipschitz layer (inf when not needed or undefined)."""
    if layer.lipschitz is None or layer.growth is not None:
        return math.inf
    return norm_up(squared_frobenius(_evaluate(graph, reference, np.zeros(layer.in_shape), weights)))


def _mul_up(*factors: float) -> float:
    return float_up(math.prod(factors) * (1 + 1e-15 * len(factors)))


def perturbation(
    dims: Mapping[str, int],
    params: Mapping[str, Any],
    weights: Mapping[str, np.ndarray],
    p: int,
    replace: str = "precision",
    degree: int = 2,
    reference: int = REFERENCE_PRECISION,
    instance: Mapping[str, Any] | None = None,
    chain: list[Layer] | None = None,
) -> PerturbationReport:
    """Measure the chain's errors and check Lemmas 6.3, 6.4, 6.5 and Theorem 6.6 on them (the chain of
    the ``var`` model of dims, params and weights, or the given ``chain`` fed ``weights["X_init"]``)."""
    if replace not in REPLACEMENTS:
        raise ConfigError(f"unknown replacement {replace!r}; expected one of {', '.join(REPLACEMENTS)}")
    if reference < max(p, 53):
        raise ConfigError(f"the reference precision {reference} must be at least max(p, 53) = {max(p, 53)}")
    chain = chain if chain is not None else var_chain(dims, params, weights)
    exact_graphs = [layer.graph(_attention) for layer in chain]
    if replace == "aattc":
        attend = aattc_attend(taylor_degree(degree))
        approx = [(layer.graph(attend) if layer.attention else g, reference) for layer, g in zip(chain, exact_graphs)]
    else:
        approx = [(g, p) for g in exact_graphs]
    m = len(chain)
    x0 = np.asarray(weights["X_init"], dtype=np.float64).reshape(chain[0].in_shape)
    y = [x0]
    for graph, prec in approx:
        y.append(_evaluate(graph, prec, y[-1], weights))
    # hybrids[j] = [u_{j+1}(y_j), u_{j+2}(u_{j+1}(y_j)), …]: W_j is its last entry (W_m = y_m)
    hybrids: list[list[np.ndarray]] = []
    for j in range(m):
        values = [y[j]]
        for i in range(j, m):
            values.append(_evaluate(exact_graphs[i], reference, values[-1], weights))
        hybrids.append(values[1:])
    w_final = [h[-1] for h in hybrids] + [y[m]]
    finer = x0
    for graph in exact_graphs:
        finer = _evaluate(graph, 2 * reference, finer, weights)
    reference_gap = norm_up(squared_frobenius(finer, w_final[0]))
    eps_sq = [squared_frobenius(hybrids[j - 1][0], y[j]) for j in range(1, m + 1)]
    zero_norms = [_norm_at_zero(layer, g, reference, weights) for layer, g in zip(chain, exact_graphs)]
    norms = [[norm_up(squared_frobenius(v)) for v in chain_values] for chain_values in hybrids]
    y_norms = [norm_up(squared_frobenius(v)) for v in y]
    rows: list[LayerRow] = []
    k2 = 0.0
    total = a_priori_total = 0.0
    for j in range(1, m + 1):
        eps = norm_up(eps_sq[j - 1])
        # the two chains of W_{j-1} and W_j: A_t = hybrids[j-1][t], B_0 = y_j, B_t = hybrids[j][t-1]
        a_norms = norms[j - 1]
        b_norms = [y_norms[j]] + (norms[j] if j < m else [])
        factor = a_priori = 1.0
        first = None
        radius = max(a_norms[0], b_norms[0])
        for t, i in enumerate(range(j, m)):
            layer = chain[i]
            if layer.lipschitz is None:
                factor = a_priori = math.inf
                break
            lip = layer.lipschitz(max(a_norms[t], b_norms[t]))
            k2 = max(k2, lip)
            first = lip if first is None else first
            factor = _mul_up(factor, lip)
            grown = layer.lipschitz(radius)
            a_priori = _mul_up(a_priori, grown)
            radius = layer.growth(radius) if layer.growth else float_up(grown * radius + zero_norms[i])
        total = float_up(total + (_mul_up(factor, eps) if eps else 0.0))
        a_priori_total = float_up(a_priori_total + (_mul_up(a_priori, eps) if eps else 0.0))
        measured = norm_up(squared_frobenius(w_final[j - 1], w_final[j]))
        rows.append(LayerRow(chain[j - 1].name, chain[j - 1].role, eps, first, _mul_up(factor, eps) if eps else 0.0, measured))
    for j in range(1, m):
        row, nxt = rows[j - 1], rows[j]
        two = norm_up(squared_frobenius(hybrids[j - 1][1], y[j + 1]))
        row.two_layer_measured = two
        lip = row.lipschitz_next
        row.two_layer_bound = math.inf if lip is None else float_up(lip * row.epsilon * (1 + 1e-15) + nxt.epsilon) if row.epsilon or nxt.epsilon else 0.0
    end_sq = squared_frobenius(w_final[0], w_final[m])
    bound = float_up(total * (1 + BOUND_MARGIN))
    if any(layer.lipschitz is None for layer in chain):
        k2 = math.inf
    epsilons = [r.epsilon for r in rows]
    paper_sum = sum(k2 ** (m - j) * e for j, e in enumerate(epsilons, start=1) if e)
    paper_closed = k2**m * max(epsilons) if any(epsilons) else 0.0
    report = PerturbationReport(
        replace, p, reference, rows, norm_up(end_sq), end_sq, bound, float_up(a_priori_total * (1 + BOUND_MARGIN)),
        float_up(sum(r.term_measured or 0.0 for r in rows)), k2, paper_sum, paper_closed,
        instance=dict(instance or {}),
        unbounded=[layer.name for layer in chain if layer.lipschitz is None],
        reference_gap=reference_gap,
    )
    report.violations = _violations(report)
    return report


def _below(bound: float, squared: Fraction) -> bool:
    """Whether a (possibly infinite) float bound is below √squared, decided exactly."""
    return math.isfinite(bound) and Fraction(bound) ** 2 < squared


def _finite(x: float | None) -> float | None:
    """JSON has no infinity: an infinite bound (a layer without a Lipschitz bound) is null."""
    return None if x is None or math.isinf(x) else x


def _violations(report: PerturbationReport) -> list[str]:
    """Every bound that fails on this instance, named (measured values are exact, rounded up)."""
    out = []
    if _below(report.bound, report.measured_squared):
        out.append(f"Theorem 6.6 (Lemmas 6.4 + 6.5): measured {report.measured:.6g} > bound {report.bound:.6g}")
    if _below(report.bound_a_priori, report.measured_squared):
        out.append(f"Theorem 6.6, a priori radii: measured {report.measured:.6g} > bound {report.bound_a_priori:.6g}")
    for row in report.rows:
        if row.term_measured is not None and row.term_measured > row.term_bound * (1 + BOUND_MARGIN):
            out.append(f"Lemma 6.4 at {row.name}: ‖W_(j−1) − W_j‖ = {row.term_measured:.6g} > {row.term_bound:.6g}")
        if row.two_layer_measured is not None and row.two_layer_bound is not None and row.two_layer_measured > row.two_layer_bound * (1 + BOUND_MARGIN):
            out.append(f"Lemma 6.3 at {row.name} and the next layer: {row.two_layer_measured:.6g} > {row.two_layer_bound:.6g}")
    if report.telescoped is not None and report.measured > report.telescoped * (1 + BOUND_MARGIN):
        out.append(f"Lemma 6.5: measured {report.measured:.6g} > sum of hybrid differences {report.telescoped:.6g}")
    return out


def model_perturbation(spec: Any, p: int, n: int | None = None, max_gates: int = DEFAULT_MAX_CHAIN_GATES, **options: Any) -> PerturbationReport:
    """:func:`perturbation` on a ``var`` model file, weights drawn from its seed and scale."""
    if spec.kind != "var":
        raise ConfigError(f"{spec.source}: perturbation bounds are computed for kind 'var', not {spec.kind!r}")
    dims = spec.dims_at(n)
    params = spec.params_at(n)
    graph = spec.build(n)
    gates = size(graph).total
    if gates > max_gates:
        raise ConfigError(
            f"{spec.label(n)} has {gates:,} gates, above the {max_gates:,} the perturbation check evaluates "
            "(about m²/2 layer evaluations); use smaller dims or raise --max-gates"
        )
    weights = random_inputs(graph, spec.seed, spec.scale)
    instance = {"file": spec.source, "dims": dims, "seed": spec.seed, "scale": spec.scale}
    return perturbation(dims, params, weights, p, instance=instance, **options)


@dataclass(frozen=True)
class GrowthCounterexample:
    """Lemma 6.4 as printed (growth bound ‖v(x)‖ ≤ K_2‖x‖) against one attention instance."""

    epsilon: float
    k2_growth: float
    printed_bound: float
    lipschitz_bound: float
    measured: float

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def growth_counterexample(scale: int = 1000, shift: Fraction = Fraction(1, 128), reference: int = REFERENCE_PRECISION) -> GrowthCounterexample:
    """u_1 = X ↦ X + E (‖E‖ = shift), v_1 = identity, u_2 = v_2 = Attn with tokens (1, 0), (0, 1),
    W_Q W_Kᵀ = scale·[[1, 1], [0, 0]] (the first row's two scores tie) and W_V = I.

    Attn meets the growth bound with K_2 = √n‖W_V‖ = √2 and v_1 = identity meets it on every input
    (the printed lemma bounds the growth of the v_i only, so no domain restriction is needed), yet a
    perturbation of size ``shift`` breaks the tie and moves the output by about 0.7 ≫ K_2·shift.
    """
    b = Builder()
    x = b.input("X", (2, 2))
    w_q, w_k, w_v = (b.input(name, (2, 2), role="weight") for name in ("W_Q", "W_K", "W_V"))
    b.output("out", _attention_exact(b, x, w_q, w_k, w_v))
    graph = b.graph
    weights = {
        "W_Q": np.array([[scale, 0], [0, 0]], dtype=np.float64),
        "W_K": np.array([[1, 0], [1, 0]], dtype=np.float64),
        "W_V": np.eye(2),
    }
    tokens_exact = np.eye(2, dtype=object)
    perturbed = np.array([[Fraction(1), Fraction(0)], [Fraction(0), 1 + shift]], dtype=object)
    exact_out = evaluate(graph, reference, {"X": tokens_exact, **weights})["out"]
    moved_out = evaluate(graph, reference, {"X": perturbed, **weights})["out"]
    measured = norm_up(squared_frobenius(exact_out, moved_out))
    eps = float(shift)  # a dyadic shift is exact in float64
    growth = attention_growth(weights["W_V"], 2)
    radius = norm_up(squared_frobenius(perturbed))
    lipschitz = attention_lipschitz(weights["W_Q"], weights["W_K"], weights["W_V"], 2, radius)
    return GrowthCounterexample(eps, growth, float_up(growth * eps), float_up(lipschitz * eps), measured)
