"""bench/bench_memory.py on a small real run: `tickparity backtest` in a child process,
its own peak RSS, and the results row."""

from __future__ import annotations

from bench import bench_memory
from bench.results import load


def test_memory_of_a_small_backtest_child(tmp_path, capsys):
    out = tmp_path / "mem.json"
    assert bench_memory.main(["--events", "20000", "--strategies", "python", "--keep", str(tmp_path / "w"),
                              "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    (row,) = load(out)["rows"]
    assert row["name"] == "memory: tickparity backtest python, 20,000 events: peak RSS"
    assert row["unit"] == "MB" and row["better"] == "lower"
    detail = row["detail"]
    assert detail["events"] == 20_000 and detail["orders"] > 0 and detail["fills"] > 0
    # a Python interpreter with numpy, numba and pyarrow loaded holds tens of MB at least;
    # the run's own peak comes before the CLI's headline, so it cannot exceed the process's
    assert 50 < detail["run_peak_rss_mb"] <= row["figure"]
    assert f"peak RSS {row['figure']:,.0f} MB" in printed
    # the run directory the child wrote is the CLI's
    assert (tmp_path / "w" / "run-python" / "summary.json").exists()
    assert (tmp_path / "w" / "run-python" / "audit.jsonl").exists()
