"""Hostile files (issue 33, items 3, 5 and 6): checkpoints, archives and output paths.

The checkpoints are hand-made (tests/hostile/checkpoints/, written by its make.py); every command
line runs in tests/fuzz_driver.py's limited subprocess (``run_batch``) and must end with exit
0/1/2, no traceback, one ``error:`` line on failure and no output file left by a failed run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from test_fuzz import HOSTILE, ROOT, assert_clean, run_batch

from tc0sim.errors import one_line
from tc0sim.io.checkpoints import bfloat16_to_float32, parse_weight_arg

CHECKPOINTS = HOSTILE / "checkpoints"
MLP = ROOT / "examples" / "mlp.yaml"
W = [[0.5, -1.25], [3.0, 2.0]]
B = [1.5, -0.75]

REFUSED = {
    "meta.pth": "meta device",
    "sparse_coo.pth": "sparse_coo",
    "sparse_csr.pth": "sparse_csr",
    "quantised.pth": "quantised",
    "complex.pth": "complex",
    "int.pth": "torch.int32",
    "complex.safetensors": "C64",
    "int8.safetensors": "I8",
    "truncated.safetensors": "data_offsets",
    "huge_header.safetensors": "header",
    "pickle_object.pth": "objects other than tensors",
    "not_a_checkpoint.pth": "cannot read it",
    "escape_key.pth": "not read by the circuit",
}
ACCEPTED = ("bf16.safetensors", "f16.safetensors")


def _pairs_values(path: Path) -> list[Fraction]:
    pairs = json.loads(path.read_text())["outputs"]["out"]["pairs"]
    return [Fraction(m) * Fraction(2) ** e for row in pairs for m, e in row]


def test_checkpoints_are_dense_real_floating_tensors_or_refused_by_name(tmp_path):
    assert sorted([*REFUSED, *ACCEPTED]) == sorted(p.name for p in CHECKPOINTS.iterdir() if p.suffix != ".py")
    out = tmp_path / "out"
    out.mkdir()
    names = [*REFUSED, *ACCEPTED]
    cases = [["eval", MLP, "--weights", CHECKPOINTS / name, "--output", out / f"{name}.json"] for name in names]
    np.savez(tmp_path / "w.npz", W=np.array(W), b=np.array(B))
    cases.append(["eval", MLP, "--inputs", tmp_path / "w.npz", "--output", out / "npz.json"])
    report = dict(zip(names + ["npz"], run_batch(cases, tmp_path)))
    for name, case in report.items():
        assert_clean(case)
        if name in REFUSED:
            assert case["exit"] == 2, case
            line = case["stderr"]
            assert REFUSED[name] in line, line
            assert "weights_only" not in line and "arbitrary code" not in line  # our reason, not torch's advice
            assert "\x1b" not in line and "\x07" not in line
            assert not (out / f"{name}.json").exists()
        else:
            assert case["exit"] == 0, case
    assert "\\x1b" in report["escape_key.pth"]["stderr"] and "\\x07" in report["escape_key.pth"]["stderr"]
    # the bf16 and f16 weights are the float64 weights given by --inputs: the same outputs, bit for bit
    expected = _pairs_values(out / "npz.json")
    for name in ACCEPTED:
        assert _pairs_values(out / f"{name}.json") == expected


def test_bfloat16_bits_convert_like_torch():
    torch = pytest.importorskip("torch")
    bits = np.arange(0, 2**16, 7, dtype=np.uint16)  # every class: zeros, subnormals, normals, inf, nan
    ours = bfloat16_to_float32(bits)
    theirs = torch.from_numpy(bits.view(np.int16).copy()).view(torch.bfloat16).to(torch.float32).numpy()
    assert np.array_equal(ours.view(np.uint32), theirs.view(np.uint32))


def test_weight_argument_splits_only_a_prefix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run=3").mkdir()
    (tmp_path / "run=3" / "w.pth").write_bytes(b"")
    (tmp_path / "w.pth").write_bytes(b"")
    assert parse_weight_arg("vae.=w.pth") == ("vae.", Path("w.pth"))
    assert parse_weight_arg("run=3/w.pth") == ("", Path("run=3/w.pth"))  # an existing file is never split
    assert parse_weight_arg(f"{tmp_path}/a=b.pth") == ("", Path(f"{tmp_path}/a=b.pth"))  # '/' is not in a prefix
    (tmp_path / "vae.").write_bytes(b"")
    assert parse_weight_arg("vae.=w.pth") == ("", Path("vae.=w.pth"))  # the prefix part is itself a file


def test_error_lines_escape_control_and_format_characters():
    line = one_line("key 'a\x1b[2Jb\x07c\u202ed\x00' is unknown")
    assert line == "key 'a\\x1b[2Jb\\x07c\\u202ed\\x00' is unknown"
    assert one_line("tab\tand\nnewline") == "tab and newline"
    assert one_line("ünïcödé ✓ 中文") == "ünïcödé ✓ 中文"


# ---------------------------------------------------------------------------------- output paths

TINY = "kind: matmul\nprecision: 8\ndims: {n1: 2, d: 3, n2: 2}\nseed: 4\n"


def _writers(model: Path, target: str) -> list[list[str]]:
    return [
        ["eval", model, "--output", target],
        ["graph", model, "--output", target],
        ["threshold", "add", "--precision", "4", "--output", target],
        ["depth", model, "--plot", target],
        ["size", model, "--n", "2,3", "--plot", target],
    ]


def test_output_paths_are_checked_before_any_work(tmp_path):
    model = tmp_path / "m.yaml"
    model.write_text(TINY, encoding="utf-8")
    (tmp_path / "adir.json").mkdir()
    (tmp_path / "adir.png").mkdir()
    targets = [tmp_path / "missing" / "x.json", tmp_path / "missing" / "x.png", tmp_path / "x.txt", tmp_path / "x.xyz",
               tmp_path / "noext", tmp_path / "adir.json", tmp_path / "adir.png"]
    cases = [args for target in targets for args in _writers(model, str(target))]
    before = sorted(p.name for p in tmp_path.iterdir())
    for case in run_batch(cases, tmp_path):
        assert_clean(case)
        assert case["exit"] == 2, case
        assert "--output" in case["stderr"] or "--plot" in case["stderr"], case["stderr"]
        assert case["seconds"] < 5, case
    after = sorted(p.name for p in tmp_path.iterdir() if p.name not in ("cases.json",))
    assert after == before and not (tmp_path / "noext.png").exists()


def test_outputs_are_written_whole_under_their_own_name(tmp_path):
    model = tmp_path / "m.yaml"
    model.write_text(TINY, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    names = ["o.json", "o.npz", "g.dot", "c.json", "d.svg", "s.pdf"]
    cases = [["eval", model, "--output", out / "o.json"], ["eval", model, "--output", out / "o.npz"],
             ["graph", model, "--output", out / "g.dot"], ["threshold", "add", "--precision", "3", "--output", out / "c.json"],
             ["depth", model, "--plot", out / "d.svg"], ["size", model, "--n", "2,3", "--plot", out / "s.pdf"]]
    for case in run_batch(cases, tmp_path):
        assert_clean(case)
        assert case["exit"] == 0, case
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # no temporary file left beside them
    mode = (out / "g.dot").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    assert (out / "d.svg").read_text().lstrip().startswith("<?xml") and (out / "s.pdf").read_bytes()[:5] == b"%PDF-"


# ------------------------------------------------------------------------------- show and archives


def test_show_reads_eval_outputs_and_refuses_other_archives(tmp_path):
    model = tmp_path / "m.yaml"
    model.write_text(TINY, encoding="utf-8")
    np.savez(tmp_path / "in.npz", X=np.array([[0.1, -1.7, 3.25], [2.0 / 3.0, 1e-3, -5.5]]),
             Y=np.array([[1.1, 0.3], [-2.9, 7.0], [0.01, -0.45]]))
    np.savez(tmp_path / "m_only.npz", **{"out.m": np.array([3])})
    np.savez(tmp_path / "bad_text.npz", **{"out.m": np.array(["12a"]), "out.e": np.array([0])})
    np.save(tmp_path / "single.npy", np.zeros(2))
    (tmp_path / "bad.json").write_text('{"format": "tc0sim-eval", "outputs": {"out": {"shape": [2], "pairs": [[1, 2]]}}}')
    cases = [
        ["eval", model, "--inputs", tmp_path / "in.npz", "--precision", "113", "--output", tmp_path / "o.npz"],
        ["eval", model, "--inputs", tmp_path / "in.npz", "--precision", "113", "--output", tmp_path / "o.json"],
        ["show", tmp_path / "o.npz", "--all", "--format", "json"],
        ["show", tmp_path / "o.json", "--all", "--format", "json"],
        ["show", tmp_path / "m_only.npz"], ["show", tmp_path / "bad_text.npz"], ["show", tmp_path / "single.npy"],
        ["show", tmp_path / "bad.json"], ["show", HOSTILE / "object_pickle.npz"], ["show", HOSTILE / "truncated.npz"],
        ["show", tmp_path / "absent.npz"], ["show", MLP],
    ]
    report = run_batch(cases, tmp_path)
    for case in report:
        assert_clean(case)
    assert [c["exit"] for c in report] == [0, 0, 0, 0] + [2] * 8
    from_npz, from_json = (json.loads(c["stdout"])["outputs"]["out"]["pairs"] for c in report[2:4])
    expected = json.loads((tmp_path / "o.json").read_text())["outputs"]["out"]["pairs"]
    assert from_npz == from_json == [pair for row in expected for pair in row]


def test_analysis_inputs_near_the_float64_limit_do_not_crash(tmp_path):
    x = np.full((2, 3, 4), 1e308)
    x[0, 1, 0], x[1, 2, 3] = -1e308, 5e307
    np.savez(tmp_path / "big.npz", X=x)
    y = np.full((2, 3, 2), 2.0**499)
    y[0, 1], y[1, 0, 0] = [5e-324, 0.0], 1e-323
    np.savez(tmp_path / "wide.npz", X=y)
    cases = [["approx", "separateness", tmp_path / "big.npz", "--format", "json"],
             ["approx", "separateness", tmp_path / "wide.npz", "--format", "json"]]
    for case in run_batch(cases, tmp_path):
        assert_clean(case)
        assert case["exit"] == 0, case


def test_closed_pipe_ends_quietly(tmp_path):
    """`tc0sim … | head`: the reader goes away; the command stops with status 0 and nothing on stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "tc0sim", "claims", "--format", "json"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 0
    assert stderr == b""


