"""Audit checks of the universal-approximation claims on seeded instances (tc0sim.approx).

Each check returns a ``tc0sim.audit.record.Check`` (verdict, claimed, computed, notes, and for a claim
false as printed the corrected reading) for the audit engine. The instances:

* perturbation (Lemmas 6.3–6.5, Theorem 6.6): the ``var`` model of :data:`VAR_INSTANCE` with
  weights drawn from seeds :data:`SEEDS`, replaced at p = :data:`PRECISION` bits and by aattc;
* Lemma 6.4 as printed: :func:`tc0sim.approx.perturbation.growth_counterexample`;
* Lemma 5.4: :data:`CONTEXT_SEQUENCES` sequences of 3 distinct tokens out of 5 (seeded), one
  attention layer with seeded weights, and the same layer with W_V = 0; and the separateness of
  Lemma C.1's quantized grid (:data:`GRID`), to which the paper applies the lemma;
* Corollary 7.1: FlowAR's Φ_down then one attention layer (:data:`DOWN_CHAIN`,
  ``tc0sim.approx.flowar_chain``), measured like the var chains;
* FlowAR's error lemmas D.3–D.7 (``tc0sim.audit.error_checks``) and the construction claims of
  Lemmas 6.1 and C.1 (``tc0sim.audit.construction_checks``), registered in :data:`MEASURES`.

A bound holds on every instance → ``slack`` (the ratio bound/measured is given); a bound fails on
one → ``violated`` with the instance named.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from tc0sim.approx.contextual import contextual
from tc0sim.approx.flowar_chain import chain_weights, down_chain
from tc0sim.approx.lipschitz import area_matrix, bicubic_matrix, resampler_norm
from tc0sim.approx.perturbation import PerturbationReport, growth_counterexample, model_perturbation, perturbation
from tc0sim.approx.separateness import separateness
from tc0sim.audit import error_checks
from tc0sim.audit.construction_checks import GRID, _grid_instance, check_grid_constants, check_neurons
from tc0sim.audit.record import Check
from tc0sim.interp.evaluate import random_inputs
from tc0sim.kinds import build
from tc0sim.modelfile import from_mapping

Reports = tuple[tuple[str, PerturbationReport], ...]
VAR_INSTANCE = {"dims": {"h": 4, "w": 4, "c": 2}, "params": {"scales": 3, "layers": 1, "g": "ffn", "decoder": ["resnet", "attn", "up"]}}
SEEDS = (0, 1, 2)
PRECISION = 16
WEIGHT_SCALE = 0.5
CONTEXT_SEQUENCES = 8
SWEEP = tuple(range(2, 33))
"""Precisions swept for Lemma 5.4's instance."""
INSTANCE_FIXED = (
    f"perturbation chains: var h = w = 4, c = 2, {VAR_INSTANCE['params']['scales']} scales, "
    f"{VAR_INSTANCE['params']['layers']} layer, seeds {', '.join(map(str, SEEDS))}, weight scale {WEIGHT_SCALE}, "
    f"replaced at p = {PRECISION} bits and by aattc (g = 2)",
)
"""What the measured instances hold fixed (every approx verdict lists it)."""


@lru_cache(maxsize=1)
def _reports() -> Reports:
    dims, params = VAR_INSTANCE["dims"], VAR_INSTANCE["params"]
    graph = build("var", dims, params)
    out = []
    for seed in SEEDS:
        weights = random_inputs(graph, seed, WEIGHT_SCALE)
        for replace in ("precision", "aattc"):
            label = f"var h=w=4, c=2, seed {seed}, scale {WEIGHT_SCALE}, " + (f"p = {PRECISION}" if replace == "precision" else "aattc g = 2")
            out.append((label, perturbation(dims, params, weights, PRECISION, replace=replace)))
    return tuple(out)


def _failures(reports: Reports, word: str) -> list[str]:
    return [f"{label}: {v}" for label, r in reports for v in r.violations if v.startswith(word)]


