"""Option types of the command line: every number is parsed by tc0sim's own parsers, within limits.

click's INT accepts any digit Python's ``int`` does (``'١٢'``) and any size; these types accept
ASCII digits only, within a stated range, and give click's one-line "Invalid value for '--x'"
error otherwise. ``budget_options`` adds ``--max-nodes`` and ``--max-memory`` to a command and runs
it inside ``budget_scope`` so that every graph it builds is bounded. The options and parsers shared
by several commands (``--format``, ``--n``, sizes, ``--set``) are here too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import click

from tc0sim.cli.output import FORMATS
from tc0sim.errors import ConfigError
from tc0sim.expr import LIMIT, parse_number
from tc0sim.limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_NODES, MAX_SWEEP_POINTS

EXIT_VIOLATED = 1
"""Exit status of a command that found a violated claim or a failing bound."""
EXIT_BAD_INPUT = 2

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
        from tc0sim.ir.budget import BuildBudget, budget_scope  # here: --help imports no numpy

        with budget_scope(BuildBudget(max_nodes, max_memory)):
            return command(*args, **kwargs)

    return run


def format_option(help: str = "Output format: rich tables, JSON or markdown.") -> Callable[..., Any]:
    """``--format text|json|markdown`` (the parameter ``fmt``)."""
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True, help=help)


FORMAT_OPTION = format_option()
N_OPTION = click.option(
    "--n",
    "n",
    type=Count(1),
    default=None,
    help="Value of n for dims written as expressions in n (default: the file's 'n:').",
)

_BYTE_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 2**10, "KIB": 2**10, "M": 2**20, "MB": 2**20, "MIB": 2**20,
               "G": 2**30, "GB": 2**30, "GIB": 2**30, "T": 2**40, "TB": 2**40, "TIB": 2**40}


def parse_bytes(text: str, option: str) -> int:
    """'2GB', '500MB', '1.5G', '4096' (bytes) -> bytes; units are binary (1 MB = 2^20 bytes)."""
    raw = text.strip().upper().replace(" ", "")
    number = raw.rstrip("KMGTIB")
    unit = raw[len(number) :]
    try:
        value = Fraction(number) * _BYTE_UNITS[unit]
    except (KeyError, ValueError, ZeroDivisionError):
        raise ConfigError(f"{option} {text!r}: expected a size such as 500MB or 2GB") from None
    if value <= 0:
        raise ConfigError(f"{option} {text!r}: the size must be positive")
    return int(value)


def parse_count_or_all(text: str, option: str) -> int | None:
    """A non-negative count, or None for 'all'; garbage is a ConfigError."""
    if text == "all":
        return None
    if not text.isdigit():
        raise ConfigError(f"{option}: expected a non-negative integer or 'all', got {text!r}")
    return int(text)


def parse_symbol_values(assignments: tuple[str, ...]) -> dict[str, Fraction]:
    """--set d_std=3 …: the symbols given, each a non-negative exact value (the others count 1)."""
    from tc0sim.ir.primitives import SYMBOLS

    values: dict[str, Fraction] = {}
    for item in assignments:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep:
            raise ConfigError(f"--set {item!r}: expected SYMBOL=VALUE, e.g. d_std=3")
        if name not in SYMBOLS:
            raise ConfigError(f"--set {item!r}: unknown depth symbol {name!r}; expected one of {', '.join(SYMBOLS)}")
        if name in values:
            raise ConfigError(f"--set: symbol {name} is given twice")
        try:
            value = parse_number(raw)
        except ConfigError as e:
            raise ConfigError(f"--set {name}: {e}") from None
        if value < 0:
            raise ConfigError(f"--set {item!r}: a gate depth must be >= 0")
        values[name] = value
    return values


def parse_n_list(text: str) -> list[int]:
    """'4,8,16,32': distinct counts >= 1, at most MAX_SWEEP_POINTS of them, sorted."""
    parts = text.split(",")
    if len(parts) > MAX_SWEEP_POINTS:
        raise ConfigError(f"--n: {len(parts)} values, more than the limit of {MAX_SWEEP_POINTS}")
    values: list[int] = []
    for part in parts:
        try:
            values.append(parse_count(part, 1, LIMIT))
        except ConfigError as e:
            raise ConfigError(f"--n: {e}; expected a comma-separated list of integers >= 1, e.g. 4,8,16,32") from None
    if len(set(values)) != len(values):
        raise ConfigError(f"--n {text!r}: the values must be distinct")
    return sorted(values)


def load(model: str) -> Any:
    """The model file ``model`` (tc0sim.modelfile.load_model), imported when a command needs it."""
    from tc0sim.modelfile import load_model

    return load_model(model)
