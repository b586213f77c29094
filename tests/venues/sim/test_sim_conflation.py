"""Depth conflation (`[venues.X] depth_conflation_ms`): the local book sees a venue's book
rows only at the end of each publication window; trades and matching are unaffected.

Hand-computed case, interval 100 ms, rows at known times (ms):
  10  snapshot: bid 99 x 5, ask 101 x 5
  30  bid 100 x 2
 100  ask 101 removed, ask 102 x 4      (exactly on a boundary: published with that window)
 101  bid 100 removed
 150  trade (never held)
Windows are cut at ceil(t / 100 ms): the rows at 10, 30 and 100 ms reach the local book at
100 ms (bid 100 x 2, ask 102 x 4), the row at 101 ms at 200 ms (bid 99 x 5 again).
"""

from __future__ import annotations

import numpy as np
from sim_helpers import BUY, DELTA, FAR, SELL, SNAP_BEGIN, SNAP_END, TRADE, drain, events, make_core

from engine.types.orders import OrderType, TimeInForce
from venues.sim import SimVenueConfig, WakeKind

MS = 1_000_000


def _rows(feed_ms: int = 0):
    """The case above; local_ts = exch_ts + feed_ms (the run's feed latency, as
    engine.feed.apply_feed_latency stamps it before the simulated venue)."""
    def row(t_ms, kind, side, price, qty):
        return (t_ms * MS, kind, side, price, qty, 0, (t_ms + feed_ms) * MS)

    return events([
        row(10, SNAP_BEGIN, 0, 0, 0), row(10, DELTA, BUY, 99, 5), row(10, DELTA, SELL, 101, 5),
        row(10, SNAP_END, 0, 0, 0),
        row(30, DELTA, BUY, 100, 2),
        row(100, DELTA, SELL, 101, 0), row(100, DELTA, SELL, 102, 4),
        row(101, DELTA, BUY, 100, 0),
        row(150, TRADE, SELL, 99, 1),
    ])


def _book_at(core, t_ns):
    drain(core, t_ns)
    return core.local_bbo(0)


def test_the_local_book_at_each_instant():
    core = make_core(_rows(), depth_conflation_ms=100)
    assert _book_at(core, 99 * MS) == (0, 0, 0, 0)  # nothing published before the first window ends
    assert _book_at(core, 100 * MS) == (100, 2, 102, 4)
    assert _book_at(core, 199 * MS) == (100, 2, 102, 4)
    assert _book_at(core, 200 * MS) == (99, 5, 102, 4)


def test_without_conflation_the_book_follows_every_row():
    core = make_core(_rows())
    assert _book_at(core, 30 * MS) == (100, 2, 101, 5)
    assert _book_at(core, 101 * MS) == (99, 5, 102, 4)


def test_windows_are_cut_on_the_venue_clock_and_arrive_after_the_feed_latency():
    """feed_ns = 5 ms: the rows arrive at 15, 35, 105, 106 ms; the windows are still cut at
    the venue's 100 ms boundaries and the published diff arrives 5 ms after each."""
    core = make_core(_rows(feed_ms=5), depth_conflation_ms=100,
                     latency={"entry_ns": 0, "response_ns": 0, "feed_ns": 5 * MS})
    assert _book_at(core, 104 * MS) == (0, 0, 0, 0)
    assert _book_at(core, 105 * MS) == (100, 2, 102, 4)
    assert _book_at(core, 204 * MS) == (100, 2, 102, 4)
    assert _book_at(core, 205 * MS) == (99, 5, 102, 4)


def test_one_book_wake_per_published_window_and_trades_not_held():
    core = make_core(_rows(), depth_conflation_ms=100)
    wakes = drain(core, FAR, book=np.ones(1, bool), trade=np.ones(1, bool))
    seen = [(w.kind, w.ts) for w in wakes if w.kind in (WakeKind.BOOK, WakeKind.TRADE)]
    assert seen == [(WakeKind.BOOK, 100 * MS), (WakeKind.TRADE, 150 * MS), (WakeKind.BOOK, 200 * MS)]


def test_matching_uses_the_exchange_book_not_the_published_one():
    """A buy at 50 ms meets the ask of 101 on the exchange side although the local book is
    still empty (the venue has the row; it only has not published it)."""
    core = make_core(_rows(), depth_conflation_ms=100)
    drain(core, 50 * MS)
    assert core.local_bbo(0) == (0, 0, 0, 0)
    core.submit(1, 0, BUY, OrderType.LIMIT, TimeInForce.IOC, 101, 3, False, 0, 50 * MS)
    wakes = drain(core, 60 * MS)
    fills = [w.record for w in wakes if w.kind == WakeKind.ORDER and int(w.record["filled"])]
    assert [(int(r["price"]), int(r["qty"])) for r in fills] == [(101, 3)]


def test_the_ring_grows_and_keeps_the_order():
    """More held rows than the initial ring holds (4096): the book after the window is the
    last row's."""
    rows = [(1 * MS, DELTA, BUY, 100, 1 + k % 7) for k in range(10_000)]
    rows.append((1 * MS, DELTA, BUY, 100, 42))
    core = make_core(rows, depth_conflation_ms=100)
    assert _book_at(core, 99 * MS) == (0, 0, 0, 0)
    assert _book_at(core, 100 * MS) == (100, 42, 0, 0)


def test_config_key_and_hash():
    on = SimVenueConfig.from_table("sim", {"depth_conflation_ms": 100})
    off = SimVenueConfig.from_table("sim", {})
    assert on.depth_conflation_ns == 100 * MS and off.depth_conflation_ns == 0
    assert on.config_hash != off.config_hash
    assert off.config_hash == SimVenueConfig.from_table("sim", {"depth_conflation_ms": 0}).config_hash


def test_bad_values_name_the_key():
    import pytest

    from engine.errors import ConfigError

    for bad in (-1, 1.5, "100", True):
        with pytest.raises(ConfigError, match=r"\[venues.sim\] depth_conflation_ms"):
            SimVenueConfig.from_table("sim", {"depth_conflation_ms": bad})


def test_l3_rows_on_a_conflating_venue_are_refused():
    import pytest

    from engine.errors import ConfigError
    from engine.types.market import EventKind

    core = make_core([(1 * MS, EventKind.L3_ADD, BUY, 100, 1, 0, 1 * MS, 7)], depth_conflation_ms=100)
    with pytest.raises(ConfigError, match="depth_conflation_ms applies to L2 depth"):
        drain(core, FAR)
