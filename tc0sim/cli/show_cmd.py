"""``tc0sim show OUT``: print the values of an eval output file (``tc0sim.reports.show``)."""

from __future__ import annotations

import click

from tc0sim.cli.options import FORMAT_OPTION, Count
from tc0sim.cli.output import show as print_report


@click.command()
@click.argument("output", metavar="OUT.npz|OUT.json")
@click.option("--limit", type=Count(0, 10**9), default=20, show_default=True, help="Values shown per output.")
@click.option("--all", "show_all", is_flag=True, help="Show every value.")
@FORMAT_OPTION
def show(output: str, limit: int, show_all: bool, fmt: str) -> None:
    """Print the values of an eval output file: exact m·2^e and a decimal approximation of each.

    OUT is a file written by `tc0sim eval --output`: .npz (float64 arrays, or NAME.m and NAME.e
    arrays where a value is not a float64) or .json ([m, e] pairs); see docs/cli.md.
    """
    from tc0sim.reports.show import show_report

    print_report(fmt, show_report(output, None if show_all else limit))
