"""A safe parser for linear forms in the depth symbols: ``"6 d_std + 6 d_sum + d_exp"`` (docs/dag.md).

A claimed depth such as FlowAR Lemma 4.6's 6(d_std + d_sum) + d_exp is a linear form with
non-negative integer counts. It is read with the tokenizer of the expression parser
(``tc0sim.expr.TokenCursor``) and this recursive-descent grammar — never with ``eval``::

    expr := term ('+' term)*
    term := [INT ['*']] (SYMBOL | '(' expr ')') | INT

A lone integer term must be 0 (a constant term has no depth symbol). The symbols are given by the
caller (``tc0sim.ir.vectors.as_vec`` passes the primitive table's ``SYMBOLS``), so this module
sits with the numbers, below the IR. Every error is a ConfigError giving the position.
"""

from __future__ import annotations

from collections.abc import Sequence

from tc0sim.errors import ConfigError
from tc0sim.expr import MAX_NESTING, TokenCursor
from tc0sim.limits import MAX_NUMBER_DIGITS


class _Parser(TokenCursor):
    """Recursive descent over the tokens of a linear form; counts are lists, one entry per symbol."""

    def __init__(self, text: str, symbols: Sequence[str]):
        super().__init__(text, "linear form")
        self.symbols = tuple(symbols)

    def at(self, op: str) -> bool:
        return self.token.kind == "op" and self.token.text == op

    def error(self, message: str, pos: int | None = None) -> ConfigError:
        at = self.token.pos if pos is None else pos
        return ConfigError(f"{message} at position {at} in linear form {self.text!r}")

    def expr(self) -> list[int]:
        total = self.term()
        while self.at("+"):
            self.advance()
            total = [a + b for a, b in zip(total, self.term())]
        return total

    def count(self) -> int | None:
        if self.token.kind != "int":
            return None
        token = self.advance()
        if len(token.text) > MAX_NUMBER_DIGITS:
            raise self.error(f"count {token.text[:20]}… has more than {MAX_NUMBER_DIGITS} digits", token.pos)
        return int(token.text)

    def term(self) -> list[int]:
        coefficient = self.count()
        has_star = coefficient is not None and self.at("*")
        if has_star:
            self.advance()
        token = self.token
        if self.at("("):
            self.advance()
            self.nesting += 1
            if self.nesting > MAX_NESTING:
                raise self.error(f"nested more than {MAX_NESTING} levels deep", token.pos)
            inner = self.expr()
            self.nesting -= 1
            if not self.at(")"):
                raise self.error("expected ')'")
            self.advance()
            factor = 1 if coefficient is None else coefficient
            return [factor * c for c in inner]
        if token.kind == "name":
            self.advance()
            if token.text not in self.symbols:
                raise self.error(f"unknown depth symbol {token.text!r} (expected one of {', '.join(self.symbols)})", token.pos)
            out = [0] * len(self.symbols)
            out[self.symbols.index(token.text)] = 1 if coefficient is None else coefficient
            return out
        if coefficient is None:
            raise self.error(f"expected a count, a symbol or '(' but found {token.text!r}" if token.kind != "end" else "unexpected end")
        if has_star:
            raise self.error("expected a symbol or '(' after '*'")
        if coefficient != 0:
            raise self.error(f"constant term {coefficient} has no depth symbol")
        return [0] * len(self.symbols)


def parse_linear(text: str, symbols: Sequence[str]) -> tuple[int, ...]:
    """The counts of ``symbols`` in a linear form: '6 d_std + 6 d_sum + d_exp', '6*d_std + 2 d_sum',
    '3(d_std + d_sum) + d_exp', '0'. Garbage or an unknown symbol is a ConfigError giving the position."""
    parser = _Parser(text, symbols)
    result = parser.expr()
    if parser.token.kind != "end":
        raise parser.error(f"unexpected {parser.token.text!r}")
    return tuple(result)
