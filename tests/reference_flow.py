"""Independent oracles for the flow, flow_bezier, flow_matching and aattc tests.

Written from seed 002 (Definitions B.5, B.6, B.8, B.10, B.11, B.12, 5.1) and SPEC §3, not from
tc0sim: nothing here imports tc0sim.

* Exact-rational oracles: ``rne`` (round to nearest, ties to even, p significant bits) and
  evaluations of the operators in the lowering order of SPEC §3 where every primitive rounds
  once (⊕ and ⊗ exact, then one rounding).
* float64 references carrying a running error bound (``Approx``): ``value`` is the float64 result
  and ``err`` bounds |value − exact real result| elementwise (Higham-style: u per rounding,
  γ_m = m·u/(1 − m·u) for a float64 sum of m terms, first-order propagation plus the
  second-order terms that are cheap to keep). u is taken as 2^-52 (twice the unit roundoff) so
  that the bound also covers numpy's exp (within 1 ulp) and the float64 evaluation of the
  bound itself.
"""

from __future__ import annotations

import math
from fractions import Fraction
from itertools import product

import numpy as np
from reference import round_fraction

U = 2.0**-52


def gamma(m: int) -> float:
    """γ_m = m·u/(1 − m·u): relative error bound of a float64 sum of m + 1 terms / dot of m."""
    return m * U / (1 - m * U)


class Approx:
    """A float64 array together with an elementwise bound on its distance to the exact value."""

    def __init__(self, value: np.ndarray, err: np.ndarray | float = 0.0):
        self.value = np.asarray(value, dtype=np.float64)
        self.err = np.broadcast_to(np.asarray(err, dtype=np.float64), self.value.shape).copy()

    @staticmethod
    def constant(x: Fraction | int) -> "Approx":
        """An exact rational constant held as its nearest float64."""
        f = float(Fraction(x))
        return Approx(np.float64(f), float(abs(Fraction(f) - Fraction(x))))

    def _lift(self, other: "Approx | float") -> "Approx":
        return other if isinstance(other, Approx) else Approx(other)

    def __add__(self, other: "Approx | float") -> "Approx":
        o = self._lift(other)
        v = self.value + o.value
        return Approx(v, self.err + o.err + U * np.abs(v))

    def __sub__(self, other: "Approx | float") -> "Approx":
        o = self._lift(other)
        v = self.value - o.value
        return Approx(v, self.err + o.err + U * np.abs(v))

    def __mul__(self, other: "Approx | float") -> "Approx":
        o = self._lift(other)
        v = self.value * o.value
        return Approx(v, np.abs(self.value) * o.err + self.err * np.abs(o.value) + self.err * o.err + U * np.abs(v))

    def __truediv__(self, other: "Approx | float") -> "Approx":
        o = self._lift(other)
        v = self.value / o.value
        margin = np.abs(o.value) - o.err
        if np.any(margin <= 0):
            raise ArithmeticError("divisor not bounded away from zero")
        return Approx(v, (self.err + np.abs(v) * o.err) / margin + U * np.abs(v))

    def sqrt(self) -> "Approx":
        if np.any(self.value <= 0):
            raise ArithmeticError("sqrt of a value not bounded away from zero")
        v = np.sqrt(self.value)
        return Approx(v, self.err / v + U * v)

    def exp(self) -> "Approx":
        v = np.exp(self.value)
        return Approx(v, v * np.expm1(self.err) + 2 * U * v)

    def __matmul__(self, other: "Approx") -> "Approx":
        a, b = np.abs(self.value), np.abs(other.value)
        m = self.value.shape[-1]
        v = self.value @ other.value
        err = a @ other.err + self.err @ b + self.err @ other.err + gamma(m) * (a @ b)
        return Approx(v, err)

    def sum(self, axis: int) -> "Approx":
        m = self.value.shape[axis]
        v = self.value.sum(axis=axis)
        return Approx(v, self.err.sum(axis=axis) + gamma(max(m - 1, 1)) * np.abs(self.value).sum(axis=axis))

    def reshape(self, *shape: int) -> "Approx":
        return Approx(self.value.reshape(*shape), self.err.reshape(*shape))

    @property
    def T(self) -> "Approx":
        return Approx(self.value.T, self.err.T)

    def __getitem__(self, index: object) -> "Approx":
        return Approx(self.value[index], self.err[index])


# --- float64 references with error bounds -----------------------------------------------------


