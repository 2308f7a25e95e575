"""``tc0sim size MODEL``: parse the options, call ``tc0sim.reports.size_report``, print (and plot)."""

from __future__ import annotations

import click

from tc0sim.cli.options import FORMAT_OPTION, Count, budget_options, check_plot, parse_n_list
from tc0sim.cli.output import progress, show
from tc0sim.limits import MAX_VERIFY_POINTS, VERIFY_POINTS


@click.command()
@click.argument("model")
@click.option("--n", "n_list", default=None, metavar="N1,N2,…", help="The n values to count at, e.g. 4,8,16,32 (default: the file's 'sweep:').")
@FORMAT_OPTION
@click.option("--plot", "plot_path", default=None, metavar="FILE.png", help="Plot the gate counts against n as .png, .pdf or .svg (needs matplotlib).")
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
    on these points and the command says so. A `kind: torch` file imports and runs the Python code
    it names (docs/torch.md).
    """
    if plot_path is not None:
        check_plot(plot_path)
    from tc0sim.modelfile import load_model
    from tc0sim.reports.size import size_report

    spec = load_model(model)
    points = parse_n_list(n_list) if n_list is not None else None
    report = size_report(spec, points, verify_count, progress=progress)
    show(fmt, report)
    if plot_path is not None:
        from tc0sim.cli.plots import size_plot

        size_plot(plot_path, spec.kind, report.counts + report.checks, report.coefficients)
