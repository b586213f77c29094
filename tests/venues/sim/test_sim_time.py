"""Time semantics: latency, FIFO requests, equal-time order, wakes, chunk boundaries."""

from __future__ import annotations

import numpy as np
import pytest
from sim_helpers import (
    BUY,
    DELTA,
    SELL,
    SNAP_BEGIN,
    SNAP_END,
    TRADE,
    drain,
    events,
    fills,
    instrument,
    make_core,
    orders,
)

from engine.errors import DataError
from engine.types.orders import OrderType, TimeInForce
from venues.sim import WakeKind

LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
GTC, IOC = TimeInForce.GTC, TimeInForce.IOC


def test_entry_and_response_latency_place_the_ack_and_fill():
    rows = [(0, DELTA, SELL, 101, 10), (100, DELTA, SELL, 101, 3), (130, DELTA, SELL, 101, 10)]
    core = make_core(rows, latency={"entry_ns": 100, "response_ns": 20})
    drain(core, 10)
    core.submit(1, 0, BUY, MARKET, IOC, 0, 5, False, 0, 10)  # sent 10, reaches venue at 110
    wakes = [w for w in drain(core) if w.kind == WakeKind.ORDER]
    # at 110 the venue's level is 3 (the update at 100), so 3 fill and 2 are cancelled
    assert [(w.ts, int(w.record["exch_ts"])) for w in wakes] == [(130, 110)] * 3
    assert fills(wakes) == [(1, 101, 3)]


def test_feed_row_at_the_arrival_time_is_applied_before_the_request():
    rows = [(0, DELTA, SELL, 101, 10), (110, DELTA, SELL, 101, 4)]
    core = make_core(rows, latency={"entry_ns": 100, "response_ns": 0})
    drain(core, 10)
    core.submit(1, 0, BUY, MARKET, IOC, 0, 5, False, 0, 10)  # arrives exactly at 110
    assert fills(drain(core)) == [(1, 101, 4)]


def test_requests_never_overtake_each_other():
    rows = [(0, DELTA, BUY, 99, 10)]
    lat = {"entry_ns": 100, "cancel_entry_ns": 1, "response_ns": 5}
    core = make_core(rows, latency=lat)
    drain(core, 10)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 5, False, 0, 10)  # arrives at 110
    core.cancel(1, 20)  # would arrive at 21, but queues behind the submit: 110
    wakes = [w for w in drain(core) if w.kind == WakeKind.ORDER]
    assert [(o[0], w.ts) for o, w in zip(orders(wakes), wakes, strict=True)] == [
        ("ACK", 115), ("CANCELLED", 115)]


def test_local_book_lags_the_exchange_book_by_feed_latency():
    rows = [(0, DELTA, SELL, 101, 10, 0, 50), (10, DELTA, SELL, 101, 2, 0, 60)]
    core = make_core(rows, latency={"entry_ns": 0, "response_ns": 0})
    drain(core, 55)
    assert core.local_bbo(0) == (0, 0, 101, 10)
    assert core.exchange_bbo(0) == (0, 0, 101, 2)  # the exchange already saw the update
    core.submit(1, 0, BUY, MARKET, IOC, 0, 5, False, 0, 55)
    assert fills(drain(core)) == [(1, 101, 2)]


def test_depth_message_wakes_once_with_a_consistent_book():
    rows = [(0, SNAP_BEGIN, 0, 0, 0)]
    rows += [(0, DELTA, BUY, 100 - i, 1 + i) for i in range(20)]
    rows += [(0, DELTA, SELL, 101 + i, 1 + i) for i in range(20)]
    rows += [(0, SNAP_END, 0, 0, 0)]
    rows += [(5, DELTA, BUY, 100, 7), (5, DELTA, SELL, 101, 9), (6, TRADE, BUY, 101, 1)]
    for chunk in (1, 7, 1_000_000):
        core = make_core(rows, chunk=chunk)
        seen = []
        wb = np.ones(1, dtype=bool)
        while True:
            w = core.run_until(10, wb, wb)
            if w.kind in (WakeKind.BOUND, WakeKind.END):
                break
            seen.append((w.kind, w.ts, core.local_bbo(0), len(core.local_levels(0, BUY, 50)[0])))
        assert seen == [
            (WakeKind.BOOK, 0, (100, 1, 101, 1), 20),
            (WakeKind.BOOK, 5, (100, 7, 101, 9), 20),
            (WakeKind.TRADE, 6, (100, 7, 101, 9), 20),
        ]
        prices, qtys = core.local_levels(0, SELL, 3)
        assert prices.tolist() == [101, 102, 103] and qtys.tolist() == [9, 2, 3]
        bbo = core.drain_bbo()
        assert bbo[["ts", "bid", "bid_qty", "ask", "ask_qty"]].tolist() == [
            (0, 100, 1, 101, 1), (5, 100, 7, 101, 9)]
        trades = core.drain_trades()
        assert trades[["ts", "side", "price", "qty"]].tolist() == [(6, 1, 101, 1)]
        assert core.events_processed == len(rows)


