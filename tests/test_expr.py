"""The safe expression parser of model-file dims (tc0sim.expr), checked against Python's own integers."""

from __future__ import annotations

import operator
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tc0sim.errors import ConfigError
from tc0sim.expr import LIMIT, parse, parse_comparison, parse_number
from tc0sim.limits import MAX_NUMBER_DIGITS, MAX_NUMBER_EXPONENT

# Each case: the text and the same arithmetic written directly in Python (the oracle).
CASES = [
    ("n", lambda n: n),
    ("2*n", lambda n: 2 * n),
    ("n//4", lambda n: n // 4),
    ("n + 1", lambda n: n + 1),
    ("n - 1 - 1", lambda n: (n - 1) - 1),
    ("2 * n + 3 * n", lambda n: 2 * n + 3 * n),
    ("(n + 1) * (n - 1)", lambda n: (n + 1) * (n - 1)),
    ("n * n // 3", lambda n: (n * n) // 3),
    ("n // 3 * 3", lambda n: (n // 3) * 3),
    ("-n + 10", lambda n: -n + 10),
    ("- -n", lambda n: n),
    ("3 - -2", lambda n: 5),
    ("-7 // 2", lambda n: -4),
    ("((n))", lambda n: n),
    ("  4*n//2  ", lambda n: 4 * n // 2),
]


@pytest.mark.parametrize("text,oracle", CASES)
@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_expressions_evaluate_like_python_integers(text, oracle, n):
    assert parse(text).eval({"n": n}) == oracle(n)


def test_names_are_reported():
    assert parse("2*n + 1").names == {"n"}
    assert parse("12").names == frozenset()
    assert parse("a*b", allowed=("a", "b")).names == {"a", "b"}


_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv}


@st.composite
def trees(draw, depth=3):
    """Random expression trees: (text, python value) with the value computed independently."""
    if depth == 0 or draw(st.booleans()):
        if draw(st.booleans()):
            value = draw(st.integers(0, 50))
            return str(value), value
        return "n", None
    op = draw(st.sampled_from(sorted(_OPS)))
    left = draw(trees(depth=depth - 1))
    right = draw(trees(depth=depth - 1))
    return (f"({left[0]}) {op} ({right[0]})", (op, left, right))


def _oracle(tree, n):
    text, node = tree
    if node is None:
        return n
    if isinstance(node, int):
        return node
    op, left, right = node
    a, b = _oracle(left, n), _oracle(right, n)
    if op == "//" and b == 0:
        raise ZeroDivisionError
    return _OPS[op](a, b)


@settings(max_examples=200, deadline=None)
@given(trees(), st.integers(1, 30))
def test_random_expressions_match_an_independent_evaluator(tree, n):
    text = tree[0]
    try:
        expected = _oracle(tree, n)
    except ZeroDivisionError:
        with pytest.raises(ConfigError, match="division by zero"):
            parse(text).eval({"n": n})
        return
    if abs(expected) > LIMIT:
        with pytest.raises(ConfigError, match="too large"):
            parse(text).eval({"n": n})
        return
    assert parse(text).eval({"n": n}) == expected


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("n+", "position 2"),
        ("2*m", "unknown name 'm' at position 2"),
        ("n/2", "unexpected character '/' at position 1"),
        ("(n", "')' to close '(' at position 0"),
        ("n n", "found 'n'"),
        ("n)", "position 1"),
        ("10**20", "position 3"),
        ("", "empty expression"),
        ("__import__(os)", "unknown name '__import__' at position 0"),
        ("open('x')", "unexpected character \"'\" at position 5"),
        ("n.real", "unexpected character '.' at position 1"),
        ("n; 1", "unexpected character ';'"),
        ("1e5", "found 'e5'"),
        ("99999999999999999999", "too large"),
        ("2 ** 3", "position 3"),
    ],
)
def test_malformed_expressions_name_position_and_token(text, fragment):
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_only_allowed_names():
    with pytest.raises(ConfigError, match="allowed names: n"):
        parse("d + 1")
    with pytest.raises(ConfigError, match="allowed names: none"):
        parse("n", allowed=())


def test_division_by_zero_is_an_error():
    with pytest.raises(ConfigError, match="division by zero"):
        parse("n // (n - 3)").eval({"n": 3})


def test_huge_results_are_errors():
    assert parse("1000000 * 1000000000").eval() == 10**15
    with pytest.raises(ConfigError, match="too large"):
        parse("1000000 * 1000000001").eval()
    with pytest.raises(ConfigError, match="too large"):
        parse("n * n * n").eval({"n": 10**6})


def test_unbound_name_is_an_error():
    with pytest.raises(ConfigError, match="no value of n"):
        parse("2*n").eval({})


def test_deep_nesting_is_refused_without_recursion_error():
    with pytest.raises(ConfigError, match="nested"):
        parse("(" * 60 + "n" + ")" * 60)
    with pytest.raises(ConfigError, match="nested"):
        parse("-" * 60 + "n")


def test_long_text_is_refused():
    with pytest.raises(ConfigError, match="longer than"):
        parse("+".join(["1"] * 1000))


@pytest.mark.parametrize(
    "text,env,expected",
    [
        ("d <= n", {"d": 3, "n": 4}, True),
        ("d <= n", {"d": 5, "n": 4}, False),
        ("d * d <= n", {"d": 2, "n": 4}, True),
        ("h == n", {"h": 4, "n": 4}, True),
        ("h != n", {"h": 4, "n": 4}, False),
        ("n > 2*d", {"d": 2, "n": 5}, True),
        ("n >= d + 1", {"d": 4, "n": 5}, True),
        ("n < d", {"d": 4, "n": 5}, False),
    ],
)
def test_comparisons(text, env, expected):
    assert parse_comparison(text, allowed=("d", "n", "h")).eval(env) is expected


def test_comparison_sides_and_errors():
    c = parse_comparison("2*d <= n + 1", allowed=("d", "n"))
    assert (c.left.text, c.op, c.right.text) == ("2*d", "<=", "n + 1")
    assert c.names == {"d", "n"}
    with pytest.raises(ConfigError, match="comparison operator"):
        parse_comparison("d + n", allowed=("d", "n"))
    with pytest.raises(ConfigError, match="position"):
        parse_comparison("d <= <= n", allowed=("d", "n"))
    with pytest.raises(ConfigError, match="unknown name 'x'"):
        parse_comparison("x <= n", allowed=("d", "n"))


# ------------------------------------------------------------------------------ parse_number

@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=0, max_value=10**30),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=-MAX_NUMBER_EXPONENT, max_value=MAX_NUMBER_EXPONENT),
    st.booleans(),
)
def test_parse_number_agrees_with_fraction_on_decimals(whole, decimals, exponent, negative):
    # oracle: Python's Fraction reads the same decimal text exactly
    text = ("-" if negative else "") + f"{whole}.{decimals}e{exponent}"
    assert parse_number(text) == Fraction(text)


