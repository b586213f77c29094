"""Each (venue, instrument) book keeps its own exchange clock (issue 9).

The feed is sorted by local_ts, so a row of one instrument stamped later at the venue can
come before a row of another instrument stamped earlier. An order must see every row of
its own instrument with venue time <= its arrival, whatever rows of other instruments
came between; so a fill never depends on which other instruments are in the run.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sim_helpers import DELTA, TRADE, chunks, events

from engine.types.instrument import Instrument
from engine.types.orders import OrderEventKind, OrderType, TimeInForce
from venues.sim import SimCore, SimVenueConfig, WakeKind

MS = 1_000_000
S = 1_000_000_000
FILL = int(OrderEventKind.FILL)


def _inst(symbol: str) -> Instrument:
    base, quote = symbol.split("/")
    return Instrument(
        id=f"sim:{symbol}", venue="sim", symbol=symbol, venue_symbol=base + quote, base=base,
        quote=quote, tick_size=Decimal("0.01"), lot_size=Decimal("1"), min_qty=Decimal("0"),
        min_notional=Decimal("0"),
    )


TST, AAA = _inst("TST/USD"), _inst("AAA/USD")


def _issue_feed(aaa: str | None) -> np.ndarray:
    """TST: bid 99 / ask 100; at venue time 2.000 s (received 2.001 s) the ask moves to 105.
    AAA (instrument 1): one update at venue 2.0005 s, received 2.0006 s ("skewed"), or
    received at its venue time ("equal"), or no AAA at all (None)."""
    rows = [
        (1 * S, DELTA, 1, 9900, 10, 0, 1 * S),
        (1 * S, DELTA, -1, 10000, 10, 0, 1 * S),
    ]
    if aaa is not None:
        rows += [(1 * S, DELTA, 1, 500, 10, 1, 1 * S), (1 * S, DELTA, -1, 510, 10, 1, 1 * S)]
        local = 2 * S + 600_000 if aaa == "skewed" else 2 * S + 500_000
        rows.append((2 * S + 500_000, DELTA, 1, 501, 3, 1, local))
    rows += [
        (2 * S, DELTA, -1, 10000, 0, 0, 2 * S + MS),
        (2 * S, DELTA, -1, 10500, 10, 0, 2 * S + MS),
    ]
    rows.sort(key=lambda r: r[6])
    return events(rows)


def _core(feed: np.ndarray, instruments, *, lazy: bool, chunk: int = 1_000_000) -> SimCore:
    cfg = SimVenueConfig.from_table("sim", {"latency": {"entry_ns": MS, "response_ns": MS}})
    return SimCore(instruments, {"sim": cfg}, chunks(feed, chunk), seed=1, lazy_exchange=lazy)


def _fills(core: SimCore) -> list[tuple[int, int, int, int]]:
    """(order_no, price, qty, exch_ts) of every fill, to the end of the feed."""
    out = []
    none = np.zeros(len(core.instruments), dtype=bool)
    while True:
        w = core.run_until(np.iinfo(np.int64).max, none, none)
        if w.kind == WakeKind.END:
            return out
        if w.kind == WakeKind.ORDER and int(w.record["kind"]) == FILL:
            r = w.record
            out.append((int(r["order_no"]), int(r["price"]), int(r["qty"]), int(r["exch_ts"])))


@pytest.mark.parametrize("lazy", [True, False])
@pytest.mark.parametrize("chunk", [1, 3, 1_000_000])
@pytest.mark.parametrize("aaa", [None, "equal", "skewed"])
def test_market_buy_sees_its_own_instruments_row_whatever_other_instruments_do(aaa, chunk, lazy):
    """The issue's case by hand: the market buy sent at local 1.999 s arrives at venue time
    2.000 s (1 ms entry latency), when TST's ask has just moved 100 -> 105 (a feed row at
    the same venue time precedes the order). It fills 1 lot at 105.00, stamped 2.000 s,
    alone, with AAA on equal stamps and with AAA's row received before TST's although it
    happened 0.5 ms later at the venue (it used to fill at 100.00)."""
    feed = _issue_feed(aaa)
    insts = [TST] if aaa is None else [TST, AAA]
    core = _core(feed, insts, lazy=lazy, chunk=chunk)
    none = np.zeros(len(insts), dtype=bool)
    w = core.run_until(1_999 * MS, none, none)
    assert w.kind == WakeKind.BOUND
    core.submit(1, 0, 1, OrderType.MARKET, TimeInForce.IOC, 0, 1, False, 0, 1_999 * MS)
    assert _fills(core) == [(1, 10500, 1, 2 * S)]


def test_an_expiry_sees_its_own_instruments_row_first():
    """A GTD buy at 101 rests below the ask; TST's ask drops to 101 at venue 2.000 s (a row
    received 2.001 s, after AAA's row stamped 2.0005 s) and the order's deadline is 2.0002 s.
    The row goes first (venue 2.000 s), so the order fills as a maker before it expires."""
    rows = [
        (1 * S, DELTA, 1, 9900, 10, 0, 1 * S),
        (1 * S, DELTA, -1, 10500, 10, 0, 1 * S),
        (1 * S, DELTA, 1, 500, 10, 1, 1 * S),
        (1 * S, DELTA, -1, 510, 10, 1, 1 * S),
        (2 * S + 500_000, DELTA, 1, 501, 3, 1, 2 * S + 600_000),
        (2 * S, DELTA, -1, 10100, 10, 0, 2 * S + MS),
    ]
    core = _core(events(rows), [TST, AAA], lazy=True)
    none = np.zeros(2, dtype=bool)
    core.run_until(1_500 * MS, none, none)
    core.submit(1, 0, 1, OrderType.LIMIT, TimeInForce.GTD, 10100, 2, False, 2 * S + 200_000,
                1_500 * MS)
    assert _fills(core) == [(1, 10100, 2, 2 * S)]


# --------------------------------------------------------------------------------------
# property: adding rows of another instrument never changes the fills of the first
# --------------------------------------------------------------------------------------
row_st = st.tuples(
    st.sampled_from([DELTA, DELTA, TRADE]),
    st.sampled_from([1, -1]),
    st.integers(95, 105),
    st.integers(0, 12),
    st.integers(0, 25),  # feed latency (exch_ts -> local_ts)
)
other_st = st.tuples(
    st.integers(0, 700),  # venue time
    st.integers(0, 40),  # feed latency
    st.sampled_from([1, -1]),
    st.integers(1, 9),
)
action_st = st.tuples(
    st.integers(0, 60),
    st.sampled_from(["limit", "limit", "market", "ioc", "cancel", "gtd"]),
    st.sampled_from([1, -1]),
    st.integers(95, 105),
    st.integers(1, 15),
)


def _first_feed(rows):
    out = []
    for i, (kind, side, price, qty, lag) in enumerate(rows):
        if kind == DELTA:
            price = min(price, 100) if side > 0 else max(price, 101)
        else:
            qty = max(qty, 1)
        exch = 10 * i + 10
        out.append((exch, kind, side, price, qty, 0, exch + lag))
    return out


def _run_flow(rows, actions, instruments, chunk, lazy):
    feed = events(sorted(rows, key=lambda r: r[6]))
    cfg = SimVenueConfig.from_table("sim", {"latency": {"entry_ns": 3, "response_ns": 2}})
    core = SimCore(instruments, {"sim": cfg}, chunks(feed, chunk), seed=3, lazy_exchange=lazy)
    none = np.zeros(len(instruments), dtype=bool)
    recs = []
    sent = []
    for no, (t, what, side, price, qty) in enumerate(sorted(actions, key=lambda a: a[0]), start=1):
        while True:
            w = core.run_until(t * 10, none, none)
            if w.kind == WakeKind.ORDER:
                recs.append(w.record.tolist())
                continue
            break
        ts = max(core.now, t * 10)
        if what == "cancel":
            if sent:
                core.cancel(sent[no % len(sent)], ts)
            continue
        typ = OrderType.MARKET if what == "market" else OrderType.LIMIT
        tif = {"limit": TimeInForce.GTC, "market": TimeInForce.IOC, "ioc": TimeInForce.IOC,
               "gtd": TimeInForce.GTD}[what]
        core.submit(no, 0, side, typ, tif, price, qty, False, ts + 40 if what == "gtd" else 0, ts)
        sent.append(no)
    while True:
        w = core.run_until(np.iinfo(np.int64).max, none, none)
        if w.kind == WakeKind.ORDER:
            recs.append(w.record.tolist())
        elif w.kind == WakeKind.END:
            return recs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row_st, min_size=5, max_size=60),
       others=st.lists(other_st, min_size=1, max_size=40),
       actions=st.lists(action_st, min_size=1, max_size=20),
       chunk=st.sampled_from([1, 4, 1000]),
       lazy=st.booleans())
def test_rows_of_another_instrument_never_change_the_fills_of_the_first(rows, others, actions,
                                                                          chunk, lazy):
    """Orders on instrument 0 only; instrument 1's rows, stamped anywhere and received with
    any feed latency, are interleaved by local_ts. Every response (fills, acks, cancels,
    with their venue and local stamps) is the same with and without them."""
    first = _first_feed(rows)
    alone = _run_flow(first, actions, [TST], chunk, lazy)
    extra = [(exch, DELTA, side, 500 + (side < 0) * 20, qty, 1, exch + lag)
             for exch, lag, side, qty in others]
    both = _run_flow(first + extra, actions, [TST, AAA], chunk, lazy)
    assert both == alone