def test_stats_count_the_gates_of_the_wrote_line(tmp_path):
    """var_small at p = 24 (fast engine): a 0-d map node was counted twice by --stats (7,904,534
    against the 7,904,531 gates of the size interpreter on the `wrote` line)."""
    from click.testing import CliRunner

    from tc0sim.cli.main import main

    result = CliRunner().invoke(main, ["eval", str(ROOT / "examples" / "var_small.yaml"), "--precision", "24",
                                       "--output", str(tmp_path / "o.json"), "--stats"])
    assert result.exit_code == 0, result.output
    wrote, stats = result.stdout.splitlines()[:2]
    total = wrote.rsplit("(", 1)[1].split(" gates")[0]
    assert stats.endswith(f"gates by engine: fast {total}"), (wrote, stats)


def test_show_prints_significands_of_any_length(tmp_path):
    """At p = 15000 a significand has about 4,500 digits, beyond Python's default 4,300."""
    model = tmp_path / "m.yaml"
    model.write_text("kind: matmul\ndims: {n1: 1, d: 1, n2: 1}\n", encoding="utf-8")
    np.savez(tmp_path / "in.npz", X=np.array([[1.0 / 3.0]]), Y=np.array([[0.1]]))
    cases = [["eval", model, "--inputs", tmp_path / "in.npz", "--precision", "15000", "--output", tmp_path / f"o.{s}"]
             for s in ("npz", "json")]
    cases += [["show", tmp_path / f"o.{s}", "--format", "json"] for s in ("npz", "json")]
    report = run_batch(cases, tmp_path)
    for case in report:
        assert_clean(case)
        assert case["exit"] == 0, case
    previous = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        (m, e), = json.loads(report[2]["stdout"])["outputs"]["out"]["pairs"]
        assert json.loads(report[3]["stdout"])["outputs"]["out"]["pairs"] == [[m, e]]
    finally:
        sys.set_int_max_str_digits(previous)
    assert m.bit_length() == 15000
    # one product of the float64 inputs, rounded once to 15000 bits (exact: 53 + 53 bits suffice)
    assert Fraction(m) * Fraction(2) ** e == Fraction(1.0 / 3.0) * Fraction(0.1)