def flow_ref(yhat: np.ndarray, f0: np.ndarray, t: Fraction) -> Approx:
    """Definition B.10: F^t = t·Yhat + (1 − t)·F0."""
    return Approx.constant(t) * Approx(yhat) + Approx.constant(1 - t) * Approx(f0)


def flow_bezier_ref(yhat: np.ndarray, f0: np.ndarray, t: Fraction) -> Approx:
    """Definition B.11: (1 − t)²·F0 + 2t(1 − t)·C + t²·Yhat with C = (F0 + Yhat)/2."""
    y, f = Approx(yhat), Approx(f0)
    control = (f + y) * 0.5
    return Approx.constant((1 - t) ** 2) * f + Approx.constant(2 * t * (1 - t)) * control + Approx.constant(t * t) * y


def layernorm_ref(x: Approx) -> Approx:
    """Definition B.8 on rows: (x − μ)/√σ², μ and σ² the row mean and (biased) variance."""
    c = x.value.shape[1]
    mean = x.sum(axis=1) * Approx.constant(Fraction(1, c))
    centered = x - mean.reshape(-1, 1)
    variance = (centered * centered).sum(axis=1) * Approx.constant(Fraction(1, c))
    return centered / variance.sqrt().reshape(-1, 1)


def attention_ref(x: Approx, w_q: Approx, w_k: Approx, w_v: Approx) -> Approx:
    """Definition B.5: D⁻¹ A X W_V with A = exp(X W_Q W_Kᵀ Xᵀ), D = diag(A 1)."""
    scores = (x @ w_q) @ (x @ w_k).T
    a = scores.exp()
    return (a @ (x @ w_v)) / a.sum(axis=1).reshape(-1, 1)


def mlp_ref(x: Approx, w: Approx, bias: Approx) -> Approx:
    """Definition B.6: X W + b."""
    return x @ w + bias.reshape(1, -1)


def flow_matching_ref(yhat: np.ndarray, ft: np.ndarray, t: Fraction, weights: dict[str, np.ndarray]) -> Approx:
    """Definition B.12 on [h, w, c] tensors flattened to [h·w, c] tokens."""
    h, w, c = yhat.shape
    wt = {k: Approx(v) for k, v in weights.items()}
    y = Approx(yhat.reshape(h * w, c)) + Approx.constant(t)
    modulation = mlp_ref(y, wt["W_ada"], wt["b_ada"])
    alpha1, alpha2, beta1, beta2, gamma1, gamma2 = (modulation[:, i * c : (i + 1) * c] for i in range(6))
    f_prime = attention_ref(gamma1 * layernorm_ref(Approx(ft.reshape(h * w, c))) + beta1, wt["W_Q"], wt["W_K"], wt["W_V"])
    f_prime = f_prime * alpha1
    f_second = mlp_ref(gamma2 * layernorm_ref(f_prime) + beta2, wt["W_mlp"], wt["b_mlp"]) * alpha2
    return f_second.reshape(h, w, c)


def taylor_ref(s: Approx, g: int) -> Approx:
    """P_g(s) = Σ_{j ≤ g} s^j / j!, by Horner's rule."""
    acc = Approx(np.ones_like(s.value)) * Approx.constant(Fraction(1, math.factorial(g)))
    for j in range(g - 1, -1, -1):
        acc = acc * s + Approx.constant(Fraction(1, math.factorial(j)))
    return acc


def aattc_ref(x: np.ndarray, w_q: np.ndarray, w_k: np.ndarray, w_v: np.ndarray, g: int) -> Approx:
    """The function AAttC computes, written with the n×n matrix: P_g(QKᵀ) V / P_g(QKᵀ) 1."""
    xa = Approx(x)
    a = taylor_ref((xa @ Approx(w_q)) @ (xa @ Approx(w_k)).T, g)
    return (a @ (xa @ Approx(w_v))) / a.sum(axis=1).reshape(-1, 1)


def softmax_attention_ref(x: np.ndarray, w_q: np.ndarray, w_k: np.ndarray, w_v: np.ndarray) -> Approx:
    """Exact attention of Definition B.5 on a token matrix."""
    return attention_ref(Approx(x), Approx(w_q), Approx(w_k), Approx(w_v))


# --- exact rationals with one rounding per primitive ------------------------------------------


def exact_array(values: np.ndarray, p: int) -> np.ndarray:
    """Inputs as exact Fractions rounded to p bits (the circuit's entry rounding)."""
    flat = [round_fraction(Fraction(float(v)), p) for v in np.asarray(values, dtype=np.float64).ravel()]
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(np.shape(values))


