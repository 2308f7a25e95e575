"""``tc0sim audit [MODEL …]``: call ``tc0sim.reports.audit_report``, print the verdicts, exit 1 on a violation."""

from __future__ import annotations

import click

from tc0sim.cli.options import EXIT_VIOLATED, FORMAT_OPTION, Count, budget_options


@click.command()
@click.argument("models", nargs=-1)
@click.option("--claim", "claim_ids", multiple=True, metavar="ID", help="Audit only this claim (repeatable), e.g. --claim FlowAR-L4.6.")
@click.option("--gates-precision", "gates_p", type=Count(2, 24), default=None, metavar="P",
              help="Also give each claim's depth with the threshold circuits at precision P.")
@FORMAT_OPTION
@budget_options
def audit(models: tuple[str, ...], claim_ids: tuple[str, ...], gates_p: int | None, fmt: str) -> None:
    """Check the papers' claims against the computed DAG; exit status 1 if one is violated (`tc0sim claims` lists them).

    Without MODEL files the whole registry is audited at its own instances; with files, the claims
    whose kind matches each file's kind, at the file's dims. With --gates-precision P each verdict
    also gives the depth with tc0sim's threshold circuits at p = P (docs/threshold.md).
    """
    from tc0sim.reports.audit import audit_report

    report = audit_report(models, claim_ids, gates_p)
    if report.empty_note and fmt != "json":
        click.echo(report.empty_note)
        return
    click.echo(report.render(fmt).rstrip("\n"))
    if fmt != "json":
        click.echo(("- " if fmt == "markdown" else "") + report.summary())
    if report.violated:
        click.get_current_context().exit(EXIT_VIOLATED)