def _verdict(failures: list[str]) -> str:
    return "violated" if failures else "slack"


def _spread(ratios: list[float], digits: int = 3) -> str:
    """'from a to b' over the ratios bound/measured, or why there are none."""
    if not ratios:
        return "(no nonzero measured error)"
    return f"from {min(ratios):.{digits}g} to {max(ratios):.{digits}g}"


def check_two_layers(reports: Reports | None = None) -> Check:
    """Lemma 6.3 on every two consecutive layers of the chains."""
    reports = reports or _reports()
    ratios = [row.two_layer_bound / row.two_layer_measured for _, r in reports for row in r.rows if row.two_layer_measured]
    failures = _failures(reports, "Lemma 6.3")
    computed = f"{len(ratios)} layer pairs with a nonzero error; bound/measured {_spread(ratios)}"
    return Check(_verdict(failures), "||f o g - tau o Phi|| <= K_1 eps_1 + eps_2", computed, failures)


def _lipschitz_reading(reports: Reports) -> tuple[list[str], str]:
    """Lemma 6.4 with Lipschitz constants on the chains: the failures and a summary."""
    ratios = [row.term_bound / row.term_measured for _, r in reports for row in r.rows if row.term_measured]
    failures = _failures(reports, "Lemma 6.4")
    summary = f"{len(ratios)} hybrid differences, bound/measured {_spread(ratios)}"
    return failures, summary


def check_one_layer() -> Check:
    """Lemma 6.4: the printed growth hypothesis against the counterexample; the Lipschitz reading on the chains."""
    example = growth_counterexample()
    failures, summary = _lipschitz_reading(_reports())
    notes = [
        f"printed hypothesis (a growth bound ||v_i(x)|| <= K_2 ||x||): n = 2, j = 1, u_1(x) = x + E with ||E|| = "
        f"eps = {example.epsilon:.6g}, v_1 = identity (growth 1 <= K_2, on every input), u_2 = v_2 = attention on "
        f"tokens (1, 0), (0, 1) with W_Q W_K^T = 1000 [[1, 1], [0, 0]], W_V = I, which meets the growth bound with "
        f"K_2 = sqrt(n) ||W_V|| = {example.k2_growth:.6g}; the shift E breaks the tie of the first row's two scores "
        f"and moves the output by {example.measured:.6g} > K_2 eps = {example.printed_bound:.6g}: the printed lemma "
        "fails (its proof's second step uses linearity, which attention does not have)",
        f"corrected reading (v_i K_2-Lipschitz, the authors' intent): the same instance gives L eps = "
        f"{example.lipschitz_bound:.6g} >= {example.measured:.6g}; on the var chains: {summary}",
    ] + failures
    printed = example.measured > example.printed_bound
    corrected = {"reading": "v_i K_2-Lipschitz (||v_i(x) - v_i(y)|| <= K_2 ||x - y||)",
                 "verdict": "violated" if failures or example.measured > example.lipschitz_bound else "slack"}
    computed = f"counterexample: {example.measured:.4g} > K_2^(n-j) eps = {example.printed_bound:.4g}"
    return Check("violated as printed" if printed else corrected["verdict"], "<= K_2^(n-j) eps", computed, notes,
                 corrected if printed else None)


def check_one_layer_lipschitz(reports: Reports) -> Check:
    """Lemma 6.4 read with Lipschitz constants, on one model file's chains."""
    failures, summary = _lipschitz_reading(reports)
    notes = ["read with Lipschitz constants; as printed (a growth bound) the lemma is false: see the registry audit"]
    return Check(_verdict(failures), "<= prod_{i>j} L_i eps_j", summary, notes + failures)


