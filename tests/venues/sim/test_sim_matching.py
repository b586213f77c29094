"""Matching rules of the simulated venue, each pinned with hand-computed numbers."""

from __future__ import annotations

from sim_helpers import BUY, DELTA, SELL, TRADE, drain, fills, make_core, orders

from engine.types.orders import Liquidity, OrderType, RejectReason, TimeInForce

LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
GTC, IOC, FOK, GTX, GTD = (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTX,
                           TimeInForce.GTD)
MAKER, TAKER = int(Liquidity.MAKER), int(Liquidity.TAKER)

BOOK = [
    (0, DELTA, BUY, 99, 10),
    (0, DELTA, BUY, 98, 20),
    (0, DELTA, SELL, 101, 10),
    (0, DELTA, SELL, 102, 5),
    (0, DELTA, SELL, 103, 7),
]


def _core(extra, **kw):
    return make_core(BOOK + extra, **kw)


def test_passive_order_joins_back_and_fills_excess_of_trades_at_its_price():
    core = _core([(10, TRADE, SELL, 99, 4), (20, TRADE, SELL, 99, 8), (30, TRADE, SELL, 99, 9)])
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 5, False, 0, 5)
    drain(core, 5)
    assert core.order_state(1)["ahead"] == 10  # visible qty at 99 on arrival
    wakes = drain(core)
    # 10 ahead: trade 4 -> 6 ahead; trade 8 -> 2 excess fills 2; trade 9 -> fills remaining 3
    assert fills(wakes) == [(1, 99, 2), (1, 99, 3)]
    assert [o[6] for o in orders(wakes) if o[0] == "FILL"] == [MAKER, MAKER]
    assert orders(wakes)[-1][4:6] == (5, 0)


def test_trade_strictly_through_fills_completely_at_order_price():
    core = _core([(10, TRADE, SELL, 98, 1)])
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 5, False, 0, 5)
    assert fills(drain(core)) == [(1, 99, 5)]


def test_trade_at_price_within_queue_does_not_fill():
    core = _core([(10, TRADE, SELL, 99, 10)])
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 5, False, 0, 5)
    assert fills(drain(core)) == []
    assert core.order_state(1)["ahead"] == 0


def test_opposite_best_crossing_fills_completely_at_order_price():
    core = _core([(10, DELTA, SELL, 98, 3)])  # an ask at 98 crosses our bid at 99
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 5, False, 0, 5)
    wakes = drain(core)
    assert fills(wakes) == [(1, 99, 5)]
    assert orders(wakes)[-1][6] == MAKER


def test_market_order_walks_levels_and_cancels_the_rest():
    core = _core([])
    drain(core, 5)
    core.submit(1, 0, BUY, MARKET, IOC, 0, 30, False, 0, 5)
    wakes = drain(core)
    assert fills(wakes) == [(1, 101, 10), (1, 102, 5), (1, 103, 7)]
    assert all(o[6] == TAKER for o in orders(wakes) if o[0] == "FILL")
    last = orders(wakes)[-1]
    assert last[0] == "CANCELLED" and last[3] == 8 and last[4] == 22
    assert last[7] == RejectReason.IOC_REMAINDER


def test_market_order_on_empty_side_is_rejected():
    core = make_core([(0, DELTA, BUY, 99, 10)])
    drain(core, 5)
    core.submit(1, 0, BUY, MARKET, IOC, 0, 3, False, 0, 5)
    (rej,) = orders(drain(core))
    assert rej[0] == "REJECTED" and rej[7] == RejectReason.NO_LIQUIDITY


def test_ioc_limit_fills_up_to_its_price_and_cancels_the_rest():
    core = _core([])
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, IOC, 102, 20, False, 0, 5)
    wakes = drain(core)
    assert fills(wakes) == [(1, 101, 10), (1, 102, 5)]
    assert orders(wakes)[-1][:4] == ("CANCELLED", 1, 0, 5)
    assert core.order_state(1) is None


def test_fok_is_all_or_nothing():
    core = _core([])
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, FOK, 102, 16, False, 0, 5)  # only 15 up to 102
    core.submit(2, 0, BUY, LIMIT, FOK, 102, 15, False, 0, 5)
    wakes = drain(core)
    got = orders(wakes)
    assert got[0][0] == "REJECTED" and got[0][7] == RejectReason.FOK_NOT_FILLABLE
    assert fills(wakes) == [(2, 101, 10), (2, 102, 5)]


def test_post_only_rejected_if_it_would_cross_and_rests_otherwise():
    core = _core([])
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTX, 101, 1, False, 0, 5)
    core.submit(2, 0, BUY, LIMIT, GTC, 101, 1, True, 0, 5)  # post_only flag, GTC
    core.submit(3, 0, BUY, LIMIT, GTX, 100, 1, False, 0, 5)
    got = orders(drain(core))
    assert [(o[0], o[1], o[7]) for o in got] == [
        ("REJECTED", 1, RejectReason.POST_ONLY_WOULD_CROSS),
        ("REJECTED", 2, RejectReason.POST_ONLY_WOULD_CROSS),
        ("ACK", 3, 0),
    ]
    assert core.order_state(3)["ahead"] == 0


