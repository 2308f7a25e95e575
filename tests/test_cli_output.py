"""Long report tables are summarised (witness paths by ``summarised``, size tables by their largest
rows) and printed in full on request."""

from __future__ import annotations

from tc0sim.reports.base import SUMMARY_ROWS, summarised
from tc0sim.reports.size import size_sections as _size_sections


def _report(count: int) -> dict:
    by_operator = {f"model/block{k:03d}": 10 * k + 1 for k in range(count)}
    return {"total": sum(by_operator.values()), "by_primitive": {"add": sum(by_operator.values())}, "by_operator": by_operator}


def _by_gates(by_operator: dict) -> list[str]:
    return [name for name, _ in sorted(by_operator.items(), key=lambda kv: (-kv[1], kv[0]))]


def test_short_size_table_is_printed_whole_most_gates_first():
    report = _report(2 * SUMMARY_ROWS + 1)
    rows = _size_sections(report)[1].rows
    assert [r[0] for r in rows] == _by_gates(report["by_operator"])
    assert rows[0][0] == f"model/block{2 * SUMMARY_ROWS:03d}"  # 10 k + 1 grows with k


def test_long_size_table_keeps_the_largest_rows_and_sums_the_rest_with_its_share():
    report = _report(1000)
    rows = _size_sections(report)[1].rows
    shown = 2 * SUMMARY_ROWS
    assert len(rows) == shown + 1
    assert [r[0] for r in rows[:shown]] == [f"model/block{k:03d}" for k in range(999, 999 - shown, -1)]
    hidden = sum(10 * k + 1 for k in range(1000 - shown))
    total = sum(10 * k + 1 for k in range(1000))
    last = rows[-1]
    assert f"{1000 - shown:,} more operators" in last[0] and "--full-path" in last[0]
    assert f"{100 * hidden / total:.1f} % of the gates" in last[0]
    assert last[1] == f"{hidden:,}"


def test_full_flag_prints_every_row():
    report = _report(1000)
    rows = _size_sections(report, full=True)[1].rows
    order = _by_gates(report["by_operator"])
    assert [r[0] for r in rows] == order
    assert [r[1] for r in rows] == [f"{report['by_operator'][name]:,}" for name in order]
    assert summarised(list(range(100)), lambda rest: None, full=True) == list(range(100))