def check_telescoping(reports: Reports | None = None) -> Check:
    """Lemma 6.5: end-to-end error against the sum of the measured hybrid differences."""
    reports = reports or _reports()
    failures = _failures(reports, "Lemma 6.5")
    ratios = [r.telescoped / r.measured for _, r in reports if r.measured]
    computed = f"{len(reports)} chains; sum of hybrid differences / end-to-end error {_spread(ratios, 4)}"
    return Check(_verdict(failures), "<= sum of the hybrid differences", computed, failures)


def check_universality(reports: Reports | None = None) -> Check:
    """Theorem 6.6's derivation with measured errors and stated Lipschitz bounds."""
    reports = reports or _reports()
    failures = _failures(reports, "Theorem 6.6")
    notes = [
        f"{label}: measured {r.measured:.3g}, bound {r.bound:.3g} (ratio {r.ratio or math.nan:.3g}), a-priori-radius bound "
        f"{r.bound_a_priori:.3g}, uniform K_2 = {r.k2:.3g} over {len(r.rows)} layers: sum K_2^(n-j) eps_j = "
        f"{r.paper_sum:.3g}, K_2^n max eps = {r.paper_closed:.3g}"
        for label, r in reports
    ] + failures
    ratios = [r.ratio for _, r in reports if r.ratio]
    computed = f"{len(reports)} chains; bound/measured {_spread(ratios)}"
    return Check(_verdict(failures), "sum_j eps_j prod_{i>j} L_i", computed, notes)


def _context_instance() -> np.ndarray:
    rng = np.random.default_rng(7)
    vocab = rng.standard_normal((5, 2))
    return np.stack([vocab[rng.permutation(5)[:3]] for _ in range(CONTEXT_SEQUENCES)])


def _grid_notes() -> list[str]:
    d, steps, tokens = GRID
    sep = separateness(_grid_instance(d, steps, tokens))
    delta = 1 / steps
    claimed = (math.sqrt(d), math.sqrt(d) * (tokens - delta), math.sqrt(d) * delta)
    return [
        f"Lemma C.1 applies the lemma to its grid with (gamma_min, gamma_max, eps) = (sqrt(d), sqrt(d)(L_0 - delta), "
        f"sqrt(d) delta); at d = {d}, delta = 1/{steps}, L_0 = {tokens} these are ({claimed[0]:.6g}, {claimed[1]:.6g}, "
        f"{claimed[2]:.6g}), but the grid's least norm is {sep.gamma_min:.6g} (sqrt(d) delta), its largest "
        f"{sep.gamma_max:.6g} (sqrt(d) L_0) and its least distance {sep.delta:.6g} (delta): all three constants are "
        "wrong, and with the right ones kappa = L_0/delta and eps = delta make the exponent of Delta larger by a "
        "factor of about sqrt(d)/delta"
    ]


def check_contextual() -> Check:
    """Lemma 5.4's constants on an instance; the for-all-weights reading against W_V = 0."""
    x = _context_instance()
    spec = from_mapping({"kind": "attention", "dims": {"n": 3, "d": 2}, "seed": 0, "scale": WEIGHT_SCALE}, "<audit instance>")
    seeded = contextual(spec, x, 24, sweep=SWEEP)
    zero = contextual(spec, x, 24, weights={"W_V": np.zeros((2, 2))})
    lemma = seeded.lemma
    notes = [
        f"{CONTEXT_SEQUENCES} sequences of 3 distinct tokens from 5 seeded tokens in R^2: |V| = {seeded.separateness.vocabulary}, "
        f"eps = {seeded.separateness.delta:.6g}, gamma_max = {seeded.separateness.gamma_max:.6g}, kappa = {seeded.separateness.kappa:.6g}",
        f"the lemma's gamma = {lemma.gamma:.6g}, delta = {lemma.delta} (log10 {lemma.delta_log10:.6g}); resolving it at norm gamma "
        f"needs about {lemma.bits_needed():.6g} significand bits",
        f"seeded weights at p = 24: achieved gamma = {seeded.at_p.gamma:.6g}, delta = {seeded.at_p.delta:.6g}; over "
        f"p = {SWEEP[0]}..{SWEEP[-1]} the achieved delta is positive from p = {seeded.positive_from()} on "
        f"(least p with delta > 0: {seeded.smallest_positive_p()})",
        f"W_V = 0 at p = 24: achieved delta = {zero.at_p.delta:.6g}: read for all weights the lemma fails",
    ]
    return Check("unchecked", "(gamma_max + eps/4, exp(-5 eps^-1 |V|^4 d kappa gamma_max log L))", "existential in the weights", notes + [
        "the weights the lemma promises come from a construction tc0sim does not build"
    ] + _grid_notes())


