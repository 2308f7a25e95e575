"""Exact depth at real scale: `tc0sim depth` on VAR, one fresh process per configuration.

Run: python benchmarks/bench_depth.py [--quick]  — prints markdown tables (docs/benchmarks.md,
section "Exact depth at scale").

The base configuration is VAR-d16's pyramid: ``kind: var``, h = w = 16, scales
[1, 2, 3, 4, 5, 6, 8, 10, 13, 16], g: ffn, kernel 3, decoder [resnet, attn, up], 16 layers per
level, c = 1024. Each sweep varies one parameter: the width c, the final map size h = w (the
pyramid scaled to it), the layers and the number of scales (the last k sizes of the pyramid
after 1×1). Every configuration runs ``python -m tc0sim depth FILE --format json`` in a fresh
subprocess (``--repeat`` times, default 3, keeping the best: the machine may be shared).
Columns: "nodes", the live tensor nodes; "process s", the subprocess's wall time measured here
(interpreter start, imports, model file, graph build, depth, witness, size and JSON output);
"process CPU s" its user + system time and "peak RSS" its maximum resident set, both from
``os.wait4`` (process start included); "depth s" and "depth CPU s", the depth interpreter's own
wall and CPU time as the command reports them (``depth_time_s``, ``depth_cpu_s``). The growth
exponent of a sweep is the least-squares slope of log(time) against log(parameter); CPU times
are the ones to read when the machine is loaded.

Without ``--quick`` it also times the factored interpreter against the dense one (one class per
element, kept as the test oracle) on the same graphs in one process.

A last check runs ``tc0sim size`` on a matmul of 2^22 × 2^22 × 2^22 and compares the count with
n1·d·n2 + n1·n2 computed here (Python ints; the count is above 2^63).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
PYRAMID = [1, 2, 3, 4, 5, 6, 8, 10, 13, 16]
BASE = {"c": 1024, "h": 16, "layers": 16, "scales": PYRAMID}
WIDTHS = [2, 8, 32, 128, 512, 1024, 1920]
MAP_SIZES = [4, 8, 16, 32]
LAYERS = [1, 2, 4, 8, 16, 30]
SCALE_COUNTS = [2, 4, 6, 8, 10]


def scaled_pyramid(h: int) -> list[int]:
    """VAR-d16's pyramid scaled to a final map of h × h (sizes rounded, repeats dropped)."""
    return [1] + sorted({max(2, round(s * h / 16)) for s in PYRAMID[1:]})


