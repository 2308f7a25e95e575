"""Independent references of the models var, flowar and fast_flowar (no tc0sim code is used here).

Written from the papers and SPEC §3–§4: seed 004 Section 4 and seed 000 Definitions 3.7–3.11 (VAR),
seed 002 Definitions B.1–B.13 (FlowAR) and Definitions 5.1, 5.3, 5.4 (fast FlowAR). Each model is
written once against an arithmetic backend:

* ``Float64`` — plain numpy float64 (the p = 53 comparison, to a tolerance);
* ``Rational(p)`` — exact Fractions rounded to nearest-even p-bit floats at exactly the places SPEC §3
  says a primitive rounds (every +, −, ·, / ; one rounding after a whole ⊕ or ⊗; exp and sqrt
  correctly rounded; inputs and constants rounded on entry) — the bit-exact oracle at low precision.

Sums are exact before their single rounding, so the order of the terms never matters: only the
rounding points do, and those are the ones SPEC §3 fixes for each operator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from itertools import combinations_with_replacement
from typing import Any

import mpmath
import numpy as np
from reference import round_fraction

KEYS_A = Fraction(-3, 4)
"""PyTorch's bicubic convolution parameter A (aten upsample_bicubic2d)."""


# ----------------------------------------------------------------------------------- arithmetic


class Float64:
    """numpy float64 arithmetic."""

    name = "float64"

    def entry(self, x: Any) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)

    def const(self, x: Any) -> np.ndarray:
        return np.asarray(np.vectorize(float, otypes=[np.float64])(np.asarray(x, dtype=object)), dtype=np.float64)

    def rnd(self, x: np.ndarray) -> np.ndarray:
        return x

    def exp(self, x: np.ndarray) -> np.ndarray:
        return np.exp(x)

    def sqrt(self, x: np.ndarray) -> np.ndarray:
        return np.sqrt(x)


class Rational:
    """Exact Fractions, rounded to p bits (nearest-even) once per primitive."""

    def __init__(self, p: int) -> None:
        self.p = p
        self.name = f"rational{p}"
        self._round = np.vectorize(lambda v: round_fraction(Fraction(v), p), otypes=[object])
        work = 4 * p + 80

        def exp1(v: Fraction) -> Fraction:
            with mpmath.workprec(work):
                return round_fraction(_mpf_fraction(mpmath.exp(mpmath.mpf(v.numerator) / v.denominator)), p)

        def sqrt1(v: Fraction) -> Fraction:
            if v < 0:
                raise ArithmeticError("sqrt of a negative number")
            with mpmath.workprec(work):
                return round_fraction(_mpf_fraction(mpmath.sqrt(mpmath.mpf(v.numerator) / v.denominator)), p)

        self._exp = np.vectorize(exp1, otypes=[object])
        self._sqrt = np.vectorize(sqrt1, otypes=[object])

    def entry(self, x: Any) -> np.ndarray:
        return self._round(np.asarray(x, dtype=object))

    def const(self, x: Any) -> np.ndarray:
        return self._round(np.asarray(x, dtype=object))

    def rnd(self, x: np.ndarray) -> np.ndarray:
        return self._round(np.asarray(x, dtype=object))

    def exp(self, x: np.ndarray) -> np.ndarray:
        return self._exp(x)

    def sqrt(self, x: np.ndarray) -> np.ndarray:
        return self._sqrt(x)


def _mpf_fraction(v: Any) -> Fraction:
    """An mpmath mpf (a dyadic rational) as an exact Fraction."""
    sign, man, exp, _ = v._mpf_
    value = Fraction(int(man)) * Fraction(2) ** int(exp)
    return -value if sign else value


Arith = Float64 | Rational


