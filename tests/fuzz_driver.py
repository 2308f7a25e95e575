"""Run many tc0sim command lines in one process and report how each ended (used by test_fuzz.py).

Usage: ``python tests/fuzz_driver.py CASES.json``: CASES is a JSON list of argument lists. Each case
runs through click's CliRunner under a SIGALRM timeout of ``CASE_SECONDS``; the report on stdout is a
JSON list of {"args", "exit", "stderr", "stdout", "exception", "seconds"}, where "exception" is
the type name of an exception that escaped the command (a traceback), "timeout" or null.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import traceback

from click.testing import CliRunner

from tc0sim.cli.main import main

CASE_SECONDS = 20
STDOUT_CHARS = 2_000_000
"""How much of a case's stdout the report keeps (its end)."""


class CaseTimeout(BaseException):
    """Raised by SIGALRM inside a case that runs too long."""


def _alarm(signum, frame):
    raise CaseTimeout()


def run_case(args: list[str]) -> dict:
    start = time.monotonic()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    try:
        result = CliRunner().invoke(main, args, catch_exceptions=True)
        exception = None
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            exception = type(result.exception).__name__ + ": " + "".join(
                traceback.format_exception(*result.exc_info)
            )[-1500:]
        return {
            "args": args,
            "exit": result.exit_code,
            "stderr": result.stderr,
            "stdout": result.stdout[-STDOUT_CHARS:],
            "exception": exception,
            "seconds": round(time.monotonic() - start, 2),
        }
    except CaseTimeout:
        return {"args": args, "exit": None, "stderr": "", "stdout": "", "exception": "timeout",
                "seconds": round(time.monotonic() - start, 2)}
    finally:
        signal.alarm(0)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        cases = json.load(handle)
    json.dump([run_case(args) for args in cases], sys.stdout)
