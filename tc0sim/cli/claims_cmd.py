"""``tc0sim claims``: the registry of the papers' claims, printed from ``tc0sim.reports.claims_report``."""

from __future__ import annotations

import click

from tc0sim.cli.options import FORMAT_OPTION
from tc0sim.cli.output import show


@click.command()
@FORMAT_OPTION
def claims(fmt: str) -> None:
    """The registry of the papers' claims: id, reference, claimed depth and size, kind audited.

    VAR refers to "Circuit Complexity Bounds for Visual Autoregressive Model" (arXiv:2501.04299),
    FlowAR to "On Computational Limits of FlowAR Models: Expressivity and Efficiency" (arXiv:2502.16490).
    """
    from tc0sim.reports.claims import claims_report

    show(fmt, claims_report())