def _resampler_notes() -> list[str]:
    """The operator norms of the resamplers Corollary 7.1 and Lemma 6.3 compose with."""
    down = [(r, resampler_norm(area_matrix, (4 * r, 4 * r), (4, 4))) for r in (2, 3, 4)]
    up = [(a, resampler_norm(bicubic_matrix, (a, a), (2 * a, 2 * a))) for a in (1, 2, 4, 8)]
    return [
        "area down-sampling by r: operator norm " + ", ".join(f"{v:.6g} (r = {r})" for r, v in down) + ", i.e. 1/r",
        "bicubic up-sampling by 2 (Keys a = -0.75, borders clamped): "
        + ", ".join(f"{v:.6g} ({a}x{a} -> {2 * a}x{2 * a})" for a, v in up)
        + ": above 2 (what a constant map gains from 4x the tokens) once the map has an interior (the negative lobes "
        "of the kernel overshoot), so Phi_up enlarges errors in the Frobenius norm",
    ]


DOWN_CHAIN = {"h": 4, "c": 2, "r": 2}
"""Corollary 7.1's FlowAR instance: Φ_down by r on an h × h × c map, then one attention layer."""


@lru_cache(maxsize=1)
def _down_reports() -> Reports:
    out = []
    for seed in SEEDS:
        weights = chain_weights(DOWN_CHAIN["h"], DOWN_CHAIN["c"], seed, WEIGHT_SCALE)
        for replace in ("precision", "aattc"):
            chain = down_chain(DOWN_CHAIN["h"], DOWN_CHAIN["c"], DOWN_CHAIN["r"], weights)
            label = f"Phi_down then attention, seed {seed}, " + (f"p = {PRECISION}" if replace == "precision" else "aattc g = 2")
            out.append((label, perturbation({}, {}, weights, PRECISION, replace=replace, chain=chain)))
    return tuple(out)


def check_down_chain() -> Check:
    """Corollary 7.1 on FlowAR's τ ∘ Φ_down: the two-layer bound K_1 ε_1 + ε_2 against the measured error."""
    reports = _down_reports()
    rows = [(label, r.rows[0]) for label, r in reports]
    failures = [f"{label}: {row.two_layer_measured:.6g} > {row.two_layer_bound:.6g}" for label, row in rows
                if row.two_layer_measured is not None and row.two_layer_measured > row.two_layer_bound * (1 + 1e-9)]
    ratios = [row.two_layer_bound / row.two_layer_measured for _, row in rows if row.two_layer_measured]
    notes = [f"{label}: eps_1 = {row.epsilon:.3g} (Phi_down), K_1 = {row.lipschitz_next:.4g} (attention on the ball), "
             f"measured {row.two_layer_measured:.3g}, bound {row.two_layer_bound:.3g}" for label, row in rows]
    computed = f"{len(rows)} FlowAR two-layer chains; bound/measured {_spread(ratios)}"
    return Check(_verdict(failures), "||f o g - tau o Phi_down|| <= K_1 eps_1 + eps_2", computed,
                 notes + failures + _resampler_notes())


