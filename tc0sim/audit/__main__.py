"""``python -m tc0sim.audit``: regenerate docs/claims.md, the markdown audit of the claims registry.

``--check`` writes nothing and exits 1 when the file is stale; ``--output PATH`` writes elsewhere.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tc0sim.audit.audit import CLAIMS_DOC, claims_markdown


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the generated claims document; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tc0sim.audit", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=CLAIMS_DOC, help=f"file to write (default {CLAIMS_DOC})")
    parser.add_argument("--check", action="store_true", help="only compare: exit 1 when the file is stale")
    args = parser.parse_args(argv)
    text = claims_markdown()
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"{args.output} is stale: run `python -m tc0sim.audit`", file=sys.stderr)
            return 1
        print(f"{args.output} is current")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}" + (" (unchanged)" if current == text else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
