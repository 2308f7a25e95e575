"""The primitive table is the single source: a throw-away primitive with its own depth symbol
(``cube``, ``d_cube``) defined by one row plus one F_p kernel reaches every interpreter, the
builder, the exports and the CLI reports; a primitive without a kernel is a named error.

Expected values are hand counts and exact rationals (``reference.round_fraction``), never the
code under test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction

import numpy as np
import pytest
from click.testing import CliRunner
from reference import round_fraction

from tc0sim import fp
from tc0sim.errors import GraphError, MissingKernelError, MissingRuleError
from tc0sim.interp.depth import DEPTH_RULES, depth
from tc0sim.interp.evaluate import EVAL_RULES, EvalStats, evaluate
from tc0sim.interp.expand import EXPAND_RULES, expand, scalar_depth
from tc0sim.interp.export import from_json, to_graphml, to_json
from tc0sim.interp.size import SIZE_RULES, size
from tc0sim.ir import primitives
from tc0sim.ir.graph import SHAPE_RULES, Builder
from tc0sim.ir.primitives import PRIMITIVES, QUIET_SYMBOLS, SYMBOLS, Primitive, elementwise, primitive, scratch_primitive
from tc0sim.ir.vectors import as_vec, fmt, vec, zero
from tc0sim.kinds import KINDS, Kind, register

BASE_SYMBOLS = tuple(SYMBOLS)
"""The symbols of the table as it stands (the five of the papers, and any a row adds)."""
SHOWN = tuple(s for s in BASE_SYMBOLS if s not in QUIET_SYMBOLS)
"""The symbols a full depth dict names even at 0 (a quiet one, as d_log, only where it counts)."""
TABLES = (SHAPE_RULES, SIZE_RULES, DEPTH_RULES, EXPAND_RULES, EVAL_RULES)
STRUCTURE = {"call", "result"}
"""Structure rows: the interpreters of flat graphs (``graph.flat()``: shape checks of built nodes,
evaluate, expand) never meet them."""


@contextmanager
def cube_primitive() -> Iterator[Primitive]:
    """Define ``cube`` (round_p(a³), depth symbol d_cube), one row and one kernel; remove both after."""
    with scratch_primitive(elementwise("cube", "d_cube", 1, "rounded", "round_p(a^3)")) as row:
        fp.kernel("cube", 1, lambda F: (lambda a, ctx=F.context: ctx.pow(a, 3)))
        try:
            yield row
        finally:
            del fp.KERNELS["cube"]


@pytest.fixture
def cube() -> Iterator[Primitive]:
    with cube_primitive() as row:
        yield row


def cube_chain(b: Builder, dims: dict, params: dict) -> dict:
    """x -> cube -> add x: depth d_cube + d_std, dims["n"] gates of each."""
    x = b.input("X", (dims["n"],))
    return {"out": b.add(b.node(primitive("cube"), [x]), x)}


def test_the_table_has_the_papers_symbols_and_a_kernel_per_compute_primitive():
    assert SYMBOLS[:5] == ("d_std", "d_sum", "d_prod", "d_exp", "d_sqrt") and len(zero()) == len(SYMBOLS)
    for row in PRIMITIVES.values():
        if row.kernel is not None:
            k = fp.KERNELS[row.kernel]
            assert k.name == row.name, "one name per primitive across the IR and F_p"
            assert k.arity == (None if row.role == "reduction" else row.arity)
    rows_with_kernels = {row.kernel for row in PRIMITIVES.values() if row.kernel}
    assert set(fp.KERNELS) == rows_with_kernels


def test_every_primitive_has_a_rule_in_every_table_or_a_stated_gap(cube):
    """Every primitive, the fast engine's FAST_RULES included: a gap is the evaluator's own
    ``input``, or a primitive the fast engine leaves to the reference engine (log, sin, cos; and one
    defined later without a fast rule, as cube), which then gives the reference bits."""
    from tc0sim.engines.fast import FAST_RULES

    stated = {"shape": STRUCTURE, "evaluate": {"input"} | STRUCTURE, "expand": STRUCTURE,
              "fast": {"input", "log", "sin", "cos", "cube"} | STRUCTURE}
    for table in (*TABLES, FAST_RULES):
        gaps = {name for name, row in PRIMITIVES.items() if not table.covers(row)}
        assert gaps == stated.get(table.interpreter, set()), table.interpreter
    b = Builder()
    b.output("y", b.node(cube, [b.input("X", (3,))]))
    stats = EvalStats()
    got = evaluate(b.graph, 11, {"X": np.array([0.5, -1.25, 3.0])}, engine="fast", stats=stats)["y"]
    assert [fp.Format(11).to_fraction(v) for v in got] == [round_fraction(Fraction(x) ** 3, 11) for x in (0.5, -1.25, 3.0)]
    assert stats.gates == {"mpfr": 3}


def test_the_fixture_cleans_up_after_itself():
    with cube_primitive() as row:
        assert SYMBOLS[-1] == "d_cube" and len(zero()) == len(BASE_SYMBOLS) + 1
        assert all(table.covers(row) for table in TABLES)
        b = Builder()
        assert b.node(row, [b.input("X", (2,))]).shape == (2,)
    assert SYMBOLS == BASE_SYMBOLS and len(zero()) == len(BASE_SYMBOLS)
    assert "cube" not in PRIMITIVES and "cube" not in fp.KERNELS
    assert not any(table.covers(row) for table in TABLES)
    assert not hasattr(Builder, "cube")
    with pytest.raises(GraphError, match="unknown primitive 'cube'"):
        b = Builder()
        b.node(row, [b.input("X", (2,))])


def test_depth_size_and_expand_carry_the_new_symbol(cube):
    b = Builder()
    x = b.input("X", (3,))
    b.output("out", b.add(b.node(cube, [b.node(cube, [x])]), x))
    result = depth(b.graph)
    assert result.critical == [vec(d_std=1, d_cube=2)] == [(1,) + (0,) * (len(BASE_SYMBOLS) - 1) + (2,)]
    assert fmt(result.critical[0]) == "d_std + 2 d_cube"
    assert result.per_symbol["d_cube"] == 2
    assert result.as_dict()["critical"] == [{**dict.fromkeys(SHOWN, 0), "d_std": 1, "d_cube": 2}]
    assert result.holds("d_std + 2 d_cube") and not result.holds("d_std + d_cube")
    counts = size(b.graph)
    assert counts.by_primitive == {"cube": 6, "add": 3} and counts.total == 9
    g = expand(b.graph)
    assert sorted(d["symbol"] for _, d in g.nodes(data=True) if d["prim"] == "cube") == ["d_cube"] * 6
    assert scalar_depth(g) == result.critical


def test_evaluate_rounds_the_new_primitive_once(cube):
    b = Builder()
    x = b.input("X", (4,))
    b.output("y", b.node(cube, [x]))
    p = 8
    inputs = [Fraction(3, 2), Fraction(-5, 4), Fraction(133, 128), Fraction(1, 3)]
    got = evaluate(b.graph, p, {"X": np.array(inputs, dtype=object)})["y"]
    for value, q in zip(got, inputs):
        entered = round_fraction(q, p)
        assert fp.Format(p).to_fraction(value) == round_fraction(entered**3, p)
    # 133/128 is an 8-bit value: rounding a³ once differs from rounding a², then a²·a
    once = round_fraction(Fraction(133, 128) ** 3, p)
    twice = round_fraction(round_fraction(Fraction(133, 128) ** 2, p) * Fraction(133, 128), p)
    assert once != twice and fp.Format(p).to_fraction(got[2]) == once


def test_exports_carry_the_new_symbol(cube, tmp_path):
    b = Builder()
    b.output("out", b.node(cube, [b.input("X", (2,))]))
    result = depth(b.graph)
    document = to_json(b.graph, result)
    assert document["critical"] == [{**dict.fromkeys(SHOWN, 0), "d_cube": 1}]
    assert [n["prim"] for n in document["nodes"]] == ["input", "cube"]
    again = from_json(json.loads(json.dumps(document)))
    assert depth(again).critical == result.critical
    to_graphml(b.graph, tmp_path / "g.graphml", result)
    assert 'd_cube' in (tmp_path / "g.graphml").read_text(encoding="utf-8")


def test_cli_json_and_text_reports_carry_the_new_symbol(cube, tmp_path):
    from tc0sim.cli.main import main

    register(Kind("cube_chain", ("n",), cube_chain, "test"))
    try:
        path = tmp_path / "cube.yaml"
        path.write_text("kind: cube_chain\nprecision: 8\ndims: {n: n}\nn: 3\n", encoding="utf-8")
        result = CliRunner().invoke(main, ["depth", str(path), "--format", "json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        expected = {**dict.fromkeys(SHOWN, 0), "d_std": 1, "d_cube": 1}
        assert report["depth"]["critical"] == [expected] and report["depth"]["linear"] == ["d_std + d_cube"]
        assert report["depth"]["witness"][0]["by_operator"][0]["gates"] == ["cube", "add"]
        assert report["size"]["by_primitive"] == {"add": 3, "cube": 3}
        text = CliRunner().invoke(main, ["depth", str(path), "--format", "text", "--set", "d_cube=5"])
        assert text.exit_code == 0, text.output
        header = next(line for line in text.output.splitlines() if "depth (linear form)" in line)
        assert header.split()[-2:] == ["d_cube", "┃"]  # the critical-depth table ends with a d_cube column
        assert "d_cube=5: 6 " in text.output  # d_std + d_cube at d_std = 1, d_cube = 5
        sized = CliRunner().invoke(main, ["size", str(path), "--n", "2,3,4", "--format", "text"])
        assert sized.exit_code == 0, sized.output
        assert "cube" in sized.output and "size(n) = 2 n" in sized.output
    finally:
        KINDS.pop("cube_chain")


def test_a_primitive_without_a_kernel_is_a_named_error():
    with scratch_primitive(elementwise("cube", "d_cube", 1, "rounded", "round_p(a^3)")) as row:  # no fp.kernel("cube", ...)
        b = Builder()
        b.output("y", b.node(row, [b.input("X", (2,))]))
        assert depth(b.graph).critical == [as_vec("d_cube")]
        with pytest.raises(MissingRuleError, match="cube") as info:
            evaluate(b.graph, 8)
        assert isinstance(info.value, MissingKernelError) and info.value.primitive == "cube"
        with pytest.raises(MissingRuleError, match="cube"):
            fp.Format(8).apply("cube", fp.Format(8).one)
    assert SYMBOLS == BASE_SYMBOLS


@pytest.mark.parametrize(
    "row, problem",
    [
        (Primitive("bad", "d_std", 1, frozenset({"elementwise", "rounded"}), "no shape rule"), "no shape rule"),
        (Primitive("bad", "d_std", 1, frozenset({"elementwise", "rouned"}), "typo", primitives.shapes.same_shape), "unknown properties"),
        (Primitive("bad", "d_std", 1, frozenset({"elementwise"}), "", primitives.shapes.same_shape), "kernel"),
        (Primitive("bad", "d_std", 1, frozenset({"elementwise"}), "", primitives.shapes.same_shape, kernel="bad"), "exactly one"),
        (Primitive("add", "d_std", 2, frozenset({"elementwise", "rounded"}), "", primitives.shapes.same_shape, kernel="add"), "already defined"),
    ],
)
def test_an_inconsistent_row_is_refused(row, problem):
    with pytest.raises(GraphError, match=problem):
        with scratch_primitive(row):
            pass
    assert "bad" not in PRIMITIVES and SYMBOLS == BASE_SYMBOLS


def test_a_vector_of_the_wrong_length_is_an_error():
    from tc0sim.errors import ConfigError
    from tc0sim.ir.vectors import add, leq

    k = len(SYMBOLS)
    with pytest.raises(ConfigError, match=f"{k} entries"):
        add((1,) * k, (1,) * (k - 1))
    with pytest.raises(ConfigError, match=f"{k} entries"):
        leq((1,) * (k + 1), (1,) * (k + 1))
    with pytest.raises(ConfigError, match=f"{k} entries"):
        fmt((1, 2))


RATIONAL = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "max": max,
    "min": min,
    "compare": lambda a, b: Fraction(int(a < b)),
    "relu": lambda a: max(a, Fraction(0)),
    "neg": lambda a: -a,
}
"""The exact rational result of every primitive that has one (exp and sqrt have their own tests)."""


@pytest.mark.parametrize("name", sorted(RATIONAL))
def test_each_kernel_is_exact_or_rounds_once_as_its_row_says(name):
    """The row's ``exact``/``rounded`` decides the oracle: the exact result, or round_p of it."""
    row = PRIMITIVES[name]
    p = 6
    F = fp.Format(p)
    rng = np.random.default_rng(7)
    values = [Fraction(int(m), 2**5) * Fraction(2) ** int(e) for m, e in zip(rng.integers(-63, 64, 40), rng.integers(-3, 4, 40))]
    values = [v for v in values if v != 0]
    pairs = zip(values, values[1:]) if row.arity == 2 else ((v,) for v in values)
    for operands in pairs:
        exact = RATIONAL[name](*operands)
        want = exact if "exact" in row.properties else round_fraction(exact, p)
        assert "exact" not in row.properties or round_fraction(exact, p) == exact
        got = F.apply(name, *(F.round(v) for v in operands))
        assert F.to_fraction(got) == want, (name, operands)


