"""The ``tc0sim`` command line (docs/cli.md): depth, size, eval, audit, graph, kinds, claims (and demo).

Exit status: 0 on success, 1 when an audit finds a violated claim, 2 on bad input — a model file,
an option or an input file that is wrong gives one line ``error: …`` on stderr and no traceback
(click's own usage errors also exit 2).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import click
import gmpy2
import numpy as np
import yaml

from tc0sim import polyfit
from tc0sim.cli.options import Count, budget_options, parse_count
from tc0sim.cli.output import (
    FORMATS,
    SUMMARY_ROWS,
    Section,
    emit,
    jsonable,
    progress,
    status,
    summarised,
    unlimited_int_digits,
)
from tc0sim import __version__
from tc0sim.errors import BudgetError, ConfigError, Tc0simError
from tc0sim.expr import LIMIT, parse_number
from tc0sim.fp import Format
from tc0sim.ir.budget import active_budget
from tc0sim.ir.primitives import SYMBOLS
from tc0sim.ir.vectors import claim_verdict, dot
from tc0sim.npzfile import READ_ERRORS, check_member_header
from tc0sim.limits import MAX_ERROR_CHARS, MAX_PRECISION, MAX_SWEEP_POINTS, MAX_VERIFY_POINTS, MIN_PRECISION

DEMO_PRECISIONS = (8, 24, 53, 113)
DEMO_TERMS = ("1e40", "1", "-1e40", "1/3")

DEFAULT_MAX_GATES = 5 * 10**7
"""Largest number of gates ``tc0sim eval`` evaluates unless --max-gates says otherwise."""

PARALLEL_MIN_GATES = 10_000_000
"""The MPFR engine starts a local Dask cluster by default from this many gates on: starting and
closing one takes about 1 s, and the serial engine does about 3·10^6 gates/s (measured with 2
workers: 7.1·10^6 gates 2.49 s serial against 2.42 s on Dask, 1.7·10^7 gates 5.38 against 4.24 s)."""

VERIFY_POINTS = 2
"""How many extra n values ``tc0sim size`` builds to verify a fitted polynomial."""

EXIT_VIOLATED = 1
EXIT_BAD_INPUT = 2


def _one_line(error: BaseException | str) -> str:
    text = error if isinstance(error, str) else str(error) or type(error).__name__
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


class Tc0simGroup(click.Group):
    """A click group that turns tc0sim's deliberate errors and click's usage errors into one line
    ``error: …`` and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (Tc0simError, yaml.YAMLError, OSError) as error:
            click.echo(f"error: {_one_line(error)}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except (MemoryError, RecursionError) as error:  # a safety net: the limits above should come first
            click.echo(
                f"error: out of {'memory' if isinstance(error, MemoryError) else 'stack'} "
                "before the build budget refused the model; use smaller dims or params, or a smaller --max-memory",
                err=True,
            )
            ctx.exit(EXIT_BAD_INPUT)
        except click.UsageError as error:
            command = f"tc0sim {error.ctx.info_name} --help" if error.ctx and error.ctx.parent else "tc0sim --help"
            click.echo(f"error: {_one_line(error.format_message())} (see '{command}')", err=True)
            ctx.exit(EXIT_BAD_INPUT)


@click.group(cls=Tc0simGroup)
@click.version_option(__version__, prog_name="tc0sim")
def main() -> None:
    """tc0sim: circuit-complexity simulator and depth accountant for VAR and FlowAR.

    Every command but `claims`, `kinds` and `demo` reads MODEL, a YAML model file naming a kind
    (an operator or a model), its dims and params: start from one in examples/ (e.g.
    `tc0sim depth examples/attention.yaml`), list the kinds with `tc0sim kinds`, and see
    docs/model_files.md and docs/cli.md. The claims audited are those of "Circuit Complexity
    Bounds for Visual Autoregressive Model" (Ke, Li, Liang, Shi, Song; arXiv:2501.04299) and "On
    Computational Limits of FlowAR Models: Expressivity and Efficiency" (Cao, Gong, Ke, Li,
    Liang, Sha, Shi, Song; arXiv:2502.16490).
    """


def console() -> None:
    """The ``tc0sim`` program (console script and ``python -m tc0sim``): one command, then exit.

    Python's cyclic garbage collector is off for the command: a graph build or an analysis makes
    millions of acyclic objects that reference counting frees, and every full collection would
    walk all of them again (half a second for FlowAR-H) for cycles that are freed at exit anyway.
    The process then ends without tearing down numpy, rich and the rest (a tenth of a second),
    unless a Dask cluster was started, whose clean-up runs at exit."""
    gc.disable()
    try:
        main(prog_name="tc0sim")
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if isinstance(done.code, str):
            sys.stderr.write(done.code + "\n")
        if "distributed" in sys.modules:  # a Dask cluster's clean-up runs at interpreter exit
            raise
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # a closed pipe (`tc0sim … | head`): nothing more can be written
            pass
        os._exit(code)  # every file the command wrote is closed; skip tearing down the imported modules


def _text(x: object, digits: int) -> str:
    return format(x, f".{digits}g")


@main.command()
def demo() -> None:
    """Show one-rounding iterated addition (VAR Lemma 3.5 Part 3) against left-to-right."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="sum of " + ", ".join(DEMO_TERMS) + " (terms rounded to p bits on entry)")
    for name in ("p", "left-to-right add", "one rounding F.sum", "exact sum of the rounded terms", "differ"):
        table.add_column(name)
    for p in DEMO_PRECISIONS:
        fmt = Format(p)
        terms = [fmt.round(t) for t in DEMO_TERMS]
        acc = fmt.zero
        for t in terms:
            acc = fmt.add(acc, t)
        once = fmt.sum(terms)
        exact = sum((fmt.to_fraction(t) for t in terms), Fraction(0))
        digits = max(3, int(p * 0.30103) + 2)
        exact_text = _text(gmpy2.mpfr(gmpy2.mpq(exact.numerator, exact.denominator), 4 * p), digits + 4)
        table.add_row(
            str(p), _text(acc, digits), _text(once, digits), exact_text, "yes" if acc != once else "no"
        )
    Console(width=200).print(table)


# ---------------------------------------------------------------------------------------------
# shared options and helpers

_FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="Output format: rich tables, JSON or markdown.",
)
_N_OPTION = click.option(
    "--n",
    "n",
    type=Count(1),
    default=None,
    help="Value of n for dims written as expressions in n (default: the file's 'n:').",
)


def _load(model: str) -> Any:
    from tc0sim.modelfile import load_model

    return load_model(model)


def _model_info(spec: Any, model: str, n: int | None) -> dict[str, Any]:
    return {
        "file": model,
        "kind": spec.kind,
        "n": n if n is not None else spec.n,
        "dims": spec.dims_at(n),
        "params": spec.params_at(n),
    }


def _vec_text(v: tuple[int, ...]) -> str:
    from tc0sim.ir.vectors import fmt

    return fmt(v)


def _vec_dict(v: tuple[int, ...]) -> dict[str, int]:
    return {s: int(c) for s, c in zip(SYMBOLS, v)}


def _exact_text(x: Any) -> str:
    x = Fraction(x)
    return str(x.numerator) if x.denominator == 1 else str(x)


def _parse_symbol_values(assignments: tuple[str, ...]) -> tuple[dict[str, Fraction], list[str]]:
    """--set d_std=3 …: every symbol gets a non-negative exact value; unspecified ones default to 1."""
    values: dict[str, Fraction] = {}
    for item in assignments:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep:
            raise ConfigError(f"--set {item!r}: expected SYMBOL=VALUE, e.g. d_std=3")
        if name not in SYMBOLS:
            raise ConfigError(f"--set {item!r}: unknown depth symbol {name!r}; expected one of {', '.join(SYMBOLS)}")
        if name in values:
            raise ConfigError(f"--set: symbol {name} is given twice")
        try:
            value = parse_number(raw)
        except ConfigError as e:
            raise ConfigError(f"--set {name}: {e}") from None
        if value < 0:
            raise ConfigError(f"--set {item!r}: a gate depth must be >= 0")
        values[name] = value
    defaulted = [s for s in SYMBOLS if s not in values]
    for s in defaulted:
        values[s] = Fraction(1)
    return values, defaulted


def _group_dicts(groups: list[Any]) -> list[dict[str, Any]]:
    """Path groups (``tc0sim.interp.paths.PathGroup``) for JSON: scope path, paper reference, gates, depth."""
    return [
        {"operator": g.operator, "ref": g.ref, "gates": g.gates, "depth": _vec_dict(g.depth), "linear": _vec_text(g.depth)}
        for g in groups
    ]


def _count_option(text: str, option: str) -> int:
    """A non-negative count option ('all' is handled by the caller); garbage is a ConfigError."""
    if not text.isdigit():
        raise ConfigError(f"{option}: expected a non-negative integer or 'all', got {text!r}")
    return int(text)


def _witness_json(result: Any, v: tuple[int, ...], groups: list[Any], nodes: bool) -> dict[str, Any]:
    """The witness path of ``v`` by operator and (``nodes``) node by node, for JSON."""
    return {
        "vector": _vec_dict(v),
        "linear": _vec_text(v),
        "by_operator": _group_dicts(groups),
        "path": [
            {"id": node.id, "prim": node.prim, "name": node.name, "operator": node.scope_path or "(top)"}
            for node in result.witness(v)
        ]
        if nodes
        else None,
    }


def _group_rows(groups: list[Any], full: bool = True) -> list[list[str]]:
    """One row per operator segment of a path; unless ``full``, a long path keeps its first and
    last segments and sums up those between (count, depth, gates) in one row."""
    with_gates = [g for g in groups if g.gates]
    shown = with_gates if full or len(with_gates) <= 2 * SUMMARY_ROWS + 1 else with_gates[:SUMMARY_ROWS] + [None] + with_gates[-SUMMARY_ROWS:]
    rows = []
    for g in shown:
        if g is not None:
            rows.append([g.operator, g.ref, _vec_text(g.depth), " → ".join(g.gates)])
            continue
        inner = with_gates[SUMMARY_ROWS:-SUMMARY_ROWS]
        total = tuple(map(sum, zip(*(g.depth for g in inner))))
        gates = sum(len(g.gates) for g in inner)
        rows.append([f"… {len(inner):,} more operator segments (--full-path lists them) …", "", _vec_text(total), f"{gates:,} gates"])
    return rows


def _size_sections(report: dict[str, Any], full: bool = False) -> list[Section]:
    """The gate counts by primitive and by operator; unless ``full``, a long by-operator table keeps
    its first and last rows and sums up those between in one row (like a long witness path)."""
    by_prim = Section(
        f"size: {report['total']:,} gates",
        ("primitive", "gates"),
        [[name, f"{count:,}"] for name, count in report["by_primitive"].items()],
    )
    fan = {k: v for k, v in report.get("max_fan_in", {}).items() if v}
    if fan:
        by_prim.lines.append("largest fan-in: " + ", ".join(f"{k} {v:,}" for k, v in fan.items()))
    items = list(report["by_operator"].items())
    by_op = Section(
        "size by operator",
        ("operator", "gates"),
        summarised(
            [[op, f"{c:,}"] for op, c in items],
            lambda skipped: [
                f"… {len(skipped):,} more operators (--full-path lists them) …",
                f"{sum(c for _, c in items[SUMMARY_ROWS : SUMMARY_ROWS + len(skipped)]):,}",
            ],
            full=full,
        ),
    )
    return [by_prim, by_op]


# ---------------------------------------------------------------------------------------------
# depth


@main.command()
@click.argument("model")
@_N_OPTION
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="SYMBOL=VALUE",
    help=f"Concrete gate depth of a symbol (repeatable), e.g. --set d_std=3; SYMBOL is one of {', '.join(SYMBOLS)}. "
    "VALUE is an integer, decimal or p/q ≥ 0. Unspecified symbols are 1.",
)
@click.option(
    "--witnesses",
    "witness_count",
    default="1",
    show_default=True,
    metavar="N|all",
    help="How many critical vectors get a witness path (in the order of the critical-depth table); "
    "'all' for every one. A path through a model of 10^12 gates can have 10^4 operator segments.",
)
@click.option(
    "--full-path",
    "full_path",
    is_flag=True,
    help=f"Print every operator segment of the witness paths and every row of the size-by-operator table "
    f"(by default a path or table of more than {2 * SUMMARY_ROWS + 1} rows shows the first and last "
    f"{SUMMARY_ROWS} and sums up the rest).",
)
@click.option(
    "--memory-budget",
    "memory_budget",
    default="2GB",
    show_default=True,
    metavar="SIZE",
    help="Memory the exact depth analysis may use, e.g. 500MB, 2GB (binary units; a bare number is bytes); "
    "a step that needs more is refused with exit status 2. (--max-memory bounds the graph build.)",
)
@click.option(
    "--allow-upper-bound",
    is_flag=True,
    help="Where the budget would be exceeded, take the node-level union (an upper bound, reported as such) instead of refusing.",
)
@click.option(
    "--gates",
    type=click.Choice(["symbolic", "threshold"]),
    default="symbolic",
    help="threshold: replace the symbols by the depths of tc0sim's threshold circuits at the model's precision.",
)
@_FORMAT_OPTION
@click.option("--plot", "plot_path", default=None, metavar="OUT.png", help="Draw the critical path's gates by operator, stacked by symbol (needs matplotlib).")
@budget_options
def depth(
    model: str,
    n: int | None,
    assignments: tuple[str, ...],
    witness_count: str,
    full_path: bool,
    memory_budget: str,
    allow_upper_bound: bool,
    gates: str,
    fmt: str,
    plot_path: str | None,
) -> None:
    """Critical depth of MODEL: Pareto-maximal path vectors, the witness path by operator, and size.

    MODEL is a YAML model file naming a kind, its dims and params (see examples/ and
    docs/model_files.md; `tc0sim kinds` lists the kinds). The depth is a linear form in the gate
    depths d_std, d_sum, d_prod, d_exp, d_sqrt; with --set it is also one number (unspecified
    symbols count 1) with the path realising it. When the file has a `claim:` key, the claimed
    depth is printed beside the computed one as tight, slack or violated. The analysis is exact
    (within --memory-budget, else refused); the report ends with the wall time of the command
    (model file to report) and the peak resident memory of the process (process start included).
    --plot draws the path that is critical at the --set values (every symbol 1 by default).
    With --gates threshold also the concrete threshold-circuit depth and size (docs/threshold.md).
    """
    from tc0sim.interp.depth import depth as depth_of
    from tc0sim.interp.size import size as size_of

    started = time.perf_counter()
    budget = _parse_bytes(memory_budget, "--memory-budget")
    values, defaulted = _parse_symbol_values(assignments) if assignments else ({}, [])
    if plot_path is not None:
        from tc0sim.cli.plots import require_matplotlib

        require_matplotlib("--plot")
    spec = _load(model)
    info = _model_info(spec, model, n)
    graph = spec.build(n, share=True)
    built, cpu_before = time.perf_counter(), time.process_time()
    with status(f"computing the depth of {spec.label(n)}"):
        result = depth_of(graph, memory_budget=budget, allow_upper_bound=allow_upper_bound)
    analysed, depth_cpu = time.perf_counter(), time.process_time() - cpu_before
    size_report = size_of(graph).as_dict()
    shown = result.critical if witness_count == "all" else result.critical[: _count_option(witness_count, "--witnesses")]
    witnesses = [(v, result.witness_groups(v)) for v in shown]
    data: dict[str, Any] = {
        "model": info,
        "depth": {
            "critical": [_vec_dict(v) for v in result.critical],
            "linear": [_vec_text(v) for v in result.critical],
            "per_symbol": dict(result.per_symbol),
            "exact": bool(result.exact),
            "inexact_reasons": list(result.inexact_reasons),
            "tensor_nodes": result.analysed_nodes,
            "witness": [_witness_json(result, v, groups, full_path) for v, groups in witnesses] if fmt == "json" else None,
            "at": None,
        },
        "size": size_report,
    }

    header = Section(f"{spec.label(n)} — {model}")
    if spec.description:
        header.lines.append(spec.description)
    critical = Section("critical depth", ("#", "depth (linear form)", *SYMBOLS))
    for i, v in enumerate(result.critical, 1):
        critical.rows.append([str(i), _vec_text(v), *(str(c) for c in v)])
    if len(result.critical) > 1:
        critical.lines.append(
            f"no single path dominates: {len(result.critical)} Pareto-maximal vectors "
            "(the depth is their maximum for given symbol values)"
        )
    if not result.exact:
        critical.lines.append("upper bound, not exact: " + "; ".join(result.inexact_reasons))
    if spec.claim is not None:
        verdict, detail = claim_verdict(result.critical, spec.claim)
        data["depth"]["claim"] = {
            "claimed": _vec_text(spec.claim),
            "verdict": verdict,
            "slack" if verdict == "slack" else "exceeding": _vec_dict(detail) if detail else None,
        }
        critical.lines.append(f"claimed (key 'claim'): {_vec_text(spec.claim)} — {_claim_words(verdict, detail, spec.claim)}")
    sections = [header, critical]

    if assignments:
        best = result.best(values)
        number, groups = dot(best, values), result.witness_groups(best)
        data["depth"]["at"] = {
            "values": {s: _exact_text(values[s]) for s in SYMBOLS},
            "defaulted": defaulted,
            "depth": jsonable(Fraction(number)),
            "vector": _vec_dict(best),
            "by_operator": _group_dicts(groups) if fmt == "json" else None,
        }
        given = ", ".join(f"{s}={_exact_text(values[s])}" for s in SYMBOLS)
        note = f" (unspecified symbols = 1: {', '.join(defaulted)})" if defaulted else ""
        numeric = Section(
            f"depth at {given}: {_exact_text(number)}{note}",
            ("operator", "paper ref", "depth", "gates on the path"),
            _group_rows(groups, full_path),
        )
        numeric.lines.append(f"path vector: {_vec_text(best)}")
        sections.append(numeric)
    if len(witnesses) < len(result.critical):
        critical.lines.append(
            f"witness paths below for the first {len(witnesses)} of {len(result.critical)} vectors (--witnesses N or all for more)"
        )
    for i, (v, groups) in enumerate(witnesses, 1):
        sections.append(
            Section(
                f"witness path {i} ({_vec_text(v)}) by operator",
                ("operator", "paper ref", "depth", "gates on the path"),
                _group_rows(groups, full_path),
            )
        )
    if gates == "threshold":
        sections.append(_threshold_section(spec, graph, result, data))
    sections.extend(_size_sections(size_report, full_path))
    resources = _resources(started, built, analysed, depth_cpu)
    data.update(resources)
    sections.append(
        Section(
            "resources",
            lines=[
                f"wall time {resources['wall_time_s']:.3f} s (graph build {resources['build_time_s']:.3f} s, "
                f"depth {resources['depth_time_s']:.3f} s, {resources['depth_cpu_s']:.3f} s CPU), "
                f"peak RSS {resources['peak_rss_mb']:.1f} MB"
            ],
        )
    )
    emit(fmt, sections, data)
    if plot_path is not None:
        from tc0sim.cli.plots import depth_plot

        chosen = result.best(values or {s: 1 for s in SYMBOLS})
        number = dot(chosen, values or {s: 1 for s in SYMBOLS})
        depth_plot(plot_path, f"critical path of {spec.label(n)}: depth {_exact_text(number)}", result.witness_groups(chosen))


def _threshold_section(spec: Any, graph: Any, result: Any, data: dict[str, Any]) -> Section:
    from tc0sim.interp.threshold import account

    if spec.precision is None:
        raise ConfigError("--gates threshold needs the model file's precision")
    acc = account(graph, result, spec.precision)
    data["threshold"] = acc.as_dict()
    rows = [[s, str(acc.values[s]), acc.sources[s]] for s in SYMBOLS if s in acc.values]
    rows += [[s, "symbolic", why] for s, why in acc.unresolved.items()]
    section = Section(f"threshold circuits at p = {acc.precision}", ("symbol", "gate depth", "from"), rows)
    section.lines.append(f"depth = {acc.depth_text()} threshold gates" + ("" if acc.depth is not None else " (symbols left have no circuit)"))
    section.lines.append(f"size = {acc.gates} gates, {acc.wires} wires (elements × circuit size, over the primitives with circuits)")
    return section


_BYTE_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 2**10, "KIB": 2**10, "M": 2**20, "MB": 2**20, "MIB": 2**20,
               "G": 2**30, "GB": 2**30, "GIB": 2**30, "T": 2**40, "TB": 2**40, "TIB": 2**40}


def _parse_bytes(text: str, option: str) -> int:
    """'2GB', '500MB', '1.5G', '4096' (bytes) -> bytes; units are binary (1 MB = 2^20 bytes)."""
    raw = text.strip().upper().replace(" ", "")
    number = raw.rstrip("KMGTIB")
    unit = raw[len(number) :]
    try:
        value = Fraction(number) * _BYTE_UNITS[unit]
    except (KeyError, ValueError, ZeroDivisionError):
        raise ConfigError(f"{option} {text!r}: expected a size such as 500MB or 2GB") from None
    if value <= 0:
        raise ConfigError(f"{option} {text!r}: the size must be positive")
    return int(value)


def _resources(started: float, built: float, analysed: float, depth_cpu: float) -> dict[str, float]:
    """Wall times since the command started (perf_counter), the depth analysis's CPU time
    (process_time) and the process's peak RSS (getrusage, MB)."""
    import resource

    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "wall_time_s": round(time.perf_counter() - started, 4),
        "build_time_s": round(built - started, 4),
        "depth_time_s": round(analysed - built, 4),
        "depth_cpu_s": round(depth_cpu, 4),
        "peak_rss_mb": round(peak_kb / 1024, 1),
    }


