"""`@depth@100ms` windows are cut on the market clock: the same instants and contents in
every run, however the clock is stepped (what parity with a backtest using
`depth_conflation_ms = 100` needs; docs/emulator.md).

Hand-computed case (ms after t0, a multiple of 100 ms; prices in ticks, qty in lots):
   0  bid 6000000 x 5, ask 6000200 x 5     -> window ending at   0
  30  bid 6000100 x 2                      -> window ending at 100
 100  ask 6000300 x 1 (on the boundary)    -> window ending at 100
 101  bid 6000100 removed                  -> window ending at 200
 150  a trade (not depth)
"""

from __future__ import annotations

import numpy as np
from emu_helpers import make_emulator

from engine.types import EVENT_DTYPE, EventKind

T0 = 1_704_067_200_000_000_000
MS = 1_000_000
BID, ASK = 6_000_000, 6_000_200


def _rows(rows):
    """A one-chunk source of (ms after t0, kind, side, price, qty) rows."""
    out = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for k, (ms, kind, side, price, qty) in enumerate(rows):
        out[k] = (T0 + ms * MS, T0 + ms * MS, 0, int(kind), side, price, qty, 0)
    return [out]


def _source():
    return _rows([(0, EventKind.BOOK_DELTA, 1, BID, 5), (0, EventKind.BOOK_DELTA, -1, ASK, 5),
                  (30, EventKind.BOOK_DELTA, 1, BID + 100, 2),
                  (100, EventKind.BOOK_DELTA, -1, ASK + 100, 1),
                  (101, EventKind.BOOK_DELTA, 1, BID + 100, 0),
                  (150, EventKind.TRADE, -1, BID, 1),
                  (5_000, EventKind.BOOK_DELTA, 1, BID, 6)])


def _windows(tmp_path, stops_ms):
    """Advance the market clock through `stops_ms` and collect the closed windows
    (end ms after t0, bids, asks); the server's own pump publishes nothing in between
    (each stop advances and takes in one call on the server's loop)."""
    got = []
    with make_emulator(tmp_path, ids=("binance:BTC/USDT",), source=_source()) as emu:
        def go(server, m):
            ex = server.exchange
            ex.clock.step_to(m)
            ex.advance()
            return ex.take_depth_updates()
        start = emu.call(lambda server: go(server, T0))  # the window ending at t0 (the opening book)
        assert [(end - T0, bids, asks) for end, _, (_, _, bids, asks) in start] in (
            [], [(0, [(BID, 5)], [(ASK, 5)])])  # [] when the server's pump took it first
        for ms in stops_ms:
            for end, k, (_, _, bids, asks) in emu.call(lambda server, m=T0 + ms * MS: go(server, m)):
                got.append(((end - T0) // MS, k, bids, asks))
    return got


def test_windows_fall_on_the_market_clock_grid(tmp_path):
    got = _windows(tmp_path / "a", [50, 99, 100, 199, 200, 250])
    assert [(end, bids, asks) for end, _, bids, asks in got] == [
        (100, [(BID + 100, 2)], [(ASK + 100, 1)]),
        (200, [(BID + 100, 0)], []),
    ]


def test_the_same_windows_however_the_clock_is_stepped(tmp_path):
    fine = _windows(tmp_path / "a", list(range(1, 251, 7)) + [250])
    coarse = _windows(tmp_path / "b", [250])
    assert fine == coarse and [w[0] for w in coarse] == [100, 200]


def _own_fill_source():
    """Bid BID x 5 / ask ASK x 5 from t0; at 150 ms a buyer takes 1 BTC at BID + 100."""
    return _rows([(0, EventKind.BOOK_DELTA, 1, BID, 5), (0, EventKind.BOOK_DELTA, -1, ASK, 5),
                  (150, EventKind.TRADE, 1, BID + 100, 100_000),
                  (5_000, EventKind.BOOK_DELTA, 1, BID, 6)])


def _own_windows(tmp_path, stops_ms):
    """alice rests a sell of 20 lots at BID + 100 at 10 ms (acknowledged at once: no
    latency); the trade at 150 ms fills it. The closed windows (end ms, bids, asks) as the
    clock goes through `stops_ms`."""
    got = []
    venue = {"taker_fee_bps": 10, "maker_fee_bps": 2, "latency": {"entry_ns": 0, "response_ns": 0, "feed_ns": 0}}
    with make_emulator(tmp_path, ids=("binance:BTC/USDT",), source=_own_fill_source(), venue=venue) as emu:
        def go(server, m, order=False):
            ex = server.exchange
            ex.clock.step_to(m)
            if order:
                alice = next(a for a in ex.accounts if a.name == "alice")
                ex.new_order(alice, 0, -1, "LIMIT", "GTC", BID + 100, 20, None, "own-1", None)
            ex.advance()
            return ex.take_depth_updates()
        emu.call(lambda server: go(server, T0))
        for ms in [10, *stops_ms]:
            for end, _, (_, _, bids, asks) in emu.call(lambda server, m=T0 + ms * MS, o=ms == 10: go(server, m, o)):
                got.append(((end - T0) // MS, bids, asks))
    return got


def test_an_own_fill_is_in_the_window_of_its_time(tmp_path):
    """The fill at 150 ms takes the order out of the window ending at 200, also when one
    step of the clock runs from before the fill past that window's end (140 -> 210 ms, or
    10 -> 250 ms): before session 10 the change went into the window after the step
    (300), and a session saw its filled order resting for another 100 ms."""
    expected = [(100, [], [(BID + 100, 20)]), (200, [], [(BID + 100, 0)])]
    assert _own_windows(tmp_path / "fine", list(range(11, 251, 7)) + [250]) == expected
    assert _own_windows(tmp_path / "split", [140, 210, 250]) == expected
    assert _own_windows(tmp_path / "coarse", [250]) == expected
