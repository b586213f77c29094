"""Hypothesis properties of the trigger logic and of the thresholds the replay loop checks."""

from decimal import Decimal

import numpy as np
from contingent_harness import ID, INST
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.audit import AuditLog
from engine.clock import SimClock
from engine.contingent.orders import Kind, State
from engine.contingent.triggers import (
    trail,
    trailing_offset,
    trailing_trigger,
)
from engine.contingent.watch import TW_LAST, book_touch_nb, trade_touch_nb
from engine.ledger import Ledger
from engine.risk import RiskConfig, RiskEngine
from engine.session import TradingSession
from engine.strategy import Strategy

sides = st.sampled_from([1, -1])
prices = st.integers(min_value=1, max_value=20_000)


@given(side=sides, amount=st.one_of(st.none(), st.integers(1, 500)),
       bps=st.decimals(min_value=Decimal("0.5"), max_value=Decimal("500"), places=1),
       refs=st.lists(prices, min_size=1, max_size=60))
def test_a_trailing_trigger_only_moves_in_the_orders_favour_and_fires_exactly_when_touched(side, amount, bps, refs):
    b = None if amount is not None else bps
    mark = None
    trigger = None
    for ref in refs:
        mark = trail(side, mark, ref)
        new = trailing_trigger(side, mark, amount, b)
        if trigger is not None:
            assert (new >= trigger) if side < 0 else (new <= trigger)  # a sell's trigger never falls
        trigger = new
        offset = trailing_offset(mark, amount, b)
        assert offset >= (amount if amount is not None else mark * bps / 10_000)  # never closer than asked
        fired = ref <= trigger if side < 0 else ref >= trigger
        if fired:
            # it fires only when the reference came back by at least the offset from the best seen
            assert abs(mark - ref) >= offset
            break
        assert abs(mark - ref) < offset


class _Venue:
    name = "sim"
    maker_fee_bps = Decimal(0)
    taker_fee_bps = Decimal(0)

    def __init__(self):
        self.top = (0, 0, 0, 0)
        self.sent = []

    def submit(self, order, ts):
        self.sent.append(order.client_id)

    def cancel(self, order, ts):
        pass

    def amend(self, order, price, qty, ts):
        pass

    def top_of_book(self, index):
        return self.top

    def levels(self, index, side, n):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)


def _session(tmp_path):
    venue = _Venue()
    session = TradingSession(strategy=Strategy(), instruments={ID: INST}, venues={"sim": venue}, clock=SimClock(1),
                             ledger=Ledger({ID: INST}, {"sim": {"USDT": Decimal(10**9), "BTC": Decimal(10**6)}}),
                             risk=RiskEngine(RiskConfig.from_table(None)),
                             audit=AuditLog(tmp_path / "audit.jsonl"))
    return session, venue


leg_specs = st.tuples(st.sampled_from(["stop", "take_profit", "trailing", "trailing_activation"]), sides,
                      st.sampled_from(["last", "mid", "bid_ask"]), st.integers(100, 200), st.integers(1, 20))


def _needs_python(session, leg, ref):
    """What the manager does with `ref`: True if the leg triggers or its watermark moves."""
    from engine.contingent.orders import STOP_KINDS
    from engine.contingent.triggers import stop_direction, take_profit_direction, touched

    if leg.kind == Kind.TRAILING_STOP:
        if not leg.activated:
            return touched(take_profit_direction(leg.side), ref, leg.activation)
        if leg.watermark is None or (ref > leg.watermark if leg.side < 0 else ref < leg.watermark):
            return True
    direction = stop_direction(leg.side) if leg.kind in STOP_KINDS else take_profit_direction(leg.side)
    return touched(direction, ref, leg.trigger)


@settings(max_examples=60, deadline=None)
@given(specs=st.lists(leg_specs, min_size=1, max_size=8), last=st.integers(100, 200),
       event=st.tuples(st.booleans(), st.integers(90, 210), st.integers(0, 30)))
def test_the_loop_wakes_python_exactly_when_an_armed_order_needs_it(tmp_path_factory, specs, last, event):
    session, venue = _session(tmp_path_factory.mktemp("p"))
    ctx = session.ctx
    venue.top = (100, 1, 101, 1)  # bid 1.00 / ask 1.01 at the start (in ticks of 0.01)
    session.contingent.watch[0, TW_LAST] = last
    for kind, side, trigger_type, trigger, offset in specs:
        s = "buy" if side > 0 else "sell"
        price = str(INST.ticks_to_price(trigger))
        if kind == "stop":
            ctx.submit_stop(ID, s, "0.001", price, trigger_type=trigger_type)
        elif kind == "take_profit":
            ctx.submit_take_profit(ID, s, "0.001", price, trigger_type=trigger_type)
        else:
            ctx.submit_trailing_stop(ID, s, "0.001", trailing_amount=str(INST.ticks_to_price(offset)),
                                     trigger_type=trigger_type,
                                     trailing_trigger_price=price if kind == "trailing_activation" else None)
    manager = session.contingent
    armed = [leg for leg in manager.legs.values() if leg.state == State.ARMED]
    is_trade, a, spread = event
    watch = manager.watch.copy()
    if is_trade:
        woke = trade_touch_nb(watch, 0, a)
        expected = any(_needs_python(session, leg, a) for leg in armed if leg.trigger_type == "last")
    else:
        bid, ask = a, a + spread + 1
        woke = book_touch_nb(watch, 0, bid, 1, ask, 1)
        refs = {"mid": lambda leg: bid + ask, "bid_ask": lambda leg: ask if leg.side > 0 else bid}
        expected = any(_needs_python(session, leg, refs[leg.trigger_type](leg)) for leg in armed
                       if leg.trigger_type != "last")
    assert bool(woke) == expected