def test_a_unary_wiring_primitive_needs_only_its_row():
    """``reverse`` (flip axis 0): its move rule alone gives depth, expand and evaluate their rules."""
    reverse = primitives.wiring("reverse", 1, primitives.shapes.same_shape, lambda node, arrays, fill: arrays[0][::-1], "flip axis 0")
    with scratch_primitive(reverse) as row:
        b = Builder()
        x = b.input("X", (3,))
        mixed = b.concat([b.exp(b.slice(x, 0, 0, 1)), b.slice(x, 0, 1, 3)])  # depths [d_exp, 0, 0]
        flipped = b.node(row, [mixed])  # depths [0, 0, d_exp]
        b.output("first", b.slice(flipped, 0, 0, 1))
        b.output("last", b.slice(flipped, 0, 2, 3))
        result = depth(b.graph)
        assert result.element_depths(b.graph.outputs["first"]) == [[zero()]]
        assert result.element_depths(b.graph.outputs["last"]) == [[vec(d_exp=1)]]
        assert scalar_depth(expand(b.graph)) == result.critical == [vec(d_exp=1)]
        assert size(b.graph).total == 1
        p = 8
        got = evaluate(b.graph, p, {"X": np.array([Fraction(1, 2), Fraction(3), Fraction(5)], dtype=object)})
        assert fp.Format(p).to_fraction(got["first"][0]) == 5
    assert "reverse" not in PRIMITIVES and not any(table.covers(row) for table in TABLES)


