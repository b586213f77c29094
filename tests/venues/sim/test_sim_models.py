"""Queue-position models, amend rules, self-trade prevention, latency models, no-partial
fills: each pinned with hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sim_helpers import BUY, DELTA, SELL, TRADE, drain, fills, instrument, make_core, orders

from engine.types.orders import OrderType, RejectReason, TimeInForce
from venues.sim import SimCore, SimVenueConfig, WakeKind
from venues.sim.codes import QM_LOG, QM_POWER, QM_RISK_AVERSE
from venues.sim.queue_nb import queue_depth_nb, queue_filled_nb, queue_trade_nb

LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
GTC, IOC = TimeInForce.GTC, TimeInForce.IOC


# ---------------------------------------------------------------- queue formulas ------
def _prob(model, n, ahead, cum, prev, new):
    """The issue's formula, written independently in Python."""
    chg = prev - new - cum
    if chg < 0:
        return min(ahead, new)
    back = prev - ahead
    f = (lambda x: x**n) if model == "power" else (lambda x: math.log(1 + x))
    fb, fa = f(back), f(ahead)
    p = fb / (fb + fa)
    return min(ahead - (1 - p) * chg + min(back - p * chg, 0), new)


def test_risk_averse_formulas():
    assert queue_trade_nb(QM_RISK_AVERSE, 10.0, 0.0, 4) == (6.0, 0.0)
    assert queue_depth_nb(QM_RISK_AVERSE, 0.0, 6.0, 0.0, 20, 4)[0] == 4.0
    assert queue_depth_nb(QM_RISK_AVERSE, 0.0, 6.0, 0.0, 4, 30)[0] == 6.0
    assert queue_filled_nb(-2.0) == 2 and queue_filled_nb(-2.7) == 2 and queue_filled_nb(0.5) == 0


@pytest.mark.parametrize("n", [1.0, 2.0, 3.0])
def test_power_model_by_hand(n):
    # level of 30 with 10 ahead of us and 20 behind; it drops to 20 with no trades:
    # chg = 10, back = 20, p = 20^n / (20^n + 10^n); ahead' = 10 - (1 - p) * 10
    p = 20**n / (20**n + 10**n)
    got, cum = queue_depth_nb(QM_POWER, n, 10.0, 0.0, 30, 20)
    assert got == pytest.approx(10 - (1 - p) * 10)
    assert got == pytest.approx(_prob("power", n, 10.0, 0.0, 30, 20))
    assert cum == 0.0
    assert {1.0: 20 / 3, 2.0: 8.0}.get(n, got) == pytest.approx(got)  # n=1: 6.67, n=2: 8


def test_log_model_by_hand():
    p = math.log(21) / (math.log(21) + math.log(11))
    got, _ = queue_depth_nb(QM_LOG, 0.0, 10.0, 0.0, 30, 20)
    assert got == pytest.approx(10 - (1 - p) * 10)


def test_probabilistic_model_trades_and_cum_trade():
    # a trade of 4 at our price: ahead 10 -> 6, cum_trade 4
    assert queue_trade_nb(QM_POWER, 10.0, 0.0, 4) == (6.0, 4.0)
    # the level then drops 30 -> 26: all of it was the trade, chg = 0, nothing moves
    assert queue_depth_nb(QM_POWER, 2.0, 6.0, 4.0, 30, 26) == (pytest.approx(6.0), 0.0)
    # an increase (chg < 0) caps ahead by the new level only
    assert queue_depth_nb(QM_POWER, 2.0, 6.0, 0.0, 30, 40) == (6.0, 0.0)
    # a drop larger than what is behind us eats into the front: prev 12, ahead 10, new 0
    got, _ = queue_depth_nb(QM_POWER, 2.0, 10.0, 0.0, 12, 0)
    assert got == pytest.approx(_prob("power", 2.0, 10.0, 0.0, 12, 0))
    assert got <= 0.0


def test_power_model_in_the_venue_fills_by_whole_lots():
    rows = [(0, DELTA, BUY, 99, 30), (10, DELTA, BUY, 99, 20), (20, TRADE, SELL, 99, 9)]
    core = make_core(rows, queue_model="power:2")
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 5, False, 0, 5)  # ahead 30, nothing behind
    drain(core, 15)
    # back = 0 -> p = 0: the whole drop of 10 is in front of us: ahead 20
    assert core.order_state(1)["ahead"] == pytest.approx(20.0)
    assert fills(drain(core)) == []
    rows = [(0, DELTA, BUY, 99, 10), (1, DELTA, BUY, 99, 30), (10, DELTA, BUY, 99, 20),
            (20, TRADE, SELL, 99, 9)]
    core = make_core(rows, queue_model="power:2")
    drain(core, 0)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 5, False, 0, 0)  # ahead 10; 20 join behind
    drain(core, 15)
    assert core.order_state(1)["ahead"] == pytest.approx(8.0)  # p = 400/500
    # trade 9: ahead -1 -> 1 lot (rounded down from -ahead)
    assert fills(drain(core)) == [(1, 99, 1)]


