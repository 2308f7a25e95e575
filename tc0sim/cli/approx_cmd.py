"""``tc0sim approx``: the universal-approximation papers' quantities on instances (tc0sim.approx).

* ``separateness EMB.npz`` — Definition 5.2's constants of embeddings X (N, n, d);
* ``contextual MODEL.yaml --embeddings EMB.npz`` — Definition 5.3's achieved (γ, δ) of an attention
  layer evaluated bit-exactly, Lemma 5.4's (γ, δ), and the least precision that keeps δ > 0;
* ``perturbation MODEL.yaml`` — a ``var`` model's per-layer errors and Lipschitz bounds against
  Lemmas 6.3–6.5 and Theorem 6.6 (exit status 1 when a bound fails on the instance).
"""

from __future__ import annotations

import click

from tc0sim.cli.options import EXIT_VIOLATED, format_option
from tc0sim.cli.output import progress, show, status
from tc0sim.limits import DEFAULT_MAX_CHAIN_GATES, MAX_PRECISION, MIN_PRECISION

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
@click.option("--precision", "-p", "precision", type=click.IntRange(MIN_PRECISION, MAX_PRECISION), default=None, help="Significand bits p (default: the file's 'precision:').")
@click.option("--weights", "weights_path", default=None, metavar="W.npz", help="W_Q, W_K, W_V by name; missing ones are drawn from the file's seed and scale.")
@click.option("--sweep-precision", "sweep", default=None, metavar="A..B", help="Also evaluate at every p in A..B and report the least p with delta > 0.")
@_FORMAT
def contextual(model: str, embeddings: str, precision: int | None, weights_path: str | None, sweep: str | None, fmt: str) -> None:
    """Definition 5.3's achieved (γ, δ) of MODEL's attention layer at p bits, next to Lemma 5.4's."""
    from tc0sim.reports.approx import contextual_report

    show(fmt, contextual_report(model, embeddings, precision, weights_path, sweep, progress=progress))


@approx.command()
@click.argument("model")
@click.option("--precision", "-p", "precision", type=click.IntRange(MIN_PRECISION, MAX_PRECISION), default=None, help="Significand bits p of the replaced layers (default: the file's 'precision:').")
@click.option("--n", "n", type=click.IntRange(min=1), default=None, help="Value of n for dims written in n (default: the file's 'n:').")
@click.option("--replace", type=click.Choice(("precision", "aattc")), default="precision", show_default=True, help="What replaces the exact layers: p-bit evaluation, or aattc for every attention.")
@click.option("--degree", type=click.IntRange(min=1), default=2, show_default=True, help="Polynomial degree g of aattc.")
@click.option("--reference", type=click.IntRange(53, MAX_PRECISION), default=256, show_default=True, help="Precision that stands in for exact arithmetic.")
@click.option("--max-gates", "max_gates", type=click.IntRange(min=1), default=DEFAULT_MAX_CHAIN_GATES, show_default=True, help="Refuse models with more gates than this.")
@_FORMAT
def perturbation(model: str, precision: int | None, n: int | None, replace: str, degree: int, reference: int, max_gates: int, fmt: str) -> None:
    """Per-layer errors and Lipschitz bounds of a var model against Lemmas 6.3–6.5 and Theorem 6.6."""
    from tc0sim.reports.approx import perturbation_report

    report = perturbation_report(model, precision, n, replace, degree, reference, max_gates, status=status)
    show(fmt, report)
    if report.violations:
        raise SystemExit(EXIT_VIOLATED)
