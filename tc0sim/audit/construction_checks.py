"""The transformer construction of the universal-approximation paper: Lemma 6.1's FFN neuron count and
the separateness constants Lemma C.1 states for its quantized grid.

*Fundamental Limits of Visual Autoregressive Transformers: Universal Approximation Abilities* (Chen, Li,
Liang, Shi, Song, ICML 2025, arXiv:2502.06167), Lemma 6.1 and Appendix C: FFN₁ quantizes X + E onto
the grid [δ:δ:1]^d × [1+δ:δ:2]^d × … (one block per token, L₀ = h_r w_r tokens), attention makes a
contextual mapping (Lemma 5.4), and FFN₂ has one bump of 3 d L₀ ReLU neurons per quantized input, with
C δ (d L₀)^{1/α} ≤ ε/2.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np

from tc0sim.approx.separateness import separateness
from tc0sim.audit.record import Check

GRID = (2, 4, 3)
"""Lemma C.1's quantized grid: d, 1/δ, L_0 = h_r w_r."""


def _grid_instance(d: int, steps: int, tokens: int) -> np.ndarray:
    """Lemma C.1's grid [δ:δ:1]^d × [1+δ:δ:2]^d × … : token k has entries in k + {δ, 2δ, …, 1}; one
    sequence per point of the unit grid, so that every grid token occurs."""
    points = np.array(list(itertools.product(range(1, steps + 1), repeat=d)), dtype=np.float64) / steps
    return np.stack([np.stack([k + point for k in range(tokens)]) for point in points])


COUNT_INSTANCES: tuple[tuple[int, int, int], ...] = ((1, 1, 4), (1, 2, 3), (2, 1, 3), (2, 2, 2), (1, 3, 2))
"""(d, L₀, 1/δ) at which the quantized inputs G_δ = {0, δ, …, 1 − δ}^{L₀ × d} are enumerated."""


def quantized_inputs(d: int, tokens: int, steps: int) -> int:
    """|G_δ| by enumeration: every L₀ × d array with entries in {0, δ, …, 1 − δ} (δ = 1/steps)."""
    return sum(1 for _ in itertools.product(range(steps), repeat=d * tokens))


def neurons(d: int, tokens: int, epsilon: Fraction, lipschitz: int = 1, alpha: int = 2) -> int:
    """FFN₂'s neurons for error ε: 3 d L₀ per bump, one bump per quantized input, with the largest δ = 1/m
    (m an integer) meeting C δ (d L₀)^{1/α} ≤ ε/2."""
    need = 2 * lipschitz * (d * tokens) ** (1 / alpha) / epsilon
    steps = math.ceil(need)
    return 3 * d * tokens * steps ** (d * tokens)


def check_neurons() -> Check:
    """Lemma 6.1: FFN₂ of the construction has O((1/ε)^{d h_r w_r}) neurons (an existence statement)."""
    counted = [(d, t, m, quantized_inputs(d, t, m)) for d, t, m in COUNT_INSTANCES]
    agree = all(count == m ** (d * t) for d, t, m, count in counted)
    d, tokens = 2, 2
    table = ", ".join(f"eps = 1/{e}: {neurons(d, tokens, Fraction(1, e)):,}" for e in (10, 100, 1000))
    notes = [
        "quantized inputs enumerated: " + "; ".join(f"d = {d}, L_0 = {t}, delta = 1/{m}: {count}" for d, t, m, count in counted)
        + (" = (1/delta)^(d L_0) each" if agree else " (NOT (1/delta)^(d L_0))"),
        f"neurons = 3 d L_0 (1/delta)^(d L_0) with delta = eps / (2 C (d L_0)^(1/alpha)): at d = L_0 = 2, C = 1, alpha = 2: "
        f"{table}: exponent d L_0 = {d * tokens} in 1/eps, as stated, with the constant 3 d L_0 (2 C (d L_0)^(1/alpha))^(d L_0) "
        "hidden in the O, itself exponential in d L_0",
        "the lemma's proof writes 'O((1/eps)^(d(h_r w_r))) FFN layers' for the neurons of one FFN layer (FFN_2); the "
        "section title writes (1/eps)^(dn)",
    ]
    return Check("slack" if agree else "violated", "O((1/eps)^{d h_r w_r}) FFN neurons",
                 f"{len(counted)} grids enumerated; neurons grow as (1/eps)^(d L_0)", notes)


def check_grid_constants() -> Check:
    """Lemma C.1's proof: the grid is tokenwise (√d, √d(L₀ − δ), √d δ)-separated — false as printed."""
    d, steps, tokens = GRID
    sep = separateness(_grid_instance(d, steps, tokens))
    delta = 1 / steps
    printed = (math.sqrt(d), math.sqrt(d) * (tokens - delta), math.sqrt(d) * delta)
    right = (math.sqrt(d) * delta, math.sqrt(d) * tokens, delta)
    measured = (sep.gamma_min, sep.gamma_max, sep.delta)
    fails = [name for name, ok in (("least norm > sqrt(d)", measured[0] > printed[0]),
                                   ("largest norm < sqrt(d)(L_0 - delta)", measured[1] < printed[1]),
                                   ("least distance > sqrt(d) delta", measured[2] > printed[2])) if not ok]
    exact = all(math.isclose(m, r, rel_tol=1e-15) for m, r in zip(measured, right))
    notes = [
        f"grid d = {d}, delta = 1/{steps}, L_0 = {tokens}: measured least norm {measured[0]:.6g}, largest "
        f"{measured[1]:.6g}, least distance {measured[2]:.6g}; printed ({printed[0]:.6g}, {printed[1]:.6g}, "
        f"{printed[2]:.6g}) fails: {', '.join(fails) or 'none'}",
        f"corrected reading (sqrt(d) delta, sqrt(d) L_0, delta) = ({right[0]:.6g}, {right[1]:.6g}, {right[2]:.6g}): "
        + ("the measured limits equal it (the strict inequalities of Definition 5.2 hold for any constants beyond them)"
           if exact else "the measured limits differ from it"),
        "with the right constants kappa = L_0/delta and eps = delta, Lemma 5.4's exponent of Delta grows by a factor "
        "of about sqrt(d)/delta",
    ]
    corrected = {"reading": "(gamma_min, gamma_max, eps) = (sqrt(d) delta, sqrt(d) L_0, delta)",
                 "verdict": "tight" if exact else "violated"}
    return Check("violated as printed" if fails else "slack", "(sqrt(d), sqrt(d)(L_0 - delta), sqrt(d) delta)-separated",
                 f"least norm {measured[0]:.4g}, largest {measured[1]:.4g}, least distance {measured[2]:.4g}", notes,
                 corrected if fails else None)
