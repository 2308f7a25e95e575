"""VAR as released: graph build, size and depth of the released configurations, CPU seconds and peak RSS.

Run: python benchmarks/bench_var_release.py [--depth]  — one line per configuration; the numbers go to
docs/benchmarks.md, section "VAR as released". ``--depth`` also runs the exact depth analysis of the
full graphs (minutes with a dense interpreter). Each measurement runs in a fresh process
(``tc0sim size``/``tc0sim depth`` as a user runs them), so imports are included.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = (("VAR-d16", 16, 256), ("VAR-d30", 30, 256), ("VAR-d36-s", 36, 512), ("VAR-d16", 16, 1024))


def _model(tmp: Path, depth: int, resolution: int) -> Path:
    path = tmp / f"var_d{depth}_{resolution}.yaml"
    path.write_text(f"kind: var_release\nprecision: 24\ndepth: {depth}\nresolution: {resolution}\n", encoding="utf-8")
    return path


def _run(*args: str) -> tuple[float, float, int]:
    """(wall s, child CPU s, child peak RSS MB) of one tc0sim command in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tc0sim", *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu, after.ru_maxrss // 1024


def main() -> None:
    import tempfile

    with_depth = "--depth" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        print("| config | px | command | wall s | CPU s | peak RSS MB |")
        print("|---|---|---|---|---|---|")
        _run("--version")
        wall, cpu, rss = _run("--version")
        print(f"| (start-up) | — | tc0sim --version | {wall:.2f} | {cpu:.2f} | {rss} |")
        for name, depth, resolution in CONFIGS:
            model = str(_model(Path(tmp), depth, resolution))
            commands = [("size", model, "--format", "json")] + ([("depth", model, "--format", "json")] if with_depth else [])
            for command in commands:
                wall, cpu, rss = _run(*command)
                print(f"| {name} | {resolution} | tc0sim {command[0]} | {wall:.2f} | {cpu:.2f} | {rss} |", flush=True)


if __name__ == "__main__":
    main()
