"""Contextual mapping (Definition 5.3) of an attention layer evaluated bit-exactly, and Lemma 5.4.

Definition 5.3: q is a (γ, δ)-contextual mapping for X⁽¹⁾, …, X⁽ᴺ⁾ when every output token has
‖q(X⁽ⁱ⁾)_k‖ < γ, and ‖q(X⁽ⁱ⁾)_k − q(X⁽ʲ⁾)_l‖ > δ for every two positions with 𝒱⁽ⁱ⁾ ≠ 𝒱⁽ʲ⁾ (different
vocabularies) or X_k⁽ⁱ⁾ ≠ X_l⁽ʲ⁾ (different tokens). The achieved values reported are the extremes
these strict inequalities compare with: ``gamma`` = the largest output norm, ``delta`` = the least
distance over those pairs (δ = 0 means two such positions got the same output: no δ > 0 works).

Lemma 5.4 (Lemma 2.2 of Hu et al. 2024, "Fundamental limits of prompt tuning transformers"): for
(γ_min, γ_max, ε)-separated embeddings whose tokens are distinct within each sequence, one-layer
single-head attention is a (γ, δ)-contextual mapping with γ = γ_max + ε/4 and
δ = exp(−5 ε⁻¹ |𝒱|⁴ d κ γ_max log L), κ = γ_max/γ_min, L the sequence length n (natural log).
δ is far below any float's range for realistic sizes, so it is reported as a decimal string and a
log10 value (mpmath at 50 digits).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np

from tc0sim.approx.exact import DyadicRows, min_distance, sqrt_fraction
from tc0sim.approx.separateness import Separateness, check_embeddings, separateness, vocabulary
from tc0sim.errors import ConfigError
from tc0sim.fp import FpArithmeticError
from tc0sim.limits import MAX_APPROX_EVALUATIONS, MAX_APPROX_GATES, MAX_APPROX_SWEEP_PRECISION, MIN_PRECISION
from tc0sim.interp.evaluate import evaluate, random_inputs
from tc0sim.interp.size import size
from tc0sim.ir.graph import Graph

ATTENTION_KINDS = ("attention", "aattc")
"""Kinds whose graph is one attention layer X[n, d] → out[n, d]."""
LEMMA_DIGITS = 50


@dataclass(frozen=True)
class LemmaConstants:
    """Lemma 5.4's γ and δ for given embeddings (δ as log10 and as a decimal string)."""

    applies: bool
    reason: str
    gamma: float | None
    delta_log10: float | None
    delta: str | None

    def bits_needed(self) -> float | None:
        """log2(γ/δ): the significand bits needed to resolve δ next to outputs of size γ."""
        if self.gamma is None or self.delta_log10 is None:
            return None
        return float(mpmath.log(self.gamma, 2) - mpmath.mpf(self.delta_log10) * mpmath.log(10, 2))


def lemma_constants(sep: Separateness) -> LemmaConstants:
    """γ = γ_max + ε/4 and δ = exp(−5 ε⁻¹ |𝒱|⁴ d κ γ_max log L) with ε the embeddings' δ."""
    n, d = sep.shape[1], sep.shape[2]
    if not sep.distinct_within_sequences:
        return LemmaConstants(False, "a sequence repeats a token (the lemma assumes X_k ≠ X_l within a sequence)", None, None, None)
    if sep.delta_squared is None:
        return LemmaConstants(False, "the vocabulary has one token: no separation ε is defined", None, None, None)
    with mpmath.workdps(LEMMA_DIGITS):
        eps = mpmath.sqrt(mpmath.mpf(sep.delta_squared.numerator) / sep.delta_squared.denominator)
        gmax = mpmath.sqrt(mpmath.mpf(sep.gamma_max_squared.numerator) / sep.gamma_max_squared.denominator)
        gmin = mpmath.sqrt(mpmath.mpf(sep.gamma_min_squared.numerator) / sep.gamma_min_squared.denominator)
        if gmin == 0:
            return LemmaConstants(False, "a token is the zero vector: κ = γ_max/γ_min is undefined", None, None, None)
        kappa = gmax / gmin
        exponent = -5 * mpmath.mpf(sep.vocabulary) ** 4 * d * kappa * gmax * mpmath.log(n) / eps
        log10 = exponent / mpmath.log(10)
        text = mpmath.nstr(mpmath.exp(exponent), 17) if log10 > -10**6 else _power_of_ten(log10)
        return LemmaConstants(True, "", float(gmax + eps / 4), float(log10), text)


