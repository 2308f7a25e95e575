"""The torch front end at real sizes: trace, exact depth and size of models built on the meta device.

Run: python benchmarks/bench_torch.py [--tokens N] [--only NAME] — for each workload, in a fresh
process: the seconds to trace (torch.export, core-ATen decomposition, lowering), to compute the
exact depth (Pareto-maximal critical vectors) and to count the gates (``size``), and the peak
resident memory of that process. The modules are those of examples/torch/ (plain PyTorch), made
on the meta device: shapes only, no weights allocated, so only the circuit's size costs memory.

Workloads: a 32-layer LLaMA-style decoder at width 4096 (32 heads, SwiGLU hidden 11008, as
LLaMA-7B; vocabulary cut to 1000, which only widens the last layer) on N tokens, and ViT-L/16 (24
blocks, width 1024, 16 heads, 224 × 224 image, 1000 classes).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
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


def run_one(name: str, tokens: int, plain: bool = False) -> dict:
    """Trace, depth and size of one workload in this process; times in seconds, peak RSS in MB."""
    import torch

    from tc0sim.frontends.torch.lower import trace
    from tc0sim.interp.depth import depth
    from tc0sim.interp.size import size
    from tc0sim.ir.vectors import fmt

    file, kwargs = WORKLOADS[name]
    with torch.device("meta"):
        model = _factory(file)(**kwargs)
        example = (torch.zeros(1, tokens, dtype=torch.int64),) if file == "llama.py" else (torch.zeros(1, 3, 224, 224),)
    start = time.perf_counter()
    graph = trace(model, example, repeat=not plain)
    traced = time.perf_counter()
    result = depth(graph)
    deep = time.perf_counter()
    gates = size(graph).total
    counted = time.perf_counter()
    return {
        "workload": name, "nodes": len(graph.nodes), "trace_s": round(traced - start, 2),
        "depth_s": round(deep - traced, 2), "size_s": round(counted - deep, 2),
        "depth": [fmt(v) for v in result.critical], "gates": gates,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=16, help="LLaMA sequence length")
    parser.add_argument("--only", choices=sorted(WORKLOADS), help="one workload, in this process")
    args = parser.parse_args()
    if args.only:
        print(json.dumps(run_one(args.only, args.tokens)))
        return
    print("| workload | tensor nodes | trace s | depth s | size s | peak RSS MB | gates | critical depth |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name in WORKLOADS:
        out = subprocess.run([sys.executable, __file__, "--only", name, "--tokens", str(args.tokens)],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"| {name} | {r['nodes']:,} | {r['trace_s']} | {r['depth_s']} | {r['size_s']} | {r['peak_rss_mb']} "
              f"| {r['gates']:,} | {'; '.join(r['depth'])} |")


if __name__ == "__main__":
    main()