def test_unsubscribed_instruments_do_not_wake():
    rows = [(0, DELTA, BUY, 100, 1, 0), (1, DELTA, BUY, 50, 1, 1), (2, TRADE, SELL, 50, 1, 1)]
    insts = [instrument(symbol="BTC/USDT"), instrument(symbol="ETH/USDT")]
    core = make_core(rows, instruments=insts)
    wakes = drain(core, 100, book=[False, True], trade=[False, False])
    assert [(w.kind, w.ts, w.instrument) for w in wakes] == [
        (WakeKind.BOOK, 1, 1), (WakeKind.END, 2, -1)]


def test_bound_and_end():
    core = make_core([(10, DELTA, BUY, 100, 1), (20, DELTA, BUY, 100, 2)])
    wb = np.zeros(1, dtype=bool)
    assert core.run_until(5, wb, wb) == (WakeKind.BOUND, 5, -1, None)
    assert core.now == 5 and core.events_processed == 0
    assert core.run_until(15, wb, wb).kind == WakeKind.BOUND
    assert core.events_processed == 1
    assert core.run_until(100, wb, wb).kind == WakeKind.END
    # a request in flight keeps the run going past the feed's end
    core.submit(1, 0, SELL, LIMIT, GTC, 101, 1, False, 0, 100)
    w = core.run_until(10**12, wb, wb)
    assert w.kind == WakeKind.ORDER and w.ts == 100 and int(w.record["kind"]) == 1
    assert core.run_until(10**12, wb, wb).kind == WakeKind.END


def _script(chunk, seed=3):
    rng = np.random.default_rng(seed)
    rows = []
    t = 0
    for _ in range(300):
        t += int(rng.integers(0, 3))
        if rng.random() < 0.2:
            rows.append((t, TRADE, int(rng.choice([-1, 1])), int(rng.integers(95, 106)),
                         int(rng.integers(1, 6))))
        else:
            side = int(rng.choice([-1, 1]))
            price = int(rng.integers(90, 100)) if side > 0 else int(rng.integers(101, 111))
            rows.append((t, DELTA, side, price, int(rng.integers(0, 9))))
    core = make_core(rows, chunk=chunk, latency={"entry_ns": 3, "response_ns": 2})
    out = []
    wb = np.ones(1, dtype=bool)
    n = 0
    while True:
        w = core.run_until(t + 100, wb, wb)
        if w.kind == WakeKind.END:
            break
        rec = None if w.record is None else w.record.tolist()
        out.append((int(w.kind), w.ts, rec, core.local_bbo(0)))
        if w.kind == WakeKind.BOOK and n < 60:
            n += 1
            bid, _, ask, _ = core.local_bbo(0)
            side = BUY if n % 2 else SELL
            px = bid if side == BUY else ask
            if px:
                core.submit(n, 0, side, LIMIT, GTC, px, 3, False, 0, w.ts)
            if n % 5 == 0:
                core.submit(1000 + n, 0, -side, MARKET, IOC, 0, 4, False, 0, w.ts)
            if n % 7 == 0:
                core.cancel(n - 3, w.ts)
    return out


def test_chunk_size_does_not_change_anything():
    ref = _script(1_000_000)
    assert any(x[0] == int(WakeKind.ORDER) for x in ref)
    assert _script(1) == ref
    assert _script(7) == ref


def test_unsorted_exch_ts_across_instruments_uses_each_instruments_clock():
    # feed sorted by local_ts; the second instrument's stream lags: its exch_ts 3 comes
    # after a row of the first instrument at 5. Each (venue, instrument) book keeps its own
    # clock, so that row applies at 3, before the order arriving at 4 (issue 9).
    rows = [
        (0, DELTA, SELL, 101, 5, 0, 1),
        (0, DELTA, SELL, 201, 5, 1, 9),
        (5, DELTA, SELL, 101, 1, 0, 10),
        (3, DELTA, SELL, 201, 1, 1, 11),
    ]
    insts = [instrument(symbol="BTC/USDT"), instrument(symbol="ETH/USDT")]
    core = make_core(rows, instruments=insts, latency={"entry_ns": 4, "response_ns": 0})
    drain(core, 0)
    core.submit(1, 1, BUY, MARKET, IOC, 0, 5, False, 0, 0)  # reaches the venue at 4
    core.submit(2, 0, BUY, MARKET, IOC, 0, 5, False, 0, 0)
    assert fills(drain(core)) == [(1, 201, 1), (2, 101, 5)]