class Ops:
    """The primitives of SPEC §1 over one backend: each call rounds once."""

    def __init__(self, arith: Arith) -> None:
        self.a = arith

    def add(self, x, y):
        return self.a.rnd(x + y)

    def sub(self, x, y):
        return self.a.rnd(x - y)

    def mul(self, x, y):
        return self.a.rnd(x * y)

    def div(self, x, y):
        return self.a.rnd(x / y)

    def relu(self, x):
        return np.where(x > 0, x, x * 0)

    def exp(self, x):
        return self.a.exp(x)

    def sqrt(self, x):
        return self.a.sqrt(x)

    def sum(self, x, axis):
        return self.a.rnd(np.sum(x, axis=axis))

    def prod(self, x, axis):
        return self.a.rnd(np.prod(x, axis=axis))

    def const(self, x):
        return self.a.const(x)

    # ------------------------------------------------------------------- operators (SPEC §3)

    def matmul(self, x, y):
        """(XY)_ij = ⊕_k (X_ik · Y_kj) (seed 004 Lemma 5.2)."""
        return self.sum(self.mul(x[:, :, None], y[None, :, :]), axis=1)

    def attention(self, x, w_q, w_k, w_v):
        """Attn(X) = D⁻¹ A X W_V, A = exp(X W_Q W_Kᵀ Xᵀ) (seed 004 Definitions 4.4, 4.5; seed 002 B.5)."""
        m = self.matmul(w_q, w_k.T)
        a = self.exp(self.matmul(self.matmul(x, m), x.T))
        inverse = self.div(self.const(1), self.sum(a, axis=1))
        values = self.matmul(self.matmul(a, x), w_v)
        return self.mul(inverse[:, None], values)

    def taylor_attention(self, x, w_q, w_k, w_v, degree):
        """AAttC (seed 002 Definition 5.1): exp(⟨q,k⟩) replaced by Σ_{j≤g} ⟨q,k⟩^j/j! written as
        ⟨φ1(q), φ2(k)⟩ with φ1(q)_α = q^α/α!, φ2(k)_α = k^α (multinomial theorem), so that
        out = (U1 (U2ᵀ V)) / (U1 (U2ᵀ 1)) (SPEC §3)."""
        q, k, v = self.matmul(x, w_q), self.matmul(x, w_k), self.matmul(x, w_v)
        n, d = q.shape
        alphas = [alpha for j in range(degree + 1) for alpha in combinations_with_replacement(range(d), j)]

        def features(z):
            columns = []
            for alpha in alphas:
                if len(alpha) == 0:
                    columns.append(self.const([1] * n))
                elif len(alpha) == 1:
                    columns.append(z[:, alpha[0]])
                else:
                    columns.append(self.prod(z[:, list(alpha)], axis=1))
            return np.stack(columns, axis=1)

        inverse_factorial = [
            Fraction(1, math.prod(math.factorial(alpha.count(i)) for i in set(alpha))) for alpha in alphas
        ]
        u1 = self.mul(features(q), self.const(inverse_factorial)[None, :])
        u2 = features(k)
        numerator = self.matmul(u1, self.matmul(u2.T, v))
        denominator = self.matmul(u1, self.sum(u2, axis=0)[:, None])
        return self.div(numerator, denominator)

    def mlp(self, x, w, bias):
        """X W + b (seed 004 Definition 4.6, seed 002 Definition B.6)."""
        return self.add(self.matmul(x, w), bias[None, :])

    def ffn(self, x, w1, w2, b1, b2):
        """X + (ReLU(X W1 + b1) W2 + b2) (seed 002 Definition B.7, seed 000 Definition 3.5)."""
        return self.add(x, self.mlp(self.relu(self.mlp(x, w1, b1)), w2, b2))

    def layernorm(self, x):
        """(X − μ)/√σ² per row (seed 004 Definition 4.7, seed 002 Definition B.8)."""
        width = self.const(x.shape[1])
        mean = self.div(self.sum(x, axis=1), width)
        centered = self.sub(x, mean[:, None])
        variance = self.div(self.sum(self.mul(centered, centered), axis=1), width)
        return self.div(centered, self.sqrt(variance)[:, None])

    def upsample(self, x, out_h, out_w):
        """Bicubic up-interpolation, PyTorch semantics (align_corners=False, A = −3/4, clamped taps):
        Y_ijl = ⊕_{s,t} ((W_s · X) · W_t) (seed 004 Definition 4.3, SPEC §3)."""
        row_idx, row_w = bicubic_taps(x.shape[0], out_h)
        col_idx, col_w = bicubic_taps(x.shape[1], out_w)
        taps = x[row_idx][:, :, col_idx]  # [out_h, 4, out_w, 4, c]
        weighted = self.mul(self.mul(self.const(row_w)[:, :, None, None, None], taps), self.const(col_w)[None, None, :, :, None])
        return self.sum(weighted, axis=(1, 3))

    def downsample(self, x, out_h, out_w):
        """Area averaging Φ_down X (seed 002 Definition B.2): ⊕ of (1/r²)·X over each block."""
        h, w, c = x.shape
        rh, rw = h // out_h, w // out_w
        blocks = x.reshape(out_h, rh, out_w, rw, c)
        return self.sum(self.mul(self.const(Fraction(1, rh * rw)), blocks), axis=(1, 3))

    def conv2d(self, x, kernel, bias):
        """Stride-1 convolution with zero 'same' padding (seed 004 Definition 4.10), one ⊕ of all the
        products and the bias; PyTorch's padding="same" puts ⌊(k−1)/2⌋ zeros before."""
        h, w, c = x.shape
        k, hk, wk, _ = kernel.shape
        top, left = (hk - 1) // 2, (wk - 1) // 2
        padded = np.zeros((h + hk - 1, w + wk - 1, c), dtype=x.dtype)
        if padded.dtype == object:
            padded[...] = Fraction(0)
        padded[top : top + h, left : left + w] = x
        windows = np.stack(
            [np.stack([padded[i : i + hk, j : j + wk] for j in range(w)]) for i in range(h)]
        )  # [h, w, hk, wk, c]
        products = self.mul(windows[:, :, None], kernel[None, None])  # [h, w, k, hk, wk, c]
        terms = products.reshape(h, w, k, hk * wk * c)
        with_bias = np.concatenate([terms, np.broadcast_to(bias[None, None, :, None], (h, w, k, 1))], axis=3)
        return self.sum(with_bias, axis=3)

    def flow(self, y_hat, f0, t: Fraction, kind: str):
        """F^t = t Ŷ + (1−t) F0 (seed 002 Definition B.10) or the quadratic Bézier of Definition B.11."""
        if kind == "linear":
            return self.add(self.mul(self.const(t), y_hat), self.mul(self.const(1 - t), f0))
        control = self.div(self.add(f0, y_hat), self.const(2))
        terms = [
            self.mul(self.const((1 - t) ** 2), f0),
            self.mul(self.const(2 * t * (1 - t)), control),
            self.mul(self.const(t * t), y_hat),
        ]
        return self.sum(np.stack(terms, axis=-1), axis=-1)

    def flow_matching(self, y_hat, f_t, t: Fraction, weights: dict[str, np.ndarray], attend: Callable):
        """NN(Ŷ, F^t, t) of seed 002 Definition B.12 on [h, w, c] maps."""
        h, w, c = y_hat.shape
        modulation = self.mlp(self.add(y_hat.reshape(h * w, c), self.const(t)), weights["W_ada"], weights["b_ada"])
        alpha1, alpha2, beta1, beta2, gamma1, gamma2 = (modulation[:, i * c : (i + 1) * c] for i in range(6))
        attn_in = self.add(self.mul(gamma1, self.layernorm(f_t.reshape(h * w, c))), beta1)
        intermediate = self.mul(attend(attn_in, weights["W_Q"], weights["W_K"], weights["W_V"]), alpha1)
        mlp_in = self.add(self.mul(gamma2, self.layernorm(intermediate)), beta2)
        return self.mul(self.mlp(mlp_in, weights["W_mlp"], weights["b_mlp"]), alpha2).reshape(h, w, c)


