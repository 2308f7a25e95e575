"""``tc0sim approx``: the universal-approximation quantities of "Universal Approximation of Visual
Autoregressive Transformers" (Chen, Li, Liang, Shi, Song; arXiv:2502.06167) measured on instances:
Definition 5.2's separateness, Definition 5.3's contextual mapping next to Lemma 5.4's, and the
perturbation chain of Lemmas 6.3–6.5 and Theorem 6.6."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tc0sim.errors import ConfigError
from tc0sim.limits import DEFAULT_MAX_CHAIN_GATES
from tc0sim.reports.base import FixedReport, Section, as_spec, no_progress, no_status

if TYPE_CHECKING:
    from tc0sim.modelfile import ModelSpec


class SeparatenessReport(FixedReport):
    """Definition 5.2's quantities of a set of embeddings."""


class ContextualReport(FixedReport):
    """Definition 5.3's achieved (γ, δ) of an attention layer at p bits, Lemma 5.4's, a precision sweep."""


@dataclass
class PerturbationReport(FixedReport):
    """Per-layer errors and Lipschitz bounds of a var model; ``violations`` fail the command."""

    violations: list[str] = field(default_factory=list)


def _number(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return repr(x)
    return str(x)


def _short(x: float | None) -> str:
    return "—" if x is None else f"{x:.4g}"


def _pairs_section(title: str, items: list[tuple[str, Any]]) -> Section:
    return Section(title, ("quantity", "value"), [[k, _number(v)] for k, v in items])


def precision_of(spec: ModelSpec, file: str, precision: int | None) -> int:
    """``precision``, else the file's ``precision:``; at least 2."""
    p = precision if precision is not None else spec.precision
    if p is None:
        raise ConfigError(f"{file}: no precision: give --precision P or add a 'precision:' key")
    if p < 2:
        raise ConfigError(f"--precision {p}: expected an integer >= 2")
    return p


def separateness_report(embeddings: str, key: str = "X") -> SeparatenessReport:
    """Definition 5.2: γ_min, γ_max, δ, |V|, distinctness within sequences, κ of array ``key`` of an .npz."""
    from tc0sim.approx.separateness import load_embeddings, separateness as measure

    data = measure(load_embeddings(embeddings, key)).as_dict()
    rows = [(k, data[k]) for k in ("gamma_min", "gamma_max", "delta", "vocabulary", "distinct_within_sequences", "kappa")]
    section = _pairs_section(f"tokenwise separateness of {embeddings} (N={data['N']}, n={data['n']}, d={data['d']})", rows)
    section.lines = [
        "norms and distances are exact (integer arithmetic on the float64 values), each rounded once to float64",
        "the definition's inequalities are strict: the embeddings are separated for any smaller gamma_min / delta "
        "and any larger gamma_max",
    ]
    return SeparatenessReport([section], data)


def contextual_report(
    model: str | Path | ModelSpec,
    embeddings: str,
    precision: int | None = None,
    weights: str | None = None,
    sweep: str | None = None,
    progress: Callable[[str, int], AbstractContextManager[Any]] = no_progress,
) -> ContextualReport:
    """Definition 5.3's achieved (γ, δ) of the model's attention layer on the embeddings at p bits,
    Lemma 5.4's, and (``sweep`` 'A..B') the least p with δ > 0; ``weights`` an .npz of W_Q, W_K, W_V."""
    from tc0sim.approx.contextual import contextual as measure, parse_range
    from tc0sim.approx.separateness import load_embeddings
    from tc0sim.io.inputs import read_archive

    spec, file = as_spec(model)
    p = precision_of(spec, file, precision)
    x = load_embeddings(embeddings)
    precisions = parse_range(sweep) if sweep else []
    arrays = read_archive(weights, "--weights") if weights else None
    with progress("precision sweep", len(precisions)) as bar:
        report = measure(spec, x, p, arrays, precisions, on_step=lambda q: bar.advance(f"p={q}"))
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
    return ContextualReport(sections, data)


def perturbation_report(
    model: str | Path | ModelSpec,
    precision: int | None = None,
    n: int | None = None,
    replace: str = "precision",
    degree: int = 2,
    reference: int = 256,
    max_gates: int = DEFAULT_MAX_CHAIN_GATES,
    status: Callable[[str], AbstractContextManager[Any]] = no_status,
) -> PerturbationReport:
    """Per-layer errors and Lipschitz bounds of a ``var`` model whose layers are replaced by p-bit
    evaluation (or aattc of degree ``degree``), against Lemmas 6.3–6.5 and Theorem 6.6."""
    from tc0sim.approx.perturbation import model_perturbation

    spec, file = as_spec(model)
    p = precision_of(spec, file, precision)
    with status("evaluating the layer chain and its hybrids"):
        report = model_perturbation(spec, p, n, max_gates, replace=replace, degree=degree, reference=reference)
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
    return PerturbationReport([layers, summary], report.as_dict(), list(report.violations))
