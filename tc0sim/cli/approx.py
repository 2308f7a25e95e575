"""``tc0sim approx``: the universal-approximation papers' quantities on instances (tc0sim.approx).

* ``separateness EMB.npz`` — Definition 5.2's constants of embeddings X (N, n, d);
* ``contextual MODEL.yaml --embeddings EMB.npz`` — Definition 5.3's achieved (γ, δ) of an attention
  layer evaluated bit-exactly, Lemma 5.4's (γ, δ), and the least precision that keeps δ > 0;
* ``perturbation MODEL.yaml`` — a ``var`` model's per-layer errors and Lipschitz bounds against
  Lemmas 6.3–6.5 and Theorem 6.6 (exit status 1 when a bound fails on the instance).
"""

from __future__ import annotations

from typing import Any

import click

from tc0sim.cli.output import FORMATS, Section, emit, progress, status
from tc0sim.errors import ConfigError
from tc0sim.limits import DEFAULT_MAX_CHAIN_GATES, MAX_PRECISION, MIN_PRECISION

EXIT_VIOLATED = 1

_FORMAT = click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True, help="Output format.")


@click.group()
def approx() -> None:
    """Universal-approximation claims measured on instances (separateness, contextual mapping, perturbation)."""


def _number(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return repr(x)
    return str(x)


def _pairs_section(title: str, items: list[tuple[str, Any]]) -> Section:
    return Section(title, ("quantity", "value"), [[k, _number(v)] for k, v in items])


@approx.command()
@click.argument("embeddings", metavar="EMB.npz")
@click.option("--key", default="X", show_default=True, help="Name of the (N, n, d) array in the archive.")
@_FORMAT
def separateness(embeddings: str, key: str, fmt: str) -> None:
    """Definition 5.2: γ_min, γ_max, δ, |V|, distinctness within sequences, κ (exact, then rounded)."""
    from tc0sim.approx.separateness import load_embeddings, separateness as measure

    report = measure(load_embeddings(embeddings, key))
    data = report.as_dict()
    rows = [(k, data[k]) for k in ("gamma_min", "gamma_max", "delta", "vocabulary", "distinct_within_sequences", "kappa")]
    section = _pairs_section(f"tokenwise separateness of {embeddings} (N={data['N']}, n={data['n']}, d={data['d']})", rows)
    section.lines = [
        "norms and distances are exact (integer arithmetic on the float64 values), each rounded once to float64",
        "the definition's inequalities are strict: the embeddings are separated for any smaller gamma_min / delta "
        "and any larger gamma_max",
    ]
    emit(fmt, [section], data)


@approx.command()
@click.argument("model")
@click.option("--embeddings", "embeddings", required=True, metavar="EMB.npz", help="Sequences X (N, n, d) to evaluate.")
@click.option("--precision", "-p", "precision", type=click.IntRange(MIN_PRECISION, MAX_PRECISION), default=None, help="Significand bits p (default: the file's 'precision:').")
@click.option("--weights", "weights_path", default=None, metavar="W.npz", help="W_Q, W_K, W_V by name; missing ones are drawn from the file's seed and scale.")
@click.option("--sweep-precision", "sweep", default=None, metavar="A..B", help="Also evaluate at every p in A..B and report the least p with delta > 0.")
@_FORMAT
def contextual(model: str, embeddings: str, precision: int | None, weights_path: str | None, sweep: str | None, fmt: str) -> None:
    """Definition 5.3's achieved (γ, δ) of MODEL's attention layer at p bits, next to Lemma 5.4's."""
    from tc0sim.approx.contextual import contextual as measure, parse_range
    from tc0sim.approx.separateness import load_embeddings, read_archive
    from tc0sim.modelfile import load_model

    spec = load_model(model)
    p = _precision(spec, model, precision)
    x = load_embeddings(embeddings)
    precisions = parse_range(sweep) if sweep else []
    weights = read_archive(weights_path, "--weights") if weights_path else None
    with progress("precision sweep", len(precisions)) as bar:
        report = measure(spec, x, p, weights, precisions, on_step=lambda q: bar.advance(f"p={q}"))
    data = report.as_dict()
    rows = [(k, data[k]) for k in ("precision", "gamma", "delta", "lemma_applies", "lemma_gamma", "lemma_delta", "lemma_delta_log10", "lemma_bits_needed")]
    sections = [_pairs_section(f"contextual mapping of {spec.label(x.shape[1] if spec.uses_n else None)} on {embeddings}", rows)]
    if data["lemma_reason"]:
        sections[0].lines.append(f"Lemma 5.4 does not apply: {data['lemma_reason']}")
    if report.sweep:
        points = Section(
            "precision sweep",
            ("p", "gamma", "delta", "note"),
            [[a.p, _number(a.gamma), _number(a.delta), a.error] for a in report.sweep],
        )
        points.lines = [
            f"smallest p with delta > 0: {_number(report.smallest_positive_p())}; "
            f"delta > 0 at every swept p from: {_number(report.positive_from())}"
        ]
        sections.append(points)
    emit(fmt, sections, data)


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
    from tc0sim.approx.perturbation import model_perturbation
    from tc0sim.modelfile import load_model

    spec = load_model(model)
    p = _precision(spec, model, precision)
    with status("evaluating the layer chain and its hybrids"):
        report = model_perturbation(spec, p, n, max_gates, replace=replace, degree=degree, reference=reference)
    data = report.as_dict()
    layers = Section(
        f"{spec.label(n)}: layers replaced by {'p = ' + str(p) + ' bits' if replace == 'precision' else 'aattc g = ' + str(degree)}",
        ("layer", "eps_j", "L_(j+1)", "bound on ||W_(j-1) - W_j||", "measured", "Lemma 6.3 bound", "measured"),
        [
            [r.name, f"{r.epsilon:.4g}", _short(r.lipschitz_next), f"{r.term_bound:.4g}", _short(r.term_measured), _short(r.two_layer_bound), _short(r.two_layer_measured)]
            for r in report.rows
        ],
    )
    summary = _pairs_section(
        "end to end",
        [
            ("measured ||exact - approximate||", report.measured),
            ("bound (Lemmas 6.4 + 6.5, measured radii)", report.bound),
            ("ratio bound / measured", report.ratio),
            ("bound with a-priori radii", report.bound_a_priori),
            ("sum of measured hybrid differences (Lemma 6.5)", report.telescoped),
            ("uniform K_2 = max L_i", report.k2),
            ("Theorem 6.6: sum K_2^(n-j) eps_j", report.paper_sum),
            ("Theorem 6.6: K_2^n max eps_j", report.paper_closed),
            (f"reference at {reference} vs {2 * reference} bits", report.reference_gap),
        ],
    )
    summary.lines = [f"VIOLATED: {v}" for v in report.violations] or ["every bound holds on this instance"]
    if report.unbounded:
        summary.lines.append("no Lipschitz bound (the bounds through them are infinite): " + ", ".join(report.unbounded))
    emit(fmt, [layers, summary], data)
    if report.violations:
        raise SystemExit(EXIT_VIOLATED)


def _precision(spec: Any, model: str, precision: int | None) -> int:
    p = precision if precision is not None else spec.precision
    if p is None:
        raise ConfigError(f"{model}: no precision: give --precision P or add a 'precision:' key")
    if p < 2:
        raise ConfigError(f"--precision {p}: expected an integer >= 2")
    return p


def _short(x: float | None) -> str:
    return "—" if x is None else f"{x:.4g}"
