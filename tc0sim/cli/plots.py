"""Pictures (matplotlib, an optional dependency): the critical path by operator, and the released VAR
models' depth and gate count against resolution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tc0sim.errors import ConfigError
from tc0sim.io.outputs import atomic_path
from tc0sim.ir.primitives import SYMBOLS


def require_matplotlib(option: str) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError(f"{option} needs matplotlib, which is not installed (pip install matplotlib)") from None


def _save(fig: Any, out: str) -> None:
    """Write the figure to ``out`` atomically, in the format its suffix names."""
    with atomic_path(out) as temporary:
        fig.savefig(temporary, format=temporary.suffix[1:].lower())


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def path_by_operator(groups: Sequence[Any]) -> dict[str, dict[str, int]]:
    """Gates of each symbol on a path given by operator groups (``DepthResult.witness_groups``),
    summed per innermost operator name, in order of first appearance."""
    counts: dict[str, dict[str, int]] = {}
    for group in groups:
        if any(group.depth):
            row = counts.setdefault(group.operator.rsplit("/", 1)[-1], dict.fromkeys(SYMBOLS, 0))
            for symbol, count in zip(SYMBOLS, group.depth):
                row[symbol] += count
    return counts


def depth_plot(out: str, title: str, groups: Sequence[Any]) -> None:
    """A stacked bar per operator: how many gates of each depth symbol the critical path spends there."""
    plt = _pyplot()
    counts = path_by_operator(groups)
    names = list(counts)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(names) + 2), 4.5))
    bottom = [0] * len(names)
    for symbol in SYMBOLS:
        heights = [counts[n][symbol] for n in names]
        if any(heights):
            ax.bar(names, heights, bottom=bottom, label=symbol)
            bottom = [b + h for b, h in zip(bottom, heights)]
    ax.set_ylabel("gates on the critical path")
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=60, labelsize=8)
    ax.legend()
    fig.tight_layout()
    _save(fig, out)
    plt.close(fig)


def scaling_plot(out: str, series: dict[str, list[tuple[int, int, int]]]) -> None:
    """Two panels against resolution: critical depth (all symbols = 1) and gate count, one line per model."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, points in series.items():
        xs = [p[0] for p in points]
        left.plot(xs, [p[1] for p in points], "o-", label=name)
        right.plot(xs, [p[2] for p in points], "o-", label=name)
    for ax, label in ((left, "critical depth (every symbol = 1)"), (right, "gates")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("resolution (px)")
        ax.set_ylabel(label)
        ax.set_xticks([256, 512, 1024], ["256", "512", "1024"])
        ax.legend(fontsize=8)
    right.set_yscale("log")
    fig.suptitle("VAR as released: depth and size along the official scale lists")
    fig.tight_layout()
    _save(fig, out)
    plt.close(fig)


def size_plot(out: str, kind: str, counts: Sequence[dict[str, Any]], coefficients: Sequence[Any] | None) -> None:
    """Gate counts against n, with the fitted polynomial (``coefficients``, constant first) when verified."""
    import numpy as np

    from tc0sim import polyfit

    plt = _pyplot()
    xs = [c["n"] for c in counts]
    fig, ax = plt.subplots()
    ax.plot(xs, [c["total"] for c in counts], "o", label="gates (counted)")
    if coefficients is not None:
        grid = np.linspace(min(xs), max(xs), 200)
        ax.plot(grid, [float(sum(float(c) * x**i for i, c in enumerate(coefficients))) for x in grid], label=polyfit.text(coefficients))
    ax.set_xlabel("n")
    ax.set_ylabel("gates")
    ax.set_title(f"size of {kind}")
    ax.legend()
    _save(fig, out)
    plt.close(fig)
