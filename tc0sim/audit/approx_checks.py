"""Audit checks of the universal-approximation claims on seeded instances (tc0sim.approx).

Each check returns ``(verdict, claimed, computed, notes)`` for the audit engine. The instances:

* perturbation (Lemmas 6.3–6.5, Theorem 6.6): the ``var`` model of :data:`VAR_INSTANCE` with
  weights drawn from seeds :data:`SEEDS`, replaced at p = :data:`PRECISION` bits and by aattc;
* Lemma 6.4 as printed: :func:`tc0sim.approx.perturbation.growth_counterexample`;
* Lemma 5.4: :data:`CONTEXT_SEQUENCES` sequences of 3 distinct tokens out of 5 (seeded), one
  attention layer with seeded weights, and the same layer with W_V = 0.

A bound holds on every instance → ``slack`` (the ratio bound/measured is given); a bound fails on
one → ``violated`` with the instance named.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from tc0sim.approx.contextual import contextual
from tc0sim.approx.perturbation import PerturbationReport, growth_counterexample, perturbation
from tc0sim.interp.evaluate import random_inputs
from tc0sim.kinds import build
from tc0sim.modelfile import from_mapping

Check = tuple[str, str, str, list[str]]
VAR_INSTANCE = {"dims": {"h": 4, "w": 4, "c": 2}, "params": {"scales": 3, "layers": 1, "g": "ffn", "decoder": ["resnet", "attn", "up"]}}
SEEDS = (0, 1, 2)
PRECISION = 16
WEIGHT_SCALE = 0.5
CONTEXT_SEQUENCES = 8


@lru_cache(maxsize=1)
def _reports() -> tuple[tuple[str, PerturbationReport], ...]:
    dims, params = VAR_INSTANCE["dims"], VAR_INSTANCE["params"]
    graph = build("var", dims, params)
    out = []
    for seed in SEEDS:
        weights = random_inputs(graph, seed, WEIGHT_SCALE)
        for replace in ("precision", "aattc"):
            label = f"var h=w=4, c=2, seed {seed}, scale {WEIGHT_SCALE}, " + (f"p = {PRECISION}" if replace == "precision" else "aattc g = 2")
            out.append((label, perturbation(dims, params, weights, PRECISION, replace=replace)))
    return tuple(out)


def _failures(reports: tuple[tuple[str, PerturbationReport], ...], word: str) -> list[str]:
    return [f"{label}: {v}" for label, r in reports for v in r.violations if v.startswith(word)]


def _verdict(failures: list[str]) -> str:
    return "violated" if failures else "slack"


def check_two_layers() -> Check:
    """Lemma 6.3 on every two consecutive layers of the chains."""
    reports = _reports()
    ratios = [row.two_layer_bound / row.two_layer_measured for _, r in reports for row in r.rows if row.two_layer_measured]
    failures = _failures(reports, "Lemma 6.3")
    computed = f"{len(ratios)} layer pairs with a nonzero error; bound/measured from {min(ratios):.3g} to {max(ratios):.3g}"
    return _verdict(failures), "||f o g - tau o Phi|| <= K_1 eps_1 + eps_2", computed, failures


def check_one_layer() -> Check:
    """Lemma 6.4: the printed growth hypothesis against the counterexample; the Lipschitz reading on the chains."""
    example = growth_counterexample()
    reports = _reports()
    ratios = [row.term_bound / row.term_measured for _, r in reports for row in r.rows if row.term_measured]
    failures = _failures(reports, "Lemma 6.4")
    notes = [
        f"printed hypothesis: attention on tokens (1, 0), (0, 1) with W_Q W_K^T = 1000 [[1, 1], [0, 0]], W_V = I "
        f"meets ||v(x)|| <= K_2 ||x|| with K_2 = {example.k2_growth:.6g}; a shift of eps = {example.epsilon:.6g} moves "
        f"the output by {example.measured:.6g} > K_2 eps = {example.printed_bound:.6g}: the printed lemma fails",
        f"with the stated Lipschitz bound instead, L eps = {example.lipschitz_bound:.6g} >= {example.measured:.6g}",
        f"Lipschitz reading on the var chains: {len(ratios)} hybrid differences, bound/measured from "
        f"{min(ratios):.3g} to {max(ratios):.3g}" + ("" if not failures else "; FAILS: " + "; ".join(failures)),
    ]
    violated = example.measured > example.printed_bound or bool(failures)
    computed = f"counterexample: {example.measured:.4g} > K_2^(n-j) eps = {example.printed_bound:.4g}"
    return ("violated" if violated else "slack"), "<= K_2^(n-j) eps", computed, notes


def check_telescoping() -> Check:
    """Lemma 6.5: end-to-end error against the sum of the measured hybrid differences."""
    reports = _reports()
    failures = _failures(reports, "Lemma 6.5")
    ratios = [r.telescoped / r.measured for _, r in reports if r.measured]
    computed = f"{len(reports)} chains; sum of hybrid differences / end-to-end error from {min(ratios):.4g} to {max(ratios):.4g}"
    return _verdict(failures), "<= sum of the hybrid differences", computed, failures


def check_universality() -> Check:
    """Theorem 6.6's derivation with measured errors and stated Lipschitz bounds."""
    reports = _reports()
    failures = _failures(reports, "Theorem 6.6")
    notes = [
        f"{label}: measured {r.measured:.3g}, bound {r.bound:.3g} (ratio {r.ratio:.3g}), a-priori-radius bound "
        f"{r.bound_a_priori:.3g}, uniform K_2 = {r.k2:.3g} over {len(r.rows)} layers: sum K_2^(n-j) eps_j = "
        f"{r.paper_sum:.3g}, K_2^n max eps = {r.paper_closed:.3g}"
        for label, r in reports
    ] + failures
    ratios = [r.ratio for _, r in reports if r.ratio]
    computed = f"{len(reports)} chains; bound/measured from {min(ratios):.3g} to {max(ratios):.3g}"
    return _verdict(failures), "sum_j eps_j prod_{i>j} L_i", computed, notes


