"""The official VAR sampler circuit (tc0sim/ops/sampler.py) and its random stream (tc0sim/ops/torch_rng.py).

Oracles: torch 2.13.0's own ``torch.multinomial``, ``argmax``, ``topk``, ``sort``, ``softmax`` and
``exponential_`` on CPU (float64 at p = 53; float32 at p = 24, where one F_24 division is the IEEE
binary32 division for these normal-range values), and for the stream itself numpy's legacy MT19937
(``RandomState``, the reference seeding) plus ``math.log1p`` (the facts of docs/samplers.md).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from tc0sim.errors import ConfigError
from tc0sim.interp.depth import depth
from tc0sim.interp.evaluate import evaluate
from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder
from tc0sim.ir.vectors import vec
from tc0sim.ops import sampler, torch_rng

torch = pytest.importorskip("torch")


def _race(probs: np.ndarray, q: np.ndarray, p: int = 53) -> tuple[np.ndarray, np.ndarray]:
    b = Builder()
    onehot, index = sampler.race(b, b.input("p", probs.shape), b.input("q", q.shape))
    b.output("onehot", onehot)
    b.output("index", index)
    out = evaluate(b.graph, p, {"p": probs, "q": q}, values="float64")
    return out["onehot"], out["index"].astype(np.int64)


def _sample(logits: np.ndarray, q: np.ndarray, top_k: int, top_p: float) -> np.ndarray:
    b = Builder()
    _, index = sampler.official_sample(b, b.input("l", logits.shape), b.input("q", q.shape), top_k, top_p)
    b.output("index", index)
    return evaluate(b.graph, 53, {"l": logits, "q": q}, values="float64")["index"].astype(np.int64)


def _probs(rng: np.random.Generator, n: int, vocab: int) -> np.ndarray:
    """Random rows with about a third of the entries zero (as after top-k/top-p), each row summing to ≈ 1."""
    w = rng.random((n, vocab)) * (rng.random((n, vocab)) > 0.3)
    w[:, rng.integers(vocab)] += 0.1
    return w / w.sum(axis=1, keepdims=True)


# -- the stream: torch's CPU exponential_ is mt19937 → 53-bit uniform → −log1p(−u) in float64 -----------------

def _mt_exponentials(seed: int, count: int, skip: int = 0) -> np.ndarray:
    # RandomState(seed) is mt19937 seeded by init_genrand(seed), as std::mt19937(seed); randint over the
    # full 32-bit range returns its raw words
    words = np.random.RandomState(seed).randint(0, 2**32, size=2 * (skip + count), dtype=np.uint32)
    words = words[2 * skip:].astype(np.uint64)
    r64 = (words[0::2] << np.uint64(32)) | words[1::2]
    u = (r64 & np.uint64(2**53 - 1)).astype(np.float64) / 2.0**53
    return np.array([-math.log1p(-x) for x in u])


@pytest.mark.parametrize("seed", [0, 1, 42, 2**31 + 5, 2**32 - 1])
def test_stream_is_mt19937_then_minus_log1p(seed: int) -> None:
    expected = _mt_exponentials(seed, 600)
    got = torch_rng.official_exponentials(seed, [(4, 50), (5, 80)], "float64")
    assert np.array_equal(np.concatenate([got[0].ravel(), got[1].ravel()]), expected)
    got32 = torch_rng.official_exponentials(seed, (30, 20), "float32")
    assert np.array_equal(got32.ravel(), expected.astype(np.float32).astype(np.float64))  # the double, rounded


def test_multinomial_consumes_one_exponential_per_entry() -> None:
    probs = torch.from_numpy(_probs(np.random.default_rng(3), 6, 9))
    gen = torch_rng.generator(11)
    torch.multinomial(probs, 1, generator=gen)
    follow = torch.empty(5, dtype=torch.float64).exponential_(generator=gen).numpy()
    assert np.array_equal(follow, _mt_exponentials(11, 5, skip=6 * 9))


def test_seed_is_taken_modulo_2_to_the_32() -> None:
    assert np.array_equal(torch_rng.official_exponentials(2**32 + 1, (8,), "float64"), _mt_exponentials(1, 8))


@pytest.mark.parametrize("batch, words", [(1, 10), (3, 3)])
def test_label_draw_consumes_the_race_for_one_label_and_one_uniform_per_label_otherwise(batch: int, words: int) -> None:
    """B = 1: the race over the 10 classes (10 numbers); B > 1: one float64 uniform (two words) per label."""
    draws = torch_rng.official_draws(9, batch, (1,), 5, classes=10, label=None, dtype="float64")
    assert np.array_equal(draws.exponentials[0].ravel(), _mt_exponentials(9, batch * 5, skip=words))


def test_multinomial_refusals_and_unstable_sort() -> None:
    """The official code's inputs torch refuses, and the CPU sort's tie order that top-p inherits."""
    for bad, message in (([[0.5, -0.1]], "element < 0"), ([[0.0, 0.0]], "sum of probabilities"),
                         ([[math.inf, 1.0]], "inf")):
        with pytest.raises(RuntimeError, match=message):
            torch.multinomial(torch.tensor(bad), 1)
    ties = torch.zeros(1, 17)
    ties[0, ::3] = 1
    assert ties.sort(dim=-1).indices.tolist() != ties.sort(dim=-1, stable=True).indices.tolist()


# -- the race: argmax(p / q), first index on ties ------------------------------------------------------------

def test_race_ties_go_to_the_first_index() -> None:
    probs = np.array([[0.25, 0.25, 0.25, 0.25], [0.1, 0.2, 0.3, 0.4], [0.0, 0.5, 0.0, 0.5], [0.375, 0.375, 0.125, 0.125]])
    q = np.array([[2.0, 1.0, 1.0, 3.0], [0.5, 1.0, 1.5, 2.0], [1.0, 4.0, 1e-3, 4.0], [3.0, 3.0, 1.0, 1.0]])
    onehot, index = _race(probs, q)
    ref = (torch.from_numpy(probs) / torch.from_numpy(q)).argmax(dim=-1).numpy()
    assert index.tolist() == ref.tolist() == [1, 0, 1, 0]
    assert np.array_equal(onehot, np.eye(4)[ref])


@pytest.mark.parametrize("seed", range(6))
def test_race_near_ties_match_torch_bit_for_bit(seed: int) -> None:
    """Ratios one ulp apart, or equal after rounding, in float64 (p = 53) and float32 (p = 24)."""
    rng = np.random.default_rng(seed)
    n, vocab = 6, 7
    for dtype, p in ((np.float64, 53), (np.float32, 24)):
        q = (0.5 + rng.exponential(size=(n, vocab))).astype(dtype)  # others' ratios stay below 3
        probs = (rng.random((n, vocab)) + 0.5).astype(dtype)
        for row in range(n):
            u, v = rng.choice(vocab, 2, replace=False)
            q[row, [u, v]] = np.minimum(q[row, [u, v]], dtype(4))
            probs[row, [u, v]] *= 64  # exact: the pair's ratios exceed 7, so the pair holds the maximum
            target = probs[row, v] / q[row, v]  # the winner's ratio, rounded in dtype
            probs[row, u] = target * q[row, u]  # rounded: the two ratios are equal or an ulp or two apart
            if row % 3 == 1:  # one ulp up or down
                probs[row, u] = np.nextafter(probs[row, u], np.array(rng.choice([np.inf, -np.inf]), dtype=dtype))
        ref = (torch.from_numpy(probs) / torch.from_numpy(q)).argmax(dim=-1).numpy()
        _, index = _race(probs.astype(np.float64), q.astype(np.float64), p)
        assert index.tolist() == ref.tolist()


@pytest.mark.parametrize("dtype, p", [("float64", 53), ("float32", 24)])
@pytest.mark.parametrize("seed", [0, 1, 7, 123, 2024, 99991])
def test_race_reproduces_seeded_multinomial_over_scales(seed: int, dtype: str, p: int) -> None:
    """One generator, a label draw then several scales with B = 2 rows each, as autoregressive_infer_cfg."""
    rng = np.random.default_rng(seed)
    batch, scales, vocab, classes = 2, (1, 2, 3), 11, 7
    draws = torch_rng.official_draws(seed, batch, scales, vocab, classes=classes, label=None, dtype=dtype)
    gen = torch.Generator().manual_seed(seed)
    uniform = torch.full((1, classes), 1.0 / classes, dtype=torch.float32)
    labels = torch.multinomial(uniform, num_samples=batch, replacement=True, generator=gen).reshape(batch)
    assert draws.labels.tolist() == labels.tolist()
    for k, pn in enumerate(scales):
        probs = _probs(rng, batch * pn * pn, vocab).astype(dtype)
        official = torch.multinomial(torch.from_numpy(probs), 1, generator=gen)[:, 0].numpy()
        _, index = _race(probs.astype(np.float64), draws.exponentials[k], p)
        assert index.tolist() == official.tolist()


@pytest.mark.parametrize("seed", range(40))
def test_official_draws_follow_multinomial_for_many_seeds(seed: int) -> None:
    """The stream alone (first argmax in numpy), over random batch sizes, scales and dtypes."""
    rng = np.random.default_rng(1000 + seed)
    batch, vocab, dtype = int(rng.integers(1, 4)), int(rng.integers(2, 40)), ["float32", "float64"][seed % 2]
    scales = tuple(int(x) for x in np.sort(rng.choice(np.arange(1, 6), size=int(rng.integers(1, 4)), replace=False)))
    draws = torch_rng.official_draws(seed, batch, scales, vocab, classes=13, label=None, dtype=dtype)
    gen = torch_rng.generator(seed)
    torch.multinomial(torch.full((1, 13), 1.0 / 13), batch, replacement=True, generator=gen)
    for pn, q in zip(scales, draws.exponentials):
        probs = torch.from_numpy(_probs(rng, batch * pn * pn, vocab).astype(dtype))
        official = torch.multinomial(probs, 1, generator=gen)[:, 0]
        assert (probs / torch.from_numpy(q).to(probs.dtype)).argmax(dim=-1).tolist() == official.tolist()


# -- top-k / top-p / the whole official sampler ---------------------------------------------------------------

def _official_reference(logits: "torch.Tensor", top_k: int, top_p: float, gen: "torch.Generator") -> np.ndarray:
    """sample_with_top_k_top_p_ restated with torch's own functions (float64)."""
    x = logits.clone()
    if top_k > 0:
        kth = x.topk(top_k, dim=-1).values.amin(dim=-1, keepdim=True)
        x = x.masked_fill(x < kth, -math.inf)
    if top_p > 0:
        values, order = x.sort(dim=-1)
        drop = values.softmax(dim=-1).cumsum(dim=-1) <= 1 - top_p
        drop[..., -1] = False
        x = x.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), -math.inf)
    return torch.multinomial(x.softmax(dim=-1), 1, generator=gen)[:, 0].numpy()


