"""The ``tc0sim`` command line (docs/cli.md): the group, its shared options and error handling.

Each command lives in its own module (``depth_cmd``, ``size_cmd``, …) and is parse → one call of
``tc0sim.reports`` → print; a module imports numpy, the engines and the reports inside its command,
so ``--help`` starts fast. Exit status: 0 on success, 1 when an audit finds a violated claim, 2 on
bad input — a model file, an option or an input file that is wrong gives one line ``error: …`` on
stderr and no traceback (click's own usage errors also exit 2) — and 130 / 143 when Ctrl-C / SIGTERM
stopped the command (one line ``error: interrupted``).
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from typing import Any

import click

from tc0sim.cli.approx_cmd import approx
from tc0sim.cli.audit_cmd import audit
from tc0sim.cli.claims_cmd import claims
from tc0sim.cli.demo_cmd import demo
from tc0sim.cli.depth_cmd import depth
from tc0sim.cli.graph_cmd import graph
from tc0sim.cli.kinds_cmd import kinds
from tc0sim.cli.longrun import exit_status, on_sigterm
from tc0sim.cli.options import EXIT_BAD_INPUT, EXIT_VIOLATED
from tc0sim.cli.show_cmd import show
from tc0sim.cli.size_cmd import size
from tc0sim.cli.threshold_cmd import threshold
from tc0sim import __version__
from tc0sim.errors import Tc0simError, one_line

__all__ = ["EXIT_BAD_INPUT", "EXIT_VIOLATED", "console", "main"]


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that nothing more (not even the final flush) meets the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _subcommands(ctx: click.Context | None) -> list[str]:
    """The command names below the root of ``ctx`` (``['approx', 'perturbation']``)."""
    names: list[str] = []
    while ctx is not None and ctx.parent is not None:
        names.insert(0, ctx.info_name or "")
        ctx = ctx.parent
    return names


class Tc0simGroup(click.Group):
    """A click group that turns tc0sim's deliberate errors and click's usage errors into one line
    ``error: …`` and exit status 2, and an interruption (Ctrl-C, SIGTERM) into ``error:
    interrupted`` and exit status 128 + the signal's number, after every ``finally`` has run."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as interrupt:
            # a Dask client cut short leaves futures whose "exception was never retrieved" asyncio
            # would log at exit, tracebacks included: the one line below is all the user gets
            logging.getLogger("asyncio").disabled = True
            click.echo("error: interrupted", err=True)
            ctx.exit(exit_status(interrupt))
        except BrokenPipeError:  # `tc0sim … | head`: the reader has gone; stop quietly
            _silence_stdout()
            ctx.exit(0)
        except (Tc0simError, OSError) as error:
            click.echo(f"error: {one_line(error)}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except (MemoryError, RecursionError) as error:  # a safety net: the limits above should come first
            click.echo(
                f"error: out of {'memory' if isinstance(error, MemoryError) else 'stack'}: the work needed more "
                "than this machine has, which the build budget's estimate (--max-memory) did not foresee; use smaller "
                "dims or params",
                err=True,
            )
            ctx.exit(EXIT_BAD_INPUT)
        except click.UsageError as error:
            command = " ".join(["tc0sim", *_subcommands(error.ctx), "--help"])
            click.echo(f"error: {one_line(error.format_message())} (see '{command}')", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except Exception as error:
            yaml = sys.modules.get("yaml")  # a model file's YAMLError (yaml is imported by the command that reads one)
            if yaml is None or not isinstance(error, yaml.YAMLError):
                raise
            click.echo(f"error: {one_line(error)}", err=True)
            ctx.exit(EXIT_BAD_INPUT)


@click.group(cls=Tc0simGroup)
@click.version_option(__version__, prog_name="tc0sim")
def main() -> None:
    """tc0sim: circuit-complexity simulator and depth accountant for VAR and FlowAR.

    `depth`, `size`, `eval`, `audit`, `graph` and `approx` read MODEL, a YAML model file naming a kind
    (an operator or a model), its dims and params: start from one in examples/ (e.g.
    `tc0sim depth examples/attention.yaml`), list the kinds with `tc0sim kinds`, and see
    docs/model_files.md and docs/cli.md; `tc0sim show OUT` prints what `eval` wrote. A `kind:
    torch` model file names a Python factory of a torch.nn.Module: reading it imports and runs
    that Python code (docs/torch.md). The claims audited are those of "Circuit Complexity
    Bounds for Visual Autoregressive Model" (Ke, Li, Liang, Shi, Song; arXiv:2501.04299) and "On
    Computational Limits of FlowAR Models: Expressivity and Efficiency" (Cao, Gong, Ke, Li,
    Liang, Sha, Shi, Song; arXiv:2502.16490).
    """


def console() -> None:
    """The ``tc0sim`` program (console script and ``python -m tc0sim``): one command, then exit.

    Python's cyclic garbage collector is off for the command: a graph build or an analysis makes
    millions of acyclic objects that reference counting frees, and every full collection would
    walk all of them again (half a second for FlowAR-H) for cycles that are freed at exit anyway.
    The process then ends without tearing down numpy, rich and the rest (a tenth of a second),
    unless a Dask cluster was started, whose clean-up runs at exit."""
    gc.disable()
    on_sigterm()
    try:
        main(prog_name="tc0sim")
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if isinstance(done.code, str):
            sys.stderr.write(done.code + "\n")
        if "distributed" in sys.modules:  # a Dask cluster's clean-up runs at interpreter exit
            raise
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # a closed pipe (`tc0sim … | head`): nothing more can be written
            pass
        os._exit(code)  # every file the command wrote is closed; skip tearing down the imported modules


from tc0sim.cli.eval_cmd import eval_command  # noqa: E402  (the command lives in its own module)

for _command in (depth, size, eval_command, show, audit, graph, kinds, claims, demo, threshold, approx):
    main.add_command(_command)


if __name__ == "__main__":
    main()