def _context_instance() -> np.ndarray:
    rng = np.random.default_rng(7)
    vocab = rng.standard_normal((5, 2))
    return np.stack([vocab[rng.permutation(5)[:3]] for _ in range(CONTEXT_SEQUENCES)])


def check_contextual() -> Check:
    """Lemma 5.4's constants on an instance; the for-all-weights reading against W_V = 0."""
    x = _context_instance()
    spec = from_mapping({"kind": "attention", "dims": {"n": 3, "d": 2}, "seed": 0, "scale": WEIGHT_SCALE}, "<audit instance>")
    seeded = contextual(spec, x, 24)
    zero = contextual(spec, x, 24, weights={"W_V": np.zeros((2, 2))})
    lemma = seeded.lemma
    notes = [
        f"{CONTEXT_SEQUENCES} sequences of 3 distinct tokens from 5 seeded tokens in R^2: |V| = {seeded.separateness.vocabulary}, "
        f"eps = {seeded.separateness.delta:.6g}, gamma_max = {seeded.separateness.gamma_max:.6g}, kappa = {seeded.separateness.kappa:.6g}",
        f"the lemma's gamma = {lemma.gamma:.6g}, delta = {lemma.delta} (log10 {lemma.delta_log10:.6g}); resolving it at norm gamma "
        f"needs about {lemma.bits_needed():.6g} significand bits",
        f"seeded weights at p = 24: achieved gamma = {seeded.at_p.gamma:.6g}, delta = {seeded.at_p.delta:.6g}",
        f"W_V = 0 at p = 24: achieved delta = {zero.at_p.delta:.6g}: read for all weights the lemma fails",
    ]
    return "unchecked", "(gamma_max + eps/4, exp(-5 eps^-1 |V|^4 d kappa gamma_max log L))", "existential in the weights", notes + [
        "the weights the lemma promises come from a construction tc0sim does not build"
    ]


APPROX_CHECKS: dict[str, Callable[[], Check]] = {
    "UA-L5.4": check_contextual,
    "UA-L6.3": check_two_layers,
    "UA-L6.4": check_one_layer,
    "UA-L6.5": check_telescoping,
    "UA-T6.6": check_universality,
}
"""Claim id → check; the other universal-approximation claims are unchecked with the registry's reason."""