def _far_from_cut(logits: np.ndarray, top_k: int, top_p: float) -> bool:
    """No ascending cumulative probability within 1e-9 of 1 − top_p (else the float cumsum may flip)."""
    if top_p <= 0:
        return True
    x = torch.from_numpy(logits)
    if top_k > 0:
        x = x.masked_fill(x < x.topk(top_k, dim=-1).values.amin(dim=-1, keepdim=True), -math.inf)
    cum = x.sort(dim=-1).values.softmax(dim=-1).cumsum(dim=-1).numpy()
    return bool(np.all(np.abs(cum - (1 - top_p)) > 1e-9))


@pytest.mark.parametrize("top_k, top_p", [(0, 0.0), (1, 0.0), (3, 0.0), (12, 0.0), (0, 0.5), (0, 0.95), (4, 0.8),
                                          (2, 0.99), (0, 1.0)])
def test_official_sample_matches_torch(top_k: int, top_p: float) -> None:
    n, vocab, checked = 5, 12, 0
    for seed in range(8):
        logits = np.random.default_rng(seed).standard_normal((n, vocab)) * 2
        if not _far_from_cut(logits, top_k, top_p):
            continue
        q = torch_rng.official_exponentials(seed, (n, vocab), "float64")
        official = _official_reference(torch.from_numpy(logits), top_k, top_p, torch_rng.generator(seed))
        assert _sample(logits, q, top_k, top_p).tolist() == official.tolist()
        checked += 1
    assert checked >= 6


