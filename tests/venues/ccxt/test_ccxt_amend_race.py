"""An amend that races a fill of the order it replaces (Binance cancel-replace): the venue
fills part of the resting order, then our cancelReplace cancels it and places the
replacement sized on the fills the session knew (none). The session has not heard of the
fill (no user stream here). Its lookup asks for the order by client id (Binance answers the
replacement) and for the venue order the amend replaced (`Order.replaced`): the old order's
fill is booked once, and the order's total is what the venue will fill, the old order's
0.001 plus the replacement's 0.006 (engine/venue_merge.py `_replaced_report`). Real ccxt
over 127.0.0.1 against the emulator."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from race_session import BTC, Race, bob_takes, run_race, settle

from engine.types import OrderStatus
from engine.types.venue_reports import CommandResult, Outcome


def test_a_fill_of_the_replaced_order_is_found_by_the_lookup_and_adds_to_the_total(tmp_path):
    seen: dict = {}

    async def race(r: Race) -> None:
        order = r.session.oms.by_client["race-amend"]
        seen["first_id"] = order.venue_order_id
        taker = await asyncio.to_thread(bob_takes, r.emu, 0.001)
        assert taker["filled"] == 0.001  # alice's order part-filled at the venue
        r.session.ctx.amend("race-amend", qty=Decimal("0.006"))  # sent before the fill is known
        await settle(r.venue)
        assert order.is_open and order.replaced == {seen["first_id"]: 0} and order.filled == 0
        r.session._lookup(order, r.session.clock.now(), "test: the stream is not running")

    r = run_race(tmp_path, "race-amend", race)
    first_id = seen["first_id"]
    amend = next(x for x in r.records if isinstance(x, CommandResult) and x.command.value == "amend")
    assert amend.outcome == Outcome.CONFIRMED and amend.venue_order_id != first_id
    order = r.session.oms.by_client["race-amend"]
    assert order.status == OrderStatus.PARTIALLY_FILLED and order.filled == BTC.qty_to_lots("0.001")
    assert order.qty == BTC.qty_to_lots("0.007") and order.leaves == BTC.qty_to_lots("0.006")
    assert order.replaced == {first_id: BTC.qty_to_lots("0.001")}
    assert [u.event.value for u in r.strategy.updates] == ["acknowledged", "amended", "fill"]
    assert len(r.session.oms.trades) == 1
    assert r.ledger.balance("binance", "BTC") == sum(r.end["BTC"]) == sum(r.start["BTC"]) - Decimal("0.001")
    assert r.ledger.balance("binance", "USDT") == sum(r.end["USDT"])
