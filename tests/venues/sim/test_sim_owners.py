"""Orders of different owners (accounts) trade with each other; STP only within one owner.

Hand-computed: every fill below is worked out from the feed rows and the rules in
venues/sim/matching_nb.py (take_nb, cross_level_nb). Owner 0 is a backtest's single
strategy, so these paths never run in a backtest (the rest of tests/venues/sim pins that).
"""

from __future__ import annotations

from sim_helpers import BUY, DELTA, SELL, drain, make_core, orders

from engine.types.orders import Liquidity, OrderType, RejectReason, TimeInForce

LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
GTC, IOC, FOK = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK
M, T, N = int(Liquidity.MAKER), int(Liquidity.TAKER), int(Liquidity.NONE)
SELF = int(RejectReason.SELF_TRADE)

# asks 101 x 5, bids 99 x 5
BOOK = [(0, DELTA, SELL, 101, 5), (0, DELTA, BUY, 99, 5)]


def _fills(recs):
    return [(o[1], o[2], o[3], o[6]) for o in recs if o[0] == "FILL"]


def test_taker_of_one_owner_fills_against_another_owners_better_priced_order():
    core = make_core(BOOK, stp="cancel-new")  # STP is on, but between owners it never applies
    drain(core, 0)
    core.submit(1, 0, SELL, LIMIT, GTC, 100, 3, False, 0, 1, owner=1)  # rests inside the spread
    drain(core, 1)
    core.submit(2, 0, BUY, LIMIT, IOC, 101, 6, False, 0, 2, owner=2)
    recs = orders(drain(core))
    # the better price first: 3 lots of owner 1 at 100 (maker for 1, taker for 2), then the
    # book's 101 for the other 3
    assert _fills(recs) == [(1, 100, 3, M), (2, 100, 3, T), (2, 101, 3, T)]
    assert core.order_state(1) is None  # filled, gone
    assert ("CANCELLED", 2) not in [(o[0], o[1]) for o in recs]  # 6 of 6 filled


def _owner1_rests_then_buys(stp, bound):
    """Owner 1 rests a sell 100 x 3 inside the spread, then sends a buy IOC 101 x 6 itself."""
    core = make_core(BOOK, stp=stp)
    drain(core, 0)
    core.submit(1, 0, SELL, LIMIT, GTC, 100, 3, False, 0, 1, owner=1)
    drain(core, 1)
    core.submit(2, 0, BUY, LIMIT, IOC, 101, 6, False, 0, 2, owner=1)
    return core, orders(drain(core, bound))


def test_same_owner_gets_stp_not_a_trade():
    core, recs = _owner1_rests_then_buys("cancel-resting", 10**18)
    # cancel-resting: order 1 is cancelled (SELF_TRADE), the taker walks on into the book:
    # 5 at 101, the last lot is the IOC remainder
    assert ("CANCELLED", 1, 0, 3, 0, 0, N, SELF) in recs
    assert _fills(recs) == [(2, 101, 5, T)]


def test_same_owner_cancel_new_ends_the_taker_other_owner_trades():
    core, recs = _owner1_rests_then_buys("cancel-new", 2)
    assert _fills(recs) == []
    assert ("CANCELLED", 2, 0, 6, 0, 0, N, SELF) in recs
    assert core.order_state(1)["filled"] == 0  # still resting
    core.submit(3, 0, BUY, LIMIT, IOC, 100, 2, False, 0, 3, owner=0)  # another owner: trades
    assert _fills(orders(drain(core))) == [(1, 100, 2, M), (3, 100, 2, T)]
    assert core.order_state(1)["filled"] == 2