def test_top_k_keeps_every_tie_with_the_kth_value() -> None:
    logits = np.array([[3.0, 1.0, 2.0, 2.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0, 0.0, 5.0]])
    b = Builder()
    x = b.input("l", logits.shape)
    b.output("keep", sampler.top_k_keep(b, sampler.pairwise_less(b, x), 2))
    keep = evaluate(b.graph, 53, {"l": logits}, values="float64")["keep"]
    ref = (torch.from_numpy(logits) >= torch.from_numpy(logits).topk(2, dim=-1).values.amin(dim=-1, keepdim=True))
    assert np.array_equal(keep, ref.numpy().astype(np.float64))
    assert keep.sum(axis=1).tolist() == [4, 5]  # more than k kept when the k-th value is tied
    for seed in range(4):  # the whole sampler on tied logits (top-k only: top-p tie order is torch's own)
        q = torch_rng.official_exponentials(seed, logits.shape, "float64")
        assert _sample(logits, q, 2, 0.0).tolist() == _official_reference(
            torch.from_numpy(logits), 2, 0.0, torch_rng.generator(seed)).tolist()


def test_top_k_above_the_codebook_is_refused_as_the_official_code_raises() -> None:
    with pytest.raises(RuntimeError, match="out of range"):
        torch.zeros(1, 4).topk(5)
    b = Builder()
    with pytest.raises(ConfigError, match="top_k = 5 exceeds the codebook size 4"):
        sampler.official_sample(b, b.input("l", (2, 4)), b.input("q", (2, 4)), top_k=5)