def test_a_format_made_earlier_sees_kernels_defined_and_removed_later():
    F = fp.Format(8)
    with pytest.raises(MissingKernelError):
        F.apply("cube", F.one)
    with cube_primitive():
        three_halves = F.round(Fraction(3, 2))
        assert F.to_fraction(F.apply("cube", three_halves)) == round_fraction(Fraction(27, 8), 8)
    with pytest.raises(MissingKernelError):
        F.apply("cube", F.one)


def test_rows_compare_by_identity_and_refuse_names():
    """A node holds its row; a name string is for the edges only (comparing with one is an error)."""
    import copy
    import pickle

    from tc0sim.ir.primitives import ADD, PAD

    b = Builder()
    node = b.graph.node(b.pad(b.input("X", (2,)), [(1, 0)]).node)
    assert node.prim is PAD and node.prim != ADD and node.prim.name == "pad" and primitive("pad") is PAD
    with pytest.raises(TypeError, match="pad"):
        node.prim == "pad"  # noqa: B015
    assert pickle.loads(pickle.dumps(node)).prim is PAD and copy.deepcopy(PAD) is PAD
    with pytest.raises(TypeError, match="keyed by Primitive"):
        SIZE_RULES["pad"] = SIZE_RULES[PAD]
    with pytest.raises(TypeError, match="keyed by Primitive"):
        SIZE_RULES.rule("pad")


def test_a_scratch_primitive_is_removed_even_when_its_block_fails():
    with pytest.raises(RuntimeError, match="inside"):
        with scratch_primitive(elementwise("cube", "d_cube", 1, "rounded", "round_p(a^3)")):
            raise RuntimeError("inside")
    assert "cube" not in PRIMITIVES and SYMBOLS == BASE_SYMBOLS