def test_safetensors_tensors_are_read_only_when_a_weight_needs_them(tmp_path):
    """An integer buffer the kind ignores (a training counter) does not refuse the file; the same
    buffer under a weight's name does, by name; a rank beyond numpy's is refused on the header."""
    from safetensors.numpy import save_file

    from tc0sim.errors import ConfigError
    from tc0sim.io import bind_weights
    from tc0sim.modelfile import load_model

    graph = load_model(MLP).build()
    w, b = np.array(W, dtype=np.float32), np.array(B, dtype=np.float32)
    save_file({"W": w, "b": b, "extra.count": np.array([7], dtype=np.int64)}, str(tmp_path / "ok.safetensors"))
    bound = bind_weights(graph, [tmp_path / "ok.safetensors"], ignored=["extra.*"])
    assert bound["W"].tolist() == W and bound["b"].tolist() == B
    save_file({"W": w.astype(np.int64), "b": b}, str(tmp_path / "int.safetensors"))
    with pytest.raises(ConfigError, match=r"tensor 'W' has dtype I64"):
        bind_weights(graph, [tmp_path / "int.safetensors"])
    header = json.dumps({"W": {"dtype": "F32", "shape": [1] * 100, "data_offsets": [0, 4]}}).encode()
    (tmp_path / "rank.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 4)
    with pytest.raises(ConfigError, match="at most 32 axes"):
        bind_weights(graph, [tmp_path / "rank.safetensors"])
