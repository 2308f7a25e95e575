"""The error hierarchy: every error tc0sim raises on purpose derives from Tc0simError."""

import unicodedata

from tc0sim.limits import MAX_ERROR_CHARS


class Tc0simError(Exception):
    """Base class of every deliberate tc0sim error (bad input, arithmetic fault, bad graph)."""


class ConfigError(Tc0simError, ValueError):
    """A model file, dimension or parameter is invalid."""


class GraphError(Tc0simError):
    """A DAG is malformed: shape mismatch, unknown primitive, missing interpreter rule."""


class MissingRuleError(GraphError):
    """An interpreter has no rule for a primitive (never a silent zero)."""

    def __init__(self, interpreter: str, primitive: str):
        super().__init__(f"interpreter {interpreter!r} has no rule for primitive {primitive!r}")
        self.interpreter = interpreter
        self.primitive = primitive


class ExpansionLimitError(GraphError):
    """A scalar expansion was refused because the graph exceeds the gate limit."""


class MissingKernelError(MissingRuleError, ValueError):
    """A primitive has no F_p kernel of the needed kind (``tc0sim.fp.KERNELS``)."""

    def __init__(self, primitive: str, kind: str = "elementwise"):
        super().__init__("F_p kernel", primitive)
        self.args = (f"no {kind} F_p kernel for primitive {primitive!r} (define one with tc0sim.fp.kernel)",)


class BudgetError(ConfigError):
    """A graph or an evaluation was refused because it exceeds the build budget (nodes or bytes)."""


class DepthBudgetError(Tc0simError):
    """The exact depth analysis was refused: a step would exceed the memory budget."""


UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
"""Unicode categories escaped in an error line: controls (ESC, BEL), format characters (bidi
overrides), line and paragraph separators, surrogates, private-use and unassigned characters."""


def _escaped(text: str) -> str:
    return "".join(ascii(ch)[1:-1] if unicodedata.category(ch) in UNSAFE_CATEGORIES else ch for ch in text)


def one_line(error: BaseException | str, limit: int | None = None) -> str:
    """An error as one line of text: an OSError as ``file: reason``, whitespace collapsed, control
    and format characters escaped (``\\x1b``; text from a file never drives the terminal), cut to
    ``limit`` characters (default ``tc0sim.limits.MAX_ERROR_CHARS``) with an ellipsis."""
    limit = MAX_ERROR_CHARS if limit is None else limit
    text = error if isinstance(error, str) else str(error) or type(error).__name__
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    text = _escaped(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"