# ---------------------------------------------------------------- amend ---------------
BOOK = [(0, DELTA, BUY, 99, 10), (0, DELTA, SELL, 101, 10)]


def test_amend_decrease_keeps_queue_place_increase_and_price_go_to_back():
    core = make_core(BOOK + [(10, DELTA, BUY, 99, 4), (20, DELTA, BUY, 99, 12)])
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 5, False, 0, 5)
    drain(core, 15)
    assert core.order_state(1)["ahead"] == 4
    core.amend(1, 99, 3, 15)  # decrease: keeps its place
    drain(core, 16)
    assert core.order_state(1)["ahead"] == 4 and core.order_state(1)["qty"] == 3
    drain(core, 25)
    core.amend(1, 99, 6, 25)  # increase: back of the queue (12 now ahead)
    drain(core, 26)
    assert core.order_state(1)["ahead"] == 12
    core.amend(1, 98, 6, 26)  # price change: back of the new level (empty)
    drain(core, 27)
    st = core.order_state(1)
    assert (st["price"], st["ahead"]) == (98, 0)
    got = orders(drain(core, 27))
    assert got == []


def test_amend_records_and_cancel_when_qty_not_above_filled():
    core = make_core(BOOK + [(10, TRADE, SELL, 99, 12)])
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 5, False, 0, 5)
    drain(core, 10)  # trade 12 vs ahead 10: 2 filled
    core.amend(1, 99, 2, 11)
    got = orders(drain(core))
    assert [(o[0], o[4], o[7]) for o in got[-1:]] == [("CANCELLED", 2, RejectReason.USER_CANCEL)]


def test_amend_to_crossing_price_takes_liquidity_and_post_only_refuses():
    core = make_core(BOOK)
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 5, False, 0, 5)
    core.submit(2, 0, BUY, LIMIT, GTC, 98, 5, True, 0, 5)
    core.amend(1, 101, 5, 6)
    core.amend(2, 101, 5, 6)
    got = orders(drain(core))
    kinds = [(o[0], o[1]) for o in got]
    assert ("AMENDED", 1) in kinds and ("FILL", 1) in kinds
    assert fills(drain(core)) == [] and [o for o in got if o[0] == "FILL"][0][2:4] == (101, 5)
    rej = [o for o in got if o[1] == 2][-1]
    assert rej[0] == "CANCEL_REJECTED" and rej[7] == RejectReason.POST_ONLY_WOULD_CROSS
    assert core.order_state(2)["price"] == 98


# ---------------------------------------------------------------- STP ---------------
@pytest.mark.parametrize(
    ("mode", "expect"),
    [
        # our resting sell 4 @100 is reached before the visible ask 101
        ("cancel-new", {"fills": [], "new": "CANCELLED", "resting_left": 4}),
        ("cancel-resting", {"fills": [(2, 101, 6)], "new": None, "resting_left": None}),
        ("cancel-both", {"fills": [], "new": "CANCELLED", "resting_left": None}),
        ("decrement-both", {"fills": [(2, 101, 2)], "new": None, "resting_left": None}),
    ],
)
def test_self_trade_prevention_modes(mode, expect):
    core = make_core(BOOK, stp=mode)
    drain(core, 5)
    core.submit(1, 0, SELL, LIMIT, GTC, 100, 4, False, 0, 5)
    core.submit(2, 0, BUY, LIMIT, IOC, 101, 6, False, 0, 6)
    got = orders(drain(core))
    assert fills([]) == [] and [(o[1], o[2], o[3]) for o in got if o[0] == "FILL"] == expect["fills"]
    new_final = [o for o in got if o[1] == 2 and o[0] == "CANCELLED" and o[7] == RejectReason.SELF_TRADE]
    assert (new_final[0][0] if new_final else None) == expect["new"]
    st = core.order_state(1)
    assert (None if st is None else st["qty"] - st["filled"]) == expect["resting_left"]
    if mode == "decrement-both":
        # the taker is told it shrank (6 -> 2) before it fills the rest
        assert ("AMENDED", 2, 2, RejectReason.SELF_TRADE) in [
            (o[0], o[1], o[3], o[7]) for o in got]
    if mode in ("cancel-resting", "cancel-both"):
        assert ("CANCELLED", 1, RejectReason.SELF_TRADE) in [(o[0], o[1], o[7]) for o in got]


