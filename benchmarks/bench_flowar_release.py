"""FlowAR as released: wall time and peak memory of `tc0sim size` on FlowAR-S/L/H and of `tc0sim depth`
on a configuration (FlowAR-S by default), each in its own process (process start included), against
the targets (size ≤ 1 s; depth of FlowAR-H exact ≤ 1 s and ≤ 200 MB). Ratio = measured / target.

Usage: python benchmarks/bench_flowar_release.py [--depth-timeout SECONDS]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 1.0
TARGET_MB = 200.0


CHILD = (
    "import resource, runpy, sys\n"
    "try:\n    runpy.run_module('tc0sim', run_name='__main__')\n"
    "finally:\n    print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)
"""Runs the CLI and reports the process's own peak resident memory on exit."""


def run(args: list[str], timeout: float) -> tuple[str, float, float | None]:
    """(status, seconds, peak MB or None on timeout) of ``python -m tc0sim ARGS`` in a fresh process."""
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"timeout {timeout:.0f} s", time.perf_counter() - start, None
    seconds = time.perf_counter() - start
    status = "ok" if done.returncode == 0 else f"exit {done.returncode}"
    peaks = [int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_KB")]
    return status, seconds, peaks[-1] / 1024 if peaks else None


def _mb(peak: float | None) -> str:
    return "—" if peak is None else f"{peak:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--depth-timeout", type=float, default=300.0)
    opts = parser.parse_args()
    print("| command | model | status | seconds | ratio to 1 s | peak MB |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for variant in "SLH":
            path = Path(tmp) / f"flowar_{variant.lower()}.yaml"
            path.write_text(f"kind: flowar_release\nvariant: {variant}\n", encoding="utf-8")
            files[variant] = path
        for variant, path in files.items():
            status, seconds, peak = run(["size", str(path), "--format", "json"], 600)
            print(f"| size | FlowAR-{variant} | {status} | {seconds:.1f} | {seconds / TARGET_SECONDS:.1f} | {_mb(peak)} |")
        for name in ("examples/flowar_release.yaml", str(files["S"]), str(files["H"])):
            status, seconds, peak = run(["depth", name], opts.depth_timeout)
            print(f"| depth | {Path(name).stem} | {status} | {seconds:.1f} | {seconds / TARGET_SECONDS:.1f} | {_mb(peak)} |")


if __name__ == "__main__":
    main()
