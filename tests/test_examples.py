"""Every file of examples/ runs through depth, size (its sweep), eval (its precision) and audit (the
reports called as a library; eval through the command line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tc0sim.cli.main import main
from tc0sim.kinds import KINDS
from tc0sim.kinds import kind_names
from tc0sim.modelfile import load_model
from tc0sim.reports import audit_report, depth_report, size_report

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FILES = sorted(EXAMPLES.glob("*.yaml"))
OPERATORS = (
    "matmul", "upsample", "downsample", "attention_matrix", "attention", "mlp", "ffn", "layernorm",
    "conv2d", "flow", "flow_bezier", "flow_matching", "aattc",
)
MODELS = ("var", "flowar", "flowar_bezier", "fast_flowar")
RELEASED_SIZE = {"var_d16", "var_d30", "flowar_s", "flowar_h"}
HEAVY = {"flowar_h"}
"""Released-size files whose graph takes tens of seconds to build: only loaded here (their parameters are
tested with fewer Euler steps in tests/test_models_flowar_release.py; their size in benchmarks/)."""
"""Released-size models (10^11+ gates): too big to evaluate here; their size and parameters are tested."""


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_one_example_per_operator_and_model():
    names = {f.stem for f in FILES}
    assert set(OPERATORS) | set(MODELS) <= names
    for name in OPERATORS:
        assert load_model(EXAMPLES / f"{name}.yaml").kind == name
    covered = {load_model(f).kind for f in FILES}
    assert covered == set(kind_names()), "every registered kind should have an example"
    assert load_model(EXAMPLES / "flowar_bezier.yaml").params["flow"] == "bezier"


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_example_runs_through_every_command(path, tmp_path):
    spec = load_model(path)
    if spec.kind == "torch":  # the torch front end's example needs PyTorch (an optional dependency)
        pytest.importorskip("torch")
    assert spec.precision is not None
    if KINDS[spec.kind].dims:
        assert spec.sweep is not None and spec.n is not None
        assert spec.uses_n, "examples give their dims as expressions in n"
    if path.stem in HEAVY:
        assert spec.kind in KINDS and not spec.uses_n
        return
    if path.stem in RELEASED_SIZE:
        assert size_report(path).as_dict()["parameters"]["total"] > 0
        return

    data = depth_report(path).as_dict()
    assert data["depth"]["critical"] and data["depth"]["exact"]
    assert data["size"]["total"] > 0
    assert data["model"]["kind"] == spec.kind

    polynomial = size_report(path).as_dict()["size"]
    assert polynomial["verified"], f"{path.name}: counts not a polynomial on its sweep {spec.sweep}"
    assert polynomial["degree"] >= (1 if spec.uses_n else 0)

    out = tmp_path / "out.json"
    evaluated = run("eval", path, "--output", out)
    assert evaluated.exit_code == 0, evaluated.output
    document = json.loads(out.read_text())
    assert document["precision"] == spec.precision
    assert "out" in document["outputs"] or not KINDS[spec.kind].dims

    audited = audit_report([path])
    verdicts = audited.as_dict()["claims"]
    assert audited.violated == any(v["verdict"] == "violated" for v in verdicts)
    if spec.kind in OPERATORS and spec.kind not in ("flow", "flow_bezier", "aattc"):  # the papers' operators
        assert verdicts, f"no claim audits {spec.kind}"
    if spec.kind not in ("flowar_release", "var_release"):  # released models audit Theorems 4.9 / 5.11, whose preconditions they fail
        assert all(v["verdict"] != "precondition" for v in verdicts), "examples should meet the claims' preconditions"
