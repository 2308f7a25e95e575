"""The torch front end at real sizes: trace, exact depth and size of models built on the meta device.

Run: python benchmarks/bench_torch.py [--tokens N] [--rounds R] [--only NAME [--plain]]

For each workload, R rounds, each in fresh processes, alternating the two ways of tracing:
repeated blocks exported once (the default, ``blocks.py``) and every block exported (``--plain``,
``trace(..., repeat=False)``). A round gives the seconds to trace (torch.export, core-ATen
decomposition, lowering; the first export of a process also imports torch.export's own modules,
about a second), to compute the exact depth (Pareto-maximal critical vectors) and to count the
gates (``size``), and the peak resident memory of that process; the table shows the best round of
each way, and checks that both give the same gates and depth. Then the commands ``tc0sim size``
and ``tc0sim depth`` on a model file of the workload (kind ``torch``, this file's ``meta_model``
as the factory), timed as a user sees them (process start, imports, build, report; best of R),
with their peak memory. The 1-minute load average is printed with each figure (the machine may
be shared).

The modules are those of examples/torch/ (plain PyTorch), made on the meta device: shapes only, no
weights allocated, so only the circuit's size costs memory. Workloads: a 32-layer LLaMA-style
decoder at width 4096 (32 heads, SwiGLU hidden 11008, as LLaMA-7B; vocabulary cut to 1000, which
only widens the last layer) on N tokens, and ViT-L/16 (24 blocks, width 1024, 16 heads, 224 × 224
image, 1000 classes).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "torch"

WORKLOADS = {
    "llama-32x4096": ("llama.py", {"layers": 32, "width": 4096, "heads": 32, "hidden": 11008, "vocab": 1000}),
    "vit-l16": ("vit.py", {"depth": 24, "width": 1024, "heads": 16, "patch": 16, "image": 224, "classes": 1000}),
}
"""Name: (file of examples/torch, kwargs of its ``make_model``)."""


def _factory(file: str):
    spec = importlib.util.spec_from_file_location(f"bench_{Path(file).stem}", EXAMPLES / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_model


def meta_model(workload: str):
    """The workload's module on the meta device (the factory of the model files of the CLI runs)."""
    import torch

    file, kwargs = WORKLOADS[workload]
    with torch.device("meta"):
        return _factory(file)(**kwargs)


def _inputs(name: str, tokens: int) -> dict:
    """The workload's forward arguments, as a model file's ``inputs``."""
    if WORKLOADS[name][0] == "llama.py":
        return {"tokens": {"shape": [1, tokens], "dtype": "int64"}}
    return {"image": {"shape": [1, 3, 224, 224]}}


def run_one(name: str, tokens: int, plain: bool = False) -> dict:
    """Trace, depth and size of one workload in this process; times in seconds, peak RSS in MB."""
    import torch

    from tc0sim.frontends.torch.lower import trace
    from tc0sim.interp.depth import depth
    from tc0sim.interp.size import size
    from tc0sim.ir.vectors import fmt

    model = meta_model(name)
    with torch.device("meta"):
        example = {k: torch.zeros(v["shape"], dtype=getattr(torch, v.get("dtype", "float32"))) for k, v in _inputs(name, tokens).items()}
    start, cpu = time.perf_counter(), time.process_time()
    graph = trace(model, example, repeat=not plain)
    traced, cpu = time.perf_counter(), time.process_time() - cpu
    result = depth(graph)
    deep = time.perf_counter()
    gates = size(graph).total
    counted = time.perf_counter()
    return {
        "workload": name, "nodes": len(graph.nodes), "trace_s": round(traced - start, 2),
        "trace_cpu_s": round(cpu, 2),
        "depth_s": round(deep - traced, 2), "size_s": round(counted - deep, 2),
        "depth": [fmt(v) for v in result.critical], "gates": gates,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load": round(os.getloadavg()[0], 1),
    }


CLI_RUN = """
import resource, subprocess, sys
done = subprocess.run([sys.executable, "-m", "tc0sim", *sys.argv[1:]], capture_output=True, text=True)
print(done.stderr[-500:], file=sys.stderr)
used = resource.getrusage(resource.RUSAGE_CHILDREN)
print("PEAK", used.ru_maxrss, done.returncode, used.ru_utime + used.ru_stime, file=sys.stderr)
"""
"""``python -m tc0sim ARGS`` in a child, then its peak memory, exit status and CPU seconds (the
wrapper's own start-up is in the wall time: about 0.05 s)."""


def cli_one(name: str, tokens: int, command: str, folder: Path) -> dict:
    """Wall seconds and peak RSS (MB) of ``tc0sim COMMAND`` on the workload's model file, in a fresh process."""
    model = folder / f"{name}.yaml"
    model.write_text(json.dumps({
        "kind": "torch", "module": f"{Path(__file__).resolve()}:meta_model", "kwargs": {"workload": name},
        "inputs": _inputs(name, tokens),
    }))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CLI_RUN, command, str(model)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak = next(line.split() for line in done.stderr.splitlines() if line.startswith("PEAK"))
    if peak[2] != "0":
        raise RuntimeError(f"tc0sim {command} {model} exited {peak[2]}: {done.stderr[-500:]}")
    return {"wall_s": round(wall, 2), "cpu_s": round(float(peak[3]), 2), "peak_rss_mb": round(int(peak[1]) / 1024, 1),
            "load": round(os.getloadavg()[0], 1)}


def _fresh(name: str, tokens: int, plain: bool) -> dict:
    args = [sys.executable, __file__, "--only", name, "--tokens", str(tokens)] + (["--plain"] if plain else [])
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=16, help="LLaMA sequence length")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per way of tracing (best kept)")
    parser.add_argument("--only", choices=sorted(WORKLOADS), help="one workload, in this process")
    parser.add_argument("--plain", action="store_true", help="with --only: export every block (no repeated blocks)")
    args = parser.parse_args()
    if args.only:
        print(json.dumps(run_one(args.only, args.tokens, args.plain)))
        return
    print("| workload | tensor nodes | trace s, CPU s (load) | plain trace s, CPU s (load) | depth s | size s | peak RSS MB "
          "| `tc0sim size` s, CPU s (load), MB | `tc0sim depth` s, CPU s (load), MB | gates | critical depth |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name in WORKLOADS:
            runs: dict[bool, list[dict]] = {False: [], True: []}
            for _ in range(args.rounds):
                for plain in (False, True):
                    runs[plain].append(_fresh(name, args.tokens, plain))
            fast, slow = (min(runs[p], key=lambda r: r["trace_s"]) for p in (False, True))
            if (fast["gates"], fast["depth"]) != (slow["gates"], slow["depth"]):
                raise RuntimeError(f"{name}: the two ways differ: {fast} vs {slow}")
            cli = {c: min((cli_one(name, args.tokens, c, Path(folder)) for _ in range(args.rounds)), key=lambda r: r["wall_s"])
                   for c in ("size", "depth")}
            print(f"| {name} | {fast['nodes']:,} | " + " | ".join(f"{r['trace_s']}, {r['trace_cpu_s']} ({r['load']})" for r in (fast, slow))
                  + f" | {fast['depth_s']} | {fast['size_s']} | {fast['peak_rss_mb']} "
                  + "".join(f"| {cli[c]['wall_s']}, {cli[c]['cpu_s']} ({cli[c]['load']}), {cli[c]['peak_rss_mb']} " for c in ("size", "depth"))
                  + f"| {fast['gates']:,} | {'; '.join(fast['depth'])} |", flush=True)


if __name__ == "__main__":
    main()
