"""Repeated trade ids through the CLI (issue 9, point 4): a verbatim repeat and an id
that repeats with other content are two problems, each named with its count and first
file:line; --repair keeps the conflicting trade (real volume), --skip drops both, and
`data check STORE` does not flag again what an import kept on purpose."""

from __future__ import annotations

import numpy as np
import pytest

from engine.types import EventKind, load_instruments
from modes.cli import main
from replay import open_source

BTC = "binance:BTC/USDT"
# aggTrades: agg_trade_id, price, quantity, first_trade_id, last_trade_id, transact_time,
# is_buyer_maker, is_best_match
AGG = """1,61000.00,0.10000,11,11,1723161250100,true,true
2,61000.01,0.20000,12,12,1723161250200,false,true
2,61000.01,0.20000,12,12,1723161250200,false,true
3,61000.02,0.30000,13,13,1723161250300,true,true
3,61000.03,0.40000,14,14,1723161250300,true,true
4,61000.04,0.50000,15,15,1723161250400,false,true
"""


def _trades(store):
    ev = np.concatenate(list(open_source(store, {BTC: load_instruments()[BTC]})))
    ev = ev[ev["kind"] == EventKind.TRADE]
    return list(zip(ev["order_id"].tolist(), ev["price"].tolist(), strict=True))


@pytest.fixture
def agg_file(tmp_path):
    path = tmp_path / "BTCUSDT-aggTrades-2024-08-08.csv"
    path.write_text(AGG)
    return path


def test_default_refuses_naming_both_kinds(agg_file, tmp_path, capsys):
    store = f"duckdb:{tmp_path / 'a.duckdb'}"
    assert main(["data", "import", "--format", "binance-public", str(agg_file), "--to", store]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1
    assert (f"conflicting_trade_id 1 (first at {agg_file}:5), duplicate_trade_id 1 (first at {agg_file}:3)"
            in err[0])
    assert f"{agg_file}:5: trade id 3: 61000.03 x 0.40000 side -1 exch_ts 1723161250300000000 differs from " \
           f"{agg_file}:4: 61000.02 x 0.30000" in captured.out
    assert not (tmp_path / "a.duckdb").exists()  # refused: nothing written


def test_repair_keeps_conflicting_trades_and_check_agrees(agg_file, tmp_path, capsys):
    store = f"duckdb:{tmp_path / 'r.duckdb'}"
    assert main(["data", "import", "--format", "binance-public", str(agg_file), "--to", store,
                 "--repair"]) == 0
    out = capsys.readouterr().out
    assert "WARNING conflicting_trade_id: 1" in out and "ERROR   duplicate_trade_id: 1" in out
    assert "kept 1 trades whose id repeats with other content" in out
    assert _trades(store) == [(1, 6100000), (2, 6100001), (3, 6100002), (3, 6100003), (4, 6100004)]
    # the store check does not flag the kept trade again (exit 0) but says it is there
    assert main(["data", "check", store]) == 0
    out = capsys.readouterr().out
    assert "conflicting_trade_id" not in out and "duplicate_trade_id" not in out
    assert "1 trades repeat an earlier trade id with other content (kept at import by --repair" in out
    # re-importing the same file is refused by its digest; forced, with --repair, every
    # trade is already in the store verbatim and none is added
    assert main(["data", "import", "--format", "binance-public", str(agg_file), "--to", store,
                 "--repair"]) == 2
    assert "already imported" in capsys.readouterr().err
    assert main(["data", "import", "--format", "binance-public", str(agg_file), "--to", store,
                 "--repair", "--force"]) == 0
    assert len(_trades(store)) == 5


def test_skip_drops_both_kinds(agg_file, tmp_path, capsys):
    store = f"duckdb:{tmp_path / 's.duckdb'}"
    assert main(["data", "import", "--format", "binance-public", str(agg_file), "--to", store,
                 "--skip"]) == 0
    assert _trades(store) == [(1, 6100000), (2, 6100001), (3, 6100002), (4, 6100004)]
    assert main(["data", "check", store]) == 0


def test_conflict_with_the_store(agg_file, tmp_path, capsys):
    store = f"duckdb:{tmp_path / 'c.duckdb'}"
    assert main(["data", "import", "--format", "binance-public", str(agg_file), "--to", store, "--skip"]) == 0
    other = tmp_path / "BTCUSDT-aggTrades-2024-08-09.csv"
    other.write_text("4,61000.05,0.50000,15,15,1723161250400,false,true\n"
                     "5,61000.06,0.10000,16,16,1723161250500,false,true\n")
    capsys.readouterr()
    assert main(["data", "import", "--format", "binance-public", str(other), "--to", store]) == 2
    assert f"conflicting_trade_id 1 (first at {other}:1)" in capsys.readouterr().err
    assert main(["data", "import", "--format", "binance-public", str(other), "--to", store, "--repair"]) == 0
    assert _trades(store)[-3:] == [(4, 6100004), (4, 6100005), (5, 6100006)]
