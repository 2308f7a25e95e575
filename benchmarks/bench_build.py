"""Graph build and per-node overhead: build and exact depth of big graphs, optionally beside a baseline.

Run: python benchmarks/bench_build.py [--baseline REV] [--repeat N] [--skip-long]  — prints a markdown
table (docs/benchmarks.md, section "Graph build and per-node overhead").

Workloads: ``fast_flowar`` at c = 1024 (its AAttC constants: rank C(1026, 2) = 525,825 features per
attention), ``var`` with a decoder of 20,000 resnet blocks (h = w = 4, c = 2: about 720,000 tensor
nodes), and, when the kind exists, ``flowar_release`` variant H (FlowAR-H as released). Each run is a
fresh subprocess that loads the model file, builds the graph (timed: "build s") and runs the exact
depth interpreter on it (timed: "depth s"; skipped for fast_flowar, whose cost is its constants);
"CPU" columns are the process's CPU time in each phase and in all (imports included), the figures
to read on a loaded machine. With ``--baseline REV`` the same runs are made on
the tree of git revision REV (extracted with ``git archive`` into a temporary directory), baseline
and current interleaved run by run so both see the same machine load; the best of ``--repeat`` runs
is kept. ``--skip-long`` leaves out the two workloads of ~700k nodes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MEASURE = """
import json, resource, sys, time
from tc0sim.ir.budget import BuildBudget
from tc0sim.modelfile import load_model
spec = load_model(sys.argv[1])
t0, c0 = time.perf_counter(), time.process_time()
graph = spec.build(budget=BuildBudget())
t1, c1 = time.perf_counter(), time.process_time()
depth_s = depth_cpu_s = None
if sys.argv[2] == "depth":
    from tc0sim.interp.depth import depth
    depth(graph)
    depth_s, depth_cpu_s = time.perf_counter() - t1, time.process_time() - c1
use = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"nodes": len(graph.nodes), "build_s": t1 - t0, "build_cpu_s": c1 - c0, "depth_s": depth_s,
                  "depth_cpu_s": depth_cpu_s, "cpu_s": use.ru_utime + use.ru_stime, "rss_mb": use.ru_maxrss / 1024}))
"""


def workloads(directory: Path, skip_long: bool) -> list[tuple[str, Path, str]]:
    """(label, model file, 'depth' or 'build') of each workload."""
    fast = directory / "fast_flowar_c1024.yaml"
    fast.write_text("kind: fast_flowar\ndims: {h: 2, w: 2, c: 1024}\nparams: {K: 2, a: 2, t: '1/2', g: 2}\n")
    out = [("fast_flowar c=1024 (build)", fast, "build")]
    if skip_long:
        return out
    decoder = directory / "var_decoder_20000.yaml"
    decoder.write_text(
        "kind: var\ndims: {h: 4, w: 4, c: 2}\nscales: 3\nlayers: 1\ng: ffn\nkernel: 3\n"
        "decoder: [" + ", ".join(["resnet"] * 20000) + "]\n"
    )
    out.append(("var, 20,000 resnet decoder blocks", decoder, "depth"))
    flowar_h = ROOT / "examples" / "flowar_h.yaml"
    if flowar_h.exists():
        out.append(("FlowAR-H as released", flowar_h, "depth"))
    return out


def run(tree: Path, model: Path, mode: str) -> dict | None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, str(model), mode], cwd=tree, env=env, capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        return None  # e.g. a baseline without the kind
    return json.loads(proc.stdout.strip().splitlines()[-1])


def extract(rev: str, directory: Path) -> Path:
    """The tree of ``rev`` in ``directory`` (git archive; the repository is not changed)."""
    archive = directory / "baseline.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), rev], check=True)
    target = directory / "baseline"
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def best(runs: list[dict | None]) -> dict | None:
    done = [r for r in runs if r is not None]
    return min(done, key=lambda r: r["build_cpu_s"] + (r["depth_cpu_s"] or 0)) if done else None


def cell(r: dict | None, key: str) -> str:
    if r is None:
        return "—"
    value = r[key]
    return "—" if value is None else f"{value:,.0f}" if key in ("nodes", "rss_mb") else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=None, help="git revision to time beside the working tree")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--skip-long", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        trees = [("current", ROOT)]
        if args.baseline:
            trees.insert(0, (f"baseline {args.baseline}", extract(args.baseline, directory)))
        keys = ("nodes", "build_s", "build_cpu_s", "depth_s", "depth_cpu_s", "cpu_s", "rss_mb")
        print("| workload | tree | nodes | build s | build CPU s | depth s | depth CPU s | process CPU s | peak RSS MB |")
        print("|---|---|---|---|---|---|---|---|---|")
        for label, model, mode in workloads(directory, args.skip_long):
            runs: dict[str, list] = {name: [] for name, _ in trees}
            for _ in range(args.repeat):
                for name, tree in trees:  # interleaved: both trees see the same load
                    runs[name].append(run(tree, model, mode))
            for name, _ in trees:
                r = best(runs[name])
                print(f"| {label} | {name} | " + " | ".join(cell(r, k) for k in keys) + " |", flush=True)


if __name__ == "__main__":
    main()
