"""The report layer (``tc0sim.reports``) called as a library: each report's ``as_dict()`` (what
``--format json`` prints) and ``sections()`` (what text and markdown print).

Expected values come from hand derivations (matmul: n·n·n products + n·n sums, VAR Lemma 5.2; layer
norm, VAR Lemma 5.5) and from the papers' claims, never from the code under test. The command line
over these reports is tested in test_cli.py.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import pytest
from reference import report_dict

from tc0sim.errors import Tc0simError
from tc0sim.ir.primitives import QUIET_SYMBOLS, SYMBOLS
from tc0sim.reports import (
    audit_report, claims_report, demo_report, depth_report, graph_report, kinds_report, size_report, threshold_report,
)
from tc0sim.reports.base import SUMMARY_ROWS, Section

ROOT = Path(__file__).resolve().parents[1]
SYMBOL_KEYS = set(SYMBOLS) - QUIET_SYMBOLS
MATMUL_N = "kind: matmul\nprecision: 8\ndims: {n1: n, d: n, n2: n}\nn: 3\n"


def model(tmp_path: Path, text: str, name: str = "model.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def text_of(report) -> str:
    """Every title, cell and line of a report's sections, one per line (what the text formats show)."""
    out = []
    for section in report.sections():
        out.append(section.title)
        out.extend(" | ".join(str(c) for c in row) for row in section.rows)
        out.extend(section.lines)
    return "\n".join(out)


def round_trips(data: dict) -> dict:
    """``as_dict()`` is a JSON document (through ``jsonable``, as the command prints it)."""
    from tc0sim.reports.base import jsonable

    return json.loads(json.dumps(jsonable(data)))


# ------------------------------------------------------------------------------------------ depth


def test_depth_json_schema(tmp_path):
    data = round_trips(depth_report(model(tmp_path, MATMUL_N)).as_dict())
    critical = data["depth"]["critical"]
    assert isinstance(critical, list) and critical
    for v in critical:
        assert set(v) == SYMBOL_KEYS
        assert all(isinstance(c, int) for c in v.values())
    # matmul: one layer of products then one ⊕ (VAR Lemma 5.2): d_std + d_sum
    assert critical == [report_dict(d_std=1, d_sum=1, d_prod=0, d_exp=0, d_sqrt=0)]
    assert data["depth"]["exact"] is True
    witness = data["depth"]["witness"][0]
    assert [g["gates"] for g in witness["by_operator"] if g["gates"]] == [["mul", "sum"]]
    # n = 3: 27 products, 9 sums
    assert data["size"]["total"] == 36
    assert data["size"]["by_primitive"] == {"mul": 27, "sum": 9}
    assert data["model"]["dims"] == {"n1": 3, "d": 3, "n2": 3}


def test_depth_sections_name_the_form_and_the_lemma(tmp_path):
    text = text_of(depth_report(model(tmp_path, MATMUL_N)))
    assert "d_std + d_sum" in text
    assert "VAR Lemma 5.2" in text


def test_depth_with_set_values(tmp_path):
    path = model(tmp_path, MATMUL_N)
    data = round_trips(depth_report(path, values={"d_std": Fraction(3), "d_sum": Fraction(5, 2)}).as_dict())
    assert data["depth"]["at"]["depth"] == "11/2"
    report = depth_report(path, values={"d_std": Fraction(3)})
    defaulted = round_trips(report.as_dict())
    # d_sum unspecified counts 1: 3 + 1
    assert defaulted["depth"]["at"]["depth"] == 4
    assert "d_sum" in defaulted["depth"]["at"]["defaulted"]
    assert "unspecified symbols = 1" in text_of(report)
    assert report.critical_path()[0] == 4


def test_depth_refuses_an_unknown_symbol(tmp_path):
    with pytest.raises(Tc0simError, match="d_foo"):
        depth_report(model(tmp_path, MATMUL_N), values={"d_foo": Fraction(1)})