@dataclass(frozen=True)
class Measure:
    """One measurement of a universality claim: on the registry's seeded instances (``own``) and, when
    a ``var`` model file's own chains can feed it, on those (``on_file``)."""

    own: Callable[[], Check]
    on_file: Callable[[Reports], Check] | None = None
    fixed: tuple[str, ...] = ()
    """What the registry's instances of this measurement hold fixed."""


CONTEXT_FIXED = (f"{CONTEXT_SEQUENCES} sequences of 3 distinct tokens out of 5 seeded tokens in R^2; one attention "
                 f"layer, seed 0, weight scale {WEIGHT_SCALE}; p = 24 and p = {SWEEP[0]}..{SWEEP[-1]}",
                 f"Lemma C.1's grid at d = {GRID[0]}, delta = 1/{GRID[1]}, L_0 = {GRID[2]}")
MEASURES: dict[str, Measure] = {
    "down_chain": Measure(check_down_chain, fixed=(
        f"Phi_down by r = {DOWN_CHAIN['r']} on a {DOWN_CHAIN['h']} x {DOWN_CHAIN['h']} x {DOWN_CHAIN['c']} map, then one "
        f"attention layer; seeds {', '.join(map(str, SEEDS))}, weight scale {WEIGHT_SCALE}, replaced at p = {PRECISION} "
        "bits and by aattc (g = 2)", "resampler norms: area by r = 2, 3, 4 from 4r x 4r; bicubic up by 2 from 1x1 .. 8x8")),
    "contextual": Measure(check_contextual, fixed=CONTEXT_FIXED),
    "two_layers": Measure(check_two_layers, check_two_layers, INSTANCE_FIXED),
    "one_layer": Measure(check_one_layer, check_one_layer_lipschitz,
                         ("the counterexample: n = 2 layers, j = 1, tokens (1, 0), (0, 1), eps = 1/128",) + INSTANCE_FIXED),
    "telescoping": Measure(check_telescoping, check_telescoping, INSTANCE_FIXED),
    "universality": Measure(check_universality, check_universality, INSTANCE_FIXED),
    "neurons": Measure(check_neurons, fixed=("grids d, L_0, 1/delta = (1, 1, 4), (1, 2, 3), (2, 1, 3), (2, 2, 2), "
                                             "(1, 3, 2); neuron counts at d = L_0 = 2, C = 1, alpha = 2",)),
    "grid_constants": Measure(check_grid_constants, fixed=(f"the grid d = {GRID[0]}, delta = 1/{GRID[1]}, L_0 = {GRID[2]}",)),
    "mlp_error": Measure(error_checks.check_mlp, fixed=("mlp n = 4, c = d = 3",) + error_checks.FIXED),
    "aattc_error": Measure(error_checks.check_aattc, fixed=("attention and aattc n = 4, d = 2, g = 2",) + error_checks.FIXED),
    "ffn_error": Measure(error_checks.check_ffn, fixed=("ffn n = 4, c = 3",) + error_checks.FIXED),
    "upsample_error": Measure(error_checks.check_upsample, fixed=("upsample 4x4 -> 8x8, c = 1; norms at 2, 4, 8",)
                              + error_checks.FIXED),
    "flow_error": Measure(error_checks.check_flow, fixed=("layernorm on x = (0, 1e-6), x' = (1e-6, 0); flow matching "
                                                          "h = w = c = 2, t = 1/2",) + error_checks.FIXED),
}
"""A claim's ``measure`` → its measurement (the claim files name them; tc0sim.audit.checkers.approx)."""


def file_reports(spec: Any) -> Reports:
    """The perturbation chains of a ``var`` model file's instance (at its n, precision, seed and scale);
    a ConfigError when the file's instance cannot be measured."""
    p = spec.precision or PRECISION
    label = f"{spec.label()}, seed {spec.seed}, scale {spec.scale}"
    return tuple(
        (f"{label}, " + (f"p = {p}" if replace == "precision" else "aattc g = 2"), model_perturbation(spec, p, replace=replace))
        for replace in ("precision", "aattc")
    )
