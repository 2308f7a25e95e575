#!/usr/bin/env bash
# Every benchmark, one command: bash benchmarks/run.sh (figures recorded in docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
python benchmarks/bench_fp.py "$@"
python benchmarks/bench_expand.py
python benchmarks/bench_approx.py
python benchmarks/bench_depth.py
python benchmarks/bench_eval.py
python benchmarks/bench_fast53.py
python benchmarks/bench_startup.py
python benchmarks/bench_released.py --plain
python benchmarks/bench_build.py
python benchmarks/bench_torch.py  # needs the torch extra