def test_depth_of_layernorm_as_derived_by_hand(tmp_path):
    # μ = (⊕X)/c; Δ = X − μ; σ² = (⊕ Δ·Δ)/c; out = Δ/√σ²:
    # d_std: div, sub, mul, div, div = 5; d_sum: 2; d_sqrt: 1 (VAR Lemma 5.5)
    path = model(tmp_path, "kind: layernorm\ndims: {n: 3, c: 4}\n")
    data = depth_report(path).as_dict()
    assert data["depth"]["critical"] == [report_dict(d_std=5, d_sum=2, d_prod=0, d_exp=0, d_sqrt=1)]


def test_depth_accepts_a_model_spec_and_n(tmp_path):
    from tc0sim.modelfile import loads_model

    spec = loads_model("kind: matmul\ndims: {n1: n, d: n, n2: n}\n", source="inline")
    data = depth_report(spec, n=2).as_dict()
    assert data["model"]["file"] == "inline" and data["model"]["n"] == 2
    assert data["size"]["total"] == 2**3 + 2**2


def _claim_file(tmp_path: Path, claim: str) -> Path:
    return model(tmp_path, f'kind: matmul\ndims: {{n1: 2, d: 3, n2: 2}}\nclaim: "{claim}"\n', "claimed.yaml")


@pytest.mark.parametrize(
    "claim,verdict,detail",
    [
        # matmul's depth is d_std + d_sum (one product layer, one ⊕; VAR Lemma 5.2)
        ("d_std + d_sum", "tight", None),
        ("2 d_std + d_sum + d_exp", "slack", {"d_std": 1, "d_sum": 0, "d_prod": 0, "d_exp": 1, "d_sqrt": 0, "d_erf": 0}),
        ("d_std", "violated", {"d_std": 1, "d_sum": 1, "d_prod": 0, "d_exp": 0, "d_sqrt": 0, "d_erf": 0}),
    ],
)
def test_depth_prints_the_files_claim_with_a_verdict(tmp_path, claim, verdict, detail):
    report = depth_report(_claim_file(tmp_path, claim))
    data = report.as_dict()["depth"]["claim"]
    assert data["verdict"] == verdict
    assert data.get("slack" if verdict == "slack" else "exceeding") == detail
    text = text_of(report)
    assert "claimed (key 'claim')" in text and f"— {verdict}" in text


def test_attention_example_says_its_claim_is_slack():
    # FlowAR Lemma 4.6 claims 6(d_std + d_sum) + d_exp; the lowering's path is 6 d_std + 5 d_sum + d_exp
    out = text_of(depth_report(ROOT / "examples" / "attention.yaml"))
    assert "claimed (key 'claim'): 6 d_std + 6 d_sum + d_exp — slack" in out


def test_depth_reports_wall_time_and_peak_memory(tmp_path):
    report = depth_report(model(tmp_path, MATMUL_N))
    data = report.as_dict()
    assert data["wall_time_s"] > 0 and data["depth_cpu_s"] >= 0
    assert data["build_time_s"] + data["depth_time_s"] <= data["wall_time_s"] + 2e-4  # each rounded to 0.1 ms
    import resource

    assert 0 < data["peak_rss_mb"] <= resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 + 0.1  # rounded
    text = text_of(report)
    assert "wall time" in text and "peak RSS" in text


WIDE_CONCAT = """kind: var
dims: {h: 4, w: 4, c: 2}
scales: [1, 2, 4]
"""


def test_depth_over_the_memory_budget_is_refused_or_bounded(tmp_path):
    path = model(tmp_path, WIDE_CONCAT)
    with pytest.raises(Tc0simError, match="exact depth refused at node"):
        depth_report(path, memory_budget=2048)
    exact = depth_report(path).as_dict()["depth"]
    report = depth_report(path, memory_budget=2048, allow_upper_bound=True)
    bounded = report.as_dict()["depth"]
    assert exact["exact"] is True and bounded["exact"] is False and bounded["inexact_reasons"]
    for v in exact["critical"]:
        assert any(all(v[s] <= w[s] for s in SYMBOL_KEYS) for w in bounded["critical"])
    assert "upper bound, not exact" in text_of(report)


