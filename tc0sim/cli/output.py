"""Rendering of command reports as rich text tables, markdown or JSON.

A report (``tc0sim.reports``) gives a list of ``Section`` (a title and either a table or lines of
text) for the human formats and a plain dict for JSON; ``emit`` prints the one the user asked for
on stdout.
Text goes through rich: tables on a terminal, no colour when stdout is not a terminal. The report
layer (and numpy) is imported when a report is printed, not by ``--help``.
"""

from __future__ import annotations

import errno
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tc0sim.limits import SUMMARY_ROWS

if TYPE_CHECKING:
    from tc0sim.reports.base import Report, Section

FORMATS = ("text", "json", "markdown")
__all__ = ["FORMATS", "SUMMARY_ROWS", "emit", "progress", "show", "status", "unlimited_int_digits"]

NON_TERMINAL_WIDTH = 160
"""Rich's line width when stdout is not a terminal (rich would otherwise assume 80)."""


def _console(stream: Any = None) -> Any:
    from rich.console import Console

    stream = stream or sys.stdout
    terminal = hasattr(stream, "isatty") and stream.isatty()
    console = Console(
        file=stream,
        width=None if terminal else NON_TERMINAL_WIDTH,
        no_color=not terminal,
        highlight=False,
        soft_wrap=False,
    )
    console.on_broken_pipe = _broken_pipe  # rich would exit 1; the command group stops quietly with 0
    return console


def _broken_pipe() -> None:
    raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def render_text(sections: Sequence[Section]) -> None:
    """Print the sections on stdout as rich tables."""
    from rich.table import Table
    from rich.text import Text

    console = _console()
    for section in sections:
        if section.title:
            console.print(section.title, markup=False, style="bold")
        if section.headers:
            table = Table(show_lines=False)
            for header in section.headers:
                table.add_column(Text(str(header)), overflow="fold")
            for row in section.rows:
                table.add_row(*(Text(str(c)) for c in row))  # plain text: '[resnet, attn]' is not markup
            console.print(table)
            for line in section.lines:
                console.print(line, markup=False)
        else:
            for line in section.lines:
                console.print("  " + line, markup=False)
        console.print()


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(sections: Sequence[Section]) -> str:
    """The sections as markdown: a '##' heading each, pipe tables, lines as bullets."""
    out: list[str] = []
    for section in sections:
        if section.title:
            out.append(f"## {section.title}")
            out.append("")
        if section.headers:
            out.append("| " + " | ".join(_md_cell(h) for h in section.headers) + " |")
            out.append("|" + "|".join("---" for _ in section.headers) + "|")
            for row in section.rows:
                out.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
            out.append("")
        for line in section.lines:
            out.append(f"- {line}")
        if section.lines:
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def show(fmt: str, report: Report) -> None:
    """Print ``report`` in format ``fmt``: its sections, or (json) its ``as_dict()``."""
    if fmt == "json":
        emit(fmt, [], report.as_dict())
    else:
        emit(fmt, report.sections(), {})


def emit(fmt: str, sections: Sequence[Section], data: dict[str, Any]) -> None:
    """Print the report in format ``fmt`` (text, json or markdown) on stdout."""
    from tc0sim.reports.base import jsonable

    with unlimited_int_digits():
        if fmt == "json":
            sys.stdout.write(json.dumps(jsonable(data), indent=2) + "\n")
        elif fmt == "markdown":
            sys.stdout.write(render_markdown(sections))
        else:
            render_text(sections)


@contextmanager
def unlimited_int_digits() -> Iterator[None]:
    """Let integers of any length be written as decimal text inside the block.

    Python refuses to convert an int of more than 4300 digits to text (``sys.set_int_max_str_digits``);
    an exact output (an [m, e] pair at p = 15000, a gate count) may be longer. The limit guards
    parsing of untrusted text; tc0sim bounds the digits of what it parses itself, so only writing
    lifts it, and the previous limit is restored on exit.
    """
    previous = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(previous)


@contextmanager
def progress(description: str, total: int) -> Iterator[Any]:
    """A rich progress bar on stderr when stderr is a terminal; otherwise a silent stand-in."""
    if not sys.stderr.isatty():
        from tc0sim.reports.base import no_progress

        with no_progress(description, total) as quiet:
            yield quiet
        return
    from rich.progress import Progress

    with Progress(console=_console(sys.stderr), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield _Bar(bar, task)


def status(message: str) -> Any:
    """A rich spinner on stderr while a long step runs, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        from tc0sim.reports.base import no_status

        return no_status(message)
    return _console(sys.stderr).status(message)


class _Bar:
    def __init__(self, bar: Any, task: Any):
        self.bar = bar
        self.task = task

    def advance(self, label: str = "") -> None:
        self.bar.update(self.task, advance=1, description=label or None)
