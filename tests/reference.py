"""Independent oracles for the operator tests (plain functions, no fixtures).

Two families, both written from the formulas of SPEC §3 and the papers, never from tc0sim's code:

* exact-rational p-bit evaluation: ``round_fraction`` (round to nearest, ties to even), ``exp_p``
  (mpmath at high precision, refined until the rounding is certain), ``sqrt_p`` (integer isqrt);
  ``exact_*`` evaluate each operator with Fractions in the SPEC lowering order, rounding every
  primitive once and every ⊕ once after the exact sum;
* float64 references with a running error bound: ``Bounded`` carries a numpy float64 value and a
  bound ``error`` on BOTH |value − exact real result| and |p-bit evaluation − exact real result|
  (for any p ≥ 53), so two such results differ by at most ``2·error``.

Inputs to the exact oracles are float64 arrays; they are rounded to p bits on entry like circuit inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from itertools import product
from typing import Callable, Sequence

import mpmath
import numpy as np

U64 = 2.0**-53
"""Unit roundoff of float64 (and of p = 53)."""


def gamma(k: int) -> float:
    """Higham's γ_k = k u / (1 − k u) with u = 2^-53: the bound of k successive roundings."""
    return k * U64 / (1 - k * U64)


# ---------------------------------------------------------------------------------------------
# exact p-bit rounding (seed 004 Definition 3.3/3.4: nearest, ties to even)


def floor_log2(x: Fraction) -> int:
    """⌊log2 x⌋ of a positive Fraction, exactly."""
    e = x.numerator.bit_length() - x.denominator.bit_length()
    return e - 1 if Fraction(2) ** e > x else e


def _round_half_even(x: Fraction) -> int:
    q, r = divmod(x.numerator, x.denominator)
    twice = 2 * r
    if twice > x.denominator or (twice == x.denominator and q % 2 == 1):
        q += 1
    return q


def round_fraction(x: Fraction | int | float, p: int) -> Fraction:
    """round_p(x): the nearest m·2^e with 2^(p−1) ≤ |m| < 2^p (or 0), ties to an even m."""
    x = Fraction(x)
    if x == 0:
        return Fraction(0)
    sign = -1 if x < 0 else 1
    e = floor_log2(abs(x)) - (p - 1)
    m = _round_half_even(abs(x) / Fraction(2) ** e)
    return sign * m * Fraction(2) ** e


