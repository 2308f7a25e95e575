"""``tc0sim graph MODEL --output FILE``: call ``tc0sim.reports.graph_report``, print what was written."""

from __future__ import annotations

import click

from tc0sim.cli.options import N_OPTION, budget_options, check_output
from tc0sim.limits import GRAPH_SUFFIXES


@click.command()
@click.argument("model")
@N_OPTION
@click.option("--output", "output_path", required=True, metavar="FILE.graphml|FILE.dot|FILE.json", help="Export file; the format follows the suffix.")
@budget_options
def graph(model: str, n: int | None, output_path: str) -> None:
    """Export the tensor-level DAG of MODEL (a YAML model file) as GraphML, DOT or JSON; DOT marks the critical path.

    A `kind: torch` file imports and runs the Python code it names (docs/torch.md).
    """
    from tc0sim.reports.graph import graph_report

    check_output(output_path, "--output", GRAPH_SUFFIXES)
    for line in graph_report(model, output_path, n).lines():
        click.echo(line)