def test_gtc_crossing_limit_takes_then_rests_remainder_at_its_price():
    core = _core([(10, TRADE, SELL, 101, 1)])
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 101, 12, False, 0, 5)
    drain(core, 5)
    st = core.order_state(1)
    assert (st["price"], st["filled"], st["ahead"]) == (101, 10, 0)
    # the resting remainder (2) is first in the queue at 101: a 1-lot sell fills 1
    wakes = drain(core)
    assert fills(wakes) == [(1, 101, 1)]


def test_gtd_expires_at_its_exchange_time():
    core = _core([(50, TRADE, SELL, 99, 100)], latency={"entry_ns": 10, "response_ns": 3})
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTD, 99, 5, False, 40, 5)
    wakes = drain(core)
    got = [(w.ts, o) for w, o in zip([w for w in wakes if w.record is not None], orders(wakes),
                                     strict=True)]
    assert got[0][0] == 18 and got[0][1][0] == "ACK"  # arrives 15, ack reaches us at 18
    assert got[1][0] == 43 and got[1][1][0] == "EXPIRED"  # expires at 40 exchange time
    assert int(wakes[1].record["exch_ts"]) == 40
    assert fills(wakes) == []  # the trade at 50 comes after the expiry


def test_gtd_in_the_past_expires_on_arrival():
    core = _core([])
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTD, 99, 5, False, 3, 5)
    assert [o[0] for o in orders(drain(core))] == ["ACK", "EXPIRED"]


def test_liquidity_we_took_is_gone_until_the_feed_updates_the_level():
    core = _core([(10, DELTA, SELL, 101, 10)])  # the feed re-sends the level at 10
    drain(core, 5)
    core.submit(1, 0, BUY, MARKET, IOC, 0, 4, False, 0, 5)
    core.submit(2, 0, BUY, MARKET, IOC, 0, 8, False, 0, 5)
    wakes = drain(core, 9)
    # the first took 4 of 10 at 101; the second sees only 6 there
    assert fills(wakes) == [(1, 101, 4), (2, 101, 6), (2, 102, 2)]
    drain(core, 10)
    core.submit(3, 0, BUY, MARKET, IOC, 0, 10, False, 0, 10)
    assert fills(drain(core)) == [(3, 101, 10)]  # the feed's 10 stands again


def test_consumed_level_does_not_fill_our_resting_order_by_crossing():
    core = _core([(10, DELTA, BUY, 99, 11)])
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 101, 15, False, 0, 5)  # takes 10 @101, rests 5 @101
    wakes = drain(core)
    assert fills(wakes) == [(1, 101, 10)]  # the consumed 101 ask does not cross it again
    assert core.order_state(1)["filled"] == 10


def test_risk_averse_level_decrease_caps_ahead():
    core = _core([(10, DELTA, BUY, 99, 4), (20, DELTA, BUY, 99, 30), (30, TRADE, SELL, 99, 6)])
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 5, False, 0, 5)
    drain(core, 15)
    assert core.order_state(1)["ahead"] == 4  # min(10, 4)
    drain(core, 25)
    assert core.order_state(1)["ahead"] == 4  # an increase joins behind us
    assert fills(drain(core)) == [(1, 99, 2)]  # 6 - 4


def test_two_own_orders_at_one_price_never_share_traded_quantity():
    core = _core([(10, TRADE, SELL, 99, 13)])
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 5, False, 0, 5)
    core.submit(2, 0, BUY, LIMIT, GTC, 99, 5, False, 0, 5)
    # both have 10 ahead (own orders are invisible); the trade's excess is 3 lots in all
    assert fills(drain(core)) == [(1, 99, 3)]


def test_cancel_and_cancel_reject_reasons():
    core = _core([])
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 5, False, 0, 5)
    core.cancel(1, 5)
    core.cancel(1, 6)
    core.cancel(42, 6)
    got = orders(drain(core))
    assert [(o[0], o[7]) for o in got] == [
        ("ACK", 0),
        ("CANCELLED", RejectReason.USER_CANCEL),
        ("CANCEL_REJECTED", RejectReason.ALREADY_CLOSED),
        ("CANCEL_REJECTED", RejectReason.UNKNOWN_ORDER),
    ]
    assert got[1][3] == 5  # qty removed


def test_invalid_qty_price_and_duplicate_order_numbers_are_rejected():
    core = _core([])
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 0, False, 0, 5)
    core.submit(2, 0, BUY, LIMIT, GTC, 0, 1, False, 0, 5)
    core.submit(3, 0, BUY, LIMIT, GTC, 99, 1, False, 0, 5)
    core.submit(3, 0, BUY, LIMIT, GTC, 99, 1, False, 0, 5)
    got = orders(drain(core))
    assert [(o[0], o[7]) for o in got] == [
        ("REJECTED", RejectReason.INVALID_QTY),
        ("REJECTED", RejectReason.INVALID_PRICE),
        ("ACK", 0),
        ("REJECTED", RejectReason.DUPLICATE_CLIENT_ID),
    ]