def test_equal_price_follows_the_queue_position():
    # asks 101 x 3; owner 1 joins at 101 behind those 3 (ahead 3); then 3 more arrive
    # behind it (risk-averse model: an increase does not move ahead: min(3, 6) = 3)
    rows = [(0, DELTA, SELL, 101, 3), (0, DELTA, BUY, 99, 5), (2, DELTA, SELL, 101, 6)]
    core = make_core(rows)
    drain(core, 0)
    core.submit(1, 0, SELL, LIMIT, GTC, 101, 2, False, 0, 1, owner=1)
    drain(core, 3)
    assert core.order_state(1)["ahead"] == 3.0
    core.submit(2, 0, BUY, LIMIT, IOC, 101, 7, False, 0, 4, owner=2)
    recs = orders(drain(core))
    # 3 from the book (ahead of order 1), order 1's 2, then 2 of the 3 behind it
    assert _fills(recs) == [(2, 101, 3, T), (1, 101, 2, M), (2, 101, 2, T), (2, 101, 2, T)]
    assert [o[4] for o in recs if o[0] == "FILL" and o[1] == 2] == [3, 5, 7]


def test_queue_front_taken_moves_the_resting_order_up():
    rows = [(0, DELTA, SELL, 101, 3), (0, DELTA, BUY, 99, 5)]
    core = make_core(rows)
    drain(core, 0)
    core.submit(1, 0, SELL, LIMIT, GTC, 101, 2, False, 0, 1, owner=1)  # ahead 3
    drain(core, 1)
    core.submit(2, 0, BUY, LIMIT, IOC, 101, 2, False, 0, 2, owner=2)  # takes 2 of the 3 ahead
    assert _fills(orders(drain(core, 2))) == [(2, 101, 2, T)]
    assert core.order_state(1)["ahead"] == 1.0
    core.submit(3, 0, BUY, LIMIT, IOC, 101, 2, False, 0, 3, owner=2)  # the last book lot, then 1
    assert _fills(orders(drain(core))) == [(3, 101, 1, T), (1, 101, 1, M), (3, 101, 1, T)]


def test_market_order_on_an_empty_side_meets_another_owner():
    core = make_core([(0, DELTA, BUY, 99, 5)])  # no asks in the feed
    drain(core, 0)
    core.submit(1, 0, SELL, LIMIT, GTC, 100, 3, False, 0, 1, owner=1)
    drain(core, 1)
    core.submit(2, 0, BUY, MARKET, IOC, 0, 2, False, 0, 2, owner=2)
    assert _fills(orders(drain(core))) == [(1, 100, 2, M), (2, 100, 2, T)]
    assert core.order_state(1)["filled"] == 2


def test_fok_counts_other_owners_and_post_only_sees_them():
    core = make_core(BOOK)
    drain(core, 0)
    core.submit(1, 0, SELL, LIMIT, GTC, 100, 3, False, 0, 1, owner=1)
    drain(core, 1)
    core.submit(2, 0, BUY, LIMIT, FOK, 101, 9, False, 0, 2, owner=2)  # 3 + 5 < 9
    core.submit(3, 0, BUY, LIMIT, GTC, 100, 1, True, 0, 2, owner=2)  # post-only would take
    recs = orders(drain(core, 2))
    assert [(o[0], o[1], o[7]) for o in recs] == [
        ("REJECTED", 2, int(RejectReason.FOK_NOT_FILLABLE)),
        ("REJECTED", 3, int(RejectReason.POST_ONLY_WOULD_CROSS)),
    ]
    core.submit(4, 0, BUY, LIMIT, FOK, 101, 8, False, 0, 3, owner=2)  # exactly 3 + 5
    assert _fills(orders(drain(core))) == [(1, 100, 3, M), (4, 100, 3, T), (4, 101, 5, T)]


def test_crossing_amend_trades_with_another_owner():
    core = make_core(BOOK)
    drain(core, 0)
    core.submit(1, 0, SELL, LIMIT, GTC, 100, 3, False, 0, 1, owner=1)
    core.submit(2, 0, BUY, LIMIT, GTC, 99, 2, False, 0, 1, owner=2)
    drain(core, 1)
    core.amend(2, 100, 2, 2)  # now crosses owner 1's 100
    recs = orders(drain(core))
    assert _fills(recs) == [(1, 100, 2, M), (2, 100, 2, T)]
    assert core.order_state(2) is None and core.order_state(1)["filled"] == 2
