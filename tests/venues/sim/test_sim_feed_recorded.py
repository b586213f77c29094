"""The recorded feed latency (`[venues.X.latency] feed_file`, venues/sim/latency.py
RecordedFeed): values pinned by hand."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import ConfigError
from engine.feed import apply_feed_latency
from engine.types import EVENT_DTYPE, EventKind
from venues.sim.config import SimVenueConfig
from venues.sim.latency import (
    FEED_BOOK,
    FEED_TRADE,
    RecordedFeed,
    load_recorded_feed,
    recorded_feed_shift,
)

MS = 1_000_000


def _file(tmp_path, lines):
    path = tmp_path / "feed_latency.csv"
    path.write_text("ts_ns,feed_ns,stream,instrument\n" + "".join(f"{x}\n" for x in lines))
    return path


def test_latency_is_interpolated_and_exact_at_records(tmp_path):
    path = _file(tmp_path, ["1000,10,book,binance:BTC/USDT", "2000,30,book,binance:BTC/USDT",
                            "1500,7,trade,binance:BTC/USDT", "1200,99,book,okx:BTC/USDT"])
    table = load_recorded_feed(str(path), "binance")
    assert table.tolist() == [[1000, 10, 0], [1500, 7, 1], [2000, 30, 0]]  # okx's line left out
    feed = RecordedFeed(table)
    # book: 10 before the first record, 10 + 20 * 250 / 1000 = 15 at 1250, 30 after the last
    assert feed.latency(np.array([0, 1000, 1250, 2000, 9000]), FEED_BOOK).tolist() == [10, 10, 15, 30, 30]
    assert feed.latency(np.array([0, 5000]), FEED_TRADE).tolist() == [7, 7]  # its own records


def test_a_window_reaches_the_strategy_with_the_next_recorded_message(tmp_path):
    # windows of 100 ms: the session recorded windows 100 and 400 ms (200 and 300 came merged
    # with 400: ccxt hands several messages out as one book, stamped with the last)
    path = _file(tmp_path, [f"{100 * MS},{3 * MS},book,binance:BTC/USDT",
                            f"{400 * MS},{20 * MS},book,binance:BTC/USDT"])
    feed = RecordedFeed(load_recorded_feed(str(path), "binance"), 100 * MS)
    windows = np.array([100, 200, 300, 400, 500]) * MS
    assert (feed.window_arrival(windows) // MS).tolist() == [103, 420, 420, 420, 520]
    # the last window a client had by 419 ms is the one of 100 ms; by 420 ms the one of 400 ms
    assert feed.first_window_seen(419 * MS) == 100 * MS
    assert feed.first_window_seen(420 * MS) == 400 * MS


def test_the_shift_keeps_the_data_order_and_stamps_each_window(tmp_path):
    path = _file(tmp_path, [f"{100 * MS},{5 * MS},book,binance:BTC/USDT",
                            f"{200 * MS},{2 * MS},book,binance:BTC/USDT",
                            f"{90 * MS},{30 * MS},trade,binance:BTC/USDT"])
    cfg = SimVenueConfig.from_table("binance", {"depth_conflation_ms": 100, "latency": {"feed_file": str(path)}})

    class Inst:
        venue = "binance"

    feed_ns, shift = recorded_feed_shift([Inst()], {"binance": cfg})
    assert feed_ns.tolist() == [0]
    rows = np.zeros(4, dtype=EVENT_DTYPE)
    rows["kind"] = [EventKind.BOOK_DELTA, EventKind.TRADE, EventKind.BOOK_DELTA, EventKind.BOOK_DELTA]
    rows["local_ts"] = np.array([50, 90, 95, 150]) * MS
    rows["exch_ts"] = rows["local_ts"]
    out = np.concatenate(list(apply_feed_latency([rows], feed_ns, shift)))
    # book rows: 50 + 5 = 55; the trade: 90 + 30 = 120, capped at its window's arrival 105;
    # the next book row no earlier (data order kept): 105; 150 + (5 + 50 * -3 / 100) = 153.5
    assert (out["local_ts"] / MS).tolist() == [55, 105, 105, 153.5]
    # each book row carries when its window reaches the strategy (windows 100, 100, 200 ms)
    assert (out["order_id"][[0, 2, 3]] // MS).tolist() == [105, 105, 202]


def test_feed_file_errors_name_the_key_and_line(tmp_path):
    path = _file(tmp_path, ["1000,10,depth,binance:BTC/USDT"])
    with pytest.raises(ConfigError, match=r"latency.feed_file .*feed_latency.csv:2: .*expected ts_ns,feed_ns"):
        SimVenueConfig.from_table("binance", {"latency": {"feed_file": str(path)}})
    with pytest.raises(ConfigError, match="no feed latency record of venue 'okx'"):
        SimVenueConfig.from_table("okx", {"latency": {"feed_file": str(_file(tmp_path, ["1,1,book,binance:X"]))}})
    with pytest.raises(ConfigError, match="latency.feed_file and latency.feed_ns: give one"):
        SimVenueConfig.from_table("binance", {"latency": {"feed_file": str(path), "feed_ns": 5}})
