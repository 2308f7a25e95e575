"""``tc0sim show OUT``: the values of an eval output file (.npz or .json), exact and approximate."""

from __future__ import annotations

import itertools
import math
import numpy as np

from tc0sim.reports.base import FixedReport, Section

APPROX_BITS = 60
"""Leading bits of a significand kept for the decimal approximation of m·2^e."""


class ShowReport(FixedReport):
    """One section per output: each shown value's index, exact m·2^e and a decimal approximation."""


def approximate(m: int, e: int) -> str:
    """m·2^e to 17 significant digits, or as a power of two when beyond the float64 range."""
    drop = max(0, abs(m).bit_length() - APPROX_BITS)
    try:
        return f"{math.ldexp(float(m >> drop if m >= 0 else -((-m) >> drop)), e + drop):.17g}"
    except OverflowError:
        return f"{'-' if m < 0 else ''}≈2^{abs(m).bit_length() + e}"


def show_report(path: str, limit: int | None = 20) -> ShowReport:
    """The first ``limit`` values (all: None) of every output of the eval file ``path``."""
    from tc0sim.io.outputs import decimal_digits, read_output

    sections, data = [], {"file": path, "outputs": {}}
    for name, output in read_output(path).items():
        total = math.prod(output.shape)
        pairs = output.pairs(limit)
        indices = [list(map(int, i)) for i in itertools.islice(np.ndindex(*output.shape), len(pairs))]
        with decimal_digits():
            rows = [[str(i), f"{m}·2^{e}", approximate(m, e)] for i, (m, e) in zip(indices, pairs)]
        stored = "float64" if output.floats is not None else "m, e"
        section = Section(f"{name} {list(output.shape)} ({stored})", ("index", "exact m·2^e", "≈"), rows)
        if len(pairs) < total:
            section.lines.append(f"… {total - len(pairs):,} more values (--all shows every one)")
        sections.append(section)
        data["outputs"][name] = {"shape": list(output.shape), "stored": stored, "shown": len(pairs),
                                 "pairs": [[m, e] for m, e in pairs]}
    return ShowReport(sections, data)