def _claim_words(verdict: str, detail: tuple[int, ...] | None, claim: tuple[int, ...]) -> str:
    if verdict == "tight":
        return "tight: a critical vector equals the claim"
    if verdict == "slack":
        return f"slack: every critical vector is below the claim, the closest by {_vec_text(detail)}"
    excess = tuple(max(0, a - b) for a, b in zip(detail, claim))
    return f"violated: the critical vector {_vec_text(detail)} exceeds the claim by {_vec_text(excess)}"


# ---------------------------------------------------------------------------------------------
# size


def _parse_n_list(text: str) -> list[int]:
    parts = text.split(",")
    if len(parts) > MAX_SWEEP_POINTS:
        raise ConfigError(f"--n: {len(parts)} values, more than the limit of {MAX_SWEEP_POINTS}")
    values: list[int] = []
    for part in parts:
        try:
            values.append(parse_count(part, 1, LIMIT))
        except ConfigError as e:
            raise ConfigError(f"--n: {e}; expected a comma-separated list of integers >= 1, e.g. 4,8,16,32") from None
    if len(set(values)) != len(values):
        raise ConfigError(f"--n {text!r}: the values must be distinct")
    return sorted(values)


@main.command()
@click.argument("model")
@click.option("--n", "n_list", default=None, metavar="N1,N2,…", help="The n values to count at, e.g. 4,8,16,32 (default: the file's 'sweep:').")
@_FORMAT_OPTION
@click.option("--plot", "plot_path", default=None, metavar="FILE.png", help="Plot the gate counts against n (needs matplotlib).")
@click.option(
    "--verify",
    "verify_count",
    type=Count(0, MAX_VERIFY_POINTS),
    default=VERIFY_POINTS,
    show_default=True,
    help="How many extra n values beyond the largest to build and count to verify the fitted polynomial.",
)
@budget_options
def size(model: str, n_list: str | None, fmt: str, plot_path: str | None, verify_count: int) -> None:
    """Exact gate counts of MODEL (a YAML model file, see examples/) at each n and the exact polynomial in n.

    The polynomial (rational coefficients, degree ≤ #points − 1) is fitted on the given points and
    verified on further points spaced like them; when it fails, the counts are not a polynomial in n
    on these points and the command says so.
    """
    from tc0sim.interp.size import size as size_of

    if plot_path is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ConfigError("--plot needs matplotlib, which is not installed (pip install matplotlib)") from None
    spec = _load(model)
    if n_list is not None:
        points = _parse_n_list(n_list)
    elif spec.sweep is not None:
        points = sorted(spec.sweep)
    elif not spec.uses_n:
        points = [spec.n or 1]
    else:
        raise ConfigError(f"{model}: give the n values with --n, e.g. --n 4,8,16,32 (or add a 'sweep:' key)")
    extra = polyfit.verification_points(points, verify_count) if spec.uses_n else []

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
    fitted = counts[: len(points)]
    checks = counts[len(points) :]
    fit = polyfit.fit_and_verify({c["n"]: c["total"] for c in counts}, len(checks))
    coefficients, verified = fit.coefficients, fit.verified
    failures = [c for c in checks if c["n"] in fit.failures]
    result: dict[str, Any] = {
        "n": points,
        "counts": fitted,
        "verification": [
            {"n": c["n"], "total": c["total"], "predicted": _exact_text(polyfit.value(coefficients, c["n"]))}
            for c in checks
        ],
        "verified": verified,
        "polynomial": [_exact_text(c) for c in coefficients] if verified else None,
        "polynomial_text": polyfit.text(coefficients) if verified else None,
        "degree": polyfit.degree(coefficients) if verified else None,
        "uses_n": spec.uses_n,
    }
    data = {"model": {"file": model, "kind": spec.kind, "dims": {k: str(v) for k, v in spec.dims.items()}}, "size": result}
    if parameters is not None:
        data["parameters"] = parameters

    primitives = sorted({p for c in counts for p in c["by_primitive"]})
    table = Section(
        f"gate counts of {spec.kind} ({', '.join(f'{k}={v}' for k, v in spec.dims.items())})",
        ("n", "total", *primitives),
        [[str(c["n"]), f"{c['total']:,}", *(f"{c['by_primitive'].get(p, 0):,}" for p in primitives)] for c in fitted],
    )
    summary = Section("size polynomial")
    if not spec.uses_n:
        summary.lines.append(f"the model does not use n: the size is the constant {fitted[0]['total']:,}")
    elif verified:
        summary.lines.append(f"size(n) = {polyfit.text(coefficients)}   (degree {polyfit.degree(coefficients)})")
        if checks:
            summary.lines.append("verified at n = " + ", ".join(str(c["n"]) for c in checks))
        else:
            summary.lines.append("not verified (--verify 0): the fit is only an interpolation of the given points")
    else:
        summary.lines.append(
            f"not a polynomial in n on these points: the degree-≤{len(points) - 1} fit {polyfit.text(coefficients)} "
            "predicts "
            + ", ".join(f"{_exact_text(polyfit.value(coefficients, c['n']))} at n={c['n']} (counted {c['total']:,})" for c in failures)
            + "; give more points with --n"
        )
    sections = [table, summary]
    if parameters is not None:
        sections.append(_parameter_section(parameters, points[0] if spec.uses_n else None))
    emit(fmt, sections, data)
    if plot_path is not None:
        _plot(plot_path, spec.kind, counts, coefficients if verified else None)


