"""Hostile input: the corpus in tests/hostile/, hypothesis-generated model files and option values,
and the twelve inputs of issue 13 as named regressions.

Every case runs in a subprocess (tests/fuzz_driver.py, many cases per process) under an address
space and CPU-time limit set with ``resource.setrlimit`` before the interpreter starts, and each
case under its own SIGALRM timeout. A case passes when it exits 0, 1 or 2, no exception escapes the
command (no traceback), and a non-zero exit prints exactly one line ``error: …`` on stderr.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ROOT / "tests" / "hostile"
DRIVER = ROOT / "tests" / "fuzz_driver.py"
MEMORY_LIMIT = 3 * 2**30
"""Address-space limit of a batch (bytes): a case that tries to allocate more fails, visibly."""
CPU_SECONDS = 240
BATCH_SECONDS = 300
CASE_SECONDS = 20
"""Each case must end well within the driver's own per-case alarm."""

ACCEPTED = {"good_matmul.yaml", "bom_crlf.yaml", "matmul_huge.yaml"}
"""Corpus files that are valid models: `depth` must succeed on them; every other file is refused."""


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def run_batch(cases: list[list[str]], tmp_path: Path) -> list[dict]:
    """Run every argument list through the CLI in one limited subprocess; the driver's report."""
    cases_file = tmp_path / "cases.json"
    cases_file.write_text(json.dumps([[str(a) for a in args] for args in cases]), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(DRIVER), str(cases_file)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        preexec_fn=_limits,
        timeout=BATCH_SECONDS,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert len(report) == len(cases)
    return report


def assert_clean(case: dict) -> None:
    """Exit 0/1/2, no traceback, one ``error:`` line on stderr for a non-zero exit, in time."""
    where = " ".join(case["args"])
    assert case["exception"] is None, f"{where}: {case['exception']}"
    assert case["exit"] in (0, 1, 2), f"{where}: exit {case['exit']}"
    assert "Traceback" not in case["stderr"] + case["stdout"][-2000:], where
    if case["exit"] != 0:
        lines = case["stderr"].strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{where}: {case['stderr']!r}"
    assert case["seconds"] < CASE_SECONDS, f"{where}: {case['seconds']} s"


# ---------------------------------------------------------------------------------- the corpus


def _corpus_cases(out: Path) -> list[list[str]]:
    cases: list[list[str]] = []
    for path in sorted(HOSTILE.glob("*.yaml")):
        rel = path.relative_to(ROOT)
        cases += [
            ["depth", rel],
            ["size", rel, "--n", "2,3"],
            ["eval", rel, "--output", out / "o.json"],
            ["graph", rel, "--output", out / "g.json"],
            ["audit", rel],
        ]
    for path in sorted(HOSTILE.glob("*.npz")):
        cases.append(["eval", HOSTILE.relative_to(ROOT) / "good_matmul.yaml", "--inputs", path.relative_to(ROOT), "--output", out / "o.json"])
    return cases


def test_hostile_corpus(tmp_path):
    report = run_batch(_corpus_cases(tmp_path), tmp_path)
    for case in report:
        assert_clean(case)
    for case in report:
        name = Path(case["args"][1]).name
        if case["args"][0] == "depth":
            assert case["exit"] == (0 if name in ACCEPTED else 2), (name, case["stderr"])
            if case["exit"] == 2:
                assert name in case["stderr"], case["stderr"]
        if "--inputs" in case["args"]:
            npz = Path(case["args"][3]).name
            assert case["exit"] == 2 and "--inputs" in case["stderr"] and npz in case["stderr"], (npz, case["stderr"])


# --------------------------------------------------------------------------------- hypothesis

KINDS = {
    "matmul": ("n1", "d", "n2"),
    "attention": ("n", "d"),
    "layernorm": ("n", "c"),
    "upsample": ("h", "w", "c", "r"),
    "conv2d": ("h", "w", "c", "k", "hk", "wk"),
    "flow": ("h", "w", "c"),
    "var": ("h", "w", "c"),
    "flowar": ("h", "w", "c"),
    "aattc": ("n", "d"),
}

_scalar = st.one_of(
    st.integers(min_value=-3, max_value=6),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from(["n", "2*n", "n//2", "n-9", "(n", "1e9", "²", "n*n*n*n*n*n", "", "1/3", "0.5"]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.lists(st.integers(min_value=-2, max_value=4), max_size=3),
)


@st.composite
def model_texts(draw) -> str:
    """A model file: mostly well-formed YAML with random values, sometimes raw text damage."""
    kind = draw(st.sampled_from(list(KINDS) + ["nope", 3]))
    dims = {d: draw(st.one_of(st.integers(min_value=1, max_value=5), _scalar)) for d in KINDS.get(kind, ("n",))}
    if draw(st.booleans()):
        dims[draw(st.sampled_from(["zz", "n", "h"]))] = draw(_scalar)
    doc: dict = {"kind": kind, "dims": dims}
    for key in draw(st.lists(st.sampled_from(["precision", "seed", "scale", "n", "sweep", "layers", "K", "t", "g", "decoder", "claim", "description", "bogus"]), max_size=4, unique=True)):
        doc[key] = draw(
            st.one_of(
                _scalar,
                st.sampled_from([[4, 6], ["resnet", "up"], "6 d_std + d_sum", "d_foo", 10**6, 10**7, "1/3"]),
            )
        )
    text = yaml.safe_dump(doc, allow_unicode=True)
    damage = draw(st.sampled_from(["none", "none", "truncate", "prefix", "tab"]))
    if damage == "truncate":
        text = text[: draw(st.integers(min_value=0, max_value=len(text)))]
    elif damage == "prefix":
        text = draw(st.sampled_from(["[", "{", "&a ", "*a\n", "!!python/name:os.system\n", "- "])) + text
    elif damage == "tab":
        text = text.replace(" ", "\t", 1)
    return text


_option_value = st.one_of(
    st.integers(min_value=-5, max_value=40).map(str),
    st.sampled_from(["1e100000000", "²", "١٢", "0", "-1", "1.5", "2,3", "1/0", "", "99999999999999999999", "5e7", "abc", "3/2"]),
)


@st.composite
def command_lines(draw, model: str, out: Path) -> list[str]:
    command = draw(st.sampled_from(["depth", "size", "eval", "graph"]))
    args = [command, model]
    if command == "depth":
        for _ in range(draw(st.integers(min_value=0, max_value=2))):
            args += ["--set", draw(st.sampled_from(["d_std", "d_sum", "d_exp", "d_x", ""])) + "=" + draw(_option_value)]
        if draw(st.booleans()):
            args += ["--n", draw(_option_value)]
    elif command == "size":
        args += ["--n", ",".join(draw(st.lists(_option_value, min_size=1, max_size=3)))]
        if draw(st.booleans()):
            args += ["--verify", draw(_option_value)]
    elif command == "eval":
        args += ["--output", str(out / draw(st.sampled_from(["o.json", "o.npz", "o.txt"])))]
        if draw(st.booleans()):
            args += ["--precision", draw(st.one_of(_option_value, st.sampled_from(["1000000000", "2", "113"])))]
    else:
        args += ["--output", str(out / "g.json")]
    # a small budget keeps generated graphs quick; the corpus tests the default budget
    return args + ["--max-nodes", "5e4", "--max-memory", "2e8"]


BATCH = 25


@settings(max_examples=4, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_generated_model_files_and_options(tmp_path, data):
    cases = []
    for i in range(BATCH):
        path = tmp_path / f"m{i}.yaml"
        path.write_text(data.draw(model_texts(), label=f"file {i}"), encoding="utf-8")
        cases.append(data.draw(command_lines(str(path), tmp_path), label=f"command {i}"))
    for case in run_batch(cases, tmp_path):
        assert_clean(case)


# ------------------------------------------------------- the twelve inputs of issue 13, by name


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def regressions(tmp_path_factory) -> dict[str, dict]:
    """The twelve inputs of issue 13 (plus the oracle files they need), run in one limited batch."""
    tmp = tmp_path_factory.mktemp("issue13")
    one = _write(tmp / "one.yaml", "kind: matmul\ndims: {n1: 1, d: 1, n2: 1}\n")
    one_max_p = _write(tmp / "one_max_p.yaml", "kind: matmul\nprecision: 1000000\ndims: {n1: 1, d: 1, n2: 1}\n")
    np.savez(tmp / "three_five.npz", X=np.array([[3.0]]), Y=np.array([[5.0]]))
    np.savez(tmp / "good.npz", X=np.array([[3.0]]), Y=np.array([[5.0]]))
    truncated = tmp / "truncated.npz"
    truncated.write_bytes((tmp / "good.npz").read_bytes()[:200])
    decoder = _write(
        tmp / "decoder.yaml",
        "kind: var\ndims: {h: 4, w: 4, c: 2}\ndecoder: [" + ", ".join(["resnet"] * DECODER_BLOCKS) + "]\n",
    )
    cases = {
        "brackets_10000_deep": ["depth", HOSTILE / "deep_brackets.yaml"],
        "decoder_5000_deep": ["depth", HOSTILE / "deep_decoder.yaml"],
        "eval_precision_15000_json": ["eval", one, "--precision", "15000", "--inputs", tmp / "three_five.npz", "--output", tmp / "p15000.json"],
        "file_precision_max_json": ["eval", one_max_p, "--inputs", tmp / "three_five.npz", "--output", tmp / "p1e6.json"],
        "set_exponent_100000": ["depth", one, "--set", "d_std=1e100000"],
        "set_exponent_100000000": ["depth", one, "--set", "d_std=1e100000000"],
        "size_superscript_n": ["size", one, "--n", "²,3"],
        "eval_truncated_npz": ["eval", one, "--precision", "8", "--inputs", truncated, "--output", tmp / "t.json"],
        "eval_precision_1e9": ["eval", one, "--precision", "1000000000", "--output", tmp / "big.json"],
        "var_layers_1e9": ["depth", HOSTILE / "var_layers_1e9.yaml"],
        "graph_var_layers_1e5": ["graph", HOSTILE / "var_layers_1e5.yaml", "--output", tmp / "g.dot"],
        "long_decoder_text": ["depth", decoder],
        "long_decoder_markdown": ["depth", decoder, "--format", "markdown"],
        "long_decoder_json": ["depth", decoder, "--format", "json"],
        "long_decoder_full_markdown": ["depth", decoder, "--full-path", "--format", "markdown"],
    }
    report = run_batch(list(cases.values()), tmp)
    results = dict(zip(cases, report))
    for case in report:
        assert_clean(case)
    results["_tmp"] = {"path": tmp}
    return results


DECODER_BLOCKS = 300
"""Resnet blocks of the long-decoder regression (issue 13 used 20,000; 300 already gives a witness
path of well over a thousand operator segments, and keeps the test to a few seconds)."""


def _refused(case: dict, *fragments: str) -> str:
    assert case["exit"] == 2, case
    line = case["stderr"].strip()
    for fragment in fragments:
        assert fragment in line, line
    return line


def test_regression_yaml_nested_10000_brackets(regressions):
    _refused(regressions["brackets_10000_deep"], "deep_brackets.yaml", "nested more than 50 levels")


def test_regression_decoder_nested_5000_lists(regressions):
    _refused(regressions["decoder_5000_deep"], "deep_decoder.yaml", "nested more than 50 levels")


def _pair_value(path: Path) -> tuple[int, Fraction]:
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    finally:
        sys.set_int_max_str_digits(limit)
    (m, e), = document["outputs"]["out"]["pairs"][0]
    return document["precision"], m, Fraction(m) * Fraction(2) ** e


def test_regression_eval_precision_15000_writes_exact_json(regressions):
    assert regressions["eval_precision_15000_json"]["exit"] == 0
    p, m, value = _pair_value(regressions["_tmp"]["path"] / "p15000.json")
    # 3 · 5 = 15 exactly, with m normalised to p bits
    assert (p, value) == (15000, 15)
    assert m.bit_length() == p  # 15000 bits: 4516 decimal digits, beyond Python's 4300-digit default


def test_regression_file_precision_at_the_documented_maximum(regressions):
    assert regressions["file_precision_max_json"]["exit"] == 0
    p, m, value = _pair_value(regressions["_tmp"]["path"] / "p1e6.json")
    assert (p, value) == (10**6, 15)
    assert 2 ** (p - 1) <= m < 2**p


def test_regression_set_exponent_100000(regressions):
    _refused(regressions["set_exponent_100000"], "--set d_std", "exponent is outside ±100")


def test_regression_set_exponent_100000000_does_not_hang(regressions):
    line = _refused(regressions["set_exponent_100000000"], "--set d_std", "exponent is outside ±100")
    assert regressions["set_exponent_100000000"]["seconds"] < 5, line


def test_regression_size_superscript_n(regressions):
    _refused(regressions["size_superscript_n"], "--n", "'²'", "digits 0-9")


def test_regression_eval_truncated_npz(regressions):
    _refused(regressions["eval_truncated_npz"], "--inputs", "truncated.npz", "not a readable .npz")


def test_regression_eval_precision_1e9(regressions):
    _refused(regressions["eval_precision_1e9"], "--precision", "at most 1,000,000")


def test_regression_var_layers_1e9_refused_before_building(regressions):
    case = regressions["var_layers_1e9"]
    _refused(case, "var_layers_1e9.yaml", "1,000,000 tensor nodes", "--max-nodes")
    assert case["seconds"] < 5


def test_regression_graph_var_layers_1e5_refused(regressions):
    case = regressions["graph_var_layers_1e5"]
    _refused(case, "var_layers_1e5.yaml", "tensor nodes", "--max-nodes")
    assert case["seconds"] < 5 and not (regressions["_tmp"]["path"] / "g.dot").exists()


def _markdown_path_rows(markdown: str) -> list[list[str]]:
    section = markdown.split("## witness path 1", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| operator")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def test_regression_long_witness_path_is_summarised(regressions):
    from tc0sim.linear import parse_linear

    text = regressions["long_decoder_text"]
    assert text["exit"] == 0 and len(text["stdout"].splitlines()) < 200, len(text["stdout"].splitlines())
    data = json.loads(regressions["long_decoder_json"]["stdout"])
    witness = data["depth"]["witness"][0]
    segments = [g for g in witness["by_operator"] if g["gates"]]
    assert len(segments) > 1000
    full = _markdown_path_rows(regressions["long_decoder_full_markdown"]["stdout"])
    assert [row[0] for row in full] == [g["operator"] for g in segments]
    summary = _markdown_path_rows(regressions["long_decoder_markdown"]["stdout"])
    assert len(summary) == 25 and summary[:12] == full[:12] and summary[-12:] == full[-12:]
    middle = summary[12]
    skipped = segments[12:-12]
    assert f"{len(skipped):,} more operator segments" in middle[0]
    symbols = list(witness["vector"])
    expected = tuple(sum(g["depth"][s] for g in skipped) for s in symbols)
    assert parse_linear(middle[2], symbols) == expected
    assert middle[3] == f"{sum(len(g['gates']) for g in skipped):,} gates"
