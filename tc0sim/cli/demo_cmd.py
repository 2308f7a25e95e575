"""``tc0sim demo``: the table of ``tc0sim.reports.demo_report``, printed as one rich table."""

from __future__ import annotations

import click


DEMO_WIDTH = 200


@click.command()
def demo() -> None:
    """Show one-rounding iterated addition (VAR Lemma 3.5 Part 3) against left-to-right."""
    from rich.console import Console
    from rich.table import Table

    from tc0sim.reports.demo import demo_report

    (section,) = demo_report().sections()
    table = Table(title=section.title)
    for name in section.headers:
        table.add_column(name)
    for row in section.rows:
        table.add_row(*row)
    Console(width=DEMO_WIDTH).print(table)
