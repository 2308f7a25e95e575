"""How a model file's values are named in error messages, and the integer test every key uses."""

from __future__ import annotations

import reprlib
from typing import Any

_TYPE_NAMES = ((bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string"), (list, "a list"), (dict, "a mapping"))
"""How an error message names a YAML value's type (bool before int: a bool is an int)."""


def type_name(value: Any) -> str:
    """The type of a YAML value as a message names it ("an integer", "a mapping", "null")."""
    if value is None:
        return "null"
    return next((name for kind, name in _TYPE_NAMES if isinstance(value, kind)), type(value).__name__)


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel = 3


def short(value: Any) -> str:
    """A bounded repr for messages: long lists and strings are elided with '...'."""
    return _REPR.repr(value)


def clip(key: Any) -> str:
    """A user's key as text for messages, cut to 60 characters."""
    text = str(key)
    return text if len(text) <= 60 else text[:57] + "..."


def is_int(value: Any) -> bool:
    """Whether a YAML value is an integer (a bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool)
