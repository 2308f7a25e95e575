"""The tc0sim command line through click's CliRunner and through a real subprocess: parsing,
printing, exit status and one-line errors, a few cases per command (what the reports hold is
tested on the library in test_reports.py).

Expected values come from hand derivations (matmul: n·n·n products + n·n sums) and from an exact
Fraction evaluation with its own round-to-nearest-even written here, never from the code under test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from reference import round_fraction

from tc0sim.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def model(tmp_path: Path, text: str, name: str = "model.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def pair_value(pair) -> Fraction:
    m, e = pair
    return Fraction(m) * Fraction(2) ** e


def assert_bad_input(result, *fragments: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


MATMUL_N = "kind: matmul\nprecision: 8\ndims: {n1: n, d: n, n2: n}\nn: 3\n"


# ------------------------------------------------------------------------------------------ help


@pytest.mark.parametrize("command", ["depth", "size", "eval", "audit", "graph", "kinds", "claims", "demo"])
def test_every_command_has_help(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.stdout


def test_group_help_lists_the_commands():
    result = run("--help")
    for command in ("depth", "size", "eval", "audit", "graph", "claims"):
        assert command in result.stdout


# ------------------------------------------------------------------------------- bad model files


@pytest.mark.parametrize(
    "text,fragments",
    [
        ("precision: 8\ndims: {}\n", ["missing key 'kind'"]),
        ("kind: nope\ndims: {}\n", ["unknown kind 'nope'", "matmul"]),
        ("kind: matmul\nprecision: high\ndims: {n1: 1, d: 1, n2: 1}\n", ["key 'precision'", "integer >= 2"]),
        ("kind: matmul\ndims: {n1: 1, d: [1], n2: 1}\n", ["key 'dims.d'", "a list"]),
        ("!!python/object/apply:os.system ['echo pwned']\n", ["YAML tag not allowed"]),
        ("kind: matmul\ndims: {n1: 1, d: 100000000000000000000, n2: 1}\n", ["key 'dims.d'", "too large"]),
        ("kind: matmul\ndims: {n1: 1, d: -4, n2: 1}\n", ["key 'dims.d'", "positive integer"]),
        ('kind: matmul\ndims: {n1: 1, d: "k*2", n2: 1}\n', ["key 'dims.d'", "unknown name 'k'", "allowed names: n"]),
        ('kind: matmul\ndims: {n1: 1, d: "n)(", n2: 1}\nn: 2\n', ["key 'dims.d'", "position 1", "found ')'"]),
        ("kind: matmul\ndims: {n1: 1, d: 1, n2: 1}\nwhatever: 1\n", ["unknown key 'whatever'"]),
        ("", ["empty model file"]),
    ],
)
@pytest.mark.parametrize("command", ["depth", "size", "eval"])
def test_malformed_files_exit_2_with_one_line(tmp_path, text, fragments, command):
    path = model(tmp_path, text)
    extra = ["--output", str(tmp_path / "out.json")] if command == "eval" else ["--n", "2,3"] if command == "size" else []
    line = assert_bad_input(run(command, path, *extra), *fragments)
    assert str(path) in line


def test_missing_model_file(tmp_path):
    assert_bad_input(run("depth", tmp_path / "absent.yaml"), "no such model file")


def test_dims_using_n_without_n(tmp_path):
    path = model(tmp_path, "kind: matmul\ndims: {n1: n, d: 1, n2: 1}\n")
    assert_bad_input(run("depth", path), "no n was given")
    assert run("depth", path, "--n", "2").exit_code == 0


def test_click_usage_errors_exit_2(tmp_path):
    assert run("depth").exit_code == 2
    assert run("depth", model(tmp_path, MATMUL_N), "--format", "yaml").exit_code == 2
    assert run("depth", model(tmp_path, MATMUL_N), "--n", "0").exit_code == 2


# ------------------------------------------------------------------------------------------ depth


def test_depth_text_and_markdown(tmp_path):
    path = model(tmp_path, MATMUL_N)
    text = run("depth", path)
    assert text.exit_code == 0
    assert "d_std + d_sum" in text.stdout
    assert "VAR Lemma 5.2" in text.stdout
    assert "\x1b[" not in text.stdout
    markdown = run("depth", path, "--format", "markdown")
    assert "## critical depth" in markdown.stdout
    assert "| operator | paper ref | depth | gates on the path |" in markdown.stdout


@pytest.mark.parametrize(
    "assignment,fragment",
    [("d_foo=1", "unknown depth symbol 'd_foo'"), ("d_std", "expected SYMBOL=VALUE"), ("d_std=x", "not a number"), ("d_std=-1", ">= 0")],
)
def test_depth_bad_set(tmp_path, assignment, fragment):
    assert_bad_input(run("depth", model(tmp_path, MATMUL_N), "--set", assignment), fragment)


# ------------------------------------------------------------------------------------------- size


def test_size_polynomial_of_matmul(tmp_path):
    result = run("size", model(tmp_path, MATMUL_N), "--n", "2,4,6,8", "--format", "json")
    assert result.exit_code == 0, result.output
    size = json.loads(result.stdout)["size"]
    # n1 = d = n2 = n: n·n·n products and n·n sums, so n^3 + n^2
    assert size["polynomial"] == ["0", "0", "1", "1"]
    assert size["degree"] == 3
    assert size["verified"] is True
    assert [c["total"] for c in size["counts"]] == [n**3 + n**2 for n in (2, 4, 6, 8)]
    assert [v["n"] for v in size["verification"]] == [10, 12]
    assert "n^3 + n^2" in run("size", model(tmp_path, MATMUL_N), "--n", "1,2,3,4").stdout


@pytest.mark.parametrize("points,fragment", [("4,x", "comma-separated"), ("2,2", "distinct"), ("0,1", "integers >= 1")])
def test_size_bad_points(tmp_path, points, fragment):
    assert_bad_input(run("size", model(tmp_path, MATMUL_N), "--n", points), fragment)


def test_size_without_points(tmp_path):
    assert_bad_input(run("size", model(tmp_path, MATMUL_N)), "--n")


def test_size_plot_needs_matplotlib(tmp_path):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert_bad_input(run("size", model(tmp_path, MATMUL_N), "--n", "1,2", "--plot", tmp_path / "p.png"), "matplotlib")
    else:
        result = run("size", model(tmp_path, MATMUL_N), "--n", "1,2,3,4", "--plot", tmp_path / "p.png")
        assert result.exit_code == 0
        assert (tmp_path / "p.png").stat().st_size > 0


# ------------------------------------------------------------------------------------------- eval


TINY = "kind: matmul\nprecision: 8\ndims: {n1: 2, d: 3, n2: 2}\nseed: 4\n"


def test_eval_json_matches_an_exact_fraction_oracle(tmp_path):
    x = np.array([[0.1, -1.7, 3.25], [2.0 / 3.0, 1e-3, -5.5]])
    y = np.array([[1.1, 0.3], [-2.9, 7.0], [0.01, -0.45]])
    inputs = tmp_path / "in.npz"
    np.savez(inputs, X=x, Y=y)
    out = tmp_path / "out.json"
    result = run("eval", model(tmp_path, TINY), "--inputs", inputs, "--output", out)
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert document["precision"] == 8
    output = document["outputs"]["out"]
    assert output["shape"] == [2, 2]
    p = 8
    xr = [[round_fraction(Fraction(v), p) for v in row] for row in x.tolist()]
    yr = [[round_fraction(Fraction(v), p) for v in row] for row in y.tolist()]
    for i in range(2):
        for j in range(2):
            products = [round_fraction(xr[i][k] * yr[k][j], p) for k in range(3)]
            expected = round_fraction(sum(products, Fraction(0)), p)
            m, e = output["pairs"][i][j]
            assert pair_value((m, e)) == expected
            assert m == 0 or 2 ** (p - 1) <= abs(m) < 2**p


def test_eval_npz_matches_json_when_representable(tmp_path):
    path = model(tmp_path, TINY)
    run("eval", path, "--output", tmp_path / "out.json")
    result = run("eval", path, "--precision", "24", "--output", tmp_path / "out24.json")
    assert result.exit_code == 0
    result = run("eval", path, "--precision", "24", "--output", tmp_path / "out.npz")
    assert result.exit_code == 0, result.output
    pairs = json.loads((tmp_path / "out24.json").read_text())["outputs"]["out"]["pairs"]
    with np.load(tmp_path / "out.npz") as archive:
        values = archive["out"]
    assert values.dtype == np.float64
    for i in range(2):
        for j in range(2):
            assert Fraction(float(values[i, j])) == pair_value(pairs[i][j])


def test_eval_npz_holds_exact_pairs_when_not_float64(tmp_path):
    # at p = 113 a sum of products of 53-bit inputs needs more than 53 significand bits: the .npz
    # then holds out.m and out.e (value m·2^e), checked against exact rationals rounded once each
    x = np.array([[0.1, -1.7, 3.25], [2.0 / 3.0, 1e-3, -5.5]])
    y = np.array([[1.1, 0.3], [-2.9, 7.0], [0.01, -0.45]])
    inputs = tmp_path / "in.npz"
    np.savez(inputs, X=x, Y=y)
    out = tmp_path / "out.npz"
    result = run("eval", model(tmp_path, TINY), "--inputs", inputs, "--precision", "113", "--output", out)
    assert result.exit_code == 0, result.output
    with np.load(out) as archive:
        assert sorted(archive.files) == ["out.e", "out.m"]
        m, e = archive["out.m"], archive["out.e"]
    p = 113
    xr = [[round_fraction(Fraction(v), p) for v in row] for row in x.tolist()]
    yr = [[round_fraction(Fraction(v), p) for v in row] for row in y.tolist()]
    for i in range(2):
        for j in range(2):
            expected = round_fraction(sum((round_fraction(xr[i][k] * yr[k][j], p) for k in range(3)), Fraction(0)), p)
            assert pair_value((int(m[i, j]), int(e[i, j]))) == expected


def test_eval_draws_missing_inputs_from_the_seed(tmp_path):
    path = model(tmp_path, TINY)
    run("eval", path, "--output", tmp_path / "a.json")
    run("eval", path, "--output", tmp_path / "b.json")
    other = model(tmp_path, TINY.replace("seed: 4", "seed: 5"), "other.yaml")
    run("eval", other, "--output", tmp_path / "c.json")
    a, b, c = (json.loads((tmp_path / f"{k}.json").read_text())["outputs"] for k in "abc")
    assert a == b
    assert a != c


def test_eval_inputs_are_checked(tmp_path):
    path = model(tmp_path, TINY)
    wrong_name = tmp_path / "name.npz"
    np.savez(wrong_name, Z=np.zeros((2, 3)))
    assert_bad_input(run("eval", path, "--inputs", wrong_name, "--output", tmp_path / "o.json"), "unknown input 'Z'", "X, Y")
    wrong_shape = tmp_path / "shape.npz"
    np.savez(wrong_shape, X=np.zeros((3, 2)))
    assert_bad_input(run("eval", path, "--inputs", wrong_shape, "--output", tmp_path / "o.json"), "'X' has shape (3, 2), expected (2, 3)")
    not_finite = tmp_path / "nan.npz"
    np.savez(not_finite, X=np.full((2, 3), np.nan))
    assert_bad_input(run("eval", path, "--inputs", not_finite, "--output", tmp_path / "o.json"), "not finite")
    garbage = tmp_path / "garbage.npz"
    garbage.write_text("not an archive")
    assert_bad_input(run("eval", path, "--inputs", garbage, "--output", tmp_path / "o.json"), "not a readable .npz")
    assert_bad_input(run("eval", path, "--inputs", tmp_path / "absent.npz", "--output", tmp_path / "o.json"), "no such file")


def test_eval_refuses_big_graphs_and_bad_options(tmp_path):
    path = model(tmp_path, TINY)
    # 2·3·2 products + 2·2 sums = 16 gates
    assert run("eval", path, "--max-gates", "16", "--output", tmp_path / "o.json").exit_code == 0
    assert_bad_input(run("eval", path, "--max-gates", "15", "--output", tmp_path / "o.json"), "16 gates", "--max-gates")
    big = model(tmp_path, "kind: matmul\nprecision: 8\ndims: {n1: 1000, d: 1000, n2: 1000}\n", "big.yaml")
    assert_bad_input(run("eval", big, "--output", tmp_path / "o.json"), "1,001,000,000 gates", "50,000,000")
    assert_bad_input(run("eval", path, "--output", tmp_path / "o.txt"), ".json, .npz or .png")
    assert_bad_input(run("eval", path, "--precision", "1", "--output", tmp_path / "o.json"), "--precision", "at least 2")
    no_precision = model(tmp_path, "kind: matmul\ndims: {n1: 1, d: 1, n2: 1}\n", "np.yaml")
    assert_bad_input(run("eval", no_precision, "--output", tmp_path / "o.json"), "no precision")


def test_eval_arithmetic_errors_exit_2(tmp_path):
    # layernorm of a constant row divides by √0 (SPEC §1: division by zero is an error of its own)
    path = model(tmp_path, "kind: layernorm\nprecision: 8\ndims: {n: 1, c: 2}\n")
    inputs = tmp_path / "in.npz"
    np.savez(inputs, X=np.ones((1, 2)))
    assert_bad_input(run("eval", path, "--inputs", inputs, "--output", tmp_path / "o.json"))


# ------------------------------------------------------------------------------ audit, graph, claims


def test_audit_exits_1_on_a_violated_claim(tmp_path, monkeypatch):
    from tc0sim.audit import audit as engine

    real = engine.audit_model

    def with_violation(spec, *args, **kwargs):
        verdicts = real(spec, *args, **kwargs)
        verdicts[0].verdict = "violated"
        return verdicts

    monkeypatch.setattr(engine, "audit_model", with_violation)
    path = model(tmp_path, "kind: matmul\ndims: {n1: n, d: n, n2: n}\nsweep: [2, 3, 4]\n")
    result = run("audit", path, "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["claims"][0]["verdict"] == "violated"


def test_audit_of_selected_claims():
    result = run("audit", "--claim", "VAR-L5.2", "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert "VAR-L5.2" in result.stdout
    assert_bad_input(run("audit", "--claim", "VAR-L99"), "VAR-L99")


@pytest.mark.parametrize("suffix", [".dot"])
def test_graph_export(tmp_path, suffix):
    out = tmp_path / f"g{suffix}"
    result = run("graph", model(tmp_path, MATMUL_N), "--output", out)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "mul" in text and "sum" in text


def test_graph_bad_suffix(tmp_path):
    assert_bad_input(run("graph", model(tmp_path, MATMUL_N), "--output", tmp_path / "g.png"), ".graphml, .dot or .json")


def test_claims_registry():
    data = json.loads(run("claims", "--format", "json").stdout)
    ids = [c["id"] for c in data["claims"]]
    assert "VAR-L5.3" in ids and "FlowAR-T4.9" in ids
    assert run("claims", "--format", "markdown").stdout.startswith("## ")


# ------------------------------------------------------------------------------------- subprocess


def _subprocess(*args: str, script: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([*script, *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=120)


SCRIPTS = [pytest.param([sys.executable, "-m", "tc0sim"], id="python-m-tc0sim")]
if shutil.which("tc0sim"):
    SCRIPTS.append(pytest.param([shutil.which("tc0sim")], id="console-script"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_subprocess_bad_input_is_one_line_exit_2(tmp_path, script):
    path = model(tmp_path, "kind: matmul\ndims: {n1: 1, d: !!python/object/apply:os.system ['echo pwned'], n2: 1}\n")
    done = _subprocess("depth", path, script=script)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert "YAML tag not allowed" in done.stderr
    assert "pwned" not in done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_subprocess_depth_json(tmp_path, script):
    done = _subprocess("depth", model(tmp_path, MATMUL_N), "--format", "json", script=script)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["depth"]["critical"][0]["d_sum"] == 1
    assert done.stderr == ""


def test_subprocess_version_and_usage_error():
    done = _subprocess("--version", script=[sys.executable, "-m", "tc0sim"])
    assert done.returncode == 0 and "tc0sim" in done.stdout
    done = _subprocess("depth", script=[sys.executable, "-m", "tc0sim"])
    assert done.returncode == 2


def test_audit_of_a_kind_without_claims(tmp_path):
    path = model(tmp_path, "kind: flow\ndims: {h: 1, w: 1, c: 1}\n")
    assert "nothing to audit" in run("audit", path).stdout
    assert json.loads(run("audit", path, "--format", "json").stdout) == {"claims": []}


def test_os_errors_are_one_line(tmp_path):
    out = tmp_path / "missing-directory" / "out.json"
    assert_bad_input(run("eval", model(tmp_path, TINY), "--output", out), "No such file or directory")


# --------------------------------------------------------------------------- depth: budget, resources

WIDE_CONCAT = """kind: var
dims: {h: 4, w: 4, c: 2}
scales: [1, 2, 4]
"""


def test_depth_over_the_memory_budget_is_refused_in_one_line(tmp_path):
    path = model(tmp_path, WIDE_CONCAT)
    line = assert_bad_input(run("depth", path, "--memory-budget", "2KB"), "exact depth refused at node", "memory budget")
    assert " in operator var/" in line
    assert "upper bound, not exact" in run("depth", path, "--memory-budget", "2KB", "--allow-upper-bound").stdout


@pytest.mark.parametrize("budget", ["lots", "-1GB", "0", "2XB", "1.5.2GB", ""])
def test_bad_memory_budget_is_bad_input(tmp_path, budget):
    assert_bad_input(run("depth", model(tmp_path, MATMUL_N), "--memory-budget", budget), "--memory-budget")


# --------------------------------------------------------------- first contact (issue 13)


def test_kinds_lists_every_kind_with_an_example():
    result = run("kinds", "--format", "json")
    assert result.exit_code == 0, result.output
    assert "matmul" in {k["kind"] for k in json.loads(result.stdout)["kinds"]}
    text = run("kinds")
    assert "examples/attention.yaml" in text.stdout and "docs/model_files.md" in text.stdout


def test_help_explains_the_model_file_the_symbols_and_the_outputs():
    from tc0sim.ir.primitives import SYMBOLS

    group = run("--help").stdout
    assert "YAML model file" in group and "examples/" in group and "arXiv:2501.04299" in group
    depth_help = " ".join(run("depth", "--help").stdout.split())
    assert "YAML model file" in depth_help and "docs/model_files.md" in depth_help
    assert all(s in depth_help for s in SYMBOLS) and "--full-path" in depth_help
    eval_help = " ".join(run("eval", "--help").stdout.split())
    assert "[m, e]" in eval_help and "m·2^e" in eval_help and "2 ≤ p ≤ 1,000,000" in eval_help
    for command in ("depth", "size", "eval", "graph", "audit"):
        assert "--max-nodes" in run(command, "--help").stdout


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["depth", "{m}", "--n", "²"], ["--n", "digits 0-9", "tc0sim depth --help"]),
        (["depth", "{m}", "--n", "99999999999999999"], ["--n", "digits"]),
        (["size", "{m}", "--verify", "21"], ["--verify", "at most 20"]),
        (["size", "{m}", "--n", ",".join(str(i) for i in range(1, 102))], ["--n", "more than the limit of 100"]),
        (["eval", "{m}", "--precision", "1000001", "--output", "{o}"], ["--precision", "at most 1,000,000"]),
        (["eval", "{m}", "--max-gates", "1e1000", "--output", "{o}"], ["--max-gates", "exponent"]),
        (["depth", "{m}", "--max-nodes", "0"], ["--max-nodes", "at least 1"]),
        (["depth", "{m}", "--set", "d_std=1e101"], ["--set d_std", "exponent is outside ±100"]),
        (["depth", "{m}", "--set", "d_std=" + "9" * 101], ["--set d_std", "more than 100 digits"]),
        (["eval", "{m}"], ["Missing option '--output'"]),
        (["depth", "{m}", "--bogus"], ["No such option"]),
    ],
)
def test_bad_options_are_one_line(tmp_path, args, fragments):
    path = model(tmp_path, MATMUL_N)
    filled = [a.format(m=path, o=tmp_path / "o.json") for a in args]
    assert_bad_input(run(*filled), *fragments)


def test_set_values_at_the_limits_are_exact(tmp_path):
    # matmul: depth d_std + d_sum, so at d_std = 1e100, d_sum = 1/3 it is 10^100 + 1/3
    data = json.loads(run("depth", model(tmp_path, MATMUL_N), "--set", "d_std=1e100", "--set", "d_sum=1/3", "--format", "json").stdout)
    assert Fraction(data["depth"]["at"]["depth"]) == Fraction(10**100) + Fraction(1, 3)


def test_budget_options_refuse_and_raise(tmp_path):
    path = model(tmp_path, MATMUL_N)
    assert_bad_input(run("depth", path, "--max-nodes", "3"), "more than 3 tensor nodes", "--max-nodes")
    assert_bad_input(run("graph", path, "--max-memory", "1000", "--output", tmp_path / "g.json"), "--max-memory")
    assert run("depth", path, "--max-nodes", "1e3").exit_code == 0
    # evaluation memory at p = 10^6: 27 held values (inputs, output) and a piece of 27 products, each about 125 kB
    assert_bad_input(
        run("eval", path, "--precision", "1000000", "--max-memory", "4e6", "--output", tmp_path / "o.json"),
        "4,000,000 bytes", "--max-memory",
    )


def test_eval_inputs_checked_from_the_npy_header(tmp_path):
    import io
    import zipfile

    path = model(tmp_path, TINY)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**5, 10**5)})
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w") as archive:
        archive.writestr("X.npy", header.getvalue())  # no data: only the header is ever read
    assert_bad_input(run("eval", path, "--inputs", bomb, "--output", tmp_path / "o.json"), "shape (100000, 100000)")
    good = tmp_path / "good.npz"
    np.savez(good, X=np.ones((2, 3)))
    truncated = tmp_path / "cut.npz"
    truncated.write_bytes(good.read_bytes()[:-30])
    assert_bad_input(run("eval", path, "--inputs", truncated, "--output", tmp_path / "o.json"), "--inputs", "cut.npz")


def test_long_error_messages_are_cut(tmp_path):
    path = model(tmp_path, "kind: matmul\ndims: {n1: 1, d: 1, n2: 1}\n" + "k" * 5000 + ": 1\n")
    line = assert_bad_input(run("depth", path))
    assert len(line) <= len("error: ") + 400


def test_running_out_of_memory_is_one_line(tmp_path, monkeypatch):
    import tc0sim.interp.depth as depth_module

    def exhausted(graph, **options):
        raise MemoryError()

    monkeypatch.setattr(depth_module, "depth", exhausted)
    assert_bad_input(run("depth", model(tmp_path, MATMUL_N)), "out of memory", "--max-memory")


def test_eval_charges_each_local_worker_against_the_memory_budget(tmp_path: Path, monkeypatch) -> None:
    """--workers 1000 would start 1000 processes of about 70 MB each: refused before any starts."""
    import os

    from tc0sim.engines import plan
    from tc0sim.engines.dask import LOCAL_WORKER_BYTES as each
    from tc0sim.engines.dask import cluster
    from tc0sim.modelfile import load_model

    def no_cluster(workers: int):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(cluster, "local_cluster", no_cluster)
    example = Path(__file__).resolve().parents[1] / "examples" / "matmul.yaml"
    out = tmp_path / "out.json"
    result = run("eval", example, "--engine", "mpfr", "--workers", "1000", "--output", out)
    assert result.exit_code == 2 and "on 1000 local workers" in result.output and "fewer --workers" in result.output
    result = run("eval", example, "--engine", "mpfr", "--workers", "3", "--max-memory", "2e8", "--output", out)
    assert result.exit_code == 2 and "on 3 local workers" in result.output
    assert not out.exists()

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    graph = load_model(example).build(None)
    big = 10**7  # a local cluster only when asked for (cluster_from): the default stays in this process
    serial = plan(graph, 53, "mpfr", max_memory=10**12).bytes  # the client's values, no worker
    assert plan(graph, 53, "mpfr", gates=big, cluster_from=big).workers == 8
    assert plan(graph, 53, "mpfr", gates=big, max_memory=serial + 3 * each + 1, cluster_from=big).workers == 3
    assert plan(graph, 53, "mpfr", gates=big, max_memory=serial + 2 * each - 1, cluster_from=big).workers is None
    assert plan(graph, 53, "mpfr", gates=big - 1, cluster_from=big).workers is None
    assert plan(graph, 53, "mpfr", workers=5, gates=1).workers == 5  # the user's number
