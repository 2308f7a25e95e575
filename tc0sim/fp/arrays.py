"""The array path of a ``Format``: F_p arrays (object ndarrays of mpfr values) in and out, and
primitives mapped or reduced over them, one rounding per element (VAR Lemma 3.5)."""

from __future__ import annotations

import math
import operator
from typing import Any, Callable, Sequence

import gmpy2
import numpy as np

from tc0sim.fp.errors import FpArithmeticError, NotRepresentableError, element_index, show
from tc0sim.fp.mpfr import GMPY_ERRORS, TLS, mpfr, widen_range


class ArrayMethods:
    """The array methods of ``Format``, a mixin: they use the format's ``p``, exponent range, contexts,
    bound kernels, rounding, pairs and error translation."""

    __slots__ = ()

    def _wrap(self, flat: list[Any], shape: tuple[int, ...]) -> np.ndarray:
        return np.fromiter(flat, dtype=object, count=len(flat)).reshape(shape)

    def asarray(self, x: Any) -> np.ndarray:
        """An object ndarray of F_p values; every element is rounded (round_p) on entry."""
        if not TLS.widened:
            widen_range()
        arr = x if isinstance(x, np.ndarray) else np.array(x, dtype=object)
        kind = arr.dtype.kind
        flat = arr.ravel().tolist() if kind in "biuf" and arr.dtype.itemsize <= 8 else list(arr.ravel())
        ctx = self.context
        if kind == "f" and arr.dtype.itemsize <= 8:
            if not np.all(np.isfinite(arr)):
                raise NotRepresentableError(f"asarray at p={self.p}: the array has non-finite values")
        if kind in "biuf" and arr.dtype.itemsize <= 8:
            try:
                out = [mpfr(v, 0, ctx) for v in flat]
            except GMPY_ERRORS:
                out = [self.round(v) for v in flat]
        else:
            rnd = self.round
            out = [rnd(v) for v in flat]
        return self._wrap(out, arr.shape)

    def _locate(
        self, op: str, fn: Callable[..., Any], shape: tuple[int, ...], cols: list[list[Any]], origin: Sequence[int] | None
    ) -> None:
        """Re-run an array op element by element to raise the error of the first bad element."""
        for i, args in enumerate(zip(*cols)):
            try:
                fn(*args)
            except GMPY_ERRORS as exc:
                err = self._error(op, exc, self._operands(op, args))
                raise type(err)(f"{err} (element {element_index(i, shape, origin)})") from None

    def map(self, name: str, *arrays: np.ndarray, origin: Sequence[int] | None = None) -> np.ndarray:
        """Apply a primitive elementwise to same-shape F_p arrays; one rounding per element.

        ``name`` is a kernel of ``KERNELS`` ("compare" gives the F_p values 1 or 0); a name without
        an elementwise kernel is a MissingKernelError. An error names its element's index, plus
        ``origin`` (where the arrays lie in a larger one).
        """
        if not TLS.widened:
            widen_range()
        k, fn = self._bound_kernel(name, reduction=False)
        arity = k.arity
        if len(arrays) != arity:
            raise ValueError(f"map {name!r} takes {arity} array(s), got {len(arrays)}")
        shape = np.shape(arrays[0])
        for a in arrays[1:]:
            if np.shape(a) != shape:
                raise ValueError(f"map {name!r}: shapes {shape} and {np.shape(a)} differ")
        cols = [np.asarray(a, dtype=object).ravel().tolist() for a in arrays]
        fast = self._fast.copy()
        fast.clear_flags()
        old = gmpy2.get_context()
        gmpy2.set_context(fast)
        try:
            out = list(map(k.fast or fn, *cols))
        except GMPY_ERRORS:
            out = []
        finally:
            gmpy2.set_context(old)
        if len(out) != len(cols[0]) or fast.overflow or fast.underflow or fast.invalid or fast.divzero:
            self._locate(name, fn, shape, cols, origin)
            raise FpArithmeticError(f"{name} failed at p={self.p} in the array path")
        return self._wrap(out, shape)

    def reduce(
        self, name: str, array: np.ndarray, axis: int | Sequence[int], origin: Sequence[int] | None = None
    ) -> np.ndarray:
        """Exact sum or product over ``axis`` (int or tuple), rounded once per output element. An
        error names its output element's index, plus ``origin`` (as in ``map``)."""
        if not TLS.widened:
            widen_range()
        _, row_fn = self._bound_kernel(name, reduction=True)
        arr = np.asarray(array, dtype=object)
        nd = arr.ndim
        axes_in = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        axes = []
        for a in axes_in:
            a = operator.index(a)
            if not -nd <= a < nd:
                raise ValueError(f"reduce {name!r}: axis {a} out of range for {nd}-d array")
            axes.append(a % nd)
        if len(set(axes)) != len(axes):
            raise ValueError(f"reduce {name!r}: repeated axis in {axes_in}")
        keep = [i for i in range(nd) if i not in axes]
        out_shape = tuple(arr.shape[i] for i in keep)
        k = math.prod(arr.shape[i] for i in axes)
        n_out = math.prod(out_shape)
        rows = np.transpose(arr, keep + axes).reshape(n_out, k).tolist()
        out = []
        for i, r in enumerate(rows):
            try:
                out.append(row_fn(r))
            except FpArithmeticError as err:
                raise type(err)(f"{err} (element {element_index(i, out_shape, origin)})") from None
        return self._wrap(out, out_shape)

    def to_pairs(self, array: np.ndarray) -> Any:
        """Nested lists (shape of the array) of [m, e] pairs; a 0-d array gives one [m, e].
        The array holds mpfr values, or float64 values that are F_p values (vectorised)."""
        if isinstance(array, np.ndarray) and array.dtype == np.float64:
            return self._float_pairs(array)
        arr = np.asarray(array, dtype=object)
        tp = self.to_pair
        flat = [list(tp(x)) for x in arr.ravel().tolist()]
        return _nest(flat, arr.shape)

    def _float_pairs(self, x: np.ndarray) -> Any:
        """to_pairs of a float64 array: m = significand·2^p, e = exponent − p (frexp), checked."""
        finite = np.isfinite(x)
        mant, ex = np.frexp(np.where(finite, x, 0.0))
        m_float = np.ldexp(mant, min(self.p, 53))
        m = m_float.astype(np.int64)
        e = np.where(m != 0, ex.astype(np.int64) - self.p, 0)
        bad = ~finite | (m != m_float) | ((m != 0) & ((e + self.p < self.emin) | (e + self.p > self.emax)))
        if bad.any():
            i = int(np.flatnonzero(bad.ravel())[0])
            index = tuple(int(j) for j in np.unravel_index(i, x.shape)) if x.shape else ()
            raise NotRepresentableError(f"to_pairs at p={self.p}: element {index} = {x.ravel()[i]!r} is not an F_p value")
        if self.p > 53:  # a float64 significand has 53 bits: widen it to p bits (Python integers)
            m = m.astype(object) * (1 << (self.p - 53))
        return np.stack([m, e], axis=-1).tolist()

    def from_pairs(self, nested: Any, shape: Sequence[int]) -> np.ndarray:
        """Inverse of to_pairs: an object ndarray of the given shape; every pair is validated."""
        shape = tuple(int(s) for s in shape)
        flat: list[Any] = []
        _flatten(nested, len(shape), flat)
        if len(flat) != math.prod(shape):
            raise NotRepresentableError(
                f"from_pairs at p={self.p}: {len(flat)} pairs do not fill shape {shape}"
            )
        fp = self.from_pair
        out = []
        for pair in flat:
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise NotRepresentableError(f"from_pairs at p={self.p}: {pair!r} is not an [m, e] pair")
            out.append(fp(pair[0], pair[1]))
        return self._wrap(out, shape)

    def to_float64_array(self, array: np.ndarray) -> np.ndarray:
        """A float64 array with exactly the same values; NotRepresentableError otherwise."""
        if isinstance(array, np.ndarray) and array.dtype == np.float64 and np.isfinite(array).all():
            return array
        arr = np.asarray(array, dtype=object)
        flat = arr.ravel().tolist()
        floats = [float(x) for x in flat]
        for i, (x, f) in enumerate(zip(flat, floats)):
            if not (math.isfinite(f) and x == f):
                index = tuple(int(j) for j in np.unravel_index(i, arr.shape)) if arr.shape else ()
                raise NotRepresentableError(
                    f"to_float64_array at p={self.p}: element {index} = {show(x)} is not exactly a float64"
                )
        return np.array(floats, dtype=np.float64).reshape(arr.shape)


def _nest(flat: list[Any], shape: tuple[int, ...]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = math.prod(shape[1:])
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def _flatten(nested: Any, depth: int, out: list[Any]) -> None:
    if depth == 0:
        out.append(nested)
        return
    if not isinstance(nested, (list, tuple)):
        raise NotRepresentableError(f"from_pairs: expected a nested list, got {nested!r}")
    for item in nested:
        _flatten(item, depth - 1, out)