def _parameter_section(parameters: dict[str, Any], n: int | None) -> Section:
    """The weight scalars the circuit reads, by group and component."""
    at = f" at n={n}" if n is not None else ""
    section = Section(f"parameters{at}: {parameters['total']:,} weight scalars", ("component", "parameters"))
    section.rows = [[name, f"{count:,}"] for name, count in parameters["by_component"].items()]
    groups = [k for k in parameters if k not in ("total", "by_component")]
    section.lines.append(", ".join(f"{k} {parameters[k]:,}" for k in groups))
    return section


def _plot(path: str, kind: str, counts: list[dict[str, Any]], coefficients: list[Fraction] | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [c["n"] for c in counts]
    fig, ax = plt.subplots()
    ax.plot(xs, [c["total"] for c in counts], "o", label="gates (counted)")
    if coefficients is not None:
        grid = np.linspace(min(xs), max(xs), 200)
        ax.plot(grid, [float(sum(float(c) * x**i for i, c in enumerate(coefficients))) for x in grid], label=polyfit.text(coefficients))
    ax.set_xlabel("n")
    ax.set_ylabel("gates")
    ax.set_title(f"size of {kind}")
    ax.legend()
    fig.savefig(path)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# eval


def _read_inputs(path: str, graph: Any) -> dict[str, np.ndarray]:
    """Arrays of an .npz file, checked against the graph's input names and shapes."""
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ConfigError(f"--inputs {path}: no such file") from None
    except READ_ERRORS as e:
        raise ConfigError(f"--inputs {path}: not a readable .npz archive ({_one_line(e)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ConfigError(f"--inputs {path}: expected an .npz archive of named arrays, got a single array")
    arrays: dict[str, np.ndarray] = {}
    with archive:
        for name in archive.files:
            if name not in graph.inputs:
                raise ConfigError(
                    f"--inputs {path}: unknown input {name!r}; the model's inputs are {', '.join(graph.inputs)}"
                )
            expected = graph.node(graph.inputs[name]).shape
            check_member_header(path, archive, name, expected)
            try:
                array = archive[name]
            except READ_ERRORS as e:
                raise ConfigError(f"--inputs {path}: array {name!r} cannot be read ({_one_line(e)})") from None
            if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
                raise ConfigError(f"--inputs {path}: input {name!r} has a value that is not finite")
            arrays[name] = array
    return arrays


@main.command(name="eval")
@click.argument("model")
@click.option(
    "--precision",
    "-p",
    "precision",
    type=Count(MIN_PRECISION, MAX_PRECISION),
    default=None,
    help=f"Significand bits p, {MIN_PRECISION} ≤ p ≤ {MAX_PRECISION:,} (default: the file's 'precision:').",
)
@_N_OPTION
@click.option("--inputs", "inputs_path", default=None, metavar="IN.npz", help="Inputs and weights by name; missing ones are drawn from the file's seed and scale.")
@click.option(
    "--output",
    "output_path",
    required=True,
    metavar="OUT.json|OUT.npz",
    help="Where to write the outputs: .json as exact [m, e] pairs (value m·2^e), .npz as float64 (only when exact).",
)
@click.option(
    "--max-gates",
    "max_gates",
    type=Count(0, None, exponent=True),
    default=DEFAULT_MAX_GATES,
    show_default=True,
    help="Refuse to evaluate graphs with more gates than this (e.g. 5e7).",
)
@click.option(
    "--weights",
    "weight_files",
    multiple=True,
    metavar="[PREFIX=]CHECKPOINT",
    help="Weights by their state_dict names from a PyTorch checkpoint (weights_only) or safetensors file; "
    "PREFIX= prepends to every name (repeatable, e.g. --weights var_d16.pth --weights vae.=vae.pth).",
)
@budget_options
@click.option("--engine", type=click.Choice(["auto", "fast", "mpfr"]), default="auto", show_default=True, help="fast: binary64 with certified single rounding (p <= 25); mpfr: gmpy2/MPFR (any p); auto: fast where it applies. Same bits.")
@click.option("--stats", "show_stats", is_flag=True, help="Print gates per engine, certified and recomputed elements, and time per operator.")
@click.option("--workers", type=click.IntRange(min=0), default=None, help=f"MPFR engine: number of local Dask worker processes, each charged 100 MB against --max-memory (default: one per core for graphs of at least {PARALLEL_MIN_GATES:,} gates, as many as the budget holds; 0: evaluate in this process).")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="MPFR engine: run on the Dask cluster at ADDRESS (e.g. tcp://host:8786); it must have a worker within 30 s.")
@click.option("--chunk", "chunk", type=click.IntRange(min=1), default=None, help="Largest number of product elements held at once per block (fast and serial MPFR engines) or per task (Dask).")
def eval_command(
    model: str, precision: int | None, n: int | None, inputs_path: str | None, output_path: str, max_gates: int,
    weight_files: tuple[str, ...],
    engine: str, show_stats: bool, workers: int | None, scheduler: str | None, chunk: int | None,
) -> None:
    """Bit-exact evaluation of MODEL (a YAML model file) in p-bit floating point; every primitive rounds once.

    A value of F_p is m·2^e with p-bit significand m (2^(p−1) ≤ |m| < 2^p, or m = 0). OUT.json
    holds every output exactly as nested lists of [m, e] integer pairs (any length of m);
    OUT.npz holds float64 arrays and is refused when a value is not exactly a float64. Inputs
    and weights not in --inputs are drawn from the file's seed and scale. See docs/cli.md.
    """
    from tc0sim.interp.evaluate import EvalStats, evaluate, evaluation_bytes
    from tc0sim.interp.parallel import LOCAL_WORKER_BYTES
    from tc0sim.interp.size import size as size_of

    suffix = Path(output_path).suffix.lower()
    if suffix not in (".json", ".npz"):
        raise ConfigError(f"--output {output_path}: expected a .json or .npz file name")
    spec = _load(model)
    p = precision if precision is not None else spec.precision
    if p is None:
        raise ConfigError(f"{model}: no precision: give --precision P or add a 'precision:' key")
    graph = spec.build(n)
    gates = size_of(graph).total
    if gates > max_gates:
        raise ConfigError(
            f"{spec.label(n)} has {gates:,} gates, above the evaluation limit of {max_gates:,}; "
            "use smaller dims or raise --max-gates"
        )
    budget = active_budget()
    needed = evaluation_bytes(graph, p, engine, chunk) if budget is not None else 0
    workers = _eval_workers(engine, p, gates, workers, scheduler, None if budget is None else budget.max_bytes - needed)
    needed += (workers or 0) * LOCAL_WORKER_BYTES
    if budget is not None and needed > budget.max_bytes:
        on, fewer = (f" on {workers} local workers ({LOCAL_WORKER_BYTES:,} bytes each)", " or give fewer --workers") if workers else ("", "")
        raise BudgetError(
            f"evaluating {spec.label(n)} ({gates:,} gates at p={p:,}){on} needs about {needed:,} bytes, "
            f"above the budget of {budget.max_bytes:,} bytes; raise it with --max-memory{fewer}"
        )
    inputs = _read_inputs(inputs_path, graph) if inputs_path else {}
    if weight_files:
        from tc0sim.cli.weights import load_weights

        inputs.update(load_weights(graph, weight_files, spec.kind_info.ignored_weights, supplied=inputs))
    stats = EvalStats()
    with status(f"evaluating {gates:,} gates at p={p}"):
        outputs = evaluate(
            graph, p, inputs=inputs, seed=spec.seed, scale=spec.scale, engine=engine, stats=stats,
            chunk_elements=chunk, workers=workers, scheduler=scheduler, values="native",
        )
    F = Format(p)
    if suffix == ".json":
        document = {
            "format": "tc0sim-eval",
            "kind": spec.kind,
            "file": model,
            "precision": p,
            "dims": spec.dims_at(n),
            "seed": spec.seed,
            "scale": spec.scale,
            "inputs_file": inputs_path,
            "outputs": {
                name: {"shape": list(value.shape), "pairs": F.to_pairs(value)} for name, value in outputs.items()
            },
        }
        with unlimited_int_digits():
            Path(output_path).write_text(json.dumps(jsonable(document)) + "\n", encoding="utf-8")
    else:
        arrays = {}
        for name, value in outputs.items():
            try:
                arrays[name] = F.to_float64_array(value)
            except Tc0simError as e:
                raise ConfigError(
                    f"cannot write {output_path}: output {name!r}: {_one_line(e)}; write .json for exact [m, e] pairs"
                ) from None
        with open(output_path, "wb") as handle:
            np.savez(handle, **arrays)
    shapes = ", ".join(f"{name}{list(v.shape)}" for name, v in outputs.items())
    click.echo(f"wrote {output_path}: {shapes} at p={p} ({gates:,} gates)")
    if show_stats:
        for line in _stats_lines(stats):
            click.echo(line)


def _eval_workers(
    engine: str, p: int, gates: int, workers: int | None, scheduler: str | None, spare: int | None,
) -> int | None:
    """Local Dask workers for the MPFR engine: the user's number, else for large graphs one per
    core, as many as the ``spare`` bytes of the budget hold (None: no cluster, below two)."""
    from tc0sim.fastfp import supports
    from tc0sim.interp.parallel import LOCAL_WORKER_BYTES

    uses_mpfr = engine == "mpfr" or not supports(p)
    for option, given in (("--workers", workers is not None), ("--scheduler", scheduler is not None)):
        if given and not uses_mpfr:
            raise ConfigError(f"{option} applies to the MPFR engine; at p={p} the {engine} engine is the fast one (add --engine mpfr)")
    if workers is not None and scheduler is not None:
        raise ConfigError("--workers starts a local cluster and --scheduler uses yours: give one of them")
    if workers == 0 or scheduler is not None or not uses_mpfr:
        return None
    if workers is None and gates >= PARALLEL_MIN_GATES:
        count = os.cpu_count() or 1
        if spare is not None:
            count = min(count, max(0, spare) // LOCAL_WORKER_BYTES)
        return count if count >= 2 else None
    return workers


def _stats_lines(stats: Any) -> list[str]:
    gates = ", ".join(f"{engine} {count:,}" for engine, count in sorted(stats.gates.items())) or "none"
    lines = [
        f"engine: {stats.engine}; gates by engine: {gates}",
        f"certified elements (exp, ⊕, ⊗): {stats.certified:,}; recomputed by MPFR: {stats.recomputed:,}",
    ]
    if stats.replayed:
        lines.append("the Dask cluster failed or a task raised: evaluated again serially in this process")
    lines.append("time per operator:")
    for op, seconds in sorted(stats.seconds.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {op:<24} {seconds:10.4f} s")
    return lines


# ---------------------------------------------------------------------------------------------
# audit, graph, claims


@main.command()
@click.argument("models", nargs=-1)
@click.option("--claim", "claim_ids", multiple=True, metavar="ID", help="Audit only this claim (repeatable), e.g. --claim FlowAR-L4.6.")
@click.option("--gates-precision", "gates_p", type=click.IntRange(2, 24), default=None, metavar="P",
              help="Also give each claim's depth with the threshold circuits at precision P.")
@_FORMAT_OPTION
@budget_options
def audit(models: tuple[str, ...], claim_ids: tuple[str, ...], gates_p: int | None, fmt: str) -> None:
    """Check the papers' claims against the computed DAG; exit status 1 if one is violated (`tc0sim claims` lists them).

    Without MODEL files the whole registry is audited at its own instances; with files, the claims
    whose kind matches each file's kind, at the file's dims. With --gates-precision P each verdict
    also gives the depth with tc0sim's threshold circuits at p = P (docs/threshold.md).
    """
    from tc0sim.audit import audit as engine
    from tc0sim.audit.render import render

    if models:
        verdicts = []
        for model in models:
            found = engine.audit_model(_load(model), gates_p=gates_p)
            if claim_ids:
                found = [v for v in found if v.id in claim_ids]
            verdicts.extend(found)
    else:
        verdicts = engine.audit_claims(list(claim_ids) if claim_ids else None, gates_p=gates_p)
    if not verdicts and models and fmt != "json":
        kinds = sorted({_load(m).kind for m in models})
        click.echo(f"no claim of the registry is about kind {', '.join(kinds)}: nothing to audit")
        return
    text = render(verdicts, fmt)
    click.echo(text.rstrip("\n"))
    if engine.fails(verdicts):  # violated, or violated as printed: the exit status follows the printed claim
        click.get_current_context().exit(EXIT_VIOLATED)


@main.command()
@click.argument("model")
@_N_OPTION
@click.option("--output", "output_path", required=True, metavar="FILE.graphml|FILE.dot|FILE.json", help="Export file; the format follows the suffix.")
@budget_options
def graph(model: str, n: int | None, output_path: str) -> None:
    """Export the tensor-level DAG of MODEL (a YAML model file) as GraphML, DOT or JSON; DOT marks the critical path."""
    from tc0sim.interp.depth import depth as depth_of
    from tc0sim.interp.export import write

    suffix = Path(output_path).suffix.lower()
    if suffix not in (".graphml", ".dot", ".json"):
        raise ConfigError(f"--output {output_path}: expected a .graphml, .dot or .json file name")
    spec = _load(model)
    built = spec.build(n)
    write(built, output_path, depth_result=depth_of(built))
    click.echo(f"wrote {output_path}: {len(built.live())} live nodes of {spec.label(n)}")
    for name, node_id in built.inputs.items():
        node = built.node(node_id)
        click.echo(f"  {node.attrs.get('role', 'input')} {name}{list(node.shape)}")


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
"""The example model files of a source checkout (an installed wheel has none: ./examples is used)."""


def _examples_by_kind() -> dict[str, list[str]]:
    from tc0sim.modelfile import load_model

    found: dict[str, list[str]] = {}
    directory = EXAMPLES if EXAMPLES.is_dir() else Path("examples")
    for path in sorted(directory.glob("*.yaml")):
        try:
            found.setdefault(load_model(path).kind, []).append(f"examples/{path.name}")
        except Tc0simError:
            continue
    return found


def _param_text(value: Any) -> str:
    return "[" + ", ".join(map(str, value)) + "]" if isinstance(value, list) else str(value)


@main.command()
@_FORMAT_OPTION
def kinds(fmt: str) -> None:
    """Every kind a model file can name: its dims, its params with their defaults, an example file.

    A model file is a YAML mapping such as `kind: matmul`, `dims: {n1: 2, d: 3, n2: 2}`, with the
    kind's params at the top level or under `params:` (docs/model_files.md).
    """
    from tc0sim.kinds import KINDS, kind_names

    examples = _examples_by_kind()
    rows, listed = [], []
    for name in kind_names():
        kind = KINDS[name]
        params = {p: jsonable(v) for p, v in kind.params.items()}
        files = examples.get(name, [])
        rows.append(
            [
                name,
                "model" if kind.model else "operator",
                ", ".join(kind.dims) or "—",
                ", ".join(f"{p}={_param_text(v)}" for p, v in params.items()) or "—",
                ", ".join(files) or "—",
                kind.ref,
            ]
        )
        listed.append({"kind": name, "model": kind.model, "dims": list(kind.dims), "params": params,
                       "examples": files, "ref": kind.ref, "doc": kind.doc})
    section = Section(
        f"{len(rows)} kinds (run e.g. `tc0sim depth examples/matmul.yaml`; docs/model_files.md describes the file)",
        ("kind", "type", "dims", "params (default)", "example", "reference"),
        rows,
    )
    emit(fmt, [section], {"kinds": listed})


@main.command()
@_FORMAT_OPTION
def claims(fmt: str) -> None:
    """The registry of the papers' claims: id, reference, claimed depth and size, kind audited.

    VAR refers to "Circuit Complexity Bounds for Visual Autoregressive Model" (arXiv:2501.04299),
    FlowAR to "On Computational Limits of FlowAR Models: Expressivity and Efficiency" (arXiv:2502.16490).
    """
    from tc0sim.audit.claims import CLAIMS, claimed_depth

    rows = [
        [c.id, f"{c.paper} {c.ref}", c.title, claimed_depth(c) or "—", c.size or "—", c.kind or "—", c.unchecked and "unchecked" or ""]
        for c in CLAIMS
    ]
    section = Section(
        f"{len(CLAIMS)} claims", ("id", "reference", "title", "depth", "size", "kind", "status"), rows
    )
    data = {"claims": [c.as_dict() for c in CLAIMS]}
    emit(fmt, [section], data)


from tc0sim.cli.threshold_cmd import threshold  # noqa: E402  (the command lives in its own module)

main.add_command(threshold)

from tc0sim.cli.approx import approx as _approx_group  # noqa: E402  (the approx group, issue 16)

main.add_command(_approx_group)


if __name__ == "__main__":
    main()
