"""What every report is made of: titled sections for the human formats, a plain dict for JSON.

A report function (``depth_report``, ``size_report``, …) computes once and returns a ``Report``;
``sections()`` is what ``--format text|markdown`` prints, ``as_dict()`` what ``--format json``
prints. The helpers here turn depth vectors, exact numbers and witness paths into table cells and
JSON values the same way for every report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tc0sim.ir.vectors import fmt as vec_text
from tc0sim.ir.vectors import to_dict
from tc0sim.limits import SUMMARY_ROWS

if TYPE_CHECKING:
    from tc0sim.modelfile import ModelSpec


@dataclass
class Section:
    """A titled block of a report: a table (``headers`` + ``rows``) and/or free ``lines``."""

    title: str
    headers: Sequence[str] = ()
    rows: list[Sequence[Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


class Report:
    """A computed report: ``sections()`` for text and markdown, ``as_dict()`` for JSON."""

    def sections(self) -> list[Section]:
        raise NotImplementedError

    def as_dict(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass
class FixedReport(Report):
    """A report whose sections and JSON document are computed together."""

    parts: list[Section]
    data: dict[str, Any]

    def sections(self) -> list[Section]:
        return self.parts

    def as_dict(self) -> dict[str, Any]:
        return self.data


class _Quiet:
    def advance(self, label: str = "") -> None:
        """Nothing to show."""


def no_progress(description: str, total: int) -> AbstractContextManager[Any]:
    """A report's default progress hook (``progress(description, total)`` yields a bar with ``advance``): silent."""
    return nullcontext(_Quiet())


def no_status(message: str) -> AbstractContextManager[Any]:
    """A report's default status hook (a spinner while a long step runs): silent."""
    return nullcontext()


def summarised(
    rows: list[Any], middle: Callable[[list[Any]], Any], keep: int = SUMMARY_ROWS, full: bool = False
) -> list[Any]:
    """``rows`` unchanged when ``full`` or short; otherwise the first and last ``keep`` rows around
    ``middle(rest)``. Every long table of a report goes through here (one flag, ``--full-path``, lifts it)."""
    if full or len(rows) <= 2 * keep + 1:
        return rows
    return rows[:keep] + [middle(rows[keep:-keep])] + rows[-keep:]


def jsonable(value: Any) -> Any:
    """Convert Fractions (to "p/q" strings, or ints), numpy scalars, tuples and sets for json.dumps."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, Fraction):
        return value.numerator if value.denominator == 1 else str(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return str(value)


def as_spec(model: str | Path | ModelSpec) -> tuple[ModelSpec, str]:
    """A model file path (read and validated) or a ModelSpec, with the name a report gives it."""
    from tc0sim.modelfile import ModelSpec, load_model

    if isinstance(model, ModelSpec):
        return model, model.source
    return load_model(model), str(model)


def vec_dict(v: tuple[int, ...]) -> dict[str, int]:
    """A depth vector as {symbol: count} over every symbol."""
    return to_dict(v, full=True)


def exact_text(x: Any) -> str:
    """An exact number as ``p`` or ``p/q``."""
    x = Fraction(x)
    return str(x.numerator) if x.denominator == 1 else str(x)


def group_dicts(groups: list[Any]) -> list[dict[str, Any]]:
    """Path groups (``tc0sim.interp.paths.PathGroup``) for JSON: scope path, paper reference, gates, depth."""
    return [
        {"operator": g.operator, "ref": g.ref, "gates": g.gates, "depth": vec_dict(g.depth), "linear": vec_text(g.depth)}
        for g in groups
    ]


def group_rows(groups: list[Any], full: bool = True) -> list[list[str]]:
    """One row per operator segment of a path; unless ``full``, a long path keeps its first and
    last segments and sums up those between (count, depth, gates) in one row."""
    with_gates = [g for g in groups if g.gates]

    def middle(inner: list[Any]) -> list[str]:
        total = tuple(map(sum, zip(*(g.depth for g in inner))))
        gates = sum(len(g.gates) for g in inner)
        return [f"… {len(inner):,} more operator segments (--full-path lists them) …", "", vec_text(total), f"{gates:,} gates"]

    shown = summarised(with_gates, middle, full=full)
    return [g if isinstance(g, list) else [g.operator, g.ref, vec_text(g.depth), " → ".join(g.gates)] for g in shown]


PATH_HEADERS = ("operator", "paper ref", "depth", "gates on the path")
"""The columns of a path-by-operator table."""

__all__ = [
    "FixedReport", "PATH_HEADERS", "Report", "SUMMARY_ROWS", "Section", "as_spec", "exact_text", "group_dicts",
    "group_rows", "jsonable", "summarised", "vec_dict", "vec_text",
]
