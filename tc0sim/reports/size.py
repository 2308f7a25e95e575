"""``tc0sim size``: exact gate counts at several n, the exact polynomial in n fitted and verified
on further points, and the weight scalars the circuit reads; and the size tables of ``depth``."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tc0sim import polyfit
from tc0sim.errors import ConfigError
from tc0sim.limits import VERIFY_POINTS
from tc0sim.reports.base import SUMMARY_ROWS, Report, Section, as_spec, exact_text, no_progress

if TYPE_CHECKING:
    from tc0sim.modelfile import ModelSpec


def size_sections(report: dict[str, Any], full: bool = False) -> list[Section]:
    """The gate counts by primitive and by operator (``Size.as_dict()``), most gates first; unless
    ``full``, a long by-operator table keeps its largest rows and sums up the rest in one row that
    says what share of the gates it holds."""
    by_prim = Section(
        f"size: {report['total']:,} gates",
        ("primitive", "gates"),
        [[name, f"{count:,}"] for name, count in sorted(report["by_primitive"].items(), key=lambda kv: (-kv[1], kv[0]))],
    )
    fan = {k: v for k, v in report.get("max_fan_in", {}).items() if v}
    if fan:
        by_prim.lines.append("largest fan-in: " + ", ".join(f"{k} {v:,}" for k, v in fan.items()))
    items = sorted(report["by_operator"].items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(c for _, c in items)
    rows = [[op, f"{c:,}"] for op, c in items]
    shown = 2 * SUMMARY_ROWS
    if not full and len(rows) > shown + 1:
        hidden = sum(c for _, c in items[shown:])
        share = f"{100 * hidden / total:.1f} %" if total else "0 %"
        rows = rows[:shown] + [[f"… {len(items) - shown:,} more operators, {share} of the gates (--full-path lists them) …", f"{hidden:,}"]]
    return [by_prim, Section("size by operator (most gates first)", ("operator", "gates"), rows)]


def parameter_section(parameters: dict[str, Any], n: int | None) -> Section:
    """The weight scalars the circuit reads, by group and component."""
    at = f" at n={n}" if n is not None else ""
    section = Section(f"parameters{at}: {parameters['total']:,} weight scalars", ("component", "parameters"))
    section.rows = [[name, f"{count:,}"] for name, count in parameters["by_component"].items()]
    groups = [k for k in parameters if k not in ("total", "by_component")]
    section.lines.append(", ".join(f"{k} {parameters[k]:,}" for k in groups))
    return section


@dataclass
class SizeReport(Report):
    """Gate counts at the fitted points ``counts`` and the verification points ``checks``, the fit."""

    spec: ModelSpec
    file: str
    points: list[int]
    counts: list[dict[str, Any]]
    checks: list[dict[str, Any]]
    fit: Any
    parameters: dict[str, Any] | None

    @property
    def coefficients(self) -> list[Fraction] | None:
        """The verified polynomial's coefficients (constant first), or None when it failed."""
        return self.fit.coefficients if self.fit.verified else None

    def as_dict(self) -> dict[str, Any]:
        fit, coefficients = self.fit, self.fit.coefficients
        result: dict[str, Any] = {
            "n": self.points,
            "counts": self.counts,
            "verification": [
                {"n": c["n"], "total": c["total"], "predicted": exact_text(polyfit.value(coefficients, c["n"]))}
                for c in self.checks
            ],
            "verified": fit.verified,
            "polynomial": [exact_text(c) for c in coefficients] if fit.verified else None,
            "polynomial_text": polyfit.text(coefficients) if fit.verified else None,
            "degree": polyfit.degree(coefficients) if fit.verified else None,
            "uses_n": self.spec.uses_n,
        }
        spec = self.spec
        data = {"model": {"file": self.file, "kind": spec.kind, "dims": {k: str(v) for k, v in spec.dims.items()}}, "size": result}
        if self.parameters is not None:
            data["parameters"] = self.parameters
        return data

    def sections(self) -> list[Section]:
        spec, fitted, checks, coefficients = self.spec, self.counts, self.checks, self.fit.coefficients
        primitives = sorted({p for c in fitted + checks for p in c["by_primitive"]})
        table = Section(
            f"gate counts of {spec.kind} ({', '.join(f'{k}={v}' for k, v in spec.dims.items())})",
            ("n", "total", *primitives),
            [[str(c["n"]), f"{c['total']:,}", *(f"{c['by_primitive'].get(p, 0):,}" for p in primitives)] for c in fitted],
        )
        summary = Section("size polynomial")
        if not spec.uses_n:
            summary.lines.append(f"the model does not use n: the size is the constant {fitted[0]['total']:,}")
        elif self.fit.verified:
            summary.lines.append(f"size(n) = {polyfit.text(coefficients)}   (degree {polyfit.degree(coefficients)})")
            if checks:
                summary.lines.append("verified at n = " + ", ".join(str(c["n"]) for c in checks))
            else:
                summary.lines.append("not verified (--verify 0): the fit is only an interpolation of the given points")
        else:
            failures = [c for c in checks if c["n"] in self.fit.failures]
            summary.lines.append(
                f"not a polynomial in n on these points: the degree-≤{len(self.points) - 1} fit {polyfit.text(coefficients)} "
                "predicts "
                + ", ".join(f"{exact_text(polyfit.value(coefficients, c['n']))} at n={c['n']} (counted {c['total']:,})" for c in failures)
                + "; give more points with --n"
            )
        sections = [table, summary]
        if self.parameters is not None:
            sections.append(parameter_section(self.parameters, self.points[0] if spec.uses_n else None))
        return sections


def size_report(
    model: str | Path | ModelSpec,
    points: list[int] | None = None,
    verify: int = VERIFY_POINTS,
    progress: Callable[[str, int], AbstractContextManager[Any]] = no_progress,
) -> SizeReport:
    """Count the gates of ``model`` at each n of ``points`` (default: the file's ``sweep:``) and at
    ``verify`` further n, and fit the exact polynomial in n (``tc0sim.polyfit``)."""
    from tc0sim.interp.size import size as size_of

    spec, file = as_spec(model)
    if points is not None:
        points = sorted(points)
    elif spec.sweep is not None:
        points = sorted(spec.sweep)
    elif not spec.uses_n:
        points = [spec.n or 1]
    else:
        raise ConfigError(f"{file}: give the n values with --n, e.g. --n 4,8,16,32 (or add a 'sweep:' key)")
    extra = polyfit.verification_points(points, verify) if spec.uses_n else []
    counts: list[dict[str, Any]] = []
    parameters_of = spec.kind_info.parameters
    parameters: dict[str, Any] | None = None
    with progress(f"counting {spec.kind}", len(points) + len(extra)) as bar:
        for n in points + extra:
            built = spec.build(n, share=True)
            report = size_of(built).as_dict()
            counts.append({"n": n, "total": report["total"], "by_primitive": report["by_primitive"]})
            if parameters_of is not None and parameters is None:
                parameters = parameters_of(built)
            bar.advance(f"n={n}")
    checks = counts[len(points) :]
    fit = polyfit.fit_and_verify({c["n"]: c["total"] for c in counts}, len(checks))
    return SizeReport(spec, file, points, counts[: len(points)], checks, fit, parameters)
