"""``tc0sim threshold PRIM --precision P [--arity K] --output CIRCUIT.json``: one verified circuit."""

from __future__ import annotations

import click

from tc0sim.cli.options import Count, check_output
from tc0sim.cli.output import FORMATS, show
from tc0sim.limits import MAX_THRESHOLD_SAMPLES
from tc0sim.limits import MAX_THRESHOLD_ARITY as MAX_ARITY
from tc0sim.limits import MAX_THRESHOLD_PRECISION as MAX_PRECISION


@click.command()
@click.argument("prim")
@click.option("--precision", "p", type=Count(2, MAX_PRECISION), required=True, help=f"p of F_p (2 ≤ p ≤ {MAX_PRECISION}).")
@click.option("--arity", "k", type=Count(1, MAX_ARITY), default=None, help=f"Number of terms of sum or prod, 1 ≤ k ≤ {MAX_ARITY} (default 2; the other primitives take their fixed arity).")
@click.option("--output", "output_path", required=True, metavar="CIRCUIT.json", help="Where to write the circuit.")
@click.option("--samples", type=Count(1, MAX_THRESHOLD_SAMPLES), default=2000, show_default=True, help=f"Seeded cases when not exhaustive (at most {MAX_THRESHOLD_SAMPLES:,}).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text")
def threshold(prim: str, p: int, k: int | None, output_path: str, samples: int, fmt: str) -> None:
    """Build the threshold circuit of an F_p primitive, write it as JSON, verify it against MPFR.

    Encoding: each operand is 2p+3 bits (zero flag, sign, |m| bits p−1..0, e as (p+1)-bit two's
    complement, MSB first); outputs are the result in that encoding and an error bit (range error,
    division by zero, sqrt of a negative; compare: the single bit a < b). See docs/threshold.md.
    """
    from tc0sim.reports.threshold import threshold_report

    check_output(output_path, "--output", (".json",))
    report = threshold_report(prim, p, output_path, k, samples)
    show(fmt, report)
    if report.mismatches:
        raise click.exceptions.Exit(1)
