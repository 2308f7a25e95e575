"""The fast engine for 26 <= p <= 53: the steps of a ``FastRun`` that round, through the
double-double kernels (tc0sim.fastfp_dd.Kernels53), every flagged element recomputed by MPFR in
element order (docs/semantics.md §2.7).

``Wide`` is mixed into the run before ``Maps`` and ``Reductions``: it replaces the block steps
that rely on p <= 25 (innocuous double rounding, interval proofs, binary32 exp) and keeps the
rest (blocking, fusion, representations, errors). Kernels53 returns (values, flagged) and
range-checks every result, so no interval proof is used at these precisions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tc0sim.engines.fast.maps import Error
from tc0sim.engines.fast.rules import CERTIFIED, EXACT, UNKNOWN, FastRule, Range
from tc0sim.fastfp_dd import Kernels53
from tc0sim.ir import primitives as P
from tc0sim.ir.graph import Node


class Wide:
    """The rounding steps of a ``FastRun`` whose ``K`` is a Kernels53 (26 <= p <= 53)."""

    K: Kernels53

    def _round_entry(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact float64 values rounded once to p bits; flat indices of those MPFR must round."""
        rounded, flagged = self.K.round(r)
        return rounded, np.flatnonzero(flagged.reshape(-1))

    def _round_quotients(self, n: np.ndarray, d: np.ndarray) -> np.ndarray | None:
        """round_p(n / d) for F_p values n, d > 0 by the division kernel (its midpoints resolved
        by the exact residual), or None if one is out of range."""
        r, flagged = self.K.map(P.DIV.kernel, n, d)
        return None if flagged.any() else r

    def _record(self, node: Node, value: Any, derived: Range | None = None) -> Any:
        """Bounds are kept as derived, never measured: at these precisions no step reads them
        to skip a check (``_safe`` is False, Kernels53 checks every element)."""
        self.ranges[node.id] = derived if derived is not None else UNKNOWN
        return value

    def _safe(self, rule: FastRule | None, args: list[np.ndarray], inputs: tuple[int, ...]) -> bool:
        """No interval proof at these precisions: every result is range-checked by Kernels53."""
        return False

    def _single(self, rule: FastRule | None, inputs: tuple[int, ...]) -> bool:
        """binary32 exp is never used (its certificate needs p <= 14)."""
        return False

    def _map_part(
        self, rule: FastRule, args: list[np.ndarray], safe: bool, shape: tuple[int, ...], starts: tuple[int, ...],
        out: np.ndarray, single: bool = False,
    ) -> tuple[np.ndarray, dict[int, Any], Error | None]:
        """One block (or half) of an elementwise node written into ``out``: Kernels53's values, its flagged
        elements (and every element of a primitive it has no kernel for) recomputed by MPFR in
        flat order (exact zeros are not flagged)."""
        assert rule.fn is not None
        if rule.family == EXACT:
            out[...] = rule.fn(*args)
            return out, {}, None
        if rule.kernel in self.K.maps:
            direct = out.flags.c_contiguous
            with np.errstate(all="ignore"):
                r, flagged = self.K.map(rule.kernel, *args, out=out if direct else None)
            if not direct:
                out[...] = r
        else:
            flagged = np.ones(out.shape, dtype=bool)
        idx = np.flatnonzero(flagged.reshape(-1))
        if rule.family == CERTIFIED:
            self.stats.certified += out.size - idx.size
        if not idx.size:
            return out, {}, None
        where = np.unravel_index(idx, out.shape)
        operands = [np.broadcast_to(a, out.shape)[where] for a in args]
        return self._recompute(rule.kernel, out, idx, operands, shape, starts)

    def _dot_kernel(self) -> bool:
        """A ⊕ of products always takes the fused kernel here (numba is loaded at these precisions)."""
        return True

    def _dot_values(self, dot: Any, safe: bool) -> tuple[np.ndarray, np.ndarray] | None:
        """Each output rounded by the fused double-double kernel (tc0sim.engines.fast.jit_dot_dd),
        and whether it is certified; None when a product leaves the proven range."""
        from tc0sim.engines.fast import jit_dot_dd

        r, uncertain, bad = jit_dot_dd.rounded_sums(dot, self.K.p)
        return None if bad.any() else (r, ~uncertain)

    def _dot_terms(self, dot: Any, i: int) -> list[Any]:
        """The terms of output ``i`` as MPFR values: each product rounded by MPFR, then the extra terms."""
        a, b, e = dot.rows(i)
        mul, mp = self.F.mul, self._mp
        return [mul(mp(x), mp(y)) for x, y in zip(a.tolist(), b.tolist())] + [mp(t) for t in e.tolist()]

    def _reduce_block(
        self, rule: FastRule, terms: np.ndarray, t_extras: dict[int, Any], block_shape: tuple[int, ...],
        axes: tuple[int, ...], kept: list[int], out_starts: tuple[int, ...],
        abs_sums: np.ndarray | float | str | None, pair_safe: bool = False,
    ) -> tuple[np.ndarray, dict[int, Any], Error | None]:
        """One block of a ⊕/⊗ by Kernels53 (certified double-double sums and products); flagged
        outputs, and every output of a block holding terms beyond binary64, summed by MPFR."""
        n_out = math.prod(block_shape[a] for a in kept)
        if t_extras:
            r, flagged = np.zeros(n_out), np.ones(n_out, dtype=bool)
        else:
            with np.errstate(all="ignore"):
                values, found = self.K.reduce(rule.kernel, terms, axes)
            r, flagged = np.ascontiguousarray(values).reshape(-1), found.reshape(-1)
        idx = np.flatnonzero(flagged)
        self.stats.certified += n_out - idx.size
        return self._recompute_rows(rule, terms, t_extras, block_shape, axes, kept, out_starts, r, idx)
