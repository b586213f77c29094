"""The synthetic market: valid book, realistic shape, deterministic by seed."""

from __future__ import annotations

import numpy as np

from engine.types import EventKind
from replay.book import BookScanner
from replay.synthetic import generate
from replay.validate import Mode, Report, Rows, check_merged, check_part


def test_synthetic_book_is_valid_and_realistic(instruments):
    inst = instruments["binance:BTC/USDT"]
    ev = np.concatenate(list(generate([inst], 3, duration_ns=120 * 10**9, chunk_rows=50_000)))
    n = len(ev)
    assert 100_000 < n < 400_000  # ~1-2k events/s
    trades = ev["kind"] == EventKind.TRADE
    assert 0.07 < trades.mean() < 0.2
    # passes every validation check
    rows = Rows(inst, ev, np.zeros(n, np.uint16), np.arange(n, dtype=np.int64), ["synthetic"])
    report = Report()
    check_merged(check_part(rows, report, Mode.STRICT, False), report, Mode.STRICT)
    assert report.errors == {}, report.lines()
    assert (ev["local_ts"] >= ev["exch_ts"]).all()
    lat = ev["local_ts"] - ev["exch_ts"]
    assert 100_000 < np.median(lat) < 2_000_000  # a few hundred microseconds
    # book shape: ~20 levels a side, spread mean-reverting (mostly narrow), price moves
    scanner = BookScanner()
    _e, top, _c = scanner.scan(ev)
    ends = top[:, 0] > 0
    spread = top[ends, 2] - top[ends, 0]
    assert (spread > 0).all()
    assert np.median(spread) <= 40 and np.percentile(spread, 99) < 400
    bids, _bq, asks, _aq = scanner.levels()
    assert 15 <= len(bids) <= 30 and 15 <= len(asks) <= 30
    mid = (top[ends, 0] + top[ends, 2]) / 2
    assert mid.max() - mid.min() > 100  # > $1 of movement in 2 minutes
    # the start price sits on the instrument's grid near 60000
    assert abs(inst.ticks_to_price(int(mid[0])) - 60000) < 5
    # trades happen at the touch: buys at the best ask, sells at the best bid
    assert set(np.unique(ev["side"][trades]).tolist()) == {-1, 1}


def test_synthetic_flow_is_clustered(instruments):
    inst = instruments["binance:ETH/USDT"]
    ev = np.concatenate(list(generate([inst], 9, duration_ns=300 * 10**9)))
    per_second = np.bincount(((ev["exch_ts"] - ev["exch_ts"][0]) // 10**9).astype(np.int64))
    # Hawkes-like clustering + regimes: counts are over-dispersed (variance >> mean)
    assert per_second.var() > 3 * per_second.mean()


def test_other_assets_start_at_100_on_grid(instruments):
    inst = instruments["binance:SOL/USDT"]
    ev = np.concatenate(list(generate([inst], 1, duration_ns=5 * 10**9)))
    book = ev[ev["kind"] == EventKind.BOOK_DELTA]
    assert abs(float(inst.ticks_to_price(int(np.median(book["price"])))) - 100) < 2