def _elementwise(fn, *arrays: np.ndarray) -> np.ndarray:
    return np.frompyfunc(fn, len(arrays), 1)(*arrays)


def flow_exact(yhat: np.ndarray, f0: np.ndarray, t: Fraction, p: int) -> np.ndarray:
    """(t ∘· Yhat) ∘+ ((1 − t) ∘· F0) with constants t, 1 − t rounded once."""
    y, f = exact_array(yhat, p), exact_array(f0, p)
    ct, comt = round_fraction(t, p), round_fraction(1 - t, p)
    return _elementwise(lambda a, b: round_fraction(round_fraction(ct * a, p) + round_fraction(comt * b, p), p), y, f)


def flow_bezier_exact(yhat: np.ndarray, f0: np.ndarray, t: Fraction, p: int, one_sum: bool = True) -> np.ndarray:
    """C = (F0 ∘+ Yhat) ∘/ 2; three rounded products; then one ⊕ (or, with ``one_sum`` False,
    two rounded pairwise additions — the order the lowering must NOT use)."""
    y, f = exact_array(yhat, p), exact_array(f0, p)
    c_noise, c_control, c_target = round_fraction((1 - t) ** 2, p), round_fraction(2 * t * (1 - t), p), round_fraction(t * t, p)

    def point(yv: Fraction, fv: Fraction) -> Fraction:
        control = round_fraction(round_fraction(fv + yv, p) / 2, p)
        terms = [round_fraction(c_noise * fv, p), round_fraction(c_control * control, p), round_fraction(c_target * yv, p)]
        if one_sum:
            return round_fraction(sum(terms), p)
        return round_fraction(round_fraction(terms[0] + terms[1], p) + terms[2], p)

    return _elementwise(point, y, f)


def matmul_exact(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    """(AB)_ij = round(Σ_k round(A_ik B_kj)): products rounded, then one rounding of the exact sum."""
    n1, d = a.shape
    n2 = b.shape[1]
    out = np.empty((n1, n2), dtype=object)
    for i in range(n1):
        for j in range(n2):
            out[i, j] = round_fraction(sum(round_fraction(a[i, k] * b[k, j], p) for k in range(d)), p)
    return out


def aattc_exact(
    x: np.ndarray, w_q: np.ndarray, w_k: np.ndarray, w_v: np.ndarray, g: int, p: int, divide_by_factorial: bool = False
) -> np.ndarray:
    """AAttC with one rounding per primitive: monomials q^α (⊗, one rounding; |α| ≤ 1 exact),
    φ1 = q^α ∘· round(1/α!), φ2 = k^α; out = (U1 (U2ᵀ V)) ∘/ (U1 ⊕_j U2_j).
    With ``divide_by_factorial``, φ1 = q^α ∘/ α! instead (the order the lowering must NOT use)."""
    xs = exact_array(x, p)
    q = matmul_exact(xs, exact_array(w_q, p), p)
    k = matmul_exact(xs, exact_array(w_k, p), p)
    v = matmul_exact(xs, exact_array(w_v, p), p)
    n, d = xs.shape
    alphas = [alpha for alpha in product(range(g + 1), repeat=d) if sum(alpha) <= g]

    def monomial(z: np.ndarray, alpha: tuple[int, ...]) -> Fraction:
        value = math.prod((z[i] ** a for i, a in enumerate(alpha)), start=Fraction(1))
        return value if sum(alpha) <= 1 else round_fraction(value, p)

    r = len(alphas)
    u1 = np.empty((n, r), dtype=object)
    u2 = np.empty((n, r), dtype=object)
    for col, alpha in enumerate(alphas):
        factorial = math.prod(math.factorial(a) for a in alpha)
        scale = Fraction(1, factorial) if divide_by_factorial else round_fraction(Fraction(1, factorial), p)
        for i in range(n):
            u1[i, col] = round_fraction(monomial(q[i], alpha) * scale, p)
            u2[i, col] = monomial(k[i], alpha)
    numerator = matmul_exact(u1, matmul_exact(u2.T, v, p), p)
    key_mass = np.array([[round_fraction(sum(u2[:, col]), p)] for col in range(r)], dtype=object)
    denominator = matmul_exact(u1, key_mass, p)
    return _elementwise(lambda a, b: round_fraction(a / b, p), numerator, np.broadcast_to(denominator, numerator.shape))