def test_depth_witness_count_and_full_path(tmp_path):
    path = ROOT / "examples" / "attention.yaml"
    every = depth_report(path, witnesses=None, full_path=True).as_dict()["depth"]
    assert len(every["witness"]) == len(every["critical"])
    nodes = every["witness"][0]["path"]
    assert nodes and {"id", "prim", "name", "operator"} <= set(nodes[0])
    assert depth_report(path, witnesses=0).as_dict()["depth"]["witness"] == []
    assert depth_report(path).as_dict()["depth"]["witness"][0]["path"] is None


def test_depth_threshold_needs_a_precision(tmp_path):
    with pytest.raises(Tc0simError, match="precision"):
        depth_report(model(tmp_path, "kind: matmul\ndims: {n1: 2, d: 2, n2: 2}\n"), threshold=True)


def test_depth_summarises_the_size_table_unless_full_path(tmp_path):
    from tc0sim.cli.output import render_markdown

    path = model(
        tmp_path,
        "kind: var\ndims: {h: 4, w: 4, c: 2}\nscales: 2\nlayers: 1\ng: ffn\nkernel: 3\n"
        "decoder: [" + ", ".join(["resnet"] * 20) + "]\n",
        "long.yaml",
    )

    def size_rows(full_path: bool) -> list[str]:
        out = render_markdown(depth_report(path, full_path=full_path).sections())
        section = out.split("## size by operator", 1)[1].split("\n## ", 1)[0]
        return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| operator")]

    short, full = size_rows(False), size_rows(True)
    assert len(full) > 2 * SUMMARY_ROWS + 1 and len(short) == 2 * SUMMARY_ROWS + 1
    gates = [int(row.rsplit("|", 2)[1].replace(",", "")) for row in full]
    assert gates == sorted(gates, reverse=True)  # most gates first
    assert short[: 2 * SUMMARY_ROWS] == full[: 2 * SUMMARY_ROWS]
    assert f"{len(full) - 2 * SUMMARY_ROWS:,} more operators" in short[-1] and "% of the gates" in short[-1]


# ------------------------------------------------------------------------------------------- size


def test_size_polynomial_of_matmul(tmp_path):
    size = round_trips(size_report(model(tmp_path, MATMUL_N), [2, 4, 6, 8]).as_dict())["size"]
    # n1 = d = n2 = n: n·n·n products and n·n sums, so n^3 + n^2
    assert size["polynomial"] == ["0", "0", "1", "1"]
    assert size["degree"] == 3
    assert size["verified"] is True
    assert [c["total"] for c in size["counts"]] == [n**3 + n**2 for n in (2, 4, 6, 8)]
    assert [v["n"] for v in size["verification"]] == [10, 12]
    assert "n^3 + n^2" in text_of(size_report(model(tmp_path, MATMUL_N), [1, 2, 3, 4]))


def test_size_rational_coefficients(tmp_path):
    # X[1, n//2]·Y[n//2, 1]: n/2 products and one ⊕ for even n, so 1 + n/2; verified at n = 8, 10
    path = model(tmp_path, "kind: matmul\ndims: {n1: 1, d: n//2, n2: 1}\n")
    size = size_report(path, [2, 4, 6]).as_dict()["size"]
    assert size["polynomial"] == ["1", "1/2"]
    assert size["degree"] == 1
    assert [v["n"] for v in size["verification"]] == [8, 10]


def test_size_says_when_counts_are_not_a_polynomial(tmp_path):
    # n1 = n//2 makes the count (n//2)·n·n + (n//2)·n, a quasi-polynomial: no cubic fits n = 1..4 and 5, 6
    path = model(tmp_path, "kind: matmul\ndims: {n1: n//2 + 1, d: n, n2: n}\n")
    report = size_report(path, [1, 2, 3, 4])
    size = report.as_dict()["size"]
    assert size["verified"] is False
    assert size["polynomial"] is None and size["degree"] is None
    assert report.coefficients is None
    assert "not a polynomial in n on these points" in text_of(report)


