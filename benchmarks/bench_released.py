"""VAR and FlowAR as released: `tc0sim depth` and `tc0sim size` as a user runs them, against the targets.

Run: python benchmarks/bench_released.py [--plain] [--repeat N]  — the table goes to docs/benchmarks.md,
section "Released models". Each command runs in a fresh process (start-up and imports included), N
times (default 3; the best wall and CPU time are kept, the largest peak memory), and is
reported with its wall time, CPU time, peak RSS and its ratio to the target (the package's bytecode
is compiled first, as ``pip install`` does): depth exact in ≤ 1 s and
≤ 200 MB (VAR-d16 at 1024 px: ≤ 5 s), size ≤ 1 s. ``--plain`` also times, side by side in this
process, the depth analysis of the graph built without shared sub-circuits (every block inlined)
against the shared build, and checks that both give the same critical vectors.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = (  # (name, model file text, depth target s)
    ("VAR-d16 256 px", "kind: var_release\ndepth: 16\nresolution: 256\n", 1.0),
    ("VAR-d30 256 px", "kind: var_release\ndepth: 30\nresolution: 256\n", 1.0),
    ("VAR-d36-s 512 px", "kind: var_release\ndepth: 36\nresolution: 512\n", 1.0),
    ("VAR-d16 1024 px", "kind: var_release\ndepth: 16\nresolution: 1024\n", 5.0),
    ("FlowAR-S", "kind: flowar_release\nvariant: S\n", 1.0),
    ("FlowAR-L", "kind: flowar_release\nvariant: L\n", 1.0),
    ("FlowAR-H", "kind: flowar_release\nvariant: H\n", 1.0),
)
SIZE_TARGET_S, MEMORY_TARGET_MB = 1.0, 200.0
PLAIN = ("VAR-d16 256 px", "VAR-d30 256 px", "FlowAR-S")
"""Models whose inlined graph is small enough to analyse here for the side-by-side ratio."""


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
"""Children may use compiled bytecode, as an installed package does (pip compiles it on install)."""


def run(*args: str) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of ``python -m tc0sim ARGS`` in a fresh process (its own
    resource usage, from ``os.wait4``)."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "tc0sim", *args], cwd=ROOT, stdout=subprocess.DEVNULL, env=ENV)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"tc0sim {' '.join(args)} failed")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def plain_vs_shared(path: Path) -> tuple[float, float, int, int]:
    """CPU seconds of build + depth without and with shared bodies, and both graphs' node counts."""
    sys.path.insert(0, str(ROOT))
    from tc0sim.interp.depth import depth
    from tc0sim.modelfile import load_model

    spec = load_model(path)
    seconds, nodes, critical = [], [], []
    for share in (False, True):
        start = time.process_time()
        graph = spec.build(share=share)
        critical.append(depth(graph).critical)
        seconds.append(time.process_time() - start)
        nodes.append(len(graph.nodes))
    if critical[0] != critical[1]:
        raise SystemExit(f"{path}: the shared and the plain build disagree")
    return seconds[0], seconds[1], nodes[0], nodes[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plain", action="store_true", help="also time the inlined graph's depth side by side")
    parser.add_argument("--repeat", type=int, default=3, help="runs per command; the best wall and CPU time are reported")
    opts = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "tc0sim")], check=True, env=ENV)
    with tempfile.TemporaryDirectory() as tmp:
        run("--version")
        wall, cpu, rss = run("--version")
        print(f"start-up (tc0sim --version): {wall:.2f} s wall, {cpu:.2f} s CPU, {rss:.0f} MB\n")
        print("| model | command | wall s | CPU s | peak RSS MB | wall / target |")
        print("|---|---|---|---|---|---|")
        files = {}
        for name, text, depth_target in MODELS:
            path = files[name] = Path(tmp) / (name.replace(" ", "_") + ".yaml")
            path.write_text(text, encoding="utf-8")
            for command, target in (("depth", depth_target), ("size", SIZE_TARGET_S)):
                runs = [run(command, str(path)) for _ in range(opts.repeat)]
                wall, cpu, rss = min(r[0] for r in runs), min(r[1] for r in runs), max(r[2] for r in runs)
                print(f"| {name} | {command} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {wall / target:.2f} (target {target:g} s) |", flush=True)
        print(f"\nmemory target for depth: {MEMORY_TARGET_MB:.0f} MB")
        if opts.plain:
            print("\n| model | tensor nodes inlined / shared | build + depth CPU s inlined | shared | inlined / shared |")
            print("|---|---|---|---|---|")
            for name in PLAIN:
                plain, shared, n_plain, n_shared = plain_vs_shared(files[name])
                print(f"| {name} | {n_plain:,} / {n_shared:,} | {plain:.2f} | {shared:.2f} | {plain / shared:.1f}× |", flush=True)


if __name__ == "__main__":
    main()
