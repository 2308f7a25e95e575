"""The official VAR sampler as a circuit (docs/samplers.md).

``sample_with_top_k_top_p_`` of the released VAR code (FoundationVision/VAR @78b9539,
models/helpers.py) followed by ``torch.multinomial(probs, 1, generator)``, which on CPU draws one
Exp(1) number ``q_v`` per entry and returns ``argmax_v p_v / q_v`` (first index on ties). The Exp(1)
numbers are explicit circuit inputs (``tc0sim.ops.torch_rng`` draws them from torch's own stream):

* ``less[u, v] = [l_u < l_v]``, one compare per pair (constant depth, V² gates per row);
* top-k: v is kept iff ``⊕_u [l_v < l_u] ≤ k − 1`` (every tie with the k-th largest is kept, as
  ``logits < kth_value`` removes); ``top_k > V`` is refused, as the official ``topk`` raises;
* top-p: probabilities ``p = w / ⊕w`` of the kept weights ``w = keep·e^l``; in ascending logit order
  with ties by index, ``cum_v = ⊕_u p_u·before[u, v]``; v is dropped iff ``cum_v ≤ 1 − top_p`` and v
  is not last in that order;
* the race: ``probs = w / ⊕w``, ``r = probs / q``, and the first maximum of r from the compare matrix
  (``first_argmax``);
* ``more_smooth``: ``softmax((l·(1 + ratio) + g)/τ)`` over the kept entries with Gumbel noise
  ``g = −log E`` as an input (``gumbel_softmax_with_rng``).

Every function takes rows ``[n, V]``. ``inverse_cdf_sample`` is the other sampler of ``var_release``
(``sampler: inverse_cdf``): the same masks, then the inverse CDF on one uniform per row.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from tc0sim.errors import ConfigError
from tc0sim.ir.graph import Builder, Tensor

VAR_REF = "VAR as released (arXiv 2404.02905; official autoregressive_infer_cfg)"
"""The scope reference of the inverse-CDF sampler (the ``var_release`` model's, as before it moved here)."""
REF = "official VAR sampler (FoundationVision/VAR @78b9539 models/helpers.py; torch.multinomial on CPU)"


@functools.lru_cache(maxsize=2)
def _triangle_indices(vocab: int) -> np.ndarray:
    """Gather indices into ``[upper | lower]`` (each flattened to V² entries): upper where u ≤ v, else lower."""
    flat = np.arange(vocab * vocab, dtype=np.int64).reshape(vocab, vocab)
    upper = np.triu(np.ones((vocab, vocab), dtype=bool))
    out = np.where(upper, flat, vocab * vocab + flat)
    out.setflags(write=False)
    return out


def by_triangle(b: Builder, upper: Tensor, lower: Tensor) -> Tensor:
    """``[n, u, v]``: ``upper[n, u, v]`` where u ≤ v, ``lower[n, u, v]`` where u > v (wiring only)."""
    n, vocab, _ = upper.shape
    both = b.concat([b.reshape(upper, (n, vocab * vocab)), b.reshape(lower, (n, vocab * vocab))], axis=1)
    return b.gather(both, _triangle_indices(vocab), axis=1)


def pairwise_less(b: Builder, x: Tensor) -> Tensor:
    """``less[n, u, v] = [x_u < x_v]``: one compare per pair, depth d_std."""
    n, vocab = x.shape
    return b.compare(b.reshape(x, (n, vocab, 1)), b.reshape(x, (n, 1, vocab)))


def first_argmax(b: Builder, x: Tensor, less: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One-hot rows ``[n, V]`` and indices ``[n]`` of the first maximum of each row (torch.argmax).

    ``score_v = ⊕_{u<v} [x_u < x_v] − ⊕_{u>v} [x_v < x_u] ≤ v``, with equality iff every earlier
    entry is below x_v and no later one above it; ``onehot_v = [v − ½ < score_v]``,
    ``index = ⊕ v·onehot_v``. Depth 3 d_std + 2 d_sum; exact for V ≤ 2^(p−1).
    """
    n, vocab = x.shape
    with b.scope("first_argmax", REF):
        less = pairwise_less(b, x) if less is None else less
        signed = by_triangle(b, less, b.neg(b.transpose(less, (0, 2, 1))))
        score = b.sum(signed, axis=1)
        onehot = b.compare(b.constant((np.arange(vocab) - Fraction(1, 2)).reshape(1, vocab)), score)
        index = b.sum(b.mul(onehot, b.constant(np.arange(vocab).reshape(1, vocab))), axis=1)
    return onehot, index


def top_k_keep(b: Builder, less: Tensor, top_k: int) -> Tensor:
    """``keep[n, v] = [⊕_u [l_v < l_u] < k − ½]``: the official ``logits < topk(k).amin`` kept side."""
    vocab = less.shape[1]
    check_top_k(top_k, vocab)
    with b.scope("top_k", REF):
        above = b.sum(less, axis=2)
        return b.compare(above, b.constant(Fraction(2 * top_k - 1, 2)))


def top_p_keep(b: Builder, less: Tensor, weights: Tensor, top_p: float) -> Tensor:
    """``keep[n, v]``: 0 where the ascending cumulative probability ``cum_v ≤ 1 − top_p`` and v is not last.

    ``before[u, v] = [u precedes or is v]`` in ascending order with ties by index: ``1 − [l_v < l_u]``
    for u ≤ v, ``[l_u < l_v]`` for u > v; that is ``[u ≤ v] + G[u, v]`` with the wiring-only
    ``G = −[l_v < l_u]`` (u ≤ v), ``[l_u < l_v]`` (u > v). So ``cum_v = ⊕_u (p_u·[u ≤ v] ‖ p_u·G[u, v])``:
    one ⊕ of 2V exact terms, the value of ``⊕_u p_u·before[u, v]``; v is last iff ``⊕_u before[u, v] = V``,
    i.e. ``⊕_u G[u, v] > V − v − 3/2``. (Every element of G has the same depth: the depth interpreter
    keeps the V × V pattern factored.)
    """
    n, vocab = weights.shape
    with b.scope("top_p", REF):
        probs = b.reshape(b.div(weights, b.reshape(b.sum(weights, axis=1), (n, 1))), (n, vocab, 1))
        signed = by_triangle(b, b.neg(b.transpose(less, (0, 2, 1))), less)
        upto = by_triangle(b, b.broadcast(b.constant(1), (1, vocab, vocab)), b.broadcast(b.constant(0), (1, vocab, vocab)))
        cum = b.sum(b.concat([b.mul(probs, upto), b.mul(probs, signed)], axis=1), axis=1)
        bound = b.constant((vocab - np.arange(vocab) - Fraction(3, 2)).reshape(1, vocab))
        last = b.compare(bound, b.sum(signed, axis=1))
        above = b.compare(b.constant(Fraction(1 - top_p)), cum)  # 1 − top_p as the code's float64
        return b.max(above, last)


def check_top_k(top_k: int, vocab: int) -> None:
    """The official ``topk(top_k)`` raises for top_k > V ("selected index k out of range")."""
    if top_k > vocab:
        raise ConfigError(f"top_k = {top_k} exceeds the codebook size {vocab} (the official sampler raises)")


def masked_weights(b: Builder, logits: Tensor, top_k: int, top_p: float) -> tuple[Tensor, Tensor | None]:
    """``(keep·e^l, keep)`` after the official top-k then top-p masks (keep is None when both are off)."""
    check_top_k(top_k, logits.shape[1])
    weights, keep = b.exp(logits), None
    if top_k > 0 or top_p > 0:
        less = pairwise_less(b, logits)
    if top_k > 0:
        keep = top_k_keep(b, less, top_k)
        weights = b.mul(weights, keep)
    if top_p > 0:
        kept = top_p_keep(b, less, weights, top_p)
        keep = kept if keep is None else b.mul(keep, kept)
        weights = b.mul(weights, kept)
    return weights, keep


def race(b: Builder, probs: Tensor, exponentials: Tensor) -> tuple[Tensor, Tensor]:
    """``torch.multinomial(probs, 1)`` on CPU: the first argmax of ``probs / q`` (one-hot, index)."""
    with b.scope("race", REF):
        return first_argmax(b, b.div(probs, exponentials))


def official_sample(b: Builder, logits: Tensor, exponentials: Tensor, top_k: int = 0, top_p: float = 0.0,
                    gumbels: Tensor | None = None, scale_index: int = 0, scales: int = 1,
                    name: str = "sample") -> tuple[Tensor, Tensor]:
    """Codebook weights ``[n, V]`` and indices ``[n]`` of one scale: ``sample_with_top_k_top_p_`` with
    Exp(1) inputs ``q``. The weights are the one-hot rows, or with ``gumbels`` (``more_smooth``) the
    soft rows of ``gumbel_smooth`` at scale ``scale_index`` of ``scales`` (the indices are drawn
    either way, as in the official code)."""
    n, _ = logits.shape
    for what, t in (("exponentials", exponentials), ("gumbels", gumbels)):
        if t is not None and t.shape != logits.shape:
            raise ConfigError(f"{name}: {what} of shape {t.shape}, expected {logits.shape}")
    with b.scope(name, REF):
        weights, keep = masked_weights(b, logits, top_k, top_p)
        probs = b.div(weights, b.reshape(b.sum(weights, axis=1), (n, 1)))
        onehot, index = race(b, probs, exponentials)
        if gumbels is None:
            return onehot, index
        return gumbel_smooth(b, logits, gumbels, keep, *smooth_constants(scale_index, scales)), index


def smooth_constants(scale_index: int, scales: int) -> tuple[Fraction, Fraction]:
    """``(1 + ratio, τ)`` of the official ``more_smooth`` path at scale ``scale_index`` of ``scales``.

    ``ratio = si / (K − 1)``, ``τ = max(0.27·(1 − 0.95·ratio), 0.005)``, as the float64 values the
    code computes. K = 1 is refused: the official loop divides by K − 1.
    """
    if scales < 2:
        raise ConfigError("more_smooth needs at least two scales (the official code divides by K − 1)")
    ratio = scale_index / (scales - 1)
    return Fraction(1 + ratio), Fraction(max(0.27 * (1 - ratio * 0.95), 0.005))


def gumbel_smooth(b: Builder, logits: Tensor, gumbels: Tensor, keep: Tensor | None, scale: Fraction,
                  tau: Fraction) -> Tensor:
    """Soft rows ``[n, V]``: ``gumbel_softmax_with_rng(logits·scale, tau, hard=False)`` with ``g`` given.

    ``keep·e^((l·scale + g)/τ) / ⊕``: an entry masked by top-k/top-p (−∞ in the official code) weighs 0.
    """
    n, _ = logits.shape
    with b.scope("gumbel_smooth", REF):
        z = b.div(b.add(b.mul(logits, b.constant(scale)), gumbels), b.constant(tau))
        e = b.exp(z) if keep is None else b.mul(b.exp(z), keep)
        return b.div(e, b.reshape(b.sum(e, axis=1), (n, 1)))


def index_triangle(b: Builder, vocab: int) -> Tensor:
    """``tri[u, v] = [u ≤ v]`` as V² compares of constants (the inverse-CDF sampler's prefix sums)."""
    index_range = b.constant(np.arange(vocab).reshape(vocab, 1))
    return b.compare(index_range, b.constant((np.arange(vocab) + Fraction(1, 2)).reshape(1, vocab)))


def inverse_cdf_sample(b: Builder, logits: Tensor, uniform: Tensor, top_k: int, top_p: float, tri: Tensor) -> tuple[Tensor, Tensor]:
    """One-hot rows [n, V] and indices [n] sampled from ``logits`` [n, V] with one uniform per row.

    The official ``sample_with_top_k_top_p_`` as comparisons and sums (``G[u, v] = [l_u < l_v]``):

    1. top-k: keep v iff ``⊕_u [l_v < l_u] < k`` (all ties with the k-th largest kept, as
       ``logits < kth_value`` removes); weights ``w_v = keep_v · e^(l_v)``.
    2. top-p: ``p = w / ⊕w``; in ascending logit order with ties broken by index (``before[u, v] =
       G[u, v] + [l_u = l_v]·[u ≤ v]``), ``cum_v = ⊕_u p_u·before[u, v]``; v is dropped iff
       ``cum_v ≤ 1 − top_p`` and v is not last in that order (``⊕_u before[u, v] < V``).
    3. inverse CDF in index order: ``P_v = ⊕_{u ≤ v} w_u``, ``sel_v = [u·P_(V−1) < P_v]`` (and
       ``sel_(V−1) = 1``); the sample is the first v with ``sel_v = 1``: ``onehot = sel − sel shifted``,
       ``index = V − ⊕ sel``.

    ``tri[u, v] = [u ≤ v]`` (``index_triangle``) is computed once for the circuit. top_k = 0 or ≥ V and top_p = 0 disable
    their steps, as in the official code. PyTorch's own multinomial draws differently, so only the
    distribution (not the random stream) matches the official sampler.
    """
    n, vocab = logits.shape
    one = b.constant(1)
    with b.scope("sample", VAR_REF):
        weights = b.exp(logits)
        if 0 < top_k < vocab or top_p > 0:
            less = b.compare(b.reshape(logits, (n, vocab, 1)), b.reshape(logits, (n, 1, vocab)))  # [n, u, v]
        if 0 < top_k < vocab:
            with b.scope("top_k", REF):
                above = b.sum(less, axis=2)  # for v: ⊕_u [l_v < l_u]
                weights = b.mul(weights, b.compare(above, b.constant(Fraction(2 * top_k - 1, 2))))
        if top_p > 0:
            with b.scope("top_p", REF):
                probs = b.div(weights, b.reshape(b.sum(weights, axis=1), (n, 1)))
                equal = b.sub(b.sub(one, less), b.transpose(less, (0, 2, 1)))
                before = b.add(less, b.mul(equal, tri))
                cum = b.sum(b.mul(b.reshape(probs, (n, vocab, 1)), before), axis=1)
                last = b.compare(b.constant(Fraction(2 * vocab - 1, 2)), b.sum(before, axis=1))
                low = b.sub(one, b.compare(b.sub(one, b.constant(top_p)), cum))
                weights = b.mul(weights, b.sub(one, b.mul(low, b.sub(one, last))))
        with b.scope("inverse_cdf", REF):
            prefix = b.sum(b.mul(b.reshape(weights, (n, vocab, 1)), tri), axis=1)
            target = b.mul(b.reshape(uniform, (n, 1)), b.slice(prefix, 1, vocab - 1, vocab))
            sel = b.concat([b.slice(b.compare(target, prefix), 1, 0, vocab - 1), b.broadcast(b.reshape(one, (1, 1)), (n, 1))], axis=1)
            shifted = b.concat([b.broadcast(b.reshape(b.constant(0), (1, 1)), (n, 1)), b.slice(sel, 1, 0, vocab - 1)], axis=1)
            onehot = b.sub(sel, shifted)
            index = b.sub(b.constant(vocab), b.sum(sel, axis=1))
    return onehot, index


__all__: Sequence[str] = ["index_triangle", "inverse_cdf_sample", "first_argmax", "pairwise_less", "by_triangle", "top_k_keep", "top_p_keep", "check_top_k",
                          "masked_weights", "race", "official_sample", "smooth_constants", "gumbel_smooth"]
