"""Book rows before the first snapshot describe a book nobody knows (issue 9, point 3).

They are dropped and counted (`before_snapshot`, a warning) by every importer (through
`check_merged`), by `data check FILE --format F`, and flagged by `data check STORE`.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq

from engine.types import EVENT_DTYPE, EventKind, load_instruments
from modes.cli import main
from replay import open_source
from replay.book import unknown_book_rows
from replay.schema import StoredInstrument
from replay.stores import open_store

BTC = "binance:BTC/USDT"
# the file: a bid 60000 x 9 before the first is_snapshot run
TARDIS = """exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
binance,BTCUSDT,1723075200100000,1723075200101000,false,bid,60000.00,9.0
binance,BTCUSDT,1723075200200000,1723075200201000,true,bid,59999.00,1.0
binance,BTCUSDT,1723075200200000,1723075200201000,true,ask,60001.00,1.0
binance,BTCUSDT,1723075201000000,1723075201001000,false,bid,59999.00,2.0
binance,BTCUSDT,1723075202000000,1723075202001000,false,ask,60001.00,3.0
"""
STRATEGY = """
from engine import Strategy


class SellAt(Strategy):
    def __init__(self, at_ns: int = 0):
        self.at_ns = at_ns

    def on_start(self, ctx):
        self.inst = ctx.instruments[0]
        ctx.schedule(at_ns=self.at_ns)

    def on_timer(self, ctx, ts):
        ctx.submit(self.inst, "sell", "1", "60000.00", tif="IOC")
"""


def test_unknown_book_rows_rule():
    k = EventKind
    kinds = np.array([k.BOOK_DELTA, k.TRADE, k.SNAPSHOT_BEGIN, k.BOOK_DELTA, k.SNAPSHOT_END,
                      k.BOOK_DELTA, k.CLEAR, k.BOOK_DELTA, k.TRADE, k.SNAPSHOT_BEGIN, k.BOOK_DELTA],
                     dtype=np.uint8)
    mask, known = unknown_book_rows(kinds)
    assert np.flatnonzero(mask).tolist() == [0, 7]  # before any snapshot, after the CLEAR
    assert known
    # the state carries across chunks
    mask2, known2 = unknown_book_rows(kinds[7:8], known_before=False)
    assert mask2.tolist() == [True] and not known2
    mask3, _ = unknown_book_rows(np.array([k.BOOK_DELTA], np.uint8), known_before=True)
    assert mask3.tolist() == [False]


def test_tardis_rows_before_the_first_snapshot_never_fill(tmp_path, capsys, request):
    csv = tmp_path / "book.csv"
    csv.write_text(TARDIS)
    store = f"duckdb:{tmp_path / 't.duckdb'}"
    assert main(["data", "import", "--format", "tardis", str(csv), "--to", store]) == 0
    out = capsys.readouterr().out
    assert "WARNING before_snapshot: 1" in out
    assert f"{csv}:2: BOOK_DELTA side=1 local_ts=1723075200101000000" in out
    insts = load_instruments()
    ev = np.concatenate(list(open_source(store, {BTC: insts[BTC]})))
    assert ev["kind"][0] == EventKind.SNAPSHOT_BEGIN and len(ev) == 6
    assert not (ev["price"] == 6_000_000).any()
    # `data check FILE --format` counts the same rows
    assert main(["data", "check", "--format", "tardis", str(csv)]) == 0
    assert "WARNING before_snapshot: 1" in capsys.readouterr().out
    # the order: IOC sell 1 @ 60000.00 sent at local ...150 ms, no latency
    (tmp_path / "sell.py").write_text(STRATEGY)
    (tmp_path / "run.toml").write_text(
        f'[run]\nstrategy = "sell.py:SellAt"\ndata = "{store}"\ninstruments = ["{BTC}"]\n'
        'from = "1723075200100000000"\nto = "1723075203000000000"\n'
        "[run.params]\nat_ns = 1723075200150000000\n"
        "[venues.binance]\nlatency = { entry_ns = 0, response_ns = 0, feed_ns = 0 }\n"
        'balances = { USDT = "0", BTC = "1" }\n'
    )
    run = tmp_path / "run"
    assert main(["backtest", "--config", str(tmp_path / "run.toml"), "--out", str(run), "--no-report"]) == 0
    assert pq.read_table(run / "fills.parquet").num_rows == 0
    orders = pq.read_table(run / "orders.parquet").to_pylist()
    assert len(orders) == 1 and orders[0]["filled_qty"] in ("0", "0.00000") and orders[0]["created_ts"] == 1723075200150000000
    assert json.loads((run / "summary.json").read_text())["run"]["fills"] == 0


def test_store_check_flags_rows_before_a_snapshot(tmp_path, capsys):
    """A store written by another tool (or an older tickparity) may hold such rows."""
    insts = load_instruments()
    ev = np.zeros(5, EVENT_DTYPE)
    ev["local_ts"] = ev["exch_ts"] = np.arange(5) + 10**18
    ev["kind"] = [EventKind.BOOK_DELTA, EventKind.SNAPSHOT_BEGIN, EventKind.BOOK_DELTA,
                  EventKind.SNAPSHOT_END, EventKind.BOOK_DELTA]
    ev["side"] = [1, 0, 1, 0, -1]
    ev["price"] = [6_000_000, 0, 5_999_900, 0, 6_000_100]
    ev["qty"] = [900_000, 0, 100_000, 0, 100_000]
    store = f"duckdb:{tmp_path / 's.duckdb'}"
    with open_store(store, create=True) as st, st.begin_import({BTC: StoredInstrument.of(insts[BTC])}) as tx:
        tx.append(BTC, ev)
    capsys.readouterr()
    assert main(["data", "check", store]) == 0  # a warning, not an error
    out = capsys.readouterr().out
    assert "WARNING before_snapshot: 1" in out and f"{BTC} seq 0:" in out


def test_binance_ws_diffs_without_a_snapshot_are_counted(tmp_path, capsys):
    """binance-ws: diffs no snapshot line ever follows cannot be applied: counted as
    `before_snapshot` (the trades of the capture still import under --skip)."""
    from tests.replay.test_replay_importers import T0, _diff, _ms, _trade

    cap = tmp_path / "nosnap.txt"
    cap.write_text("\n".join([
        _diff(_ms(0), T0, 100, 105, [["100.00", "2.0"]], [["101.00", "1.5"]]),
        _diff(_ms(100), T0 + 100, 106, 110, [["100.50", "0.5"]], []),
        _trade(_ms(110), T0 + 110, 7001, "101.00", "0.25", False),
    ]) + "\n")
    store = f"duckdb:{tmp_path / 'w.duckdb'}"
    assert main(["data", "import", "--format", "binance-ws", str(cap), "--to", store, "--correct-skew"]) == 2
    assert main(["data", "import", "--format", "binance-ws", str(cap), "--to", store, "--correct-skew",
                 "--skip"]) == 0
    out = capsys.readouterr().out
    assert "WARNING before_snapshot: 2" in out and f"{cap}:1: BTCUSDT: 2 depth diffs" in out
    ev = np.concatenate(list(open_source(store, {BTC: load_instruments()[BTC]})))
    assert ev["kind"].tolist() == [EventKind.TRADE]