@pytest.mark.parametrize("text,value", [("3", 3), ("7/2", Fraction(7, 2)), (".5E-2", Fraction(1, 200)), ("+4", 4), (" 1e3 ", 1000), ("1.", 1)])
def test_parse_number_forms(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("1e100000000", "exponent is outside ±100"),
        ("1e" + "0" * 50 + "101", "exponent is outside ±100"),
        ("1e101", "exponent is outside ±100"),
        ("9" * (MAX_NUMBER_DIGITS + 1), f"more than {MAX_NUMBER_DIGITS} digits"),
        ("1/" + "3" * MAX_NUMBER_DIGITS, f"more than {MAX_NUMBER_DIGITS} digits"),
        ("²", "not a number"),
        ("١٢", "not a number"),
        ("1_000", "not a number"),
        ("0x10", "not a number"),
        ("inf", "not a number"),
        ("nan", "not a number"),
        ("", "not a number"),
        (".", "not a number"),
        ("1/0", "divides by zero"),
    ],
)
def test_parse_number_refuses(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_number(text)


def test_parse_number_is_quick_on_hostile_text():
    import time

    start = time.monotonic()
    for text in ("1e99999999999999999999", "9" * 10**6, "1" + "0" * 10**6 + "/3"):
        with pytest.raises(ConfigError):
            parse_number(text)
    assert time.monotonic() - start < 1
