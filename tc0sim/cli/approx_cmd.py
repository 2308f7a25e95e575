"""``tc0sim approx``: the universal-approximation papers' quantities on instances (tc0sim.approx).

* ``separateness EMB.npz`` — Definition 5.2's constants of embeddings X (N, n, d);
* ``contextual MODEL.yaml --embeddings EMB.npz`` — Definition 5.3's achieved (γ, δ) of an attention
  layer evaluated bit-exactly, Lemma 5.4's (γ, δ), and the least precision that keeps δ > 0;
* ``perturbation MODEL.yaml`` — a ``var`` model's per-layer errors and Lipschitz bounds against
  Lemmas 6.3–6.5 and Theorem 6.6 (exit status 1 when a bound fails on the instance).
"""

from __future__ import annotations

import click

from tc0sim.cli.options import EXIT_VIOLATED, Count, budget_options, format_option, limit_option
from tc0sim.cli.output import progress, show, status
from tc0sim.limits import (
    DEFAULT_MAX_CHAIN_GATES,
    MAX_APPROX_DEGREE,
    MAX_APPROX_SWEEP_PRECISION,
    MAX_PRECISION,
    MAX_REFERENCE_PRECISION,
    MIN_PRECISION,
)

_FORMAT = format_option("Output format.")


@click.group()
def approx() -> None:
    """Universal-approximation claims measured on instances (separateness, contextual mapping, perturbation)."""


@approx.command()
@click.argument("embeddings", metavar="EMB.npz")
@click.option("--key", default="X", show_default=True, help="Name of the (N, n, d) array in the archive.")
@_FORMAT
def separateness(embeddings: str, key: str, fmt: str) -> None:
    """Definition 5.2: γ_min, γ_max, δ, |V|, distinctness within sequences, κ (exact, then rounded)."""
    from tc0sim.reports.approx import separateness_report

    show(fmt, separateness_report(embeddings, key))


@approx.command()
@click.argument("model")
@click.option("--embeddings", "embeddings", required=True, metavar="EMB.npz", help="Sequences X (N, n, d) to evaluate.")
@click.option("--precision", "-p", "precision", type=Count(MIN_PRECISION, MAX_APPROX_SWEEP_PRECISION), default=None, help=f"Significand bits p, {MIN_PRECISION} ≤ p ≤ {MAX_APPROX_SWEEP_PRECISION} (default: the file's 'precision:').")
@click.option("--weights", "weights_path", default=None, metavar="W.npz", help="W_Q, W_K, W_V by name; missing ones are drawn from the file's seed and scale.")
@click.option("--sweep-precision", "sweep", default=None, metavar="A..B", help="Also evaluate at every p in A..B and report the least p with delta > 0.")
@_FORMAT
@budget_options
def contextual(model: str, embeddings: str, precision: int | None, weights_path: str | None, sweep: str | None, fmt: str) -> None:
    """Definition 5.3's achieved (γ, δ) of MODEL's attention layer at p bits, next to Lemma 5.4's."""
    from tc0sim.reports.approx import contextual_report

    show(fmt, contextual_report(model, embeddings, precision, weights_path, sweep, progress=progress))


@approx.command()
@click.argument("model")
@click.option("--precision", "-p", "precision", type=Count(MIN_PRECISION, MAX_PRECISION), default=None, help=f"Significand bits p of the replaced layers, {MIN_PRECISION} ≤ p ≤ {MAX_PRECISION:,} (default: the file's 'precision:').")
@click.option("--n", "n", type=Count(1), default=None, help="Value of n for dims written in n (default: the file's 'n:').")
@click.option("--replace", type=click.Choice(("precision", "aattc")), default="precision", show_default=True, help="What replaces the exact layers: p-bit evaluation, or aattc for every attention.")
@click.option("--degree", type=Count(1, MAX_APPROX_DEGREE), default=2, show_default=True, help=f"Polynomial degree g of aattc, 1 ≤ g ≤ {MAX_APPROX_DEGREE}.")
@click.option("--reference", type=Count(53, MAX_REFERENCE_PRECISION), default=256, show_default=True, help=f"Precision that stands in for exact arithmetic, 53 ≤ p ≤ {MAX_REFERENCE_PRECISION}.")
@limit_option("--max-gates", 1, DEFAULT_MAX_CHAIN_GATES, "Refuse models with more gates than this (e.g. 5e5).")
@_FORMAT
@budget_options
def perturbation(model: str, precision: int | None, n: int | None, replace: str, degree: int, reference: int, max_gates: int, fmt: str) -> None:
    """Per-layer errors and Lipschitz bounds of a var model against Lemmas 6.3–6.5 and Theorem 6.6."""
    from tc0sim.reports.approx import perturbation_report

    report = perturbation_report(model, precision, n, replace, degree, reference, max_gates, status=status)
    show(fmt, report)
    if report.violations:
        raise SystemExit(EXIT_VIOLATED)
