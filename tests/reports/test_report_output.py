"""write_report, summary.json merging, empty runs, errors, compare and the CLI."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from engine.errors import DataError, TickparityError
from modes import report_cmd as cli
from modes.cli import main as tickparity_main
from reports import compare_runs, write_report
from reports.report import REPORT_SECTIONS
from reports.synthetic import write_synthetic_run

HEADLINE_KEYS = {
    "net_pnl", "realized_pnl", "unrealized_pnl", "fees_paid", "rebates", "inventory_revaluation", "max_drawdown", "sharpe",
    "sortino", "turnover", "orders", "fills", "deliveries", "notional", "maker_share", "maker_notional_share", "fill_ratio",
    "cancel_to_fill_ratio", "arrival_slippage_bps", "vwap_slippage_bps", "implementation_shortfall_bps",
    "parent_implementation_shortfall_bps", "effective_spread_bps", "markout_1s_bps", "markout_60s_bps",
    "submit_to_ack_p50_ns", "submit_to_ack_p99_ns", "tick_to_order_p99_ns",
}
EXTERNAL = re.compile(r"<script|<link|<img|<iframe|@import|url\((?!#)|src=|href=\"(?!#)", re.IGNORECASE)


def test_write_report_merges_summary_and_keeps_run(hand_run: Path) -> None:
    summary_path = hand_run / "summary.json"
    original = json.loads(summary_path.read_text())
    original["invariants"] = [{"name": "max_drawdown", "ok": True, "detail": "20.29 < 100"}]
    summary_path.write_text(json.dumps(original))
    html = write_report(hand_run)
    assert html == hand_run / "report.html"
    summary = json.loads(summary_path.read_text())
    assert summary["run"] == original["run"]
    assert summary["invariants"] == original["invariants"]
    assert set(summary) == {"run", "invariants", *REPORT_SECTIONS}
    assert set(summary["headline"]) == HEADLINE_KEYS
    assert summary["report"]["schema_version"] == 2
    assert summary["report"]["html"] == "report.html"
    assert summary["markouts"]["horizons_ns"] == {"100ms": 10**8, "1s": 10**9, "5s": 5 * 10**9, "30s": 30 * 10**9,
                                                  "60s": 60 * 10**9, "5min": 300 * 10**9}
    # a second run of the report replaces its own sections and keeps the others
    write_report(hand_run)
    again = json.loads(summary_path.read_text())
    assert again == summary
    text = html.read_text()
    assert "Execution report" in text and "hand-1" in text
    assert "Scenario invariants" in text
    assert not EXTERNAL.search(text)
    assert "<svg" in text


def test_write_report_to_another_path(hand_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "r.html"
    assert write_report(hand_run, out) == out
    assert out.is_file()
    assert not (hand_run / "report.html").exists()
    assert json.loads((hand_run / "summary.json").read_text())["report"]["html"].endswith("r.html")


def test_empty_run_says_so(empty_run: Path) -> None:
    html = write_report(empty_run)
    text = html.read_text()
    assert "No fills in this run" in text
    summary = json.loads((empty_run / "summary.json").read_text())
    assert summary["fills"]["count"] == 0
    assert summary["orders"]["count"] == 0
    assert summary["headline"]["effective_spread_bps"] is None
    assert summary["latency"]["submit_to_ack_ns"]["p50"] is None
    assert "NaN" not in (empty_run / "summary.json").read_text()


def test_run_with_orders_but_no_fills_and_no_optional_files(runkit, tmp_path: Path) -> None:
    k = runkit
    orders = [k.order("A", "buy", "1", "0", "cancelled", k.T0 + k.S, ack_ts=k.T0 + k.S + k.MS,
                      cancel_req_ts=k.T0 + 2 * k.S, done_ts=k.T0 + 2 * k.S + k.MS, arrival_bid="99", arrival_ask="101")]
    run_dir = k.write_run(tmp_path / "run", fills=[], orders=orders)
    text = write_report(run_dir).read_text()
    assert "No fills in this run (1 orders, none filled)" in text
    assert "bbo.parquet" in text  # the missing files are named
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["report"]["missing_files"] == ["bbo.parquet", "trades.parquet", "equity.parquet",
                                                  "inventory.parquet", "config.json", "instruments.json"]
    assert summary["latency"]["cancel_to_ack_ns"]["p50"] == 10**6


def test_missing_required_file_names_it(tmp_path: Path, hand_run: Path) -> None:
    (hand_run / "fills.parquet").unlink()
    with pytest.raises(DataError, match="fills.parquet"):
        write_report(hand_run)
    with pytest.raises(DataError, match="does not exist"):
        write_report(tmp_path / "nope")


def test_missing_column_and_bad_side_are_named(runkit, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    k = runkit
    run_dir = k.write_run(tmp_path / "run", **k.hand_run_tables())
    table = pq.read_table(run_dir / "fills.parquet")
    pq.write_table(table.drop_columns(["liquidity"]), run_dir / "fills.parquet")
    with pytest.raises(DataError, match="liquidity"):
        write_report(run_dir)
    tables = k.hand_run_tables()
    tables["fills"][1]["side"] = "short"
    run_dir = k.write_run(tmp_path / "run2", **tables)
    with pytest.raises(DataError, match=r"row 1: side 'short'"):
        write_report(run_dir)


def test_compare_prints_differences_and_writes_html(hand_run: Path, runkit, tmp_path: Path) -> None:
    k = runkit
    tables = k.hand_run_tables()
    tables["fills"][0]["price"] = "100.5"  # B improves its fill
    tables["orders"][0]["avg_fill_price"] = "100.5"
    tables["config"]["run"]["seed"] = 2
    other = k.write_run(tmp_path / "other", **tables)
    out = tmp_path / "cmp.html"
    comparison = compare_runs(hand_run, other, out)
    assert comparison.html == out and out.is_file()
    rows = {r.key: r for r in comparison.rows}
    assert rows["arrival_slippage_bps"].delta < 0
    assert rows["arrival_slippage_bps"].verdict == "better"
    assert rows["fills"].verdict == ""
    assert ("run.seed", 1, 2) in comparison.config_diff
    text = comparison.text()
    assert "Arrival slippage (bps)" in text and "better" in text and "run.seed: 1 -> 2" in text
    html = out.read_text()
    assert "Run comparison" in html and not EXTERNAL.search(html)
    # compare leaves both run directories alone
    assert not (other / "report.html").exists()


def test_cli_report_and_compare(hand_run: Path, parent_run: Path, tmp_path: Path, capsys) -> None:
    assert tickparity_main(["report", str(hand_run)]) == 0
    out = capsys.readouterr().out
    assert str(hand_run / "report.html") in out
    target = tmp_path / "c.html"
    assert tickparity_main(["report", "compare", str(hand_run), str(parent_run), "--out", str(target)]) == 0
    out = capsys.readouterr().out
    assert "Net PnL" in out and str(target) in out
    assert target.is_file()


def test_cli_user_errors_are_one_line(tmp_path: Path, capsys) -> None:
    assert tickparity_main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    assert tickparity_main(["report", "compare", str(tmp_path)]) == 2
    assert "exactly two run directories" in capsys.readouterr().err
    assert tickparity_main(["report", "a", "b"]) == 2
    assert "report compare" in capsys.readouterr().err


def test_register_plugs_into_a_parser(hand_run: Path) -> None:
    parser = argparse.ArgumentParser(prog="tickparity")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.register(sub)
    args = parser.parse_args(["report", str(hand_run), "--out", str(hand_run / "x.html")])
    assert args.func(args) == 0
    assert (hand_run / "x.html").is_file()
    args = parser.parse_args(["report", "compare", str(hand_run)])
    with pytest.raises(TickparityError):
        args.func(args)


def test_synthetic_run_report_is_small(tmp_path: Path) -> None:
    """A mid-size run goes through; bench/bench_report.py times the million-fill one."""
    run_dir = write_synthetic_run(tmp_path / "syn", fills=20_000, seed=3, duration_s=1800)
    html = write_report(run_dir)
    size = html.stat().st_size
    assert size < 2_000_000, size
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["fills"]["count"] == 20_000
    assert summary["parents"]["count"] > 0
    assert summary["report"]["sampling"]["sampled"]  # the equity curve had to be sampled
    assert "Sampled for drawing" in html.read_text()


def test_report_is_deterministic(hand_run: Path) -> None:
    first = write_report(hand_run).read_bytes()
    summary = (hand_run / "summary.json").read_bytes()
    assert write_report(hand_run).read_bytes() == first
    assert (hand_run / "summary.json").read_bytes() == summary


def test_a_plot_that_fails_becomes_a_note(hand_run: Path, monkeypatch) -> None:
    from reports import plots

    def broken(*args, **kwargs):
        raise ValueError("no can do")

    monkeypatch.setattr(plots, "latency_figure", broken)
    text = write_report(hand_run).read_text()
    assert "The latency plot could not be drawn (ValueError: no can do)." in text
    summary = json.loads((hand_run / "summary.json").read_text())
    assert any("latency plot" in note for note in summary["report"]["notes"])


def test_decimation_keeps_spikes_and_ends() -> None:
    import numpy as np

    from reports.plots import decimate

    x = np.arange(100_000)
    y = np.zeros(100_000)
    y[12_345] = 50.0
    y[67_890] = -80.0
    xs, ys, sampled = decimate(x, y, max_points=400)
    assert sampled and len(xs) <= 400
    assert 12_345 in xs and 67_890 in xs and xs[0] == 0 and xs[-1] == 99_999
    assert ys.max() == 50.0 and ys.min() == -80.0
    assert decimate(x[:10], y[:10])[2] is False
