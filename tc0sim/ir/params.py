"""The parameter schema of a kind and the one path that validates every param of every kind.

A kind declares each param as a ``Param`` record (type, default, doc, inclusive range, choices,
list length bounds, strict increase, divisibility) and its cross-parameter ``rules`` (callables on
the validated params returning a message or None). ``validate(kind, raw)`` checks the raw params
against them, before anything is built, and returns the params with defaults filled in and values
converted (``real`` to float, ``rational`` to an exact Fraction); every refusal is one ConfigError
naming the kind, the param, the value and the rule broken.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

from tc0sim.errors import ConfigError
from tc0sim.limits import MAX_NUMBER_DIGITS, MAX_NUMBER_EXPONENT

Rule = Callable[[Mapping[str, Any]], "str | None"]
"""A cross-parameter rule: the validated params in, a message (the rule broken) or None out."""


class _Bad(Exception):
    """A value broke a rule (the text says which); ``validate`` names the kind and param."""


class _Unknown(_Bad):
    """A value of the right type is not one of the param's choices."""


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 40
_REPR.maxlist = _REPR.maxtuple = 6


def short(value: Any) -> str:
    """A bounded repr for messages (long lists and strings are elided with '...')."""
    return _REPR.repr(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?", re.IGNORECASE)
_RATIO = re.compile(r"[+-]?\d+/\d+")


def _number_text(text: str) -> str:
    """A decimal (``0.25``, ``1e-3``) or ratio (``1/3``) of bounded digits and exponent, stripped."""
    text = text.strip()
    if not (_DECIMAL.fullmatch(text) or _RATIO.fullmatch(text)):
        raise _Bad("a number (an integer, a decimal such as 0.25 or a ratio such as 1/3)")
    mantissa, _, exponent = text.lower().partition("e")
    if sum(ch.isdigit() for ch in mantissa) > MAX_NUMBER_DIGITS:
        raise _Bad(f"a number of at most {MAX_NUMBER_DIGITS} digits")
    if exponent and (len(exponent.lstrip("+-").lstrip("0")) > 4 or abs(int(exponent)) > MAX_NUMBER_EXPONENT):
        raise _Bad(f"a number with an exponent within ±{MAX_NUMBER_EXPONENT}")
    if _RATIO.fullmatch(text) and int(text.split("/")[1]) == 0:
        raise _Bad("a ratio with a nonzero denominator")
    return text


def exact_text(text: str) -> Fraction:
    """The exact value of a number text (``0.25``, ``1e-6``, ``1/3``) of bounded digits and exponent."""
    try:
        return Fraction(_number_text(text))
    except _Bad as e:
        raise ConfigError(f"{short(text)} is not {e}") from None


def _as_int(value: Any) -> int:
    if not _is_int(value):
        raise _Bad("an integer")
    return value


def _as_rational(value: Any) -> Fraction:
    """Exact: an int, a Fraction, a finite float read as its shortest decimal, or a number text."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Fraction)):
        raise _Bad("a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Bad("a finite number")
    if isinstance(value, (int, Fraction)):
        return Fraction(value)
    return Fraction(_number_text(value) if isinstance(value, str) else str(value))


def _as_real(value: Any) -> float:
    """A finite float (YAML 1.1 reads ``1e-3``, without a dot, as a string: such a text is read too)."""
    if isinstance(value, (str, Fraction)):
        value = float(_as_rational(value))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad("a number")
    try:
        value = float(value)
    except OverflowError:
        raise _Bad("a finite number") from None
    if not math.isfinite(value):
        raise _Bad("a finite number")
    return value


def _as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad("true or false")
    return value


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad("a string")
    return value


def _as_ints(value: Any) -> list[int]:
    if not isinstance(value, (list, tuple)) or not all(_is_int(v) for v in value):
        raise _Bad("a list of integers")
    return list(value)


@dataclass(frozen=True)
class ParamType:
    """How a param type reads a raw value (``convert`` raises ``_Bad`` naming what it expects)."""

    noun: str
    """What a value is (of a list: what an entry is)."""
    convert: Callable[[Any], Any]
    ordered: bool = False
    """min/max apply to the value."""
    sequence: bool = False
    """A list: length bounds and monotonicity apply; min/max/divisibility apply to every element."""


TYPES: dict[str, ParamType] = {
    "int": ParamType("integer", _as_int, ordered=True),
    "real": ParamType("number (read as a float)", _as_real, ordered=True),
    "rational": ParamType("exact number (integer, decimal or p/q)", _as_rational, ordered=True),
    "bool": ParamType("true or false", _as_bool),
    "str": ParamType("string", _as_str),
    "ints": ParamType("integer", _as_ints, ordered=True, sequence=True),
    "any": ParamType("value (as described)", lambda value: value),
}
"""Every param type, keyed by the name a ``Param`` gives."""


@dataclass(frozen=True)
class Param:
    """One param of a kind: its type (a key of ``TYPES``), default, doc and the rules its value obeys.

    ``min``/``max`` are inclusive (for a list, of every element); ``nullable``: null is allowed and
    means "derived from the other params" (see the doc); ``parse``: a kind's own reader for a
    structured value (it raises ConfigError or ValueError with its message), applied after the type.
    """

    name: str
    type: str
    default: Any = None
    doc: str = ""
    min: int | float | Fraction | None = None
    max: int | float | Fraction | None = None
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    divisible_by: int | None = None
    min_len: int = 1
    max_len: int | None = None
    increasing: bool = False
    """A list: strictly increasing."""
    parse: Callable[[Any], Any] | None = None
    noun: str = ""
    """How a value not among the choices is called ("unknown flow type 'cubic'"; default: the name)."""

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"param {self.name!r}: unknown type {self.type!r}; expected one of {', '.join(TYPES)}")

    def rule(self) -> str:
        """The rule a value obeys, in words (for messages, ``tc0sim kinds`` and docs/model_files.md)."""
        kind = TYPES[self.type]
        if self.choices:
            text = f"one of {', '.join(map(str, self.choices))}"
        elif kind.sequence:
            count = f"{self.min_len} to {self.max_len}" if self.max_len is not None else f"{self.min_len} or more"
            text = f"a list of {count} {kind.noun}s" + (", strictly increasing" if self.increasing else "")
        else:
            text = _article(kind.noun)
        bounds = [_range(self.min, self.max)] if self.min is not None or self.max is not None else []
        bounds += [f"divisible by {self.divisible_by}"] if self.divisible_by else []
        if bounds:
            text += (", each " if kind.sequence else " ") + " and ".join(bounds)
        return text + (", or null" if self.nullable else "")

    def check(self, value: Any) -> Any:
        """The value converted to its type, or ``_Bad`` with the rule it breaks."""
        if value is None and self.nullable:
            return None
        kind = TYPES[self.type]
        try:
            value = kind.convert(value)
        except _Bad:
            raise _Bad(self.rule()) from None
        if self.choices and value not in self.choices:
            raise _Unknown(", ".join(map(str, self.choices)))
        items = value if kind.sequence else [value]
        if kind.sequence and (len(items) < self.min_len or (self.max_len is not None and len(items) > self.max_len)):
            raise _Bad(self.rule())
        if kind.ordered and any((self.min is not None and v < self.min) or (self.max is not None and v > self.max) for v in items):
            raise _Bad(self.rule())
        if self.divisible_by and any(v % self.divisible_by for v in items):
            raise _Bad(self.rule())
        if self.increasing and any(a >= b for a, b in zip(items, items[1:])):
            raise _Bad(self.rule())
        return value if self.parse is None else self.parse(value)

    def describe(self) -> dict[str, Any]:
        """This param as plain data: name, type, default, rule, doc."""
        default = self.default if isinstance(self.default, (int, float, str, bool, list, type(None))) else str(self.default)
        return {"name": self.name, "type": self.type, "default": default, "rule": self.rule(), "doc": self.doc}


def _article(noun: str) -> str:
    if noun.startswith("true"):
        return noun
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _range(lo: Any, hi: Any) -> str:
    if lo is not None and hi is not None:
        return f"in [{lo}, {hi}]"
    return f"≥ {lo}" if lo is not None else f"≤ {hi}"


def inferred(defaults: Mapping[str, Any]) -> tuple[Param, ...]:
    """Params read from a mapping of defaults alone (for a kind made without a schema): a bool default
    makes a bool param, any other default an ``any`` param the kind checks itself."""
    return tuple(Param(name, "bool" if isinstance(d, bool) else "any", d) for name, d in defaults.items())


class Schema(Protocol):
    """What ``validate`` reads of a kind (``tc0sim.ir.kind.Kind``)."""

    name: str
    params: tuple[Param, ...]
    rules: tuple[Rule, ...]


def validate(kind: Schema, raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """The params of ``kind`` from ``raw``: unknown names refused, defaults filled in, every value
    checked against its ``Param`` and then every cross-parameter rule (first failure: ConfigError)."""
    raw = dict(raw or {})
    names = [p.name for p in kind.params]
    unknown = [name for name in raw if name not in names]
    if unknown:
        raise ConfigError(
            f"kind {kind.name!r} has no param(s) {', '.join(str(n)[:60] for n in unknown)}; it takes {', '.join(names) or 'none'}"
        )
    out: dict[str, Any] = {}
    for param in kind.params:
        value = raw.get(param.name, param.default)
        try:
            out[param.name] = param.check(value)
        except _Unknown as e:
            raise ConfigError(
                f"{kind.name}: unknown {param.noun or param.name} {short(value)}; expected one of {e} (param {param.name!r})"
            ) from None
        except _Bad as e:
            raise ConfigError(f"{kind.name}: param {param.name!r} must be {e}, got {short(value)}") from None
        except (ConfigError, ValueError) as e:
            said = str(e)
            raise ConfigError(said if said.startswith(f"{kind.name}: ") else f"{kind.name}: param {param.name!r}: {said}") from None
    for rule in kind.rules:
        message = rule(out)
        if message:
            raise ConfigError(f"{kind.name}: {message}")
    return out


__all__ = ["Param", "ParamType", "Rule", "Schema", "TYPES", "exact_text", "inferred", "short", "validate"]
