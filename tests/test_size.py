"""The size interpreter on hand-built graphs: gates per primitive and operator, fan-in, live nodes only."""

from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder
from tc0sim.ops.matmul import matmul


def test_matmul_size_by_hand():
    b = Builder()
    b.output("out", matmul(b, b.input("X", (3, 5)), b.input("Y", (5, 7))))
    report = size(b.graph)
    assert report.by_primitive == {"mul": 3 * 5 * 7, "sum": 3 * 7}
    assert report.total == 105 + 21
    assert report.by_operator == {"matmul": 126}
    assert report.max_fan_in == {"sum": 5, "prod": 0}


def test_wiring_is_free_and_dead_nodes_do_not_count():
    b = Builder()
    x = b.input("x", (2, 3))
    b.exp(x)  # dead
    t = b.pad(b.transpose(b.neg(x), (1, 0)), [(1, 1), (0, 0)])  # 5 x 2, all wiring
    with b.scope("norm"):
        s = b.sqrt(b.prod(b.concat([t, t], axis=1), axis=(0,)))  # prod over 5 -> 4 gates, sqrt 4
    b.output("out", b.relu(s))
    report = size(b.graph)
    assert report.by_primitive == {"prod": 4, "sqrt": 4, "relu": 4}
    assert report.by_operator == {"norm": 8, "(top)": 4}
    assert report.total == 12
    assert report.max_fan_in["prod"] == 5
    assert report.as_dict()["total"] == 12


def test_full_reduction_is_one_gate():
    b = Builder()
    b.output("out", b.sum(b.input("x", (4, 6)), axis=None))
    report = size(b.graph)
    assert report.by_primitive == {"sum": 1} and report.max_fan_in["sum"] == 24


def test_counts_stay_exact_above_two_to_the_63():
    """A 2^22-cubed matmul has n³ + n² gates: Python ints, no int64 overflow, no float rounding."""
    n = 2**22
    b = Builder()
    b.output("out", matmul(b, b.input("X", (n, n)), b.input("Y", (n, n))))
    report = size(b.graph)
    assert report.total == n**3 + n**2 > 2**63
    assert type(report.total) is int and report.by_primitive["mul"] == n**3