def _power_of_ten(log10: Any) -> str:
    whole = mpmath.floor(log10)
    mantissa = mpmath.power(10, log10 - whole)
    return f"{mpmath.nstr(mantissa, 17)}e{int(whole)}"


@dataclass
class Achieved:
    """The achieved (γ, δ) of Definition 5.3 at one precision (exact squares, reported floats)."""

    p: int
    gamma: float | None
    delta: float | None
    gamma_squared: Fraction | None = None
    delta_squared: Fraction | None = None
    closest: tuple[tuple[int, int], tuple[int, int]] | None = None
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "p": self.p,
            "gamma": self.gamma,
            "delta": self.delta,
            "closest_positions": None if self.closest is None else [list(t) for t in self.closest],
            "error": self.error or None,
        }


def pair_keys(token_ids: np.ndarray, sets: Sequence[frozenset[int]]) -> list[int]:
    """One integer per output position (i, k): positions with equal keys are exactly the pairs that
    Definition 5.3 does not constrain (same vocabulary 𝒱⁽ⁱ⁾ = 𝒱⁽ʲ⁾ and same token X_k⁽ⁱ⁾ = X_l⁽ʲ⁾)."""
    set_ids: dict[frozenset[int], int] = {}
    ids: dict[tuple[int, int], int] = {}
    keys = []
    for i, row in enumerate(token_ids):
        vocab_id = set_ids.setdefault(sets[i], len(set_ids))
        for token in row.tolist():
            keys.append(ids.setdefault((vocab_id, token), len(ids)))
    return keys


def achieved(outputs: Sequence[np.ndarray], keys: Sequence[int], p: int) -> Achieved:
    """γ = max output norm, δ = min distance over the pairs Definition 5.3 names, exactly."""
    n = outputs[0].shape[0]
    rows = DyadicRows.from_values(row for out in outputs for row in out.tolist())
    scale = Fraction(1, 1 << (2 * rows.shift))
    gamma_sq = max(rows.squared_norm(i) for i in range(len(rows))) * scale
    pair = min_distance(rows, keys)
    if pair.squared is None:
        return Achieved(p, sqrt_fraction(gamma_sq), None, gamma_sq, None)
    delta_sq = pair.squared * scale
    i, j = pair.pairs[0]
    return Achieved(p, sqrt_fraction(gamma_sq), sqrt_fraction(delta_sq), gamma_sq, delta_sq, (divmod(i, n), divmod(j, n)))


def attention_graph(spec: Any, n: int, d: int) -> Graph:
    """The model file's attention layer built for sequences of n tokens of width d."""
    if spec.kind not in ATTENTION_KINDS:
        raise ConfigError(f"{spec.source}: kind {spec.kind!r} is not an attention layer (expected {' or '.join(ATTENTION_KINDS)})")
    dims = spec.dims_at(n if spec.uses_n else None)
    if (dims.get("n"), dims.get("d")) != (n, d):
        raise ConfigError(
            f"{spec.source}: the model takes X of shape ({dims.get('n')}, {dims.get('d')}) but the embeddings "
            f"are sequences of shape ({n}, {d})"
        )
    return spec.build(n if spec.uses_n else None)