def cubic_weights(t: Fraction) -> list[Fraction]:
    """PyTorch's get_cubic_upsample_coefficients(t): the four tap weights at fractional offset t."""
    a = KEYS_A

    def near(x: Fraction) -> Fraction:  # cubic_convolution1, |x| ≤ 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: Fraction) -> Fraction:  # cubic_convolution2, 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def bicubic_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Clamped source indices [out, 4] and exact weights [out, 4] of PyTorch's bicubic resize."""
    indices = np.zeros((out_size, 4), dtype=np.int64)
    weights = np.empty((out_size, 4), dtype=object)
    for i in range(out_size):
        real = Fraction(in_size, out_size) * (i + Fraction(1, 2)) - Fraction(1, 2)
        base = math.floor(real)
        for k, weight in enumerate(cubic_weights(real - base)):
            indices[i, k] = min(max(base - 1 + k, 0), in_size - 1)
            weights[i, k] = weight
    return indices, weights


# ----------------------------------------------------------------------------------- models


def _maps_to_tokens(maps: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([m.reshape(-1, m.shape[2]) for m in maps], axis=0)


def _tokens_to_maps(x: np.ndarray, sizes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    maps, start = [], 0
    for h, w in sizes:
        maps.append(x[start : start + h * w].reshape(h, w, x.shape[1]))
        start += h * w
    return maps


def var_reference(
    values: dict[str, Any],
    arith: Arith,
    scales: Sequence[int | Sequence[int]],
    layers: int = 1,
    g: Sequence[str] = ("ffn",),
    decoder: Sequence[str] = ("resnet", "attn", "up"),
) -> dict[str, np.ndarray]:
    """VAR (seed 004 Section 4; seed 000 Definitions 3.7–3.11) on the named inputs ``values``.

    Phase 1: level k takes the previous pyramid X_1..X_{k−1}, forms Y_1 = X_init, Y_{i+1} = φ_up(X_i)
    (size of scale i+1), concatenates the tokens and applies ``layers`` × (g ∘ Attn); the result is split
    back into k maps (``scales``: ints for square maps or [h, w] pairs). Phase 2: Σ_k Conv_k(φ_up(r_k → final size)). Phase 3: the decoder blocks.
    """
    ops = Ops(arith)
    v = {name: arith.entry(x) for name, x in values.items()}
    sizes = [(s, s) if isinstance(s, int) else tuple(s) for s in scales]
    pyramid: list[np.ndarray] = []
    layer = 0
    for level in range(1, len(sizes) + 1):
        maps = [v["X_init"]] + [ops.upsample(m, *sizes[i + 1]) for i, m in enumerate(pyramid)]
        x = _maps_to_tokens(maps)
        for _ in range(layers):
            layer += 1
            p = f"L{layer}"
            x = ops.attention(x, v[f"{p}.W_Q"], v[f"{p}.W_K"], v[f"{p}.W_V"])
            for component in g:
                if component == "ffn":
                    x = ops.ffn(x, v[f"{p}.FFN.W1"], v[f"{p}.FFN.W2"], v[f"{p}.FFN.b1"], v[f"{p}.FFN.b2"])
                elif component == "mlp":
                    x = ops.mlp(x, v[f"{p}.MLP.W"], v[f"{p}.MLP.b"])
                else:
                    x = ops.layernorm(x)
        pyramid = _tokens_to_maps(x, sizes[:level])
    final = sizes[-1]
    parts = []
    for k, r in enumerate(pyramid, start=1):
        up = r if r.shape[:2] == final else ops.upsample(r, *final)
        parts.append(ops.conv2d(up, v[f"phase2.conv{k}.K"], v[f"phase2.conv{k}.b"]))
    features = parts[0] if len(parts) == 1 else ops.sum(np.stack(parts), axis=0)
    y = features
    for j, block in enumerate(decoder, start=1):
        p = f"dec{j}"
        h, w, c = y.shape
        if block == "resnet":
            inner = ops.relu(ops.conv2d(y, v[f"{p}.conv1.K"], v[f"{p}.conv1.b"]))
            y = ops.add(y, ops.conv2d(inner, v[f"{p}.conv2.K"], v[f"{p}.conv2.b"]))
        elif block == "attn":
            y = ops.attention(y.reshape(h * w, c), v[f"{p}.W_Q"], v[f"{p}.W_K"], v[f"{p}.W_V"]).reshape(h, w, c)
        else:
            y = ops.conv2d(ops.upsample(y, 2 * h, 2 * w), v[f"{p}.conv.K"], v[f"{p}.conv.b"])
    return {"out": y, "tokens": _maps_to_tokens(pyramid), "feature_map": features}


def flowar_reference(
    values: dict[str, Any],
    arith: Arith,
    h: int,
    w: int,
    K: int,
    a: int,
    times: Sequence[Fraction],
    flow: str = "linear",
    layers: int = 1,
    mode: str = "inference",
    degree: int | None = None,
) -> dict[str, np.ndarray]:
    """FlowAR inference (seed 002 Definition B.13) — or fast FlowAR (Definition 5.4) when ``degree``
    is given: every attention becomes the degree-g AAttC. ``mode="training"`` feeds the transformer
    the tokenizer maps Y^j = φ_down(X, a^(K−j)) (Definitions B.3, B.9) instead of Ỹ_j."""
    ops = Ops(arith)
    v = {name: arith.entry(x) for name, x in values.items()}
    if degree is None:
        attend = ops.attention
    else:
        def attend(x, w_q, w_k, w_v):
            return ops.taylor_attention(x, w_q, w_k, w_v, degree)
    sizes = [(h // a ** (K - i), w // a ** (K - i)) for i in range(1, K + 1)]
    teacher = []
    if mode == "training":
        teacher = [v["X"] if size == (h, w) else ops.downsample(v["X"], *size) for size in sizes]
    results: dict[str, np.ndarray] = {}
    upsampled: list[np.ndarray] = []
    layer = 0
    for i, (hi, wi) in enumerate(sizes, start=1):
        if i > 1:
            source = teacher[i - 2] if teacher else results[f"scale{i - 1}"]
            upsampled.append(ops.upsample(source, hi, wi))
        x = _maps_to_tokens([v["Z_init"]] + upsampled)
        for _ in range(layers):
            layer += 1
            p = f"L{layer}"
            x = attend(x, v[f"{p}.W_Q"], v[f"{p}.W_K"], v[f"{p}.W_V"])
            x = ops.ffn(x, v[f"{p}.FFN.W1"], v[f"{p}.FFN.W2"], v[f"{p}.FFN.b1"], v[f"{p}.FFN.b2"])
        y_hat = x[x.shape[0] - hi * wi :].reshape(hi, wi, -1)
        f_t = ops.flow(y_hat, v[f"F0_{i}"], times[i - 1], flow)
        weights = {name[len(f"NN{i}.") :]: val for name, val in v.items() if name.startswith(f"NN{i}.")}
        results[f"scale{i}"] = ops.flow_matching(y_hat, f_t, times[i - 1], weights, attend)
    return {"out": results[f"scale{K}"], **results}


# ----------------------------------------------------------------------------------- helpers


def input_shapes(graph: Any) -> dict[str, tuple[int, ...]]:
    """The name and shape of every input of a built graph (the only thing read from it)."""
    return {name: graph.node(node_id).shape for name, node_id in graph.inputs.items()}


def draw_inputs(shapes: dict[str, tuple[int, ...]], seed: int, scale: float) -> dict[str, np.ndarray]:
    """Normal(0, 1)·scale float64 arrays for every named input (the test's own generator)."""
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape) * scale for name, shape in sorted(shapes.items())}


def as_fractions(values: np.ndarray) -> np.ndarray:
    """Exact Fractions of an object array of binary floats (mpfr, Fraction or float)."""
    return np.vectorize(lambda x: Fraction(*x.as_integer_ratio()) if not isinstance(x, Fraction) else x, otypes=[object])(values)


def normwise_error(computed: np.ndarray, expected: np.ndarray) -> float:
    """max |computed − expected| / max |expected| (float64)."""
    got = np.asarray(np.vectorize(float)(computed), dtype=np.float64)
    want = np.asarray(expected, dtype=np.float64)
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