def sqrt_p(x: Fraction, p: int) -> Fraction:
    """round_p(√x) via integer square roots: √x = 2^e·√y with √y ∈ [2^(p−1), 2^p)."""
    if x < 0:
        raise ValueError("sqrt of a negative number")
    if x == 0:
        return Fraction(0)
    e = floor_log2(x) // 2 - (p - 1)
    y = x / Fraction(4) ** e
    n = math.isqrt(y.numerator // y.denominator)
    half_up = (Fraction(2 * n + 1, 2)) ** 2
    if y > half_up or (y == half_up and n % 2 == 1):
        n += 1
    return n * Fraction(2) ** e


def _mp_round(fn: Callable, name: str, x: Fraction, p: int) -> Fraction:
    """round_p(fn(x)): mpmath at increasing precision until both ends of its error interval round alike."""
    for extra in (64, 256, 1024, 4096):
        with mpmath.workprec(p + extra):
            y = fn(mpmath.mpf(x.numerator) / x.denominator)
            sign, m, e, _ = mpmath.mpf(y)._mpf_
        centre = (-1) ** sign * Fraction(int(m)) * Fraction(2) ** int(e)
        slack = abs(centre) * Fraction(1, 2 ** (p + extra - 4))
        low, high = round_fraction(centre - slack, p), round_fraction(centre + slack, p)
        if low == high:
            return low
    raise ArithmeticError(f"could not round {name}({x}) to {p} bits")


def exp_p(x: Fraction, p: int) -> Fraction:
    """round_p(e^x)."""
    return _mp_round(mpmath.exp, "exp", x, p)


def erf_p(x: Fraction, p: int) -> Fraction:
    """round_p(erf(x)) (erf(0) = 0 exactly)."""
    return Fraction(0) if x == 0 else _mp_round(mpmath.erf, "erf", x, p)


def to_fractions(array: np.ndarray, p: int) -> np.ndarray:
    """An object array of the p-bit roundings of ``array`` (circuit inputs are rounded on entry)."""
    arr = np.asarray(array)
    out = np.empty(arr.shape, dtype=object)
    for index in np.ndindex(arr.shape):
        out[index] = round_fraction(Fraction(float(arr[index])), p)
    return out


# ---------------------------------------------------------------------------------------------
# exact p-bit evaluation of each operator, in the SPEC §3 lowering order


class Exact:
    """Rounded primitives of F_p on Fractions: each ``∘`` rounds once, ``⊕`` rounds the exact sum once."""

    def __init__(self, p: int) -> None:
        self.p = p

    def r(self, x: Fraction | int) -> Fraction:
        return round_fraction(Fraction(x), self.p)

    def add(self, a: Fraction, b: Fraction) -> Fraction:
        return self.r(a + b)

    def sub(self, a: Fraction, b: Fraction) -> Fraction:
        return self.r(a - b)

    def mul(self, a: Fraction, b: Fraction) -> Fraction:
        return self.r(a * b)

    def div(self, a: Fraction, b: Fraction) -> Fraction:
        return self.r(a / b)

    def oplus(self, terms: Sequence[Fraction]) -> Fraction:
        return self.r(sum(terms, Fraction(0)))

    def exp(self, a: Fraction) -> Fraction:
        return exp_p(a, self.p)

    def sqrt(self, a: Fraction) -> Fraction:
        return sqrt_p(a, self.p)

    def matmul(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(XY)_ij = ⊕_k (X_ik · Y_kj)."""
        n1, d = x.shape
        n2 = y.shape[1]
        out = np.empty((n1, n2), dtype=object)
        for i in range(n1):
            for j in range(n2):
                out[i, j] = self.oplus([self.mul(x[i, k], y[k, j]) for k in range(d)])
        return out


def keys_weight(x: Fraction) -> Fraction:
    """Keys' cubic convolution kernel with a = −3/4 (the kernel of PyTorch's bicubic mode)."""
    a = Fraction(-3, 4)
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return Fraction(0)


def bicubic_source(i: int, in_size: int, out_size: int) -> tuple[list[int], list[Fraction]]:
    """Clamped tap indices and exact weights of output position i (align_corners=False)."""
    real = Fraction(2 * i + 1, 2) * Fraction(in_size, out_size) - Fraction(1, 2)
    base = math.floor(real)
    t = real - base
    taps = [min(max(base + s, 0), in_size - 1) for s in (-1, 0, 1, 2)]
    weights = [keys_weight(t - s) for s in (-1, 0, 1, 2)]
    return taps, weights


def exact_upsample(x: np.ndarray, out_h: int, out_w: int, p: int) -> np.ndarray:
    """Y_ijl = ⊕_{s,t} ((W_s · X) · W_t), weights rounded to p bits as constants."""
    ex = Exact(p)
    h, w, c = x.shape
    out = np.empty((out_h, out_w, c), dtype=object)
    for i in range(out_h):
        rows, row_w = bicubic_source(i, h, out_h)
        for j in range(out_w):
            cols, col_w = bicubic_source(j, w, out_w)
            for ch in range(c):
                terms = [
                    ex.mul(ex.mul(ex.r(row_w[s]), x[rows[s], cols[t], ch]), ex.r(col_w[t]))
                    for s, t in product(range(4), range(4))
                ]
                out[i, j, ch] = ex.oplus(terms)
    return out


def exact_downsample(x: np.ndarray, r: int, p: int) -> np.ndarray:
    """Y = Φ_down X: each r×r block, every element times round_p(1/r²), one ⊕."""
    ex = Exact(p)
    h, w, c = x.shape
    weight = ex.r(Fraction(1, r * r))
    out = np.empty((h // r, w // r, c), dtype=object)
    for i, j, ch in np.ndindex(out.shape):
        block = [x[i * r + a, j * r + bb, ch] for a in range(r) for bb in range(r)]
        out[i, j, ch] = ex.oplus([ex.mul(weight, v) for v in block])
    return out


def exact_attention_matrix(x: np.ndarray, w_q: np.ndarray, w_k: np.ndarray, p: int) -> np.ndarray:
    """A = exp((X (W_Q W_Kᵀ)) Xᵀ)."""
    ex = Exact(p)
    m = ex.matmul(w_q, w_k.T)
    s = ex.matmul(ex.matmul(x, m), x.T)
    return np.vectorize(ex.exp, otypes=[object])(s)


def exact_attention(x: np.ndarray, w_q: np.ndarray, w_k: np.ndarray, w_v: np.ndarray, p: int) -> np.ndarray:
    """D = ⊕_j A_ij; Dinv = 1/D; O = (A X) W_V; out = Dinv · O."""
    ex = Exact(p)
    a = exact_attention_matrix(x, w_q, w_k, p)
    n = a.shape[0]
    d_inv = [ex.div(Fraction(1), ex.oplus(list(a[i, :]))) for i in range(n)]
    o = ex.matmul(ex.matmul(a, x), w_v)
    out = np.empty(o.shape, dtype=object)
    for i, j in np.ndindex(o.shape):
        out[i, j] = ex.mul(d_inv[i], o[i, j])
    return out


def exact_mlp(x: np.ndarray, w: np.ndarray, bias: np.ndarray, p: int) -> np.ndarray:
    """XW then + b."""
    ex = Exact(p)
    xw = ex.matmul(x, w)
    out = np.empty(xw.shape, dtype=object)
    for i, j in np.ndindex(xw.shape):
        out[i, j] = ex.add(xw[i, j], bias[j])
    return out


def exact_ffn(x: np.ndarray, w1: np.ndarray, w2: np.ndarray, b1: np.ndarray, b2: np.ndarray, p: int) -> np.ndarray:
    """H = relu(XW1 + b1); out = X + (H W2 + b2)."""
    ex = Exact(p)
    hidden = np.vectorize(lambda v: max(v, Fraction(0)), otypes=[object])(exact_mlp(x, w1, b1, p))
    second = exact_mlp(hidden, w2, b2, p)
    out = np.empty(x.shape, dtype=object)
    for i, j in np.ndindex(x.shape):
        out[i, j] = ex.add(x[i, j], second[i, j])
    return out


def exact_layernorm(x: np.ndarray, p: int) -> np.ndarray:
    """μ = (⊕X)/c; Δ = X − μ; σ² = (⊕ Δ·Δ)/c; out = Δ / √σ²."""
    ex = Exact(p)
    n, c = x.shape
    out = np.empty(x.shape, dtype=object)
    for i in range(n):
        width = ex.r(c)
        mean = ex.div(ex.oplus(list(x[i, :])), width)
        delta = [ex.sub(x[i, j], mean) for j in range(c)]
        variance = ex.div(ex.oplus([ex.mul(v, v) for v in delta]), width)
        root = ex.sqrt(variance)
        for j in range(c):
            out[i, j] = ex.div(delta[j], root)
    return out


def exact_conv2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, p: int) -> np.ndarray:
    """Y_ijo = ⊕(all X·K products, and b_o), zero padding 'same' (⌊(hk−1)/2⌋ before)."""
    ex = Exact(p)
    h, w, c = x.shape
    k, hk, wk, _ = kernel.shape
    top, left = (hk - 1) // 2, (wk - 1) // 2
    out = np.empty((h, w, k), dtype=object)
    for i, j, o in np.ndindex(out.shape):
        terms = []
        for m, q, l in np.ndindex(hk, wk, c):
            row, col = i + m - top, j + q - left
            value = x[row, col, l] if 0 <= row < h and 0 <= col < w else Fraction(0)
            terms.append(ex.mul(value, kernel[o, m, q, l]))
        terms.append(bias[o])
        out[i, j, o] = ex.oplus(terms)
    return out


# ---------------------------------------------------------------------------------------------
# float64 references with a running error bound (p = 53)


@dataclass
class Bounded:
    """A float64 value and a bound on its distance, and on the p-bit result's distance, to the exact result."""

    value: np.ndarray
    error: np.ndarray

    @staticmethod
    def exact(x: np.ndarray) -> "Bounded":
        """A float64 circuit input: exact at p = 53."""
        x = np.asarray(x, dtype=np.float64)
        return Bounded(x, np.zeros_like(x))

    @staticmethod
    def constant(x: Fraction | np.ndarray) -> "Bounded":
        """A rational constant, rounded once to nearest (error ≤ γ_1·|value|)."""
        v = np.vectorize(float, otypes=[np.float64])(np.asarray(x, dtype=object))
        return Bounded(v, gamma(1) * np.abs(v))

    def magnitude(self) -> np.ndarray:
        """An upper bound on |exact value|."""
        return np.abs(self.value) + self.error


def b_mul(a: Bounded, b: Bounded) -> Bounded:
    """|a'b' − ab| ≤ |a|e_b + |b|e_a + e_a e_b, plus one rounding γ_1·|a b|."""
    err = np.abs(a.value) * b.error + np.abs(b.value) * a.error + a.error * b.error
    return Bounded(a.value * b.value, err + gamma(1) * a.magnitude() * b.magnitude())


def b_add(a: Bounded, b: Bounded, sign: int = 1) -> Bounded:
    """e_a + e_b plus one rounding γ_1·(|a| + |b|)."""
    return Bounded(a.value + sign * b.value, a.error + b.error + gamma(1) * (a.magnitude() + b.magnitude()))


def b_sum(a: Bounded, axis: int | tuple[int, ...]) -> Bounded:
    """⊕ of k terms: Σe_i plus γ_k·Σ|t_i| (numpy rounds up to k − 1 times, the circuit once)."""
    axes = (axis,) if isinstance(axis, int) else axis
    k = math.prod(a.value.shape[ax] for ax in axes)
    err = a.error.sum(axis=axis) + gamma(k) * a.magnitude().sum(axis=axis)
    return Bounded(a.value.sum(axis=axis), err)


def b_matmul(a: Bounded, b: Bounded) -> Bounded:
    """⊕_k a_ik b_kj: products then one ⊕, with the bounds of b_mul and b_sum (numpy uses ``@``)."""
    k = a.value.shape[1]
    propagated = np.abs(a.value) @ b.error + a.error @ np.abs(b.value) + a.error @ b.error
    rounding = gamma(k + 1) * (a.magnitude() @ b.magnitude())
    return Bounded(a.value @ b.value, propagated + rounding)


def b_relu(a: Bounded) -> Bounded:
    """relu is exact and 1-Lipschitz."""
    return Bounded(np.maximum(a.value, 0.0), a.error)


def b_exp(a: Bounded) -> Bounded:
    """e^(x±e) − e^x ≤ e^(x+e)·expm1(e); rounding (circuit) or libm (≤ 1 ulp): 4u·e^(x+2e)."""
    err = np.exp(a.value + a.error) * np.expm1(a.error) + 4 * U64 * np.exp(a.value + 2 * a.error)
    return Bounded(np.exp(a.value), err)


def b_div(a: Bounded, b: Bounded) -> Bounded:
    """|a'/b' − a/b| ≤ (e_a(|b|+e_b) + (|a|+e_a)e_b)/m_b², m_b = |b| − e_b > 0; plus γ_1(|a|+e_a)/m_b."""
    low = np.abs(b.value) - b.error
    if np.any(low <= 0):
        raise ArithmeticError("divisor not bounded away from zero")
    err = (a.error * b.magnitude() + a.magnitude() * b.error) / low**2 + gamma(1) * a.magnitude() / low
    return Bounded(a.value / b.value, err)


def b_sqrt(a: Bounded) -> Bounded:
    """|√a' − √a| ≤ e_a / (2√(a − e_a)); plus γ_1·√(a + e_a)."""
    low = a.value - a.error
    if np.any(low <= 0):
        raise ArithmeticError("sqrt argument not bounded away from zero")
    return Bounded(np.sqrt(a.value), a.error / (2 * np.sqrt(low)) + gamma(1) * np.sqrt(a.magnitude()))


def ref_matmul(x: np.ndarray, y: np.ndarray) -> Bounded:
    return b_matmul(Bounded.exact(x), Bounded.exact(y))


def ref_upsample(x: np.ndarray, out_h: int, out_w: int) -> Bounded:
    """Bicubic up-sampling in float64 from the exact Keys weights: ⊕_{s,t} ((W_s·X)·W_t)."""
    h, w, c = x.shape
    row = [bicubic_source(i, h, out_h) for i in range(out_h)]
    col = [bicubic_source(j, w, out_w) for j in range(out_w)]
    row_idx = np.array([r[0] for r in row])
    col_idx = np.array([cc[0] for cc in col])
    taps = Bounded.exact(x[row_idx[:, :, None, None], col_idx[None, None, :, :], :])  # [oh,4,ow,4,c]
    row_w = Bounded.constant(np.array([r[1] for r in row], dtype=object)[:, :, None, None, None])
    col_w = Bounded.constant(np.array([cc[1] for cc in col], dtype=object)[None, None, :, :, None])
    return b_sum(b_mul(b_mul(row_w, taps), col_w), axis=(1, 3))


def ref_downsample(x: np.ndarray, r: int) -> Bounded:
    """Block means: every element times 1/r², then ⊕ over the r×r block."""
    h, w, c = x.shape
    blocks = Bounded.exact(x.reshape(h // r, r, w // r, r, c))
    return b_sum(b_mul(Bounded.constant(Fraction(1, r * r)), blocks), axis=(1, 3))


def ref_attention_matrix(x: np.ndarray, w_q: np.ndarray, w_k: np.ndarray) -> Bounded:
    """exp(X_i W_Q W_Kᵀ X_jᵀ), products in the order (X (W_Q W_Kᵀ)) Xᵀ."""
    bx = Bounded.exact(x)
    m = b_matmul(Bounded.exact(w_q), Bounded.exact(w_k.T))
    return b_exp(b_matmul(b_matmul(bx, m), Bounded.exact(x.T)))


def ref_attention(x: np.ndarray, w_q: np.ndarray, w_k: np.ndarray, w_v: np.ndarray) -> Bounded:
    """D⁻¹ A X W_V with D = diag(A 1)."""
    a = ref_attention_matrix(x, w_q, w_k)
    d = b_sum(a, axis=1)
    d_inv = b_div(Bounded.constant(Fraction(1)), Bounded(d.value[:, None], d.error[:, None]))
    o = b_matmul(b_matmul(a, Bounded.exact(x)), Bounded.exact(w_v))
    return b_mul(d_inv, o)


def ref_mlp(x: np.ndarray, w: np.ndarray, bias: np.ndarray) -> Bounded:
    return b_add(b_matmul(Bounded.exact(x), Bounded.exact(w)), Bounded.exact(bias[None, :]))


def _mlp_bounded(x: Bounded, w: np.ndarray, bias: np.ndarray) -> Bounded:
    return b_add(b_matmul(x, Bounded.exact(w)), Bounded.exact(bias[None, :]))


def ref_ffn(x: np.ndarray, w1: np.ndarray, w2: np.ndarray, b1: np.ndarray, b2: np.ndarray) -> Bounded:
    """X + (relu(X W1 + b1) W2 + b2)."""
    bx = Bounded.exact(x)
    hidden = b_relu(_mlp_bounded(bx, w1, b1))
    return b_add(bx, _mlp_bounded(hidden, w2, b2))


def ref_layernorm(x: np.ndarray) -> Bounded:
    """(X − μ)/√σ² per row, μ and σ² the row mean and (biased) variance."""
    c = x.shape[1]
    bx = Bounded.exact(x)
    width = Bounded.constant(Fraction(c))
    mean = b_div(b_sum(bx, axis=1), width)
    delta = b_add(bx, Bounded(mean.value[:, None], mean.error[:, None]), sign=-1)
    variance = b_div(b_sum(b_mul(delta, delta), axis=1), width)
    root = b_sqrt(variance)
    return b_div(delta, Bounded(root.value[:, None], root.error[:, None]))


def ref_conv2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> Bounded:
    """Direct loops over output positions: ⊕ of all products and the bias (zero padding 'same')."""
    h, w, c = x.shape
    k, hk, wk, _ = kernel.shape
    top, left = (hk - 1) // 2, (wk - 1) // 2
    padded = np.zeros((h + hk - 1, w + wk - 1, c))
    padded[top : top + h, left : left + w, :] = x
    value = np.empty((h, w, k))
    magnitude = np.empty((h, w, k))
    for i, j, o in np.ndindex(h, w, k):
        products = padded[i : i + hk, j : j + wk, :] * kernel[o]
        value[i, j, o] = products.sum() + bias[o]
        magnitude[i, j, o] = np.abs(products).sum() + abs(bias[o])
    terms = hk * wk * c + 1
    return Bounded(value, gamma(terms + 1) * magnitude)


# ---------------------------------------------------------------------------------------------
# small helpers for tests


def random_array(rng: np.random.Generator, shape: Sequence[int], scale: float = 1.0) -> np.ndarray:
    """Normal(0, 1)·scale float64 entries."""
    return rng.standard_normal(tuple(shape)) * scale


def exact_inputs(arrays: dict[str, np.ndarray], p: int) -> dict[str, np.ndarray]:
    """Each input rounded to p bits, as object arrays of Fractions."""
    return {name: to_fractions(a, p) for name, a in arrays.items()}


def fractions_of(array: np.ndarray, to_fraction: Callable[[object], Fraction]) -> np.ndarray:
    """An object array of Fractions from an array of evaluated values."""
    out = np.empty(array.shape, dtype=object)
    for index in np.ndindex(array.shape):
        out[index] = to_fraction(array[index])
    return out


def assert_within_bound(got: np.ndarray, ref: Bounded, to_float: Callable[[np.ndarray], np.ndarray]) -> None:
    """|p53 result − float64 reference| ≤ 2·error (both are within ``error`` of the exact result).

    The bound itself is computed in float64, hence the relative slack of 1e-9 on it.
    """
    values = to_float(got)
    assert values.shape == ref.value.shape, (values.shape, ref.value.shape)
    gap = np.abs(values - ref.value)
    allowed = 2 * ref.error * (1 + 1e-9)
    worst = np.unravel_index(np.argmax(gap - allowed), gap.shape)
    assert np.all(gap <= allowed), f"at {worst}: |{values[worst]} − {ref.value[worst]}| > {allowed[worst]}"


def assert_bit_identical(got: np.ndarray, expected: np.ndarray, to_fraction: Callable[[object], Fraction]) -> None:
    """Every evaluated value equals the exact-rational oracle's value."""
    actual = fractions_of(got, to_fraction)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    for index in np.ndindex(actual.shape):
        assert actual[index] == expected[index], f"at {index}: {actual[index]} != {expected[index]}"


# ---------------------------------------------------------------------------------------------
# depth vectors written by hand


def depth_vector(*counts: int) -> tuple[int, ...]:
    """A depth vector by hand: counts of (d_std, d_sum, d_prod, d_exp, d_sqrt), then 0 for every
    symbol the primitive table adds after them (so a new primitive does not rewrite the tests)."""
    from tc0sim.ir.primitives import SYMBOLS

    return tuple(counts) + (0,) * (len(SYMBOLS) - len(counts))


def depth_dict(**counts: int) -> dict[str, int]:
    """The full {symbol: count} dict of a depth vector (every symbol of the table, 0 if not given)."""
    from tc0sim.ir.primitives import SYMBOLS

    return {s: counts.get(s, 0) for s in SYMBOLS}


def report_dict(**counts: int) -> dict[str, int]:
    """The {symbol: count} dict a report's JSON gives for a depth vector: every symbol of the table,
    0 if not given, but a quiet one (d_log, d_trig: only traced models use them) only if given."""
    from tc0sim.ir.primitives import QUIET_SYMBOLS

    return {s: c for s, c in depth_dict(**counts).items() if s in counts or s not in QUIET_SYMBOLS}
