"""Spot balances at the simulated venue, as Binance enforces them (issue 9).

An order accepted at the venue locks what it may spend (a buy: notional at its limit price
plus its largest fee, fees being charged in quote; a sell: its base quantity); an order
beyond the free balance is rejected INSUFFICIENT_BALANCE; fills move the lock to the other
asset; cancels unlock. Every figure below is computed by hand in the docstrings.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from sim_helpers import DELTA, TRADE, chunks, events

from engine.types.instrument import Instrument
from engine.types.orders import OrderEventKind, OrderType, RejectReason, TimeInForce
from venues.sim import SimCore, SimVenueConfig, WakeKind

D = Decimal
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
GTC, IOC = TimeInForce.GTC, TimeInForce.IOC
BALANCE = int(RejectReason.INSUFFICIENT_BALANCE)
TST = Instrument(id="sim:TST/USD", venue="sim", symbol="TST/USD", venue_symbol="TSTUSD", base="TST",
                 quote="USD", tick_size=D("0.01"), lot_size=D("1"), min_qty=D("0"), min_notional=D("0"))


def _core(usd="1000", tst="5", maker="10", taker="10", asks=((10000, 10),), enforce=True):
    rows = [(1, DELTA, 1, 9900, 10)] + [(1, DELTA, -1, p, q) for p, q in asks]
    rows += [(100, TRADE, -1, 9800, 1)]  # a sell printing through 99.00 at t=100
    table = {"latency": {"entry_ns": 0, "response_ns": 0}, "maker_fee_bps": maker,
             "taker_fee_bps": taker, "enforce_balances": enforce,
             "balances": {"USD": usd, "TST": tst}}
    cfg = SimVenueConfig.from_table("sim", table)
    core = SimCore([TST], {"sim": cfg}, chunks(events(rows), 100), seed=1)
    _run(core, 10)
    return core


def _run(core, bound):
    none = np.zeros(1, dtype=bool)
    out = []
    while True:
        w = core.run_until(bound, none, none)
        if w.kind in (WakeKind.BOUND, WakeKind.END):
            return out
        r = w.record
        out.append((OrderEventKind(int(r["kind"])).name, int(r["order_no"]), int(r["price"]),
                    int(r["qty"]), int(r["reason"])))


def _bal(core):
    return core.balances("sim")


def test_a_buy_locks_notional_plus_fee_and_a_second_beyond_free_is_rejected():
    """Buy 9 @ 99.00 locks 9 x 99 x 1.001 = 891.891 USD (fee 10 bps locked too): free
    1000 - 891.891 = 108.109. Buy 2 @ 99.00 needs 198.198 > 108.109: rejected with
    INSUFFICIENT_BALANCE (Binance -2010). Cancelling the first unlocks everything."""
    core = _core()
    core.submit(1, 0, 1, LIMIT, GTC, 9900, 9, False, 0, 10)
    core.submit(2, 0, 1, LIMIT, GTC, 9900, 2, False, 0, 10)
    assert _run(core, 20) == [("ACK", 1, 0, 0, 0), ("REJECTED", 2, 0, 2, BALANCE)]
    assert _bal(core)["USD"] == (D("108.109"), D("891.891"))
    core.cancel(1, 20)
    _run(core, 30)
    assert _bal(core)["USD"] == (D("1000"), D("0"))


def test_a_sell_of_base_not_held_is_rejected_and_a_held_one_locks_base():
    """5 TST held: sell 6 @ 101.00 is rejected; sell 5 locks 5 TST (free 0)."""
    core = _core()
    core.submit(1, 0, -1, LIMIT, GTC, 10100, 6, False, 0, 10)
    core.submit(2, 0, -1, LIMIT, GTC, 10100, 5, False, 0, 10)
    assert _run(core, 20) == [("REJECTED", 1, 0, 6, BALANCE), ("ACK", 2, 0, 0, 0)]
    assert _bal(core)["TST"] == (D("0"), D("5"))


def test_a_taker_fill_moves_the_lock_to_the_other_asset():
    """Buy 3 @ 100.00 crosses the ask: locks 300.3, fills 3 at 100.00 as taker (notional
    300, fee 0.3). USD: 1000 - 300 - 0.3 = 699.7 free, 0 locked; TST: 5 + 3 = 8."""
    core = _core()
    core.submit(1, 0, 1, LIMIT, GTC, 10000, 3, False, 0, 10)
    assert [e[0] for e in _run(core, 20)] == ["ACK", "FILL"]
    assert _bal(core) == {"USD": (D("699.7"), D("0")), "TST": (D("8"), D("0"))}


def test_a_maker_fill_releases_the_unused_fee_lock():
    """Maker -1 bp (rebate), taker 5 bp: a buy locks notional x 1.0005. Buy 4 @ 99.00 locks
    396.198; a sell printing at 98.00 fills it as maker at 99.00: pays 396 and gets a
    rebate of 0.0396. USD: 1000 - 396 + 0.0396 = 604.0396 free, 0 locked; TST 9."""
    core = _core(maker="-1", taker="5")
    core.submit(1, 0, 1, LIMIT, GTC, 9900, 4, False, 0, 10)
    _run(core, 20)
    assert _bal(core)["USD"] == (D("1000") - D("396.198"), D("396.198"))
    assert [e[0] for e in _run(core, 200)] == ["FILL"]
    assert _bal(core) == {"USD": (D("604.0396"), D("0")), "TST": (D("9"), D("0"))}


def test_a_market_buy_pays_fill_by_fill_and_stops_at_the_first_unaffordable_lot():
    """250 USD free; asks 100.00 x 2, 101.00 x 10. Lot 1 and 2 cost 100.1 each (fee 10 bp):
    200.2 paid, 49.8 left < 101.101 for the next lot: 2 filled, the other 3 cancelled
    INSUFFICIENT_BALANCE."""
    core = _core(usd="250", asks=((10000, 2), (10100, 10)))
    core.submit(1, 0, 1, MARKET, IOC, 0, 5, False, 0, 10)
    assert _run(core, 20) == [("ACK", 1, 0, 0, 0), ("FILL", 1, 10000, 2, 0),
                              ("CANCELLED", 1, 0, 3, BALANCE)]
    assert _bal(core)["USD"] == (D("49.8"), D("0"))


def test_a_market_buy_that_cannot_pay_one_lot_is_rejected():
    """50 USD free < 100.1 for one lot at the best ask: rejected, nothing moves."""
    core = _core(usd="50")
    core.submit(1, 0, 1, MARKET, IOC, 0, 1, False, 0, 10)
    assert _run(core, 20) == [("REJECTED", 1, 0, 1, BALANCE)]
    assert _bal(core)["USD"] == (D("50"), D("0"))


def test_an_amend_beyond_the_free_balance_is_refused_and_keeps_the_lock():
    """Buy 5 @ 99.00 locks 495.495; amend to 11 lots needs 1090.089 > 1000: refused
    (CANCEL_REJECTED, INSUFFICIENT_BALANCE), the order keeps its 495.495. Amend to 3 lots:
    locks 297.297."""
    core = _core()
    core.submit(1, 0, 1, LIMIT, GTC, 9900, 5, False, 0, 10)
    core.amend(1, 9900, 11, 10)
    assert _run(core, 20)[1] == ("CANCEL_REJECTED", 1, 0, 0, BALANCE)
    assert _bal(core)["USD"] == (D("504.505"), D("495.495"))
    core.amend(1, 9900, 3, 20)
    _run(core, 30)
    assert _bal(core)["USD"] == (D("702.703"), D("297.297"))


def test_a_venue_that_does_not_enforce_balances_accepts_anything():
    core = _core(usd="0", tst="0", enforce=False)
    core.submit(1, 0, 1, LIMIT, GTC, 10000, 3, False, 0, 10)
    assert [e[0] for e in _run(core, 20)] == ["ACK", "FILL"]
    assert _bal(core) == {}