def test_race_depth_and_size() -> None:
    n, vocab = 3, 5
    b = Builder()
    onehot, index = sampler.race(b, b.input("p", (n, vocab)), b.input("q", (n, vocab)))
    b.output("index", index)
    # p/q; the compare matrix; the signed count; its compare; v·onehot; ⊕ of it
    assert depth(b.graph).critical == [vec(d_std=4, d_sum=2)]
    assert dict(size(b.graph).by_primitive) == {"div": n * vocab, "compare": n * vocab * vocab + n * vocab,
                                                 "sum": n * vocab + n, "mul": n * vocab}


# -- more_smooth: the Gumbel path -----------------------------------------------------------------------------

def test_smooth_constants_are_the_official_floats() -> None:
    assert sampler.smooth_constants(0, 10) == (Fraction(1), Fraction(0.27))
    assert sampler.smooth_constants(9, 10) == (Fraction(2.0), Fraction(0.27 * (1 - 1.0 * 0.95)))
    assert sampler.smooth_constants(3, 10) == (Fraction(1 + 3 / 9), Fraction(0.27 * (1 - (3 / 9) * 0.95)))
    with pytest.raises(ConfigError, match="two scales"):
        sampler.smooth_constants(0, 1)


@pytest.mark.parametrize("top_k", [0, 3])
def test_more_smooth_matches_torch_over_scales(top_k: int) -> None:
    """Each scale: multinomial on the masked logits, then Gumbel noise from the same generator (float64)."""
    seed, vocab, scales = 5, 9, (1, 2)
    rng = np.random.default_rng(seed)
    draws = torch_rng.official_draws(seed, 1, scales, vocab, label=3, dtype="float64", more_smooth=True)
    gen = torch_rng.generator(seed)
    for si, pn in enumerate(scales):
        n = pn * pn
        logits = rng.standard_normal((n, vocab))
        x = torch.from_numpy(logits)
        if top_k:
            x = x.masked_fill(x < x.topk(top_k, dim=-1).values.amin(dim=-1, keepdim=True), -math.inf)
        index_ref = torch.multinomial(x.softmax(dim=-1), 1, generator=gen)[:, 0].numpy()
        g = -torch.empty(1, n, vocab, dtype=torch.float64).exponential_(generator=gen).log().reshape(n, vocab)
        scale, tau = sampler.smooth_constants(si, len(scales))
        soft_ref = ((x * float(scale) + g) / float(tau)).softmax(dim=-1).numpy()
        b = Builder()
        soft, index = sampler.official_sample(b, b.input("l", (n, vocab)), b.input("q", (n, vocab)), top_k,
                                              gumbels=b.input("g", (n, vocab)), scale_index=si, scales=len(scales))
        b.output("soft", soft)
        b.output("index", index)
        out = evaluate(b.graph, 53, {"l": logits, "q": draws.exponentials[si], "g": draws.gumbels[si]}, values="float64")
        assert np.array_equal(draws.gumbels[si], g.numpy())
        assert out["index"].astype(np.int64).tolist() == index_ref.tolist()
        assert np.all(np.abs(out["soft"] - soft_ref) <= 1e-12 * np.maximum(1.0, np.abs(soft_ref)))
        assert np.array_equal(out["soft"] == 0, soft_ref == 0)


# -- the stream's inputs ---------------------------------------------------------------------------------------

def test_official_draws_labels_and_errors() -> None:
    assert torch_rng.official_draws(0, 3, (1,), 4, classes=10, label=-1).labels.tolist() == [10, 10, 10]
    assert torch_rng.official_draws(0, 2, (1,), 4, classes=10, label=7).labels.tolist() == [7, 7]
    with pytest.raises(ConfigError, match="label 10 is not a class"):
        torch_rng.official_draws(0, 1, (1,), 4, classes=10, label=10)
    with pytest.raises(ConfigError, match="dtype 'float16'"):
        torch_rng.official_exponentials(0, (2, 2), "float16")
    with pytest.raises(ConfigError, match="torch seed"):
        torch_rng.generator(-1)
