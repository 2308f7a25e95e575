"""The plan's memory estimate against the measured peak (issue 31: within 2×, both ways), on
graphs that evaluate in seconds: each evaluation runs alone in a child process whose peak resident
set is reset after the inputs are drawn (benchmarks/memory_peaks.py; docs/benchmarks.md, "Memory")."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "memory_peaks.py"
_SPEC = importlib.util.spec_from_file_location("memory_peaks", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
memory_peaks = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(memory_peaks)

CASES = [
    ("examples/attention.yaml", {"dims": {"n": 128, "d": 64}}, None, 8, "fast"),
    ("examples/attention.yaml", {"dims": {"n": 128, "d": 64}}, None, 53, "mpfr"),
    ("examples/layernorm.yaml", {"dims": {"n": 512, "c": 256}}, None, 53, "fast"),
    ("examples/conv2d.yaml", {"dims": {"h": 32, "w": 32, "c": 16, "k": 16, "hk": 3, "wk": 3}}, None, 24, "fast"),
    ("examples/var_small.yaml", {}, None, 24, "fast"),
    ("examples/var.yaml", {}, None, 53, "fast"),
]


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc/self/clear_refs")
@pytest.mark.parametrize("path, overrides, n, p, engine", CASES)
def test_the_estimate_is_within_twice_the_measured_peak(
    path: str, overrides: dict, n: int | None, p: int, engine: str
) -> None:
    r = memory_peaks.measure(path, overrides, n, p, engine, python=sys.executable)
    assert r["engine"] == engine
    assert r["measured"] / 2 <= r["estimate"] <= 2 * r["measured"], r
