"""Dormant exchange sides (venues/sim/dormant_nb.py) change nothing that can be observed.

Every test runs the same feed and requests with `lazy_exchange=True` (the default: a venue
without orders stops maintaining its exchange book) and `False` (always maintained) and
requires identical responses, tapes and books.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sim_helpers import BUY, DELTA, SELL, TRADE, drain, events, fills, instrument, make_core
from test_sim_properties import CONFIGS, _run

from engine.types.orders import OrderEventKind, OrderType, TimeInForce
from venues.sim import WakeKind
from venues.sim import codes as C

LIMIT, MARKET = int(OrderType.LIMIT), int(OrderType.MARKET)
GTC, IOC = int(TimeInForce.GTC), int(TimeInForce.IOC)


def _lagged_feed(rows, lags):
    """Rows 10 ns apart at the exchange, seen locally `lag` later (sorted by local time)."""
    out = []
    for i, ((kind, side, price, qty), lag) in enumerate(zip(rows, lags, strict=False)):
        exch = 10 * i + 10
        if kind == DELTA:
            price = min(price, 100) if side > 0 else max(price, 101)
        else:
            qty = max(qty, 1)
        out.append((exch, kind, side, price, qty, 0, exch + lag))
    out.sort(key=lambda r: (r[6], r[0]))
    return out


row_st = st.tuples(st.sampled_from([DELTA, DELTA, TRADE]), st.sampled_from([1, -1]),
                   st.integers(95, 105), st.integers(0, 12))
# sparse requests: long stretches without any order, so venues fall asleep and wake up
action_st = st.tuples(st.integers(0, 120),
                      st.sampled_from(["limit", "market", "ioc", "gtx", "cancel", "amend"]),
                      st.sampled_from([1, -1]), st.integers(95, 105), st.integers(1, 15))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row_st, min_size=5, max_size=80),
       lags=st.lists(st.integers(0, 40), min_size=80, max_size=80),
       actions=st.lists(action_st, min_size=0, max_size=8),
       seed=st.integers(0, 2**31 - 1),
       chunk=st.sampled_from([3, 17, 1_000_000]),
       config=st.sampled_from(CONFIGS))
def test_dormant_exchange_is_invisible(rows, lags, actions, seed, chunk, config):
    feed = _lagged_feed(rows, lags)
    got, want = [], []
    lazy, _ = _run(feed, actions, chunk=chunk, seed=seed, lazy=True, tapes=got, **config)
    eager, _ = _run(feed, actions, chunk=chunk, seed=seed, lazy=False, tapes=want, **config)
    assert lazy == eager
    assert got == want


def test_venue_sleeps_without_orders_and_wakes_for_a_submit():
    # the ask at 101 changes while nobody has an order; the IOC must see the new quantity
    rows = [(0, DELTA, SELL, 101, 10, 0, 5), (20, DELTA, SELL, 101, 4, 0, 25),
            (40, DELTA, SELL, 102, 7, 0, 45)]
    core = make_core(rows, latency={"entry_ns": 10, "response_ns": 0})
    drain(core, 30)
    assert core._V[0, C.VF_DORMANT] == 1  # nothing to match: the exchange book sleeps
    core.submit(1, 0, BUY, MARKET, IOC, 0, 6, False, 0, 30)  # arrives at 40, with the 102 row
    assert core._V[0, C.VF_DORMANT] == 0
    assert fills(drain(core)) == [(1, 101, 4), (1, 102, 2)]  # 101 x 4, then 102 x 2


def test_consumed_liquidity_keeps_the_venue_awake_until_the_feed_updates_the_level():
    rows = [(0, DELTA, SELL, 101, 10), (100, DELTA, BUY, 99, 1), (200, DELTA, SELL, 101, 8)]
    core = make_core(rows, latency={"entry_ns": 1, "response_ns": 0})
    drain(core, 10)
    core.submit(1, 0, BUY, MARKET, IOC, 0, 6, False, 0, 10)
    assert fills(drain(core, 50)) == [(1, 101, 6)]
    assert core._V[0, C.VF_DORMANT] == 0  # 6 of the 10 at 101 are ours until the feed says
    core.submit(2, 0, BUY, MARKET, IOC, 0, 6, False, 0, 150)
    assert fills(drain(core, 190)) == [(2, 101, 4)]  # only 4 left visible
    drain(core, 250)  # the feed rewrites 101: nothing of ours is left in the exchange book
    assert core._V[0, C.VF_DORMANT] == 1


def test_exchange_view_of_a_dormant_venue_is_rebuilt_on_read():
    rows = [(0, DELTA, SELL, 101, 10, 0, 50), (10, DELTA, SELL, 101, 2, 0, 60)]
    core = make_core(rows)
    drain(core, 55)
    assert core._V[0, C.VF_DORMANT] == 1
    assert core.local_bbo(0) == (0, 0, 101, 10)
    assert core.exchange_bbo(0) == (0, 0, 101, 2)  # as an eager exchange side shows it


def test_a_row_stamped_after_its_local_time_turns_dormancy_off():
    rows = [(0, DELTA, SELL, 101, 10, 0, 5), (8, DELTA, SELL, 102, 1, 0, 9),
            (30, DELTA, SELL, 101, 3, 0, 20)]  # the last one: exch_ts > local_ts
    core = make_core(rows, chunk=1)
    drain(core, 6)
    assert core._V[0, C.VF_DORMANT] == 1 and core._S[C.S_LAZY_OFF] == 0
    drain(core, 25)
    assert core._S[C.S_LAZY_OFF] == 1 and core._V[0, C.VF_DORMANT] == 0
    core.submit(1, 0, BUY, MARKET, IOC, 0, 5, False, 0, 25)  # arrives at 25, before the row
    assert fills(drain(core)) == [(1, 101, 5)]


def test_one_venue_sleeps_while_the_other_trades():
    a = instrument(symbol="BTC/USDT")
    b = instrument(venue="okx", symbol="BTC/USDT")
    rows = [(0, DELTA, SELL, 101, 10, 0, 1), (0, DELTA, SELL, 201, 10, 1, 1),
            (20, DELTA, SELL, 201, 5, 1, 21), (30, TRADE, BUY, 101, 3, 0, 31)]
    for lazy in (True, False):
        core = make_core(events(rows), instruments=[a, b], lazy_exchange=lazy,
                         latency={"entry_ns": 2, "response_ns": 1})
        drain(core, 5)
        core.submit(1, 0, BUY, LIMIT, GTC, 100, 4, False, 0, 5)
        wakes = drain(core)
        if lazy:
            assert core._V[1, C.VF_DORMANT] == 1
        assert core.exchange_bbo(1) == (0, 0, 201, 5)
        assert fills(wakes) == []
        core.submit(2, 1, BUY, MARKET, IOC, 0, 7, False, 0, int(core.now))
        assert fills(drain(core)) == [(2, 201, 5)]


def test_default_is_lazy():
    core = make_core([(0, DELTA, SELL, 101, 10)])
    assert core._S[C.S_LAZY_OFF] == 0
    assert np.array_equal(core._V[:, C.VF_DORMANT], [0])


def _real_spot_feed():
    """The real Binance spot capture (tests/data/binance-ws), receive stamps de-skewed so
    that exch_ts <= local_ts, as `data import --correct-skew` stores it."""
    from pathlib import Path

    from engine.types import load_instruments
    from replay.importers import check_sources, parse_sources
    from replay.validate import Mode, Report

    data = Path(__file__).resolve().parents[2] / "data" / "binance-ws"
    spec = Path(__file__).resolve().parent / "spot_8dp.toml"
    insts = load_instruments(spec)
    report = Report()
    parts = parse_sources("binance-ws", [str(data / "spot_btcusdt_20240808.gz")], insts, None,
                          report, Mode.STRICT)
    ev = check_sources(parts, report, Mode.STRICT, correct_skew=True)[0].events
    ev = ev.copy()
    ev["instrument"] = 0
    return insts["binance:BTC/USDT"], ev


def _random_flow_on(core, feed, seed):
    """Seeded sparse orders around the local best: limits, IOCs and cancels every ~2 s."""
    rng = np.random.default_rng(seed)
    wb = np.zeros(1, dtype=bool)
    recs, live = [], []
    asleep = 0  # steps at which the exchange side was dormant
    t = int(feed["local_ts"][0])
    end = int(feed["local_ts"][-1])
    no = 0
    while t < end:
        t += 2_000_000_000
        while True:
            w = core.run_until(t, wb, wb)
            if w.kind == WakeKind.ORDER:
                recs.append(w.record.tolist())
            if w.kind in (WakeKind.BOUND, WakeKind.END):
                break
        asleep += int(core._V[0, C.VF_DORMANT])
        if rng.random() < 0.35:
            bid, _, ask, _ = core.local_bbo(0)
            if bid == 0 or ask == 0:
                continue
            no += 1
            side = 1 if rng.random() < 0.5 else -1
            qty = int(rng.integers(1, 50)) * 10_000  # 0.0001 .. 0.005 BTC
            if rng.random() < 0.4:
                core.submit(no, 0, side, MARKET, IOC, 0, qty, False, 0, int(core.now))
            else:
                px = (bid if side > 0 else ask) - side * int(rng.integers(0, 3))
                core.submit(no, 0, side, LIMIT, GTC, px, qty, False, 0, int(core.now))
                live.append(no)
        if live and rng.random() < 0.5:
            core.cancel(live.pop(int(rng.integers(0, len(live)))), int(core.now))
    return recs, core.drain_bbo().tolist(), core.drain_trades().tolist(), asleep


def test_real_capture_lazy_equals_eager():
    inst, feed = _real_spot_feed()
    assert (feed["exch_ts"] <= feed["local_ts"]).all()
    out = []
    for lazy in (True, False):
        core = make_core(feed, instruments=[inst], lazy_exchange=lazy, chunk=20_000,
                         latency={"entry_ns": 3_000_000, "response_ns": 2_000_000})
        out.append(_random_flow_on(core, feed, seed=11))
        if lazy:
            assert core._S[C.S_LAZY_OFF] == 0
    (recs, bbo, trades, asleep), eager = out
    assert asleep > 20 and eager[3] == 0  # lazy: it slept often (and woke for every order)
    assert len([r for r in recs if r[4] == int(OrderEventKind.FILL)]) > 20  # fills happened
    assert out[0][:3] == eager[:3]
