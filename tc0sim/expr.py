"""A safe parser for the integer expressions of model files (docs/model_files.md): ``"n"``, ``"2*n"``, ``"n//4"``.

Hand-written tokenizer and recursive-descent parser — user text is never given to ``eval``. Grammar::

    expr   := term (('+' | '-') term)*
    term   := unary (('*' | '//') unary)*
    unary  := '-' unary | atom
    atom   := INTEGER | NAME | '(' expr ')'

    comparison := expr ('<=' | '<' | '>=' | '>' | '==' | '!=') expr

Names must belong to an allowed set (for dims only ``n``). Evaluation is exact integer arithmetic;
``//`` is floor division; division by zero and any intermediate result above ``LIMIT`` in
absolute value are ConfigErrors. Every error names the position and the offending token.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

from tc0sim.errors import ConfigError
from tc0sim.limits import MAX_NUMBER_DIGITS, MAX_NUMBER_EXPONENT

LIMIT = 10**15
"""Largest absolute value an expression (or any of its intermediate results) may take."""

MAX_LENGTH = 1000
"""Longest expression text accepted."""

MAX_NESTING = 50
"""Deepest nesting of parentheses and unary minus accepted."""

_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
    "!=": operator.ne,
}
_SYMBOLS = ("//", "<=", ">=", "==", "!=", "+", "-", "*", "(", ")", "<", ">")


@dataclass(frozen=True)
class Token:
    """One token: kind is 'int', 'name', 'op' or 'end'; ``pos`` is its 0-based column."""

    kind: str
    text: str
    pos: int


def _describe(token: Token) -> str:
    return "end of expression" if token.kind == "end" else f"{token.text!r}"


def tokenize(text: str, what: str = "expression") -> list[Token]:
    """Split ``text`` into tokens; any other character is a ConfigError naming it, its position and
    ``what`` the text is (an expression, or a linear form: ``tc0sim.linear``)."""
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch.isascii() and ch.isdigit():
            start = i
            while i < len(text) and text[i].isascii() and text[i].isdigit():
                i += 1
            tokens.append(Token("int", text[start:i], start))
            continue
        if ch.isascii() and (ch.isalpha() or ch == "_"):
            start = i
            while i < len(text) and text[i].isascii() and (text[i].isalnum() or text[i] == "_"):
                i += 1
            tokens.append(Token("name", text[start:i], start))
            continue
        symbol = next((s for s in _SYMBOLS if text.startswith(s, i)), None)
        if symbol is None:
            hint = " (use // for integer division)" if ch == "/" and what == "expression" else ""
            raise ConfigError(f"unexpected character {ch!r} at position {i} in {what} {text!r}{hint}")
        tokens.append(Token("op", symbol, i))
        i += len(symbol)
    tokens.append(Token("end", "", len(text)))
    return tokens


def _checked(value: int, text: str) -> int:
    if abs(value) > LIMIT:
        raise ConfigError(f"expression {text!r} is too large: an intermediate result exceeds 10^15")
    return value


class Expr:
    """A parsed integer expression: ``.eval(env)`` gives an int, ``.names`` the names it reads."""

    def __init__(self, text: str, tree: tuple, names: frozenset[str]):
        self.text = text
        self._tree = tree
        self.names = names

    def __repr__(self) -> str:
        return f"Expr({self.text!r})"

    def __str__(self) -> str:
        return self.text

    def eval(self, env: Mapping[str, int] | None = None) -> int:
        """The value with names bound by ``env``; an unbound name, ÷0 or a result above 10^15 is an error."""
        return self._eval(self._tree, env or {})

    def _eval(self, node: tuple, env: Mapping[str, int]) -> int:
        kind = node[0]
        if kind == "int":
            return node[1]
        if kind == "name":
            name = node[1]
            if name not in env:
                raise ConfigError(f"expression {self.text!r} uses {name!r} but no value of {name} was given")
            value = env[name]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"value of {name} must be an integer, got {value!r}")
            return _checked(value, self.text)
        if kind == "neg":
            return -self._eval(node[1], env)
        left = self._eval(node[2], env)
        right = self._eval(node[3], env)
        op = node[1]
        if op == "+":
            result = left + right
        elif op == "-":
            result = left - right
        elif op == "*":
            result = left * right
        else:
            if right == 0:
                raise ConfigError(f"division by zero in expression {self.text!r} (operator // at position {node[4]})")
            result = left // right
        return _checked(result, self.text)


class Comparison:
    """A parsed comparison ``left OP right`` (e.g. a claim precondition ``d <= n``)."""

    def __init__(self, text: str, left: Expr, op: str, right: Expr):
        self.text = text
        self.left = left
        self.op = op
        self.right = right
        self.names = left.names | right.names

    def __repr__(self) -> str:
        return f"Comparison({self.text!r})"

    def eval(self, env: Mapping[str, int] | None = None) -> bool:
        """Whether the comparison holds with names bound by ``env``."""
        return _COMPARISONS[self.op](self.left.eval(env), self.right.eval(env))


class TokenCursor:
    """The tokens of a text and the parser's place in them (shared by the parsers of expressions
    and of linear forms, ``tc0sim.linear``); ``nesting`` counts open parentheses."""

    def __init__(self, text: str, what: str = "expression"):
        self.text = text
        self.tokens = tokenize(text, what)
        self.index = 0
        self.nesting = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token


class _Parser(TokenCursor):
    def __init__(self, text: str, allowed: Iterable[str]):
        if not isinstance(text, str):
            raise ConfigError(f"an expression must be a string, got {text!r}")
        if len(text) > MAX_LENGTH:
            raise ConfigError(f"expression is longer than {MAX_LENGTH} characters")
        super().__init__(text)
        self.allowed = tuple(allowed)
        self.names: set[str] = set()

    def error(self, expected: str, token: Token | None = None) -> ConfigError:
        token = token or self.token
        return ConfigError(
            f"expected {expected} at position {token.pos} in expression {self.text!r}, found {_describe(token)}"
        )

    def nest(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise ConfigError(f"expression {self.text!r} is nested more than {MAX_NESTING} levels deep")

    def _left_associative(self, operand: Callable[[], tuple], operators: tuple[str, ...]) -> tuple:
        """operand (op operand)* for the given operators, grouped to the left."""
        left = operand()
        while self.token.kind == "op" and self.token.text in operators:
            op = self.advance()
            left = ("bin", op.text, left, operand(), op.pos)
        return left

    def expr(self) -> tuple:
        return self._left_associative(self.term, ("+", "-"))

    def term(self) -> tuple:
        return self._left_associative(self.unary, ("*", "//"))

    def unary(self) -> tuple:
        if self.token.kind == "op" and self.token.text == "-":
            self.advance()
            self.nest()
            inner = self.unary()
            self.nesting -= 1
            return ("neg", inner)
        return self.atom()

    def atom(self) -> tuple:
        token = self.token
        if token.kind == "int":
            if len(token.text) > 16 or int(token.text) > LIMIT:
                raise ConfigError(
                    f"integer at position {token.pos} in expression {self.text!r} is too large (limit 10^15)"
                )
            self.advance()
            return ("int", int(token.text))
        if token.kind == "name":
            if token.text not in self.allowed:
                allowed = ", ".join(self.allowed) if self.allowed else "none"
                raise ConfigError(
                    f"unknown name {token.text!r} at position {token.pos} in expression {self.text!r}; "
                    f"allowed names: {allowed}"
                )
            self.advance()
            self.names.add(token.text)
            return ("name", token.text)
        if token.kind == "op" and token.text == "(":
            self.advance()
            self.nest()
            inner = self.expr()
            self.nesting -= 1
            if not (self.token.kind == "op" and self.token.text == ")"):
                raise self.error(f"')' to close '(' at position {token.pos}")
            self.advance()
            return inner
        raise self.error("an integer, a name or '('")

    def finish(self) -> None:
        if self.token.kind != "end":
            raise self.error("an operator (+ - * //) or the end")


def parse(text: str, allowed: Iterable[str] = ("n",)) -> Expr:
    """Parse an integer expression over the names in ``allowed`` (for model dims: only ``n``)."""
    parser = _Parser(text, allowed)
    if parser.token.kind == "end":
        raise ConfigError(f"empty expression {text!r}")
    tree = parser.expr()
    parser.finish()
    return Expr(text, tree, frozenset(parser.names))


def parse_comparison(text: str, allowed: Iterable[str]) -> Comparison:
    """Parse ``expr OP expr`` with OP one of <= < >= > == != (e.g. the precondition ``"d <= n"``)."""
    parser = _Parser(text, allowed)
    left_start = parser.index
    left = parser.expr()
    token = parser.token
    if not (token.kind == "op" and token.text in _COMPARISONS):
        raise parser.error("a comparison operator (<= < >= > == !=)")
    parser.advance()
    right_start = parser.index
    right = parser.expr()
    parser.finish()
    left_text = text[parser.tokens[left_start].pos : token.pos].strip()
    right_text = text[parser.tokens[right_start].pos :].strip()
    return Comparison(
        text,
        Expr(left_text, left, _names(left)),
        token.text,
        Expr(right_text, right, _names(right)),
    )


def _names(tree: tuple) -> frozenset[str]:
    if tree[0] == "name":
        return frozenset({tree[1]})
    if tree[0] == "neg":
        return _names(tree[1])
    if tree[0] == "bin":
        return _names(tree[2]) | _names(tree[3])
    return frozenset()


_NUMBER = re.compile(r"(?P<sign>[+-]?)(?P<int>[0-9]*)(?:\.(?P<frac>[0-9]*))?(?:[eE](?P<exp>[+-]?[0-9]+))?")
_RATIONAL = re.compile(r"(?P<sign>[+-]?)(?P<num>[0-9]+)/(?P<den>[0-9]+)")


def parse_number(text: str) -> Fraction:
    """An exact number written as an integer, a decimal (``2.5``, ``1e3``, ``.5E-2``) or ``p/q``.

    ASCII digits only; at most ``MAX_NUMBER_DIGITS`` digits and an exponent within
    ±``MAX_NUMBER_EXPONENT``, so no text can make the value (or its printing) huge. Anything else
    is a ConfigError saying what is accepted.
    """
    stripped = text.strip()
    rational = _RATIONAL.fullmatch(stripped)
    decimal = None if rational else _NUMBER.fullmatch(stripped)
    if rational is None and (decimal is None or not (decimal["int"] or decimal["frac"])):
        raise ConfigError(f"{_clipped(text)} is not a number (use e.g. 3, 2.5, 1e3 or 7/2)")
    digits = rational["num"] + rational["den"] if rational else decimal["int"] + (decimal["frac"] or "")
    if len(digits) > MAX_NUMBER_DIGITS:
        raise ConfigError(f"{_clipped(text)} has more than {MAX_NUMBER_DIGITS} digits")
    sign = -1 if (rational or decimal)["sign"] == "-" else 1
    if rational:
        if int(rational["den"]) == 0:
            raise ConfigError(f"{text.strip()} divides by zero")
        return sign * Fraction(int(rational["num"]), int(rational["den"]))
    exponent_text = decimal["exp"] or "0"
    if len(exponent_text.lstrip("+-").lstrip("0")) > 4 or abs(int(exponent_text)) > MAX_NUMBER_EXPONENT:
        raise ConfigError(f"{_clipped(text)}: the exponent is outside ±{MAX_NUMBER_EXPONENT}")
    fraction = decimal["frac"] or ""
    exponent = int(exponent_text) - len(fraction)
    mantissa = int((decimal["int"] or "0") + fraction)
    scale = Fraction(10) ** exponent
    return sign * mantissa * scale


def _clipped(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")
