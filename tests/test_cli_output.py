"""Long report tables are summarised in one place (``summarised``) and printed in full on request."""

from __future__ import annotations

from tc0sim.reports.base import SUMMARY_ROWS, summarised
from tc0sim.reports.size import size_sections as _size_sections


def _report(count: int) -> dict:
    by_operator = {f"model/block{k:03d}": 10 * k + 1 for k in range(count)}
    return {"total": sum(by_operator.values()), "by_primitive": {"add": sum(by_operator.values())}, "by_operator": by_operator}


def test_short_size_table_is_printed_whole():
    report = _report(2 * SUMMARY_ROWS + 1)
    rows = _size_sections(report)[1].rows
    assert [r[0] for r in rows] == list(report["by_operator"])


def test_long_size_table_keeps_both_ends_and_sums_the_middle():
    report = _report(1000)
    names = list(report["by_operator"])
    rows = _size_sections(report)[1].rows
    assert len(rows) == 2 * SUMMARY_ROWS + 1
    assert [r[0] for r in rows[:SUMMARY_ROWS]] == names[:SUMMARY_ROWS]
    assert [r[0] for r in rows[-SUMMARY_ROWS:]] == names[-SUMMARY_ROWS:]
    skipped = names[SUMMARY_ROWS:-SUMMARY_ROWS]
    middle = rows[SUMMARY_ROWS]
    assert f"{len(skipped):,} more operators" in middle[0] and "--full-path" in middle[0]
    assert middle[1] == f"{sum(10 * k + 1 for k in range(SUMMARY_ROWS, 1000 - SUMMARY_ROWS)):,}"


def test_full_flag_prints_every_row():
    report = _report(1000)
    rows = _size_sections(report, full=True)[1].rows
    assert [r[0] for r in rows] == list(report["by_operator"])
    assert [r[1] for r in rows] == [f"{c:,}" for c in report["by_operator"].values()]
    assert summarised(list(range(100)), lambda rest: None, full=True) == list(range(100))