def model_file(directory: Path, c: int, h: int, layers: int, scales: list[int]) -> Path:
    path = directory / f"var_c{c}_h{h}_l{layers}_k{len(scales)}.yaml"
    spec = {
        "kind": "var",
        "dims": {"h": h, "w": h, "c": c},
        "scales": scales,
        "layers": layers,
        "g": "ffn",
        "kernel": 3,
        "decoder": ["resnet", "attn", "up"],
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def run(args: list[str]) -> tuple[float, float, float, str]:
    """(wall s, CPU s, peak RSS MB, stdout) of ``python -m tc0sim ARGS`` in a fresh process."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "tc0sim", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=err)
        out = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = status
        if status != 0:
            err.seek(0)
            raise SystemExit(f"tc0sim {' '.join(args)} failed: {err.read().decode().strip()}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.decode()


def run_depth(path: Path, repeat: int) -> dict:
    """The best of ``repeat`` fresh processes (least wall time; the machine may be shared)."""
    runs = [run(["depth", str(path), "--format", "json"]) for _ in range(repeat)]
    wall, cpu, rss, out = min(runs)
    data = json.loads(out)
    return {
        "process_s": wall,
        "cpu_s": min(r[1] for r in runs),
        "peak_rss_mb": max(r[2] for r in runs),
        "depth_s": min(json.loads(r[3])["depth_time_s"] for r in runs),
        "depth_cpu_s": min(json.loads(r[3])["depth_cpu_s"] for r in runs),
        "exact": data["depth"]["exact"],
        "depth": " ; ".join(data["depth"]["linear"]),
        "gates": data["size"]["total"],
        "nodes": data["depth"]["tensor_nodes"],
    }


COLUMNS = (("depth s", "depth_s"), ("depth CPU s", "depth_cpu_s"), ("process s", "process_s"), ("process CPU s", "cpu_s"))


def exponent(xs: list[int], ys: list[float]) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def sweep(title: str, name: str, values: list[int], configs: list[dict], directory: Path, repeat: int) -> list[dict]:
    rows = []
    for value, config in zip(values, configs):
        row = run_depth(model_file(directory, **config), repeat)
        row[name] = value
        rows.append(row)
        print(f"  {name}={value}: {row['process_s']:.2f} s, {row['peak_rss_mb']:.0f} MB", file=sys.stderr)
    print(f"\n### {title}\n")
    print(f"| {name} | nodes | gates | depth | exact | depth s | depth CPU s | process s | process CPU s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r[name]} | {r['nodes']} | {r['gates']:.3g} | {r['depth']} | {'yes' if r['exact'] else 'no'} | "
            f"{r['depth_s']:.3f} | {r['depth_cpu_s']:.3f} | {r['process_s']:.2f} | {r['cpu_s']:.2f} | {r['peak_rss_mb']:.0f} |"
        )
    xs = [r[name] for r in rows]
    fits = ", ".join(f"{label} {exponent(xs, [r[key] for r in rows]):.2f}" for label, key in COLUMNS)
    ratios = ", ".join(f"{label} {rows[-1][key] / rows[0][key]:.2f}×" for label, key in COLUMNS)
    print(f"\nGrowth exponent k (time ∝ {name}^k): {fits}. Last / first: {ratios}.")
    return rows


def size_check(directory: Path) -> None:
    n = 2**22
    path = directory / "matmul_huge.yaml"
    path.write_text(yaml.safe_dump({"kind": "matmul", "dims": {"n1": n, "d": n, "n2": n}}))
    wall, _, rss, out = run(["size", str(path), "--format", "json"])
    total = json.loads(out)["size"]["counts"][0]["total"]
    expected = n * n * n + n * n
    print("\n### Size at any scale\n")
    print(f"`tc0sim size` of a matmul {n} × {n} × {n}: {total} gates (expected n³ + n² = {expected}; "
          f"{'equal' if total == expected else 'DIFFERENT'}; above 2^63: {total > 2**63}), {wall:.2f} s, {rss:.0f} MB.")


def bordered_graph(n: int):
    """concat(exp(X[n, n]), Y[n/2, n]) zero-padded by a row on each side, squared, row sums, a slice."""
    from tc0sim.ir.graph import Builder

    b = Builder()
    joined = b.concat([b.exp(b.input("X", (n, n))), b.input("Y", (n // 2, n))], axis=0)
    padded = b.pad(joined, [(1, 1), (0, 0)])
    rows = b.sum(b.mul(padded, padded), axis=1)
    b.output("out", b.slice(rows, 0, 1, n + n // 2 + 1))
    return b.graph


def side_by_side(directory: Path) -> None:
    """The factored interpreter against the dense one (tests/reference_depth_dense.py), same process."""
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    from reference_depth_dense import dense_depth

    from tc0sim.interp.depth import depth
    from tc0sim.modelfile import load_model

    graphs = [(f"bordered n={n}", bordered_graph(n)) for n in (500, 2000)]
    path = model_file(directory, c=2, h=16, layers=16, scales=PYRAMID)
    graphs.append(("VAR base config, c=2", load_model(path).build(None)))
    print("\n### Factored against dense, side by side\n")
    print("| graph | factored ms | dense ms | dense / factored | same answer |")
    print("|---|---|---|---|---|")
    for name, graph in graphs:
        start = time.perf_counter()
        factored = depth(graph).critical
        middle = time.perf_counter()
        dense = dense_depth(graph)[0]
        end = time.perf_counter()
        print(f"| {name} | {(middle - start) * 1e3:.1f} | {(end - middle) * 1e3:.0f} | {(end - middle) / (middle - start):.0f} | "
              f"{'yes' if factored == dense else 'NO'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer points per sweep")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per configuration (best is kept)")
    args = parser.parse_args()
    pick = (lambda xs: [xs[0], xs[len(xs) // 2], xs[-1]]) if args.quick else (lambda xs: xs)
    print(f"Python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        widths = pick(WIDTHS)
        sweep("Width c", "c", widths, [{**BASE, "c": c} for c in widths], directory, args.repeat)
        sizes = pick(MAP_SIZES)
        sweep("Final map size h = w", "h", sizes, [{**BASE, "h": h, "scales": scaled_pyramid(h)} for h in sizes], directory, args.repeat)
        layers = pick(LAYERS)
        sweep("Layers per level", "layers", layers, [{**BASE, "layers": k} for k in layers], directory, args.repeat)
        counts = pick(SCALE_COUNTS)
        sweep(
            "Number of scales (1×1, then the last k − 1 sizes of the pyramid)",
            "scales",
            counts,
            [{**BASE, "scales": [1] + PYRAMID[len(PYRAMID) - k + 1 :]} for k in counts],
            directory,
            args.repeat,
        )
        size_check(directory)
        if not args.quick:
            side_by_side(directory)


if __name__ == "__main__":
    main()
