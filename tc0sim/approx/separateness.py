"""Tokenwise separateness of embeddings (Definition 5.2 of the universal-approximation papers).

For embeddings ``X⁽¹⁾, …, X⁽ᴺ⁾ ∈ ℝ^{n×d}`` the definition asks (i) ‖X_k⁽ⁱ⁾‖ > γ_min, (ii)
‖X_k⁽ⁱ⁾‖ < γ_max and (iii) ‖X_k⁽ⁱ⁾ − X_l⁽ʲ⁾‖ > δ whenever the two tokens differ. The report gives
the extreme values these strict inequalities are measured against: the least and largest token
norm and the least distance between two distinct tokens (so the embeddings are
(γ_min', γ_max', δ')-separated for every γ_min' < gamma_min, γ_max' > gamma_max, δ' < delta).
Distinct means different as real vectors (−0.0 equals 0.0). Every value is exact before its one
rounding to float64 (see :mod:`tc0sim.approx.exact`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from tc0sim.approx.exact import DyadicRows, min_distance, sqrt_fraction
from tc0sim.errors import ConfigError
from tc0sim.limits import MAX_APPROX_TOKENS
from tc0sim.io.inputs import read_archive


@dataclass(frozen=True)
class Vocabulary:
    """The distinct tokens (Definition 5.1's 𝒱) as exact rows, and each token's index into them."""

    rows: DyadicRows
    token_ids: np.ndarray  # [N, n] index of X_k^(i) in rows
    sequence_sets: tuple[frozenset[int], ...]  # 𝒱^(i) as sets of token ids


def check_embeddings(x: Any, name: str = "X") -> np.ndarray:
    """``x`` as a finite float64 array of shape (N, n, d), N, n, d ≥ 1; else a ConfigError."""
    arr = np.asarray(x)
    if arr.ndim != 3 or 0 in arr.shape:
        raise ConfigError(f"{name} must have shape (N, n, d) with N, n, d >= 1, got {arr.shape}")
    if arr.shape[0] * arr.shape[1] > MAX_APPROX_TOKENS:
        raise ConfigError(f"{name} has {arr.shape[0] * arr.shape[1]:,} tokens, above the {MAX_APPROX_TOKENS:,} read at once")
    if arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and arr.dtype.itemsize > 8):
        raise ConfigError(f"{name} must hold real numbers of at most float64 precision, got dtype {arr.dtype}")
    if arr.dtype.kind in "iu" and arr.size and int(np.abs(arr.astype(object)).max()) > 2**53:
        raise ConfigError(f"{name} has integers above 2^53, which float64 does not hold exactly")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ConfigError(f"{name} has a value that is not finite")
    return arr + 0.0  # −0.0 becomes 0.0: equal reals are equal tokens


def vocabulary(x: np.ndarray) -> Vocabulary:
    """The distinct tokens of X (N, n, d) with their ids (exact equality of the float64 rows)."""
    n_seq, n_tok, d = x.shape
    flat = x.reshape(n_seq * n_tok, d)
    unique, inverse = np.unique(flat, axis=0, return_inverse=True)
    ids = inverse.reshape(n_seq, n_tok)
    sets = tuple(frozenset(row.tolist()) for row in ids)
    return Vocabulary(DyadicRows.from_values(unique.tolist()), ids, sets)


@dataclass(frozen=True)
class Separateness:
    """Definition 5.2's measured constants; exact squares as Fractions, reported values as float64."""

    gamma_min: float
    gamma_max: float
    delta: float | None
    vocabulary: int
    distinct_within_sequences: bool
    kappa: float
    gamma_min_squared: Fraction
    gamma_max_squared: Fraction
    delta_squared: Fraction | None
    shape: tuple[int, int, int]
    closest_pair: tuple[tuple[float, ...], tuple[float, ...]] | None
    verified_pairs: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: gamma_min, gamma_max, delta, vocabulary, distinct_within_sequences, kappa, and
        the exact squares as strings "p/q"."""
        return {
            "gamma_min": self.gamma_min,
            "gamma_max": self.gamma_max,
            "delta": self.delta,
            "vocabulary": self.vocabulary,
            "distinct_within_sequences": self.distinct_within_sequences,
            "kappa": self.kappa,
            "exact": {
                "gamma_min_squared": str(self.gamma_min_squared),
                "gamma_max_squared": str(self.gamma_max_squared),
                "delta_squared": None if self.delta_squared is None else str(self.delta_squared),
            },
            "N": self.shape[0],
            "n": self.shape[1],
            "d": self.shape[2],
            "closest_pair": None if self.closest_pair is None else [list(t) for t in self.closest_pair],
            "verified_pairs": self.verified_pairs,
        }


def distinct_within(ids: np.ndarray) -> bool:
    """Lemma 5.4's condition: X_k⁽ⁱ⁾ ≠ X_l⁽ⁱ⁾ for every sequence i and k ≠ l."""
    return all(len(set(row.tolist())) == len(row) for row in ids)


def separateness(x: Any) -> Separateness:
    """Definition 5.2's γ_min, γ_max, δ, |𝒱|, Lemma 5.4's distinctness condition and κ = γ_max/γ_min."""
    arr = check_embeddings(x)
    vocab = vocabulary(arr)
    rows = vocab.rows
    scale = Fraction(1, 1 << (2 * rows.shift))
    squares = [rows.squared_norm(i) for i in range(len(rows))]
    lo, hi = min(squares), max(squares)
    pair = min_distance(rows)
    delta_sq = None if pair.squared is None else pair.squared * scale
    closest = None
    if pair.pairs:
        i, j = pair.pairs[0]
        closest = (_row_float(rows, i), _row_float(rows, j))
    kappa = sqrt_fraction(Fraction(hi, lo)) if lo else float("inf")
    return Separateness(
        gamma_min=rows.norm(lo),
        gamma_max=rows.norm(hi),
        delta=None if delta_sq is None else sqrt_fraction(delta_sq),
        vocabulary=len(rows),
        distinct_within_sequences=distinct_within(vocab.token_ids),
        kappa=kappa,
        gamma_min_squared=lo * scale,
        gamma_max_squared=hi * scale,
        delta_squared=delta_sq,
        shape=tuple(arr.shape),
        closest_pair=closest,
        verified_pairs=pair.candidates,
    )


def _row_float(rows: DyadicRows, i: int) -> tuple[float, ...]:
    return tuple(m / (1 << rows.shift) for m in rows.ints[i])


def load_embeddings(path: str, key: str = "X") -> np.ndarray:
    """The array ``key`` of an .npz archive, checked to be (N, n, d) finite reals."""
    arrays = read_archive(path, "embeddings")
    if key not in arrays:
        raise ConfigError(f"embeddings {path}: no array {key!r} (the archive holds {', '.join(arrays) or 'nothing'})")
    return check_embeddings(arrays[key], f"{path}: {key}")
