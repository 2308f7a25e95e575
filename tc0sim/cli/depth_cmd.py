"""``tc0sim depth MODEL``: parse the options, call ``tc0sim.reports.depth_report``, print."""

from __future__ import annotations

import time

import click

from tc0sim.cli.options import (
    FORMAT_OPTION,
    N_OPTION,
    budget_options,
    check_plot,
    parse_bytes,
    parse_count_or_all,
    parse_symbol_values,
)
from tc0sim.cli.output import show, status
from tc0sim.limits import MAX_MEMORY_BUDGET, MAX_WITNESSES, SUMMARY_ROWS

HELP_SYMBOLS = ("d_std", "d_sum", "d_prod", "d_exp", "d_sqrt", "d_erf", "d_log", "d_trig")
"""The depth symbols named by ``--help``, written out so that help imports no numpy (the table,
tc0sim.ir.primitives.SYMBOLS, does); tests/test_cli.py checks that help names every symbol."""


@click.command()
@click.argument("model")
@N_OPTION
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="SYMBOL=VALUE",
    help=f"Concrete gate depth of a symbol (repeatable), e.g. --set d_std=3; SYMBOL is one of {', '.join(HELP_SYMBOLS)}. "
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
    help="Memory the exact depth analysis may use, e.g. 500MB, 2GB (binary units; a bare number is bytes; at most 1 PiB); "
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
@FORMAT_OPTION
@click.option("--plot", "plot_path", default=None, metavar="OUT.png", help="Draw the critical path's gates by operator, stacked by symbol, as .png, .pdf or .svg (needs matplotlib).")
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
    docs/model_files.md; `tc0sim kinds` lists the kinds; a `kind: torch` file imports and runs the
    Python code it names, docs/torch.md). The depth is a linear form in the gate depths d_std,
    d_sum, d_prod, d_exp, d_sqrt, d_erf, and d_log, d_trig where a traced model uses them (a
    summary of its per-symbol maxima and its value with every symbol 1 comes first); with --set it is also one number (unspecified
    symbols count 1) with the path realising it. When the file has a `claim:` key, the claimed
    depth is printed beside the computed one as tight, slack or violated. The analysis is exact
    (within --memory-budget, else refused); the report ends with the wall time of the command
    (model file to report) and the peak resident memory of the process (process start included).
    --plot draws the path that is critical at the --set values (every symbol 1 by default).
    With --gates threshold also the concrete threshold-circuit depth and size (docs/threshold.md).
    """
    from tc0sim.reports.base import exact_text
    from tc0sim.reports.depth import depth_report

    started = time.perf_counter()
    budget = parse_bytes(memory_budget, "--memory-budget", MAX_MEMORY_BUDGET)
    values = parse_symbol_values(assignments) if assignments else None
    if plot_path is not None:
        check_plot(plot_path)
    witnesses = parse_count_or_all(witness_count, "--witnesses", MAX_WITNESSES)
    report = depth_report(
        model, n, values, witnesses, full_path, budget, allow_upper_bound, gates == "threshold", status=status, started=started
    )
    show(fmt, report)
    if plot_path is not None:
        from tc0sim.cli.plots import depth_plot

        number, groups = report.critical_path()
        depth_plot(plot_path, f"critical path of {report.spec.label(n)}: depth {exact_text(number)}", groups)
