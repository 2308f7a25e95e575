"""The linear-form parser (``tc0sim.linear``): counts per symbol, errors with positions, limits."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tc0sim.errors import ConfigError
from tc0sim.ir.primitives import SYMBOLS
from tc0sim.ir.vectors import fmt, zero
from tc0sim.linear import parse_linear
from reference import depth_vector as V


@pytest.mark.parametrize(
    "text, expected",
    [
        ("6 d_std + 6 d_sum + d_exp", V(6, 6, 0, 1, 0)),
        ("6*d_std + 2 d_sum", V(6, 2, 0, 0, 0)),
        ("3(d_std + d_sum) + d_exp", V(3, 3, 0, 1, 0)),
        ("3 * (d_std + 2(d_sum + d_prod))", V(3, 6, 6, 0, 0)),
        ("0", zero()),
        ("d_std + d_std", V(2, 0, 0, 0, 0)),
        ("  26 d_std+12 d_sum + 2 d_sqrt + d_exp ", V(26, 12, 0, 1, 2)),
    ],
)
def test_parse_linear(text, expected):
    assert parse_linear(text, SYMBOLS) == expected


def test_parse_linear_round_trips_fmt():
    for v in [V(5, 2, 0, 0, 1), V(1, 0, 0, 1, 0), zero(), V(0, 7, 3, 0, 0)]:
        assert parse_linear(fmt(v), SYMBOLS) == v


@pytest.mark.parametrize(
    "text, position",
    [
        ("6 d_std + d_foo", 10),
        ("6 d_std +", 9),
        ("3(d_std + d_sum", 15),
        ("d_std - d_sum", 6),
        ("5", None),
        ("", 0),
        ("2 * 3", None),
        ("__import__('os')", None),
    ],
)
def test_parse_linear_rejects_garbage_with_position(text, position):
    with pytest.raises(ConfigError) as info:
        parse_linear(text, SYMBOLS)
    assert "position" in str(info.value)
    if position is not None:
        assert f"position {position}" in str(info.value)


def test_the_symbols_are_the_callers():
    assert parse_linear("2 a + b + 3(a + c)", ("a", "b", "c")) == (5, 1, 3)
    with pytest.raises(ConfigError, match=r"unknown depth symbol 'd_std' \(expected one of a, b\) at position 0"):
        parse_linear("d_std", ("a", "b"))


def test_a_character_outside_the_grammar_is_named_with_its_position():
    with pytest.raises(ConfigError, match=r"unexpected character '\$' at position 6 in linear form 'd_std \$ d_sum'"):
        parse_linear("d_std $ d_sum", SYMBOLS)
    with pytest.raises(ConfigError, match=r"unexpected '-' at position 6 in linear form"):
        parse_linear("d_std - d_sum", SYMBOLS)


def test_deep_nesting_and_huge_counts_are_refused_not_crashed():
    assert parse_linear("(" * 50 + "d_exp" + ")" * 50, SYMBOLS) == V(0, 0, 0, 1, 0)
    with pytest.raises(ConfigError, match="nested more than 50 levels deep at position 50"):
        parse_linear("(" * 51 + "d_exp" + ")" * 51, SYMBOLS)
    assert parse_linear(f"{10**99} d_sum", SYMBOLS) == V(0, 10**99, 0, 0, 0)
    for digits in (str(10**100), "7" * 5000):  # (int() itself refuses more than 4300 digits)
        with pytest.raises(ConfigError, match="has more than 100 digits at position 0"):
            parse_linear(f"{digits} d_sum", SYMBOLS)


@st.composite
def linear_forms(draw, depth=0):
    """(text, counts): a random linear form and its counts, summed here term by term."""
    terms = []
    total = [0] * len(SYMBOLS)
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.one_of(st.none(), st.integers(0, 9)))
        star = "*" if k is not None and draw(st.booleans()) else " "
        factor = 1 if k is None else k
        if depth < 2 and draw(st.booleans()):
            text, inner = draw(linear_forms(depth + 1))
            terms.append(("" if k is None else f"{k}{star}") + f"({text})")
        else:
            s = draw(st.integers(0, len(SYMBOLS) - 1))
            inner = [int(i == s) for i in range(len(SYMBOLS))]
            terms.append(("" if k is None else f"{k}{star}") + SYMBOLS[s])
        total = [a + factor * b for a, b in zip(total, inner)]
    return " + ".join(terms), total


@settings(max_examples=200, deadline=None)
@given(linear_forms())
def test_random_linear_forms_give_their_counts(case):
    text, counts = case
    assert parse_linear(text, SYMBOLS) == tuple(counts)
