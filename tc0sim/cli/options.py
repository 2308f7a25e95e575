"""Option types of the command line: every number is parsed by tc0sim's own parsers, within limits.

click's INT accepts any digit Python's ``int`` does (``'١٢'``) and any size; ``Count`` (whole
numbers, through ``parse_count``) and ``parse_bytes`` (sizes) accept ASCII digits only, within a
stated range (the ranges are in docs/cli.md), and give one line "Invalid value for '--x'" or
``error: …`` otherwise; every numeric option of every command goes through one of them.
``check_output`` and ``check_plot`` check a file a command will write before any work;
``check_scheduler`` a Dask scheduler address. ``budget_options`` adds ``--max-nodes`` and ``--max-memory`` to a command and runs
it inside ``budget_scope`` so that every graph it builds is bounded. The options and parsers shared
by several commands (``--format``, ``--n``, sizes, ``--set``) are here too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import click

from tc0sim.cli.output import FORMATS
from tc0sim.errors import ConfigError
from tc0sim.expr import LIMIT, parse_number
from tc0sim.limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_NODES, MAX_SWEEP_POINTS, PLOT_SUFFIXES

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


def limit_option(flag: str, minimum: int, default: int, help: str) -> Callable[..., Any]:
    """A ``--max-…`` count option (``5e7`` and ``50000000`` alike), its default shown in --help."""
    return click.option(flag, flag.lstrip("-").replace("-", "_"), type=Count(minimum, None, exponent=True),
                        default=default, show_default=True, help=help)


def budget_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --max-nodes/--max-memory and run the command with that build budget active."""

    @limit_option("--max-nodes", 1, DEFAULT_MAX_NODES,
                  "Build budget: refuse a graph with more tensor nodes than this (e.g. 5e6).")
    @limit_option("--max-memory", 1, DEFAULT_MAX_BYTES,
                  "Build budget: refuse a graph (or an evaluation) estimated to need more bytes than this (e.g. 8e9).")
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


def parse_bytes(text: str, option: str, maximum: int | None = None) -> int:
    """'2GB', '500MB', '1.5G', '4096' (bytes) -> bytes in [1, maximum]; units are binary (1 MB =
    2^20 bytes); the number is read by ``parse_number`` (ASCII digits, bounded exponent)."""
    raw = text.strip().upper().replace(" ", "")
    number = raw.rstrip("KMGTIB")
    unit = raw[len(number) :]
    try:
        value = parse_number(number) * _BYTE_UNITS[unit]
    except (KeyError, ConfigError):
        raise ConfigError(f"{option} {text[:40]!r}: expected a size such as 500MB or 2GB (digits 0-9)") from None
    if value <= 0:
        raise ConfigError(f"{option} {text[:40]!r}: the size must be positive")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{option} {text[:40]!r}: above the limit of {maximum:,} bytes")
    return int(value)


def parse_count_or_all(text: str, option: str, maximum: int | None = None) -> int | None:
    """A count in [0, maximum] in ASCII digits, or None for 'all'; anything else is a ConfigError."""
    if text == "all":
        return None
    try:
        return parse_count(text, 0, maximum)
    except ConfigError as e:
        raise ConfigError(f"{option}: {e}; expected a non-negative integer or 'all'") from None


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


def check_output(path: str, option: str, suffixes: tuple[str, ...]) -> Path:
    """``path`` checked before any work (``tc0sim.io.outputs.check_output_path``): a suffix of
    ``suffixes``, an existing writable directory; else a ConfigError naming ``option``."""
    from tc0sim.io.outputs import check_output_path

    return check_output_path(path, option, suffixes)


def check_plot(path: str, option: str = "--plot") -> Path:
    """A ``--plot`` file checked before any work: .png, .pdf or .svg, writable, matplotlib installed."""
    target = check_output(path, option, PLOT_SUFFIXES)
    from tc0sim.cli.plots import require_matplotlib

    require_matplotlib(option)
    return target


SCHEDULER_SCHEMES = ("tcp://",)
"""The Dask transports ``--scheduler`` accepts: tls:// and ucx:// need a security or transport
configuration that tc0sim does not pass."""


def check_scheduler(address: str | None) -> str | None:
    """A ``--scheduler`` address: ``tcp://HOST:PORT`` (or ``HOST:PORT``); other transports refused."""
    if address is None:
        return None
    scheme, sep, _ = address.partition("://")
    if sep and f"{scheme.lower()}://" not in SCHEDULER_SCHEMES:
        raise ConfigError(
            f"--scheduler {address[:60]!r}: the {scheme[:20]!r} transport is not supported; "
            "give a tcp://HOST:PORT address (tls:// and ucx:// need a configuration tc0sim does not pass)"
        )
    return address
