"""The fast engine's ⊕ and ⊗ nodes (and a map fused with one), in blocks cut along the kept
axes: certified binary64 results, the rest recomputed by MPFR in output order (docs/semantics.md §2.4)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tc0sim.engines.base import NamedError, named
from tc0sim.engines.blocking import Deferred, blocks, join_terms, reduced_axes, starts
from tc0sim.engines.fast.maps import MAX_FLOAT, Error
from tc0sim.engines.fast.memory import _MEMORY, DOT_MIN_TERMS, JIT_SUM_MIN_TERMS, buffer
from tc0sim.engines.fast.rules import FAST_RULES, SUM, UNKNOWN, FastRule, Range
from tc0sim.fastfp import compact, magnitude_range
from tc0sim.fp import FpArithmeticError, element_index
from tc0sim.ir.graph import Node

NONNEGATIVE = "terms >= 0"
"""Marks a ⊕ whose terms are all >= 0 (squares, or a range without negatives): then Σ|t| = Σt,
and the binary64 sum y bounds it, Σt <= y / (1 - γ_{k-1}) <= y·(1 + 2^-9), whenever the sum is
certified at all (sum_bound needs k·u <= 2^-10). No extra pass over the terms is needed."""


def _abs_product_sums(
    args: list[np.ndarray], shape: tuple[int, ...], kept: list[int], p: int, bounds: list[Range]
) -> np.ndarray | None:
    """Upper bounds on Σ|round_p(a·b)| over the reduced axes, for broadcast operands a, b, in
    O(distinct elements): by Cauchy–Schwarz Σ|a||b| <= ‖a‖·‖b‖ (norms over the reduced axes), times
    (1 + 2^-p) for the rounding of each product and (1 + 2^-8) for the binary64 error of the
    norms (k·u <= 2^-10). None when a square could under- or overflow (then Σ|t| is summed)."""
    reduced = tuple(ax for ax in range(len(shape)) if ax not in kept)
    bound: Any = (1 + 2.0**-p) * (1 + 2.0**-8)
    squares_safe = lambda r: r[1] <= 2.0**500 and (r[1] == 0 or r[0] >= 2.0**-500)  # noqa: E731
    for a, b in zip(args, bounds):
        if not squares_safe(b) and not squares_safe(magnitude_range(a)):
            return None
        c = compact(a)
        missing = math.prod(shape[ax] for ax in reduced if c.shape[ax] == 1)
        axes = "".join(chr(ord("a") + ax) for ax in range(len(shape)))
        squares = np.einsum(f"{axes},{axes}->{''.join(axes[ax] for ax in kept)}", c, c)  # no c·c temporary
        bound = bound * np.sqrt(squares.reshape([1 if ax in reduced else c.shape[ax] for ax in range(len(shape))]) * missing)
    return np.broadcast_to(bound, tuple(1 if ax in reduced else n for ax, n in enumerate(shape))).reshape(
        [shape[ax] for ax in kept]
    )


EXTRA_TERMS_MAX = 1 << 10
"""Most further terms per output whose Σ|t| is added to a product bound (``_with_extra_abs_sums``)."""


def _with_extra_abs_sums(products: np.ndarray, extra: np.ndarray) -> np.ndarray | None:
    """Upper bounds on Σ|terms| of a ⊕ of products (bounded by ``products``) and further terms
    ``extra`` (per output, along the last axis): their binary64 Σ|t| (relative error at most
    γ_{t−1} < 2^-42 for t <= 2^10) added to the bound, then the sum's rounding and both errors
    covered by a factor 1 + 2^-40. None (Σ|terms| summed in each block) for more terms."""
    if extra.shape[-1] > EXTRA_TERMS_MAX:
        return None
    with np.errstate(all="ignore"):
        return (products + np.abs(extra).sum(axis=-1)) * (1 + 2.0**-40)


def _joined(
    terms: np.ndarray, t_extras: dict[int, Any], extra: np.ndarray, out_index: tuple[slice, ...]
) -> tuple[np.ndarray, dict[int, Any], tuple[int, ...]]:
    """A block of a map's terms with the further terms of its outputs joined after them along one
    last axis; the MPFR values of terms (by flat index) moved to their places in the joined block."""
    joined = join_terms(terms, extra, out_index)
    k, width = terms.size // max(1, math.prod(joined.shape[:-1])), joined.shape[-1]
    moved = {(i // k) * width + i % k: v for i, v in t_extras.items()} if k else {}
    return joined, moved, joined.shape


class Reductions:
    """⊕/⊗ nodes of a ``FastRun`` (its K, F, stats, ranges and chunk)."""

    @staticmethod
    def _pair_sum(terms: np.ndarray, block_shape: tuple[int, ...], axes: tuple[int, ...]) -> np.ndarray:
        """Binary64 t0 + t1 per output of a ⊕ of two terms: ⊕ of two F_p values is their add, so
        rounding this once more to p bits is exact (innocuous double rounding, no certificate);
        it is 0 only if the exact sum is (a binary64 sum that underflows is exact)."""
        pair = next(a for a in axes if block_shape[a] == 2)
        first = tuple(0 if a == pair else slice(None) for a in range(len(block_shape)))
        second = tuple(1 if a == pair else slice(None) for a in range(len(block_shape)))
        return np.add(terms[first], terms[second]).reshape(-1)

    def _axis_sums(self, terms: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Sums, Σ|t| and exactness of a ⊕ block's terms in one compiled pass
        (tc0sim.engines.fast.jit_sum; p <= 25), or None (numpy's path)."""
        if not self.compiled or terms.size < JIT_SUM_MIN_TERMS:
            return None
        from tc0sim.engines.fast import jit_sum  # numba: imported (and the kernel loaded) on first use

        return jit_sum.axis_sums(terms, axes, self.K.p)

    def _whole_sum(self, terms: np.ndarray, axes: tuple[int, ...]) -> bool:
        """Whether the held ``terms`` of a ⊕ are summed by the compiled pass in one block."""
        if not self.compiled or terms.size < JIT_SUM_MIN_TERMS:
            return False
        from tc0sim.engines.fast import jit_sum

        return jit_sum.as_runs(terms, axes) is not None

    def _sum_certified(self, y: np.ndarray, r: np.ndarray, abs_sums: np.ndarray | float, k: int) -> np.ndarray:
        """True where the binary64 sums y of k terms with Σ|terms| <= abs_sums round like the exact
        sums (r: y rounded): in range and no F_p midpoint within the error bound, or all terms zero."""
        K = self.K
        zero = np.asarray(abs_sums) == 0
        bound = K.sum_bound(np.broadcast_to(abs_sums, y.shape), k)
        if bound is None:
            return np.broadcast_to(zero, y.shape).copy()
        return (K.in_range(r) & K.certify_absolute(y, bound)) | zero

    def _reduce(self, node: Node, x: Any) -> np.ndarray:
        if isinstance(x, Deferred) and any(a.dtype == object for a in [*x.args, *([] if x.extra is None else [x.extra])]):
            x = self._materialize(x)
        if not isinstance(x, Deferred) and x.dtype == object:
            return self.floats_or_objects(self.rule(node, [x]))
        self.stats.add_gates("fast", node)
        m_node, m_args = (x.node, x.args) if isinstance(x, Deferred) else (None, [x])
        m_rule = FAST_RULES[m_node.prim] if m_node is not None else None
        if m_node is not None:
            self.stats.add_gates("fast", m_node)
        shape = m_node.shape if m_node is not None else x.shape
        extra = x.extra if isinstance(x, Deferred) else None
        axes = reduced_axes(node, x) if isinstance(x, Deferred) else tuple(node.attrs["axes"])
        kept = [i for i in range(len(shape)) if i not in axes]
        safe = self._safe(m_rule, m_args, m_node.inputs) if m_rule is not None and m_node is not None else False
        abs_sums: np.ndarray | float | str | None = None
        k = math.prod(shape[a] for a in axes)
        rule = FAST_RULES[node.prim]
        if m_rule is not None and m_rule.product and rule.family == SUM and k >= DOT_MIN_TERMS and self._dot_kernel():
            fused = self._dot_reduce(node, m_args, shape, kept, extra, safe)
            if fused is not None:
                return fused
        terms_range = self.ranges.get(m_node.id if m_node is not None else node.inputs[0], UNKNOWN)
        if extra is not None:  # further terms joined (a bias): their Σ|t| added, else summed in each block
            terms_range = UNKNOWN
        if extra is None and rule.family == SUM and not terms_range[3]:
            abs_sums = NONNEGATIVE
        elif safe and m_rule is not None and m_rule.product and len(m_args) == 2 and k > 2:
            bounds = [self.ranges.get(i, UNKNOWN) for i in m_node.inputs]
            abs_sums = _abs_product_sums(m_args, shape, kept, self.K.p, bounds)
            if abs_sums is not None and extra is not None:
                abs_sums = _with_extra_abs_sums(abs_sums, extra)
        if abs_sums is None:
            abs_sums = k * terms_range[1] if k * terms_range[1] < MAX_FLOAT / 4 else None
        perm = kept + list(axes)
        if m_node is not None and k > 2 and perm != sorted(perm):
            # Products laid out with the reduced axes last: numpy's loops then run along them
            # (a short innermost kept axis makes products and sums several times slower). Any
            # error is raised from the original layout, so that it names the same element.
            moved = [np.broadcast_to(np.ascontiguousarray(compact(a).transpose(perm)), tuple(shape[i] for i in perm))
                     for a in m_args]
            found = self._reduce_in_blocks(
                node, rule, m_node, m_rule, moved, tuple(shape[i] for i in perm),
                tuple(range(len(kept), len(shape))), list(range(len(kept))), safe, abs_sums, terms_range,
            )
            if found[2] is None and found[3] is None:
                return self._with_extras(found[0], found[1])
        out, extras, map_error, red_error = self._reduce_in_blocks(
            node, rule, m_node, m_rule, m_args, shape, axes, kept, safe, abs_sums, terms_range, extra
        )
        if map_error is not None:
            raise NamedError(named(m_node, map_error[1]))
        if red_error is not None:
            raise red_error[1]
        return self._with_extras(out, extras)

    def _dot_kernel(self) -> bool:
        """Whether a ⊕ of products may take the fused kernel (p <= 25: when the run compiles)."""
        return self.compiled

    def _dot_reduce(
        self, node: Node, args: list[np.ndarray], shape: tuple[int, ...], kept: list[int], extra: np.ndarray | None,
        safe: bool,
    ) -> np.ndarray | None:
        """A ⊕ of p-bit products (and ``extra`` terms) by a fused kernel on every core
        (docs/fuseddot.md): the certified outputs from ``_dot_values``, the rest summed by MPFR
        in output order. None (the unfused path decides) when a product is out of range or the
        kernel does not apply."""
        from tc0sim.engines.fast import jit_dot  # numba: imported (and the kernel loaded) on first use

        dot = jit_dot.Dot(args, shape, kept, extra)
        if not dot.fits:
            return None
        found = self._dot_values(dot, safe)
        if found is None:
            return None
        r, ok = found
        self.stats.certified += int(ok.sum())
        extras: dict[int, Any] = {}
        for i in np.flatnonzero(~ok).tolist():
            self.stats.recomputed += 1
            try:
                v = self.F.sum(self._dot_terms(dot, i))
            except FpArithmeticError as e:
                raise type(e)(f"{e} (element {element_index(i, node.shape, None)})") from None
            self._store(r, extras, i, v)
        return self._with_extras(r.reshape(node.shape), extras)

    def _dot_values(self, dot: Any, safe: bool) -> tuple[np.ndarray, np.ndarray] | None:
        """p <= 25 (tc0sim.engines.fast.jit_dot): each output's binary64 sum rounded, and where that
        is the exact sum's rounding — certified as in _sum_certified, or the binary64 sum exact
        (jit_dot.exact); None when a product is out of range."""
        K = self.K
        y, abs_sums, exact, bad = dot.sums(K, check=not safe)
        if bad.any():
            return None
        k = dot.k + dot.E.shape[1]
        with np.errstate(all="ignore"):
            r = K.rounded(y)
            ok = self._sum_certified(y, r, abs_sums, k) | (exact & (K.in_range(r) | (y == 0)))
        return r, ok

    def _dot_terms(self, dot: Any, i: int) -> list[Any]:
        """The terms of output ``i`` as MPFR values (the products are exact in binary64, then rounded)."""
        return [self._mp(t) for t in dot.terms(self.K, i).tolist()]

    def _reduce_in_blocks(
        self, node: Node, rule: FastRule, m_node: Node | None, m_rule: FastRule | None, m_args: list[np.ndarray],
        shape: tuple[int, ...], axes: tuple[int, ...], kept: list[int], safe: bool,
        abs_sums: np.ndarray | float | str | None, terms_range: Range, extra: np.ndarray | None = None,
    ) -> tuple[np.ndarray, dict[int, Any], Error | None, Error | None]:
        """A ⊕/⊗ node (of map ``m_node`` of ``m_args`` if fused, else of ``m_args[0]``, whose values
        lie in ``terms_range``) in blocks cut along the kept axes: values (NaN where MPFR values
        are in extras), extras, first errors. ``extra``: further float64 terms of each output
        (``Deferred.extra``), joined after the map's (its reduced axes are then the trailing ones)."""
        out = _MEMORY.output(node.shape)
        out_flat = out.reshape(-1)
        extras: dict[int, Any] = {}
        map_error: Error | None = None
        red_error: Error | None = None
        pair_safe = terms_range[1] < math.inf and rule.safe is not None and rule.safe(self.K, [terms_range, terms_range])
        single = m_node is not None and self._single(m_rule, m_node.inputs)
        budget = self.chunk
        outputs = math.prod(shape[a] for a in kept)
        if m_node is None and extra is None and rule.family == SUM and outputs <= self.chunk // 2 and \
                self._whole_sum(m_args[0], axes):
            budget = m_args[0].size  # one compiled pass; its temporaries are the outputs' (within a block's)
        for index in blocks(shape, kept, budget):
            block_args = [a[index] for a in m_args]
            if m_node is not None:
                block_shape = np.broadcast_shapes(*(a.shape for a in block_args))
                terms, t_extras, err = self._map_block(
                    m_rule, block_args, safe, shape, starts(index), buffer("terms", block_shape, np.float64), single
                )
                if err is not None and (map_error is None or err[0] < map_error[0]):
                    map_error = err
            else:
                terms, t_extras = block_args[0], {}
                block_shape = terms.shape
            if map_error is not None or red_error is not None:
                continue
            out_index = tuple(index[a] for a in kept)
            out_starts = starts(out_index)
            if extra is not None:
                terms, t_extras, block_shape = _joined(terms, t_extras, extra, out_index)
            values, v_extras, red_error = self._reduce_block(
                rule, terms, t_extras, block_shape, axes if extra is None else (len(kept),), kept, out_starts,
                abs_sums[out_index].reshape(-1) if isinstance(abs_sums, np.ndarray) else abs_sums,
                pair_safe,
            )
            out[out_index] = values
            if v_extras:
                local_shape = values.shape
                for i, v in v_extras.items():
                    g = element_index(i, local_shape, out_starts)
                    extras[int(np.ravel_multi_index(g, node.shape)) if node.shape else 0] = v
        for i in extras:
            out_flat[i] = np.nan
        return out, extras, map_error, red_error

    def _reduce_block(
        self, rule: FastRule, terms: np.ndarray, t_extras: dict[int, Any], block_shape: tuple[int, ...],
        axes: tuple[int, ...], kept: list[int], out_starts: tuple[int, ...],
        abs_sums: np.ndarray | float | str | None, pair_safe: bool = False,
    ) -> tuple[np.ndarray, dict[int, Any], Error | None]:
        """One block of a ⊕/⊗: certified binary64 results, the rest by MPFR in output order.
        ``abs_sums`` (sum only) are upper bounds on Σ|terms| per output (or one for all),
        NONNEGATIVE (taken from the sums themselves), or None to compute them; rows a loose bound
        leaves uncertified are checked again with Σ|terms|.
        ``pair_safe``: interval analysis proves every sum of two terms in range."""
        K = self.K
        k = math.prod(block_shape[a] for a in axes)
        n_out = math.prod(block_shape[a] for a in kept)
        out_block = tuple(block_shape[a] for a in kept)
        checked = False  # every output's Σ|t| and exactness already tried
        if t_extras:
            ok = np.zeros(n_out, dtype=bool)
            r = np.zeros(n_out)
        elif rule.family == SUM and k == 2:
            with np.errstate(all="ignore"):
                y = self._pair_sum(terms, block_shape, axes)
                if pair_safe:
                    return K.round_safe_inplace(y, buffer("bits", y.shape, np.int64)).reshape(out_block), {}, None
                r = K.rounded(y)
                ok = K.in_range(r) | (y == 0)
        elif rule.family == SUM and (found := self._axis_sums(terms, axes)) is not None:
            y, measured, exact = found
            with np.errstate(all="ignore"):
                r = K.rounded(y)
                ok = self._sum_certified(y, r, measured, k) | (exact & (K.in_range(r) | (y == 0)))
            checked = True
        elif rule.family == SUM:
            with np.errstate(all="ignore"):
                y = np.asarray(np.sum(terms, axis=axes, initial=-0.0), dtype=np.float64).reshape(-1)  # −0 + x = x; −0 for −0 terms only
                if abs_sums is NONNEGATIVE:
                    abs_sums = y * (1 + 2.0**-9)
                elif abs_sums is None:
                    abs_sums = np.asarray(np.sum(np.abs(terms), axis=axes), dtype=np.float64).reshape(-1)
                r = K.rounded(y)
                ok = self._sum_certified(y, r, abs_sums, k)
        else:
            with np.errstate(all="ignore"):
                mant, exps = np.frexp(terms)
                mp = np.asarray(np.prod(mant, axis=axes), dtype=np.float64).reshape(-1)
                es = np.asarray(np.sum(exps, axis=axes, dtype=np.int64)).reshape(-1)
                y = np.ldexp(mp, np.clip(es, -4000, 4000).astype(np.int32))
                r = K.rounded(y)
                ok = K.in_range(r)
                if k * K.p > 53:
                    dist = K.midpoint_distance(y.view(np.int64))
                    ok &= (dist >= 2 * k + 2) & (2 * k + 2 < (1 << (K.s - 2)))
                ok |= mp == 0
        n_ok = int(ok.sum())
        self.stats.certified += n_ok
        if n_ok == n_out:
            return r.reshape(out_block), {}, None
        flagged = np.flatnonzero(~ok)
        if rule.family == SUM and not t_extras and not checked:
            candidates = _gather(terms, flagged, kept + list(axes), out_block, k)
            with np.errstate(all="ignore"):
                again = self._sum_certified(y[flagged], r[flagged], np.abs(candidates).sum(axis=1), k)
            again |= K.exact_sum_rows(candidates) & (K.in_range(r[flagged]) | (y[flagged] == 0))
            self.stats.certified += int(again.sum())
            flagged = flagged[~again]
        return self._recompute_rows(rule, terms, t_extras, block_shape, axes, kept, out_starts, r, flagged)

    def _recompute_rows(
        self, rule: FastRule, terms: np.ndarray, t_extras: dict[int, Any], block_shape: tuple[int, ...],
        axes: tuple[int, ...], kept: list[int], out_starts: tuple[int, ...], r: np.ndarray, flagged: np.ndarray,
    ) -> tuple[np.ndarray, dict[int, Any], Error | None]:
        """The ``flagged`` outputs (flat indices into the block's outputs ``r``) of a ⊕/⊗ block
        by MPFR from the same terms (``t_extras``: terms held as mpfr), in output order; the
        first error ends the block."""
        k = math.prod(block_shape[a] for a in axes)
        out_block = tuple(block_shape[a] for a in kept)
        perm = kept + list(axes)
        rows = _gather(terms, flagged, perm, out_block, k).tolist()
        positions = None
        if t_extras:
            positions = _gather(np.arange(terms.size).reshape(block_shape), flagged, perm, out_block, k).tolist()
        op = getattr(self.F, rule.kernel)  # the row's F_p kernel (sum, prod)
        mp = self._mp
        extras: dict[int, Any] = {}
        self.stats.recomputed += len(flagged)
        for j, i in enumerate(flagged.tolist()):
            if positions is None:
                row = [mp(v) for v in rows[j]]
            else:
                row = [t_extras[q] if q in t_extras else mp(v) for v, q in zip(rows[j], positions[j])]
            try:
                v = op(row)
            except FpArithmeticError as e:
                g = element_index(i, out_block, out_starts)
                return r.reshape(out_block), extras, (0, type(e)(f"{e} (element {g})"))
            self._store(r, extras, i, v)
        return r.reshape(out_block), extras, None


def _gather(a: np.ndarray, idx: np.ndarray, perm: list[int], out_block: tuple[int, ...], k: int) -> np.ndarray:
    """Rows idx of a block-shaped array, in the MPFR engine's term order (a small copy)."""
    t = np.transpose(a, perm)
    return t.reshape(1, k)[idx] if not out_block else t[np.unravel_index(idx, out_block)].reshape(len(idx), k)