@pytest.mark.parametrize(("mode", "fills_expected"), [
    ("cancel-new", []), ("cancel-both", []), ("decrement-both", []),
    ("cancel-resting", [(2, 101, 6)]),
])
def test_fok_counts_only_what_self_trade_prevention_lets_it_take(mode, fills_expected):
    # asks: 100 (ours, 4) then 101 (10 visible). A FOK buy of 6 up to 101 would stop at our
    # own order under every mode but cancel-resting: nothing is fillable, so it is rejected
    # whole instead of partly filling (all or nothing).
    core = make_core(BOOK, stp=mode)
    drain(core, 5)
    core.submit(1, 0, SELL, LIMIT, GTC, 100, 4, False, 0, 5)
    core.submit(2, 0, BUY, LIMIT, TimeInForce.FOK, 101, 6, False, 0, 6)
    got = orders(drain(core))
    assert [(o[1], o[2], o[3]) for o in got if o[0] == "FILL"] == fills_expected
    if not fills_expected:
        assert (got[-1][0], got[-1][1], got[-1][7]) == ("REJECTED", 2, RejectReason.FOK_NOT_FILLABLE)
        assert core.order_state(1) is not None  # our resting order is untouched


def test_stp_per_order_overrides_the_account_mode():
    core = make_core(BOOK, stp="cancel-new")
    drain(core, 5)
    core.submit(1, 0, SELL, LIMIT, GTC, 100, 4, False, 0, 5)
    core.submit(2, 0, BUY, LIMIT, IOC, 101, 6, False, 0, 6, stp="none")
    # with STP off our own orders do not see each other: it takes the visible ask
    assert fills(drain(core)) == [(2, 101, 6)]
    assert core.order_state(1) is not None


def test_post_only_would_self_cross_is_rejected():
    core = make_core(BOOK)
    drain(core, 5)
    core.submit(1, 0, SELL, LIMIT, GTC, 100, 4, False, 0, 5)
    core.submit(2, 0, BUY, LIMIT, GTC, 100, 1, True, 0, 5)
    got = orders(drain(core))
    assert (got[-1][0], got[-1][7]) == ("REJECTED", RejectReason.POST_ONLY_WOULD_CROSS)


# ---------------------------------------------------------------- no partial fills ----
def test_no_partial_fills_option():
    rows = BOOK + [(10, TRADE, SELL, 99, 12)]
    core = make_core(rows, partial_fills=False, stp="none")
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 5, False, 0, 5)
    core.submit(2, 0, SELL, MARKET, IOC, 0, 15, False, 0, 5)  # walks 99 (10) -> whole 15 there
    got = fills(drain(core))
    assert (2, 99, 15) in got
    assert (1, 99, 5) in got  # 2 lots past the queue fill all 5


# ---------------------------------------------------------------- latency models ------
def test_separate_cancel_and_amend_entry_latency():
    core = make_core(BOOK, latency={"entry_ns": 50, "cancel_entry_ns": 5, "amend_entry_ns": 20,
                                    "response_ns": 0})
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 98, 5, False, 0, 5)  # arrives 55
    wakes = drain(core, 100)
    core.amend(1, 98, 4, 100)  # arrives 120
    core.cancel(1, 200)  # arrives 205
    wakes = [w for w in wakes + drain(core) if w.kind == WakeKind.ORDER]
    assert [(int(w.record["kind"]), int(w.record["exch_ts"])) for w in wakes] == [
        (1, 55), (6, 120), (3, 205)]


def test_latency_spike_window():
    core = make_core(BOOK, latency={"entry_ns": 10, "response_ns": 10,
                                    "spikes": [[100, 200, 1000]]})
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 98, 5, False, 0, 5)  # before the spike: 15, ack 25
    wakes = drain(core, 150)
    core.cancel(1, 150)  # sent in the spike: arrives 1160, response 1170 (after window)
    wakes = [w for w in wakes + drain(core) if w.kind == WakeKind.ORDER]
    assert [(w.ts, int(w.record["exch_ts"])) for w in wakes] == [(25, 15), (1170, 1160)]


def test_empirical_latency_is_seeded(tmp_path):
    file = tmp_path / "lat.txt"
    file.write_text("\n".join(f"{v},{v // 2}" for v in (10, 20, 30, 40, 50)))
    table = {"latency": {"model": "empirical", "file": str(file)}}
    cfg = SimVenueConfig.from_table("sim", table)

    def run(seed):
        feed = [np.zeros(0)]  # no market data needed
        from sim_helpers import events
        feed = [events(BOOK)]
        core = SimCore([instrument()], {"sim": cfg}, iter(feed), seed)
        wb = np.zeros(1, dtype=bool)
        core.run_until(0, wb, wb)
        for i in range(20):
            core.submit(i + 1, 0, BUY, LIMIT, GTC, 90, 1, False, 0, 1000 * i)
        out = []
        while True:
            w = core.run_until(10**9, wb, wb)
            if w.kind != WakeKind.ORDER:
                return out
            out.append((int(w.record["exch_ts"]), w.ts))

    a, b, c = run(1), run(1), run(2)
    assert a == b and a != c
    for i, (exch, local) in enumerate(a):
        assert exch - 1000 * i in (10, 20, 30, 40, 50)  # entry from column 0
        assert local - exch in (5, 10, 15, 20, 25)  # response from column 1
