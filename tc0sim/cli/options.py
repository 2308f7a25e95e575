"""Option types of the command line: every number is parsed by tc0sim's own parsers, within limits.

click's INT accepts any digit Python's ``int`` does (``'١٢'``) and any size; these types accept
ASCII digits only, within a stated range, and give click's one-line "Invalid value for '--x'"
error otherwise. ``budget_options`` adds ``--max-nodes`` and ``--max-memory`` to a command and runs
it inside ``budget_scope`` so that every graph it builds is bounded.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from tc0sim.errors import ConfigError
from tc0sim.expr import LIMIT, parse_number
from tc0sim.ir.budget import BuildBudget, budget_scope
from tc0sim.limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_NODES, MAX_ERROR_CHARS

MAX_COUNT_DIGITS = 16
"""Most digits of an integer option written in plain digits (10^15 is the largest dim)."""


def parse_count(text: str, minimum: int, maximum: int | None, exponent: bool = False) -> int:
    """A whole number in [minimum, maximum]: ASCII digits, or (``exponent``) any number ``parse_number`` reads."""
    text = text.strip()
    if exponent:
        value = parse_number(text)
        if value.denominator != 1:
            raise ConfigError(f"{text!r} is not a whole number")
        number = int(value)
    else:
        if not (text.isascii() and text.isdigit()) or len(text) > MAX_COUNT_DIGITS:
            raise ConfigError(f"{text[:40]!r} is not a whole number written in digits 0-9 (at most {MAX_COUNT_DIGITS})")
        number = int(text)
    if number < minimum or (maximum is not None and number > maximum):
        upper = f" and at most {maximum:,}" if maximum is not None else ""
        raise ConfigError(f"{number:,} is out of range: expected at least {minimum:,}{upper}")
    return number


class Count(click.ParamType):
    """A bounded whole number (``exponent=True`` also accepts ``5e7``)."""

    name = "integer"

    def __init__(self, minimum: int, maximum: int | None = LIMIT, exponent: bool = False) -> None:
        self.minimum, self.maximum, self.exponent = minimum, maximum, exponent

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        try:
            return parse_count(str(value), self.minimum, self.maximum, self.exponent)
        except ConfigError as e:
            self.fail(str(e), param, ctx)

    def get_metavar(self, param: Any, ctx: Any = None) -> str:
        return "N"


def budget_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --max-nodes/--max-memory and run the command with that build budget active."""

    @click.option(
        "--max-nodes",
        "max_nodes",
        type=Count(1, None, exponent=True),
        default=DEFAULT_MAX_NODES,
        show_default=True,
        help="Build budget: refuse a graph with more tensor nodes than this (e.g. 5e6).",
    )
    @click.option(
        "--max-memory",
        "max_memory",
        type=Count(1, None, exponent=True),
        default=DEFAULT_MAX_BYTES,
        show_default=True,
        help="Build budget: refuse a graph (or an evaluation) estimated to need more bytes than this (e.g. 8e9).",
    )
    @functools.wraps(command)
    def run(*args: Any, max_nodes: int, max_memory: int, **kwargs: Any) -> Any:
        with budget_scope(BuildBudget(max_nodes, max_memory)):
            return command(*args, **kwargs)

    return run


N_OPTION = click.option(
    "--n",
    "n",
    type=Count(1),
    default=None,
    help="Value of n for dims written as expressions in n (default: the file's 'n:').",
)


def one_line(error: BaseException | str) -> str:
    """An error as one line of at most MAX_ERROR_CHARS characters (an OSError as file: reason)."""
    text = error if isinstance(error, str) else str(error) or type(error).__name__
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def load(model: str) -> Any:
    """The model file ``model`` (tc0sim.modelfile.load_model)."""
    from tc0sim.modelfile import load_model

    return load_model(model)
