"""Bench results files (bench/results.py) and their comparison (bench/compare.py), on small
real runs of the race (bench/bench_sim.py): nothing here asserts a speed."""

from __future__ import annotations

import json
import os
import platform

import numba
import pytest

from bench import bench_sim, compare
from bench.nautilus import run_peer
from bench.results import Row, load

SMALL = ["--events", "4000", "--repeat", "1", "--engine", "ours", "--no-start", "--nautilus", "no"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The same small race run twice, each writing its results file."""
    tmp = tmp_path_factory.mktemp("bench")
    paths = []
    for name in ("a.json", "b.json"):
        path = tmp / name
        assert bench_sim.main([*SMALL, "--cases", "replay,mm", "--json", str(path)]) == 0
        paths.append(path)
    return paths


def test_results_file_holds_every_row_with_machine_facts(two_runs):
    data = load(two_runs[0])
    assert data["bench"] == "bench_sim"
    assert data["machine"]["cores"] == os.cpu_count()
    assert len(data["machine"]["load_average"]) == 3 and len(data["machine"]["load_average_end"]) == 3
    assert data["build"]["python"] == platform.python_version()
    assert data["build"]["numba"] == numba.__version__
    assert data["feed"]["events"] == 4000
    rows = {r["name"]: r for r in data["rows"]}
    for name in ("replay: tickparity", "market maker: tickparity", "market maker: tickparity core only",
                 "market maker: tickparity compiled nb", "market maker: tickparity backtest compiled",
                 "market maker: tickparity backtest python"):
        row = rows[name]
        assert row["unit"] == "ev/s" and row["better"] == "higher"
        # the figure is the rate by CPU time of the run it describes
        assert row["figure"] == pytest.approx(row["detail"]["events"] / row["detail"]["cpu_s"])
        assert row["detail"]["events"] == 4000
    assert rows["warm-up: tickparity"]["unit"] == "s" and rows["warm-up: tickparity"]["better"] == "lower"


def test_backtest_end_to_end_row_runs_the_same_market_maker(two_runs):
    """`tickparity backtest` (run_backtest, Parquet store in, run directory out) on the race's
    feed places and fills the same orders as the race's session row."""
    rows = {r["name"]: r for r in load(two_runs[0])["rows"]}
    session = rows["market maker: tickparity"]["detail"]["counts"]
    for name in ("market maker: tickparity backtest compiled", "market maker: tickparity backtest python"):
        counts = rows[name]["detail"]["counts"]
        assert counts["submits"] == session["submits"] > 0
        assert counts["fill events"] == session["fill events"] > 0
        assert counts["audit records"] > counts["submits"]  # decision + request + responses per order
        assert counts["run dir MB"] > 0


def test_compare_prints_every_row_with_its_change(two_runs, capsys):
    a, b = (load(p) for p in two_runs)
    capsys.readouterr()
    assert compare.main([str(two_runs[0]), str(two_runs[1])]) == 0
    out = capsys.readouterr().out
    rows_b = {r["name"]: r for r in b["rows"]}
    for row in a["rows"]:
        line = next(ln for ln in out.splitlines() if ln.startswith(row["name"] + " "))
        other = rows_b[row["name"]]["figure"]
        pct = (other - row["figure"]) / row["figure"] * 100
        assert f"{pct:+.1f}%" in line
    assert a["build"]["git_commit"][:10] in out


def test_compare_marks_direction_and_missing_rows():
    a = {"rows": [{"name": "rate", "figure": 100.0, "unit": "ev/s", "better": "higher"},
                  {"name": "time", "figure": 10.0, "unit": "us", "better": "lower"},
                  {"name": "gone", "figure": 1.0, "unit": "s", "better": "lower"}]}
    b = {"rows": [{"name": "rate", "figure": 90.0, "unit": "ev/s", "better": "higher"},
                  {"name": "time", "figure": 8.0, "unit": "us", "better": "lower"},
                  {"name": "new", "figure": None, "unit": "ev/s", "note": "not measured (x)"}]}
    by = {r["name"]: r for r in compare.compare_rows(a, b)}
    assert by["rate"]["change_pct"] == pytest.approx(-10.0) and by["rate"]["improved"] is False
    assert by["time"]["change_pct"] == pytest.approx(-20.0) and by["time"]["improved"] is True
    assert by["gone"]["b"] is None and by["gone"]["change_pct"] is None
    assert by["new"]["a"] is None and by["new"]["note"] == "not measured (x)"


def test_row_ratio_follows_the_unit_direction():
    assert Row("r", 200.0, "ev/s", peer_figure=100.0).ratio == pytest.approx(2.0)
    assert Row("t", 5.0, "us", "lower", peer_figure=10.0).ratio == pytest.approx(2.0)
    with pytest.raises(ValueError, match="better"):
        Row("x", 1.0, "s", "faster")


def test_compare_rejects_a_file_that_is_not_results(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rows": []}))
    good = tmp_path / "missing.json"
    assert compare.main([str(bad), str(good)]) == 2
    assert f"{bad}: not a tickparity bench results file" in capsys.readouterr().err


def test_nautilus_not_measured_says_why(tmp_path, monkeypatch):
    import numpy as np

    from bench.feed import FeedSpec, generate_feed

    missing = tmp_path / "no-venv" / "bin" / "python"
    monkeypatch.setenv("TICKPARITY_NAUTILUS_PYTHON", str(missing))
    feed = generate_feed(FeedSpec(events=100, seed=1))
    out = run_peer(feed, tmp_path)
    assert out["result"] is None and str(missing) in out["reason"]
    with pytest.raises(RuntimeError, match="NautilusTrader not measured"):
        run_peer(feed, tmp_path, required=True)
    assert isinstance(feed, np.ndarray)