def layer_weights(graph: Graph, spec: Any, given: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """The weights: those given, the rest drawn from the model file's seed and scale (as ``eval``)."""
    given = dict(given or {})
    if "X" in given:
        raise ConfigError("the weights must not hold X: the input sequences come from the embeddings")
    for name, value in given.items():
        if name not in graph.inputs:
            raise ConfigError(f"unknown weight {name!r}; the layer's weights are {', '.join(n for n in graph.inputs if n != 'X')}")
        value = np.asarray(value)
        expected = graph.node(graph.inputs[name]).shape
        if value.shape != expected or value.dtype.kind not in "iuf" or not np.isfinite(value).all():
            raise ConfigError(f"weight {name!r} must be finite reals of shape {expected}, got {value.dtype} {value.shape}")
    drawn = random_inputs(graph, spec.seed, spec.scale)
    return {name: given.get(name, drawn[name]) for name in graph.inputs if name != "X"}


def evaluate_sequences(graph: Graph, x: np.ndarray, weights: Mapping[str, Any], p: int) -> list[np.ndarray]:
    """The layer's output for every sequence X⁽ⁱ⁾ at precision p (bit-exact evaluate)."""
    return [evaluate(graph, p, {"X": seq, **weights})["out"] for seq in x]


@dataclass
class ContextualReport:
    """Achieved (γ, δ) at p, Lemma 5.4's (γ, δ), and the optional precision sweep."""

    p: int
    separateness: Separateness
    at_p: Achieved
    lemma: LemmaConstants
    sweep: list[Achieved] = field(default_factory=list)

    def smallest_positive_p(self) -> int | None:
        """The smallest swept p whose achieved δ is positive."""
        return next((a.p for a in self.sweep if a.delta), None)

    def positive_from(self) -> int | None:
        """The smallest swept p from which every larger swept p has a positive δ."""
        start = None
        for a in self.sweep:
            if a.delta:
                start = a.p if start is None else start
            else:
                start = None
        return start

    def as_dict(self) -> dict[str, Any]:
        data = {
            "precision": self.p,
            "gamma": self.at_p.gamma,
            "delta": self.at_p.delta,
            "closest_positions": self.at_p.as_dict()["closest_positions"],
            "lemma_applies": self.lemma.applies,
            "lemma_reason": self.lemma.reason or None,
            "lemma_gamma": self.lemma.gamma,
            "lemma_delta": self.lemma.delta,
            "lemma_delta_log10": self.lemma.delta_log10,
            "lemma_bits_needed": self.lemma.bits_needed(),
            "achieved_meets_lemma": self.meets_lemma(),
            "embeddings": self.separateness.as_dict(),
        }
        if self.sweep:
            data["sweep"] = {
                "precisions": [a.p for a in self.sweep],
                "smallest_positive_p": self.smallest_positive_p(),
                "positive_from_p": self.positive_from(),
                "points": [a.as_dict() for a in self.sweep],
            }
        return data

    def meets_lemma(self) -> dict[str, bool] | None:
        """Whether the instance's own weights reach the lemma's γ and δ (the lemma does not say they must)."""
        if not self.lemma.applies or self.at_p.delta is None:
            return None
        delta_ok = self.at_p.delta > 0 and mpmath.log10(self.at_p.delta) > self.lemma.delta_log10
        return {"gamma": self.at_p.gamma < self.lemma.gamma, "delta": bool(delta_ok)}


def contextual(
    spec: Any,
    x: Any,
    p: int,
    weights: Mapping[str, np.ndarray] | None = None,
    sweep: Sequence[int] = (),
    on_step: Callable[[int], None] | None = None,
) -> ContextualReport:
    """Definition 5.3's achieved (γ, δ) of the model's attention layer on the embeddings at p."""
    arr = check_embeddings(x)
    runs = arr.shape[0] * (1 + len(sweep))
    if runs > MAX_APPROX_EVALUATIONS:
        raise ConfigError(f"{arr.shape[0]} sequences at {1 + len(sweep)} precisions are {runs:,} evaluations, above {MAX_APPROX_EVALUATIONS:,}")
    if p > MAX_APPROX_SWEEP_PRECISION:
        raise ConfigError(f"precision {p:,}: the contextual mapping is evaluated at p <= {MAX_APPROX_SWEEP_PRECISION}")
    graph = attention_graph(spec, arr.shape[1], arr.shape[2])
    gates = size(graph).total
    if runs * gates > MAX_APPROX_GATES:
        raise ConfigError(
            f"{runs:,} evaluations of {gates:,} gates are {runs * gates:,} gate evaluations, above the "
            f"{MAX_APPROX_GATES:,} of one contextual report; use fewer or shorter sequences"
        )
    w = layer_weights(graph, spec, weights)
    sep = separateness(arr)
    vocab = vocabulary(arr)
    keys = pair_keys(vocab.token_ids, vocab.sequence_sets)
    at_p = achieved(evaluate_sequences(graph, arr, w, p), keys, p)
    points = []
    for q in sweep:
        try:
            points.append(achieved(evaluate_sequences(graph, arr, w, q), keys, q))
        except FpArithmeticError as e:
            points.append(Achieved(q, None, None, error=" ".join(str(e).split())))
        if on_step:
            on_step(q)
    return ContextualReport(p, sep, at_p, lemma_constants(sep), points)


def parse_range(text: str, low: int = MIN_PRECISION, high: int = MAX_APPROX_SWEEP_PRECISION) -> list[int]:
    """'2..64' → [2, …, 64]; a ConfigError for anything else or a range outside [low, high]."""
    start, sep, stop = (part.strip() for part in text.partition(".."))
    if not all(p.isascii() and p.isdigit() and len(p) <= 16 for p in (start, stop)):
        raise ConfigError(f"--sweep-precision {text[:40]!r}: expected A..B with integers in digits 0-9, e.g. 2..64")
    a, b = int(start), int(stop)
    if not sep or a > b or a < low or b > high:
        raise ConfigError(f"--sweep-precision {text!r}: expected A..B with {low} <= A <= B <= {high}")
    return list(range(a, b + 1))
