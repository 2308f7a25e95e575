"""``tc0sim kinds``: every kind a model file can name, its dims, params (defaults), example files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tc0sim.errors import Tc0simError
from tc0sim.reports.base import FixedReport, Section, jsonable

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
"""The example model files of a source checkout (an installed wheel has none: ./examples is used)."""


class KindsReport(FixedReport):
    """Every kind with its dims, params (defaults), example files and reference."""


def examples_by_kind() -> dict[str, list[str]]:
    """The example model files by the kind they name."""
    from tc0sim.modelfile import load_model

    found: dict[str, list[str]] = {}
    directory = EXAMPLES if EXAMPLES.is_dir() else Path("examples")
    for path in sorted(directory.glob("*.yaml")):
        try:
            found.setdefault(load_model(path).kind, []).append(f"examples/{path.name}")
        except Tc0simError:
            continue
    return found


def _param_text(value: Any) -> str:
    return "[" + ", ".join(map(str, value)) + "]" if isinstance(value, list) else str(value)


def kinds_report() -> KindsReport:
    """Every kind of the registry (``tc0sim.kinds``) with an example file each."""
    from tc0sim.kinds import KINDS, kind_names

    examples = examples_by_kind()
    rows, listed = [], []
    for name in kind_names():
        kind = KINDS[name]
        params = {p: jsonable(v) for p, v in kind.defaults.items()}
        files = examples.get(name, [])
        rows.append(
            [
                name,
                "model" if kind.model else "operator",
                ", ".join(kind.dims) or ("any (the file names them)" if kind.open_dims else "—"),
                ", ".join(f"{p}={_param_text(v)}" for p, v in params.items()) or "—",
                ", ".join(files) or "—",
                kind.ref,
            ]
        )
        listed.append({"kind": name, "model": kind.model, "dims": list(kind.dims), "params": params,
                       "examples": files, "ref": kind.ref, "doc": kind.doc})
    section = Section(
        f"{len(rows)} kinds (run e.g. `tc0sim depth examples/matmul.yaml`; docs/model_files.md describes the file)",
        ("kind", "type", "dims", "params (default)", "example", "reference"),
        rows,
    )
    return KindsReport([section], {"kinds": listed})
