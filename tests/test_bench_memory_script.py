"""scripts/bench_memory.py's tables: one Markdown table per section, failed rows kept in place with their error."""

from fixtures.scripts import load_script


def test_print_table_writes_rows_and_failed_rows_under_one_header(capsys):
    module = load_script("bench_memory")
    rows = [{"frames": 10, "seconds": 1.234}, {"frames": 20, "error": "decoder crashed"}]
    module.print_table(["frames", "seconds", "peak"], rows, lambda r: [r["frames"], f"{r['seconds']:.2f}", 7],
                       lambda r: [r["frames"]])
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["| frames | seconds | peak |", "|---|---|---|", "| 10 | 1.23 | 7 |",
                     "| 20 | failed: decoder crashed | - |"]
