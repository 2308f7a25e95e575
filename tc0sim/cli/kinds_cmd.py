"""``tc0sim kinds``: every kind a model file can name, printed from ``tc0sim.reports.kinds_report``."""

from __future__ import annotations

import click

from tc0sim.cli.options import FORMAT_OPTION
from tc0sim.cli.output import show


@click.command()
@FORMAT_OPTION
def kinds(fmt: str) -> None:
    """Every kind a model file can name: its dims, its params with their defaults, an example file.

    A model file is a YAML mapping such as `kind: matmul`, `dims: {n1: 2, d: 3, n2: 2}`, with the
    kind's params at the top level or under `params:` (docs/model_files.md).
    """
    from tc0sim.reports.kinds import kinds_report

    show(fmt, kinds_report())