def test_size_uses_the_file_sweep(tmp_path):
    path = model(tmp_path, MATMUL_N + "sweep: [1, 2, 3, 4]\n")
    size = size_report(path).as_dict()["size"]
    assert size["n"] == [1, 2, 3, 4]
    assert size["degree"] == 3


def test_size_without_points(tmp_path):
    with pytest.raises(Tc0simError, match="--n"):
        size_report(model(tmp_path, MATMUL_N))


def test_size_of_a_model_without_n_is_a_constant(tmp_path):
    # 2·3·2 products and 2·2 sums
    report = size_report(model(tmp_path, "kind: matmul\ndims: {n1: 2, d: 3, n2: 2}\n"))
    assert report.as_dict()["size"]["counts"][0]["total"] == 12 + 4
    assert "the size is the constant 16" in text_of(report)


def test_size_counts_the_parameters_of_a_released_model():
    # var_small (VAR-d16's layout at width 64): class embedding 11 × 64 scalars, read whole
    data = size_report(ROOT / "examples" / "var_small.yaml").as_dict()
    assert data["parameters"]["total"] >= 11 * 64


# --------------------------------------------------------------------------- audit, graph, catalogue


def test_audit_json_and_verdicts(tmp_path):
    path = model(tmp_path, "kind: matmul\ndims: {n1: n, d: n, n2: n}\nsweep: [2, 3, 4]\n")
    report = audit_report([path])
    claims = round_trips(report.as_dict())["claims"]
    ids = {c["id"] for c in claims}
    assert {"VAR-L5.2", "FlowAR-L4.1"} <= ids
    for c in claims:
        assert {"id", "verdict", "claimed", "computed", "notes"} <= set(c)
        # matmul is d_std + d_sum exactly as claimed (derived by hand above)
        assert c["verdict"] == "tight"
    assert not report.violated
    assert json.loads(report.render("json")) == report.as_dict()
    assert {row[0] for section in report.sections() for row in section.rows} == ids


def test_audit_of_selected_claims_and_unknown_ones():
    report = audit_report(claims=["VAR-L5.2"])
    assert [v.id for v in report.verdicts] == ["VAR-L5.2"]
    with pytest.raises(Tc0simError, match="VAR-L99"):
        audit_report(claims=["VAR-L99"])


def test_audit_of_a_kind_without_claims(tmp_path):
    report = audit_report([model(tmp_path, "kind: flow\ndims: {h: 1, w: 1, c: 1}\n")])
    assert "nothing to audit" in report.empty_note
    assert report.as_dict() == {"claims": []}


@pytest.mark.parametrize("suffix", [".json", ".dot", ".graphml"])
def test_graph_export(tmp_path, suffix):
    out = tmp_path / f"g{suffix}"
    report = graph_report(model(tmp_path, MATMUL_N), str(out))
    text = out.read_text()
    assert "mul" in text and "sum" in text
    # matmul at n = 3: inputs X (3, 3) and Y (3, 3)
    assert [i["shape"] for i in report.as_dict()["inputs"]] == [[3, 3], [3, 3]]
    assert report.lines()[0].startswith(f"wrote {out}")


def test_graph_bad_suffix(tmp_path):
    with pytest.raises(Tc0simError, match=r"\.graphml, \.dot or \.json"):
        graph_report(model(tmp_path, MATMUL_N), str(tmp_path / "g.png"))


def test_claims_registry():
    report = claims_report()
    data = report.as_dict()
    ids = [c["id"] for c in data["claims"]]
    assert "VAR-L5.3" in ids and "FlowAR-T4.9" in ids
    lemma = next(c for c in data["claims"] if c["id"] == "VAR-L5.3")
    # seed 004 Lemma 5.3: the attention matrix in depth 3(d_std + d_sum) + d_exp
    assert lemma["depth"] == {"d_std": 3, "d_sum": 3, "d_exp": 1}
    assert "3 d_std + 3 d_sum + d_exp" in text_of(report)


