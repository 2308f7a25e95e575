"""Long report tables are summarised in one place (``summarised``) and printed in full on request."""

from __future__ import annotations

from tc0sim.reports.size import size_sections as _size_sections
from tc0sim.cli.output import SUMMARY_ROWS, summarised


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


def test_depth_command_summarises_the_size_table_unless_full_path(tmp_path):
    from click.testing import CliRunner

    from tc0sim.cli.main import main

    model = tmp_path / "long.yaml"
    model.write_text(
        "kind: var\ndims: {h: 4, w: 4, c: 2}\nscales: 2\nlayers: 1\ng: ffn\nkernel: 3\n"
        "decoder: [" + ", ".join(["resnet"] * 20) + "]\n"
    )

    def size_rows(*extra: str) -> list[str]:
        out = CliRunner().invoke(main, ["depth", str(model), "--format", "markdown", *extra])
        assert out.exit_code == 0, out.output
        section = out.output.split("## size by operator", 1)[1].split("\n## ", 1)[0]
        return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| operator")]

    short, full = size_rows(), size_rows("--full-path")
    assert len(full) > 2 * SUMMARY_ROWS + 1 and len(short) == 2 * SUMMARY_ROWS + 1
    assert short[:SUMMARY_ROWS] == full[:SUMMARY_ROWS] and short[-SUMMARY_ROWS:] == full[-SUMMARY_ROWS:]
    assert f"{len(full) - 2 * SUMMARY_ROWS:,} more operators" in short[SUMMARY_ROWS]
