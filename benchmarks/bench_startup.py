"""Start-up and end-to-end times of whole commands (issue 31 items 6 and the end-to-end target):
`tc0sim --help`, `tc0sim eval --help`, and `tc0sim eval` of a 256³ matmul at p = 24 on the fast and
on the MPFR engine, beside the interpreter alone and the interpreter importing numpy and gmpy2 (the
least any evaluation pays before its first gate).

Each command runs in a fresh process (`subprocess.run`), the commands in turn, ``--repeat`` rounds
(default 7), best and median wall time of each; ``os.getloadavg()`` before and after. The two eval
commands write their outputs to a temporary directory and must agree bit for bit.

Run: ``python benchmarks/bench_startup.py [--repeat 7]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODEL = "kind: matmul\ndims: {n1: 256, d: 256, n2: 256}\n"


def commands(folder: Path) -> dict[str, list[str]]:
    """The commands timed, by label (the eval outputs written into ``folder``)."""
    model = folder / "matmul256.yaml"
    model.write_text(MODEL)
    cli = [sys.executable, "-m", "tc0sim"]
    evaluate = [*cli, "eval", str(model), "--precision", "24", "--quiet", "--output"]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import numpy, gmpy2'": [sys.executable, "-c", "import numpy, gmpy2"],
        "tc0sim --help": [*cli, "--help"],
        "tc0sim eval --help": [*cli, "eval", "--help"],
        "eval matmul 256³, p = 24, fast": [*evaluate, str(folder / "fast.npz"), "--engine", "fast"],
        "eval matmul 256³, p = 24, mpfr": [*evaluate, str(folder / "mpfr.npz"), "--engine", "mpfr"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        timed = commands(folder)
        times: dict[str, list[float]] = {label: [] for label in timed}
        before = os.getloadavg()
        for _ in range(args.repeat):
            for label, command in timed.items():
                start = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True)
                times[label].append(time.perf_counter() - start)
        after = os.getloadavg()
        fast, mpfr = (np.load(folder / f"{e}.npz")["out"] for e in ("fast", "mpfr"))
        assert np.array_equal(fast.view(np.int64), mpfr.view(np.int64)), "the engines disagree"
    print(f"load average before {before[0]:.2f} / {before[1]:.2f} / {before[2]:.2f}, "
          f"after {after[0]:.2f} / {after[1]:.2f} / {after[2]:.2f}; {args.repeat} rounds")
    print("| command | best s | median s |\n|---|---|---|")
    for label, values in times.items():
        print(f"| {label} | {min(values):.3f} | {statistics.median(values):.3f} |")
    best = {label: min(values) for label, values in times.items()}
    ratio = best["eval matmul 256³, p = 24, mpfr"] / best["eval matmul 256³, p = 24, fast"]
    floor = best["eval matmul 256³, p = 24, mpfr"] / best["python -c 'import numpy, gmpy2'"]
    print(f"\nend to end, MPFR / fast (best times): {ratio:.1f}x; MPFR / (interpreter + numpy + gmpy2 imports): {floor:.1f}x")


if __name__ == "__main__":
    main()
