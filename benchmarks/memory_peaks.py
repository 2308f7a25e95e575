"""Estimated vs measured peak memory of evaluations (docs/benchmarks.md, "Memory").

Each row runs in a child process: the model is built and its inputs drawn, the process's peak
resident set is reset (``/proc/self/clear_refs``), the evaluation alone runs, and the measured
peak is VmHWM minus the resident set before it; the estimate is the engine's ``memory_bytes``
(what ``eval --dry-run`` prints and the budget checks). Usage:

    python benchmarks/memory_peaks.py            # the table of docs/benchmarks.md
    python benchmarks/memory_peaks.py --quick    # a few small rows
    python benchmarks/memory_peaks.py --only scaled   # the rows whose label holds "scaled"
    python benchmarks/memory_peaks.py --skip scaled
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import gc, json, sys, yaml
from tc0sim.engines import ENGINES, evaluate, plan
from tc0sim.engines.base import complete_inputs
from tc0sim.modelfile import from_mapping

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

path, overrides, n, p, engine, chunk = json.loads(sys.argv[1])
data = yaml.safe_load(open(path))
data.update(overrides)
spec = from_mapping(data, path)
graph = spec.build(n).flat()
chosen = plan(graph, p, engine, chunk=chunk)
estimate = ENGINES[chosen.engine].memory_bytes(graph, p, chunk)
given = complete_inputs(graph, {}, spec.seed, spec.scale)
graph.live()
gc.collect()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
out = evaluate(graph, given, chosen, seed=spec.seed, scale=spec.scale, values="native")
print(json.dumps({"estimate": estimate, "measured": status("VmHWM") - before, "engine": chosen.engine}))
"""


def measure(path: str, overrides: dict[str, Any] | None = None, n: int | None = None, p: int = 24,
            engine: str = "fast", chunk: int | None = None, python: str = sys.executable) -> dict[str, Any]:
    """{'estimate', 'measured' (bytes), 'engine'} of one evaluation, in a child process."""
    args = json.dumps([str(ROOT / path), overrides or {}, n, p, engine, chunk])
    done = subprocess.run([python, "-c", CHILD, args], capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "child failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


VAR_D16_SMALL = {"scales": [1, 2], "decoder_levels": [1, 2], "decoder_ch": 32, "depth": 1, "width": 1024, "heads": 16,
                 "scale": 0.02}
"""VAR-d16's width (1024), codebook (4096 × 32) and sampler (top-k 900, top-p 0.96), two scales,
one block, a two-level decoder of 32 channels, weights drawn at scale 0.02 (at p = 8 the default
scale overflows exp in the MLP): the released architecture scaled down."""

FLOWAR_S_SMALL = {"scales": [1, 2], "blocks": 1, "steps": 2, "vae_channels": 32, "vae_mult": [1, 2], "vae_res_blocks": 1,
                  "scale": 0.05}
"""FlowAR-S's width, heads and flow head, two scales, one block, two flow steps, a small VAE."""

ROWS: list[tuple[str, str, dict[str, Any], int | None]] = [
    ("attention n=128 d=64", "examples/attention.yaml", {"dims": {"n": 128, "d": 64}}, None),
    ("matmul 256", "examples/matmul.yaml", {}, 256),
    ("layernorm 512 x 256", "examples/layernorm.yaml", {"dims": {"n": 512, "c": 256}}, None),
    ("conv2d 32x32x16 -> 16", "examples/conv2d.yaml",
     {"dims": {"h": 32, "w": 32, "c": 16, "k": 16, "hk": 3, "wk": 3}}, None),
    ("var (example)", "examples/var.yaml", {}, None),
    ("flowar (example)", "examples/flowar.yaml", {}, None),
    ("fast_flowar (example)", "examples/fast_flowar.yaml", {}, None),
    ("var_small", "examples/var_small.yaml", {}, None),
    ("flowar_release n=3", "examples/flowar_release.yaml", {}, 3),
    ("FlowAR-S scaled (scales 1, 2)", "examples/flowar_s.yaml", FLOWAR_S_SMALL, None),
    ("VAR-d16 scaled (scales 1, 2)", "examples/var_d16.yaml", VAR_D16_SMALL, None),
    ("VAR-d16 scaled (scales 1, 2, 3, 4)", "examples/var_d16.yaml", {**VAR_D16_SMALL, "scales": [1, 2, 3, 4]}, None),
]
"""(label, model file, overrides, n) of the table."""

QUICK = ["attention n=128 d=64", "matmul 256", "var_small"]


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    only = argv[argv.index("--only") + 1] if "--only" in argv else ""
    skip = argv[argv.index("--skip") + 1] if "--skip" in argv else None
    print("| graph | p | engine | estimate (MB) | measured (MB) | estimate / measured |")
    print("|---|---|---|---|---|---|")
    for label, path, overrides, n in ROWS:
        if (quick and label not in QUICK) or only not in label or (skip is not None and skip in label):
            continue
        for p in (8, 53):
            for engine in ("fast", "mpfr"):
                if engine == "mpfr" and "scaled" in label:
                    continue  # minutes per row on the reference engine
                try:
                    r = measure(path, overrides, n, p, engine)
                except Exception as e:  # noqa: BLE001 - a row that fails says why
                    print(f"| {label} | {p} | {engine} | error: {e} | | |")
                    continue
                est, got = r["estimate"] / 1e6, max(r["measured"], 1) / 1e6
                print(f"| {label} | {p} | {engine} | {est:.1f} | {got:.1f} | {est / got:.2f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