def test_unsorted_exch_ts_within_an_instrument_uses_its_clock():
    # one instrument: its row stamped 3 comes after its row at 5; the instrument's clock
    # never goes back, so that row applies at 5, after the order arriving at 4.
    rows = [
        (0, DELTA, SELL, 101, 5, 0, 1),
        (0, DELTA, SELL, 102, 5, 0, 9),
        (5, DELTA, SELL, 103, 1, 0, 10),
        (3, DELTA, SELL, 101, 1, 0, 11),
    ]
    core = make_core(rows, latency={"entry_ns": 4, "response_ns": 0})
    drain(core, 0)
    core.submit(1, 0, BUY, MARKET, IOC, 0, 5, False, 0, 0)  # reaches the venue at 4
    assert fills(drain(core)) == [(1, 101, 5)]


def test_each_venue_keeps_its_own_exchange_clock():
    rows = [
        (0, DELTA, SELL, 101, 5, 0, 1),
        (0, DELTA, SELL, 201, 5, 1, 9),
        (5, DELTA, SELL, 101, 1, 0, 10),
        (3, DELTA, SELL, 201, 1, 1, 11),  # another venue: its clock is at 0, row applies at 3
    ]
    insts = [instrument(venue="fast"), instrument(venue="slow")]
    core = make_core(rows, instruments=insts, latency={"entry_ns": 4, "response_ns": 0})
    drain(core, 0)
    core.submit(1, 1, BUY, MARKET, IOC, 0, 5, False, 0, 0)  # at 4: after the slow row at 3
    core.submit(2, 0, BUY, MARKET, IOC, 0, 5, False, 0, 0)  # at 4: before the fast row at 5
    assert fills(drain(core)) == [(1, 201, 1), (2, 101, 5)]


def test_feed_errors_are_data_errors():
    good = events([(0, DELTA, BUY, 100, 1)])
    bad = events([(5, DELTA, BUY, 100, 1), (4, DELTA, BUY, 100, 1)])
    core = make_core(np.concatenate([good, bad]), chunk=1)
    drain(core, 4)
    with pytest.raises(DataError, match="local_ts"):
        drain(core)
    with pytest.raises(DataError, match="out of range"):
        drain(make_core([(0, DELTA, BUY, 100, 1, 3)]))
    with pytest.raises(DataError, match="negative"):
        drain(make_core([(0, DELTA, BUY, 100, -1)]))
    with pytest.raises(DataError, match="unknown event kind 42"):
        drain(make_core([(0, 42, BUY, 100, 1)]))
    with pytest.raises(DataError, match="row 1: book delta with side 0"):
        drain(make_core([(0, DELTA, BUY, 100, 1), (0, DELTA, 0, 100, 1)]))


def _two_venue_script(chunk, seed=11):
    rng = np.random.default_rng(seed)
    rows = []
    t = 0
    for _ in range(400):
        t += int(rng.integers(0, 4))
        inst = int(rng.integers(0, 2))
        lag = 7 if inst else 2  # per-venue feed latency: exch_ts unsorted across venues
        if rng.random() < 0.2:
            rows.append((t, TRADE, int(rng.choice([-1, 1])), int(rng.integers(95, 106)),
                         int(rng.integers(1, 6)), inst, t + lag))
        else:
            side = int(rng.choice([-1, 1]))
            price = int(rng.integers(90, 100)) if side > 0 else int(rng.integers(101, 111))
            rows.append((t, DELTA, side, price, int(rng.integers(0, 9)), inst, t + lag))
    rows.sort(key=lambda r: r[6])
    insts = [instrument(venue="a"), instrument(venue="b")]
    from venues.sim import SimVenueConfig

    configs = {
        "a": SimVenueConfig.from_table("a", {"latency": {"entry_ns": 3, "response_ns": 2}}),
        "b": SimVenueConfig.from_table("b", {"latency": {"entry_ns": 0, "response_ns": 5},
                                             "queue_model": "power:2"}),
    }
    core = make_core(rows, chunk=chunk, instruments=insts, configs=configs)
    out = []
    wb = np.ones(2, dtype=bool)
    n = 0
    while True:
        w = core.run_until(t + 100, wb, wb)
        if w.kind == WakeKind.END:
            break
        rec = None if w.record is None else w.record.tolist()
        out.append((int(w.kind), w.ts, w.instrument, rec))
        if w.kind == WakeKind.BOOK and n < 80:
            n += 1
            i = w.instrument
            bid, _, ask, _ = core.local_bbo(i)
            side = BUY if n % 2 else SELL
            px = bid if side == BUY else ask
            if px:
                core.submit(n, i, side, LIMIT, GTC, px, 3, False, 0, w.ts)
            if n % 5 == 0:
                core.submit(1000 + n, i, -side, MARKET, IOC, 0, 4, False, 0, w.ts)
            if n % 7 == 0:
                core.cancel(n - 3, w.ts)
    return out


def test_two_venues_chunking_and_order():
    ref = _two_venue_script(1_000_000)
    assert sum(1 for x in ref if x[0] == int(WakeKind.ORDER)) > 20
    assert _two_venue_script(1) == ref
    assert _two_venue_script(7) == ref
    # local time never goes backwards across wakes
    assert all(a[1] <= b[1] for a, b in zip(ref, ref[1:], strict=False))