def yaml_kind(path: Path) -> str:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))["kind"]


def test_kinds_lists_every_kind_with_dims_params_and_an_example():
    report = kinds_report()
    listed = {k["kind"]: k for k in round_trips(report.as_dict())["kinds"]}
    examples = sorted(ROOT.glob("examples/*.yaml"))
    assert set(listed) == {yaml_kind(p) for p in examples}
    assert listed["matmul"]["dims"] == ["n1", "d", "n2"] and listed["matmul"]["params"] == {}
    assert listed["var"]["params"]["layers"] == 1 and listed["var"]["model"] is True
    for name, entry in listed.items():
        assert entry["examples"], name
        for example in entry["examples"]:
            assert yaml_kind(ROOT / example) == name
    text = text_of(report)
    assert "examples/attention.yaml" in text and "docs/model_files.md" in text


# ------------------------------------------------------------------------------ demo, threshold


def test_demo_shows_one_rounding_against_left_to_right():
    (section,) = demo_report().sections()
    assert [row[0] for row in section.rows] == ["8", "24", "53", "113"]
    data = demo_report(terms=("1", "1/3"), precisions=(2,)).as_dict()["rows"][0]
    # at p = 2, 1/3 rounds to 3/8 (0.0101…₂ is nearer 0.011₂ than 0.010₂): 1 + 3/8 = 11/8 exactly
    assert data["exact"] == "11/8"


def test_threshold_report_writes_and_verifies(tmp_path):
    out = tmp_path / "add.json"
    report = threshold_report("add", 3, str(out))
    data = report.as_dict()
    assert out.exists() and json.loads(out.read_text())
    assert data["verification"]["method"].startswith("exhaustive") and report.mismatches == 0
    assert isinstance(report.sections()[0], Section)
    with pytest.raises(Tc0simError, match="no threshold circuit"):
        threshold_report("nope", 3, str(out))


# ------------------------------------------------------------------------------------------ approx


def test_separateness_report_of_two_tokens(tmp_path):
    import numpy as np

    from tc0sim.reports import separateness_report

    # tokens (3, 4) and (0, 1): norms 5 and 1, distance √18 (Definition 5.2's γ_min, γ_max, δ)
    path = tmp_path / "emb.npz"
    np.savez(path, E=np.array([[[3.0, 4.0], [0.0, 1.0]]]))
    report = separateness_report(str(path), key="E")
    data = report.as_dict()
    assert (data["gamma_min"], data["gamma_max"], data["vocabulary"]) == (1.0, 5.0, 2)
    assert data["delta"] == math.sqrt(18) and data["kappa"] == 5.0
    (section,) = report.sections()
    assert [row[0] for row in section.rows] == ["gamma_min", "gamma_max", "delta", "vocabulary", "distinct_within_sequences", "kappa"]
    with pytest.raises(Tc0simError, match="no array 'X'"):
        separateness_report(str(path))


def test_contextual_report_sweeps_the_precision(tmp_path):
    import numpy as np

    from tc0sim.reports import contextual_report

    path = tmp_path / "emb.npz"
    np.savez(path, X=np.array([[[1.0, 0.5], [-0.25, 2.0], [0.75, -1.0]], [[0.5, 0.5], [2.0, -0.5], [1.0, 1.0]]]))
    spec = model(tmp_path, "kind: attention\ndims: {n: 3, d: 2}\nprecision: 24\nseed: 0\nscale: 0.5\n", "att.yaml")
    report = contextual_report(spec, str(path), sweep="20..22")
    assert report.as_dict()["sweep"]["precisions"] == [20, 21, 22]
    assert [row[0] for row in report.sections()[1].rows] == [20, 21, 22]
    with pytest.raises(Tc0simError, match="no precision"):
        contextual_report(model(tmp_path, "kind: attention\ndims: {n: 3, d: 2}\n", "bare.yaml"), str(path))
