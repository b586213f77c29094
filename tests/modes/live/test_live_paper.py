"""Paper mode against the emulator's market (real ccxt.pro websockets on 127.0.0.1): the
backtest's simulated venue fed by live rows, a complete run directory, a deterministic
replay, and a tampered recording that reports its first different decision."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal

import numpy as np
import pyarrow.parquet as pq
import pytest
from live_helpers import session_config

from engine.audit import verify
from engine.types import EVENT_DTYPE, EventKind
from modes.live import run_live
from modes.live.recording import read_rows
from modes.live.replay import replay_session

PARAMS = {"refresh_ms": 100, "half_spread_bps": 0, "qty": "0.01"}


@pytest.fixture(scope="module")
def paper_run(live_emu, tmp_path_factory):
    out = tmp_path_factory.mktemp("paper") / "run"
    return run_live(session_config(live_emu, params=PARAMS), "paper", out, duration_s=3, health=False)


def test_a_paper_session_writes_a_run_directory_like_a_backtest(paper_run):
    for name in ("orders.parquet", "fills.parquet", "equity.parquet", "audit.jsonl", "report.html",
                 "config.json", "summary.json", "rows.bin", "market.duckdb", "session.jsonl", "latency.csv"):
        assert (paper_run / name).is_file(), name
    # testnet/live only (docs/live.md "Run directory"): a paper session has no user stream
    # to measure; a header-only file looked like a recording a backtest could read
    assert not (paper_run / "report_latency.csv").exists()
    summary = json.loads((paper_run / "summary.json").read_text())["run"]
    assert summary["mode"] == "paper"
    assert summary["orders"] > 0
    assert summary["open_orders"] == []  # the shutdown cancelled what was resting
    assert verify(paper_run / "audit.jsonl", summary["audit"]) == summary["audit"]["records"]
    orders = pq.read_table(paper_run / "orders.parquet").to_pylist()
    assert len(orders) == summary["orders"]
    assert all(o["status"] in ("filled", "cancelled", "rejected") for o in orders)


def test_paper_fills_follow_the_backtest_fee_rules(paper_run):
    """The simulated venue's fills: maker fills pay the maker rate, taker fills the taker rate
    (binance-spot-vip0 profile: 10 bps both), fee = price x qty x bps exactly."""
    fills = pq.read_table(paper_run / "fills.parquet").to_pylist()
    for f in fills:
        assert Decimal(f["fee"]) == Decimal(f["price"]) * Decimal(f["qty"]) * Decimal(10) / Decimal(10_000)
        assert f["liquidity"] in ("maker", "taker")


def test_the_received_rows_are_a_dataset(paper_run):
    """rows.bin holds what the session pushed; market.duckdb the same rows as a store a
    backtest reads (`duckdb:RUN/market.duckdb`)."""
    from replay.stores import open_store

    rows = read_rows(paper_run)
    assert len(rows) > 0 and rows.dtype == EVENT_DTYPE
    assert rows["kind"][rows["kind"] != EventKind.TRADE][0] == EventKind.SNAPSHOT_BEGIN  # a trade may come first
    assert np.all(np.diff(rows["local_ts"]) >= 0)
    assert not np.any((rows["kind"] == EventKind.TRADE) & (rows["side"] == 0))  # no heartbeat recorded
    with open_store(f"duckdb:{paper_run / 'market.duckdb'}") as store:
        stored = [c for c in store.stream("binance:BTC/USDT", None, None, 1 << 20)]
    stored = np.concatenate(stored)
    assert len(stored) == len(rows)
    assert np.array_equal(stored["price"], rows["price"]) and np.array_equal(stored["qty"], rows["qty"])


def test_paper_round_trips_are_recorded(paper_run):
    """latency.csv: one line per submit answered, entry + response = the simulated venue's
    round trip (profile: 5 ms + 5 ms)."""
    lines = (paper_run / "latency.csv").read_text().splitlines()
    assert lines[0] == "ts_ns,entry_ns,response_ns,command,seq,venue,entry_min_ns,entry_max_ns,held"
    rows = [line.split(",") for line in lines[1:]]
    assert rows
    assert all(int(e) + int(r) == 10_000_000 and seq == "" for _, e, r, _, seq, _, _, _ in rows)  # no venue seq in paper
    assert {row[5] for row in rows} == {"binance"}  # the order's venue (a backtest's [venues.binance] reads it)


def test_replay_of_a_paper_session_is_identical(paper_run, tmp_path):
    result = replay_session(paper_run, tmp_path / "replay")
    assert result.difference is None, result.difference.text()
    assert result.identical_files == ["orders.parquet", "fills.parquet", "equity.parquet", "summary.json ledger"]
    assert result.records == json.loads((paper_run / "summary.json").read_text())["run"]["audit"]["records"]


def test_a_tampered_recording_reports_the_first_decision_that_differs(paper_run, tmp_path):
    """Every book row 1 tick lower: the first quote is priced 1 tick lower; the replay stops
    at that submit decision, in on_timer, with both records."""
    copy = tmp_path / "tampered"
    shutil.copytree(paper_run, copy)
    rows = read_rows(copy)
    rows["price"][rows["kind"] == EventKind.BOOK_DELTA] -= 1
    (copy / "rows.bin").write_bytes(rows.tobytes())
    result = replay_session(copy, tmp_path / "replay")
    diff = result.difference
    assert diff is not None
    assert diff.callback == "on_timer"
    assert diff.expected["action"] == diff.actual["action"] == "submit"
    assert Decimal(diff.actual["price"]) == Decimal(diff.expected["price"]) - Decimal("0.01")
    assert diff.ts == diff.expected["ts"]
    assert "first difference" in diff.text()


def test_the_session_config_backtests_unchanged(paper_run, tmp_path):
    """The live keys of [venues.binance] (url, api_key_env, secret_env) are accepted by a
    backtest, here over the rows the session recorded."""
    from engine.config import resolve
    from modes.backtest import run_backtest

    config = resolve({"run": {"strategy": "examples/market_maker.py:MarketMaker",
                              "data": f"duckdb:{paper_run / 'market.duckdb'}", "instruments": ["binance:BTC/USDT"],
                              "params": PARAMS},
                      "venues": {"binance": {"url": "http://127.0.0.1:1", "exchange": "binance",
                                             "api_key_env": "K", "secret_env": "S",
                                             "balances": {"USDT": "10000000", "BTC": "100"}}}}, {}, base_dir=".")
    out = run_backtest(config, tmp_path / "bt", write_html=False)
    assert json.loads((out / "summary.json").read_text())["run"]["orders"] > 0


def test_a_feed_that_does_not_fit_the_instruments_is_one_error(live_emu, tmp_path):
    """Instrument specs coarser than the venue's prices: the first book is refused with a
    DataError naming the instrument and the price, not a session on a wrong book."""
    from dataclasses import replace

    from engine.errors import DataError

    specs = tmp_path / "instruments.toml"
    specs.write_text('["binance:BTC/USDT"]\nvenue_symbol = "BTCUSDT"\nbase = "BTC"\nquote = "USDT"\n'
                     'tick_size = "10"\nlot_size = "0.00001"\nmin_qty = "0.00001"\nmin_notional = "10"\n')
    config = replace(session_config(live_emu, params=PARAMS), instruments_file=str(specs))
    with pytest.raises(DataError, match=r"binance:BTC/USDT: (bid|ask|trade) price .* from the feed"):
        run_live(config, "paper", tmp_path / "run", duration_s=2, health=False, write_html=False)


def test_a_backtest_of_the_sessions_window(paper_run, tmp_path, capsys):
    """`tickparity backtest --session-window RUN`: --from / --to are the session's start and
    last step to the ns (from summary.json, else from session.jsonl when a crash left no
    summary), and the backtest of its market.duckdb runs over exactly that window."""
    from live_helpers import ROOT

    from modes.cli import main
    from modes.live.recording import read_journal, session_window

    summary = json.loads((paper_run / "summary.json").read_text())["run"]
    assert session_window(paper_run) == (summary["start_ts"], summary["end_ts"])
    crashed = tmp_path / "crashed"  # no summary.json: the journal gives the same window
    crashed.mkdir()
    shutil.copy(paper_run / "session.jsonl", crashed / "session.jsonl")
    steps = read_journal(crashed)
    last = [s["now"] for s in steps if "now" in s][-1]
    assert session_window(crashed) == (next(s["now"] for s in steps if s.get("start") == 1), last)
    assert session_window(crashed)[0] == summary["start_ts"]
    config = tmp_path / "bt.toml"
    config.write_text(f'[run]\nstrategy = "{ROOT / "examples" / "market_maker.py"}:MarketMaker"\n'
                      'instruments = ["binance:BTC/USDT"]\n')
    argv = ["backtest", "--config", str(config), "--data", f"duckdb:{paper_run / 'market.duckdb'}",
            "--session-window", str(paper_run), "--dry-run"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert str(summary["start_ts"])[-9:] in out.replace(".", "")  # all 9 fractional digits printed back
    # used as documented, the session's own data covers what it received: no `covers only`
    # warning (every session window warned: its rows end before its last step, the shutdown)
    assert "covers only" not in captured.err, captured.err
    assert main([*argv[:-1], "--out", str(tmp_path / "bt"), "--no-report"]) == 0
    assert "covers only" not in capsys.readouterr().err
    assert main([*argv[:-1], "--from", "1"]) == 2
    assert "--session-window sets --from and --to" in capsys.readouterr().err
    assert main(["backtest", "--config", str(config), "--session-window", str(tmp_path)]) == 2
    assert "not a paper, testnet or live session's run directory" in capsys.readouterr().err
