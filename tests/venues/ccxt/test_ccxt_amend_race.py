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
import time
from decimal import Decimal

from emu_helpers import IDS, make_emulator, step, still_market
from fault_session import TopBook

from engine.audit import AuditLog
from engine.clock import LiveClock
from engine.ledger import Ledger
from engine.risk import RiskConfig, RiskEngine
from engine.session import TradingSession
from engine.strategy import Strategy
from engine.types import OrderStatus, load_instruments
from engine.types.venue_reports import CommandResult, Outcome
from modes.live.reports import apply_report
from venues.ccxt import CcxtVenue

BTC = load_instruments()["binance:BTC/USDT"]


class Seller(Strategy):
    """Rests one sell of 0.004 inside the spread at start; records its updates."""

    def __init__(self) -> None:
        self.updates = []

    def on_start(self, ctx):
        ctx.submit(BTC.id, "sell", Decimal("0.004"), Decimal("60005.00"), client_id="race-amend")

    def on_order(self, ctx, update):
        self.updates.append(update)


async def _settle(venue: CcxtVenue) -> None:
    while venue.tasks:
        await asyncio.gather(*list(venue.tasks), return_exceptions=True)


def test_a_fill_of_the_replaced_order_is_found_by_the_lookup_and_adds_to_the_total(tmp_path):
    import ccxt
    import ccxt.async_support as ccxt_async

    with make_emulator(tmp_path / "still", source=still_market(), ids=IDS[:1]) as emu:
        step(emu, 1.0)

        async def go():
            ex = ccxt_async.binance(emu.ccxt_config("alice", timeout=3000, enableRateLimit=False))
            records: list = []
            box: list[TradingSession] = []

            def sink(rec):
                records.append(rec)
                apply_report(box[0], rec)

            try:
                await ex.load_markets()
                book = TopBook()
                book.top = (BTC.price_to_ticks("60000.00"), BTC.qty_to_lots("1"), BTC.price_to_ticks("60010.00"),
                            BTC.qty_to_lots("1"))
                venue = CcxtVenue("binance", ex, {0: BTC}, book, sink, time.time_ns)
                start = await venue.gateway.balances()
                ledger = Ledger({BTC.id: BTC}, {"binance": {a: f + lk for a, (f, lk) in start.items()}})
                strategy = Seller()
                session = TradingSession(strategy=strategy, instruments={BTC.id: BTC}, venues={"binance": venue},
                                         clock=LiveClock(), ledger=ledger, risk=RiskEngine(RiskConfig.from_table(None)),
                                         audit=AuditLog(tmp_path / "audit.jsonl"), id_prefix="race")
                box.append(session)
                session.start()
                await _settle(venue)
                order = session.oms.by_client["race-amend"]
                first_id = order.venue_order_id
                bob = ccxt.binance(emu.ccxt_config("bob", timeout=3000))
                taker = await asyncio.to_thread(bob.create_order, "BTC/USDT", "limit", "buy", 0.001, 60010.0,
                                                {"timeInForce": "IOC"})
                assert taker["filled"] == 0.001  # alice's order part-filled at the venue
                session.ctx.amend("race-amend", qty=Decimal("0.006"))  # sent before the fill is known
                await _settle(venue)
                assert order.is_open and order.replaced == {first_id: 0} and order.filled == 0
                session._lookup(order, session.clock.now(), "test: the stream is not running")
                await _settle(venue)
                return session, strategy, records, ledger, await venue.gateway.balances(), start, first_id
            finally:
                await ex.close()

        session, strategy, records, ledger, venue_end, start, first_id = asyncio.run(asyncio.wait_for(go(), 60))
    amend = next(r for r in records if isinstance(r, CommandResult) and r.command.value == "amend")
    assert amend.outcome == Outcome.CONFIRMED and amend.venue_order_id != first_id
    order = session.oms.by_client["race-amend"]
    assert order.status == OrderStatus.PARTIALLY_FILLED and order.filled == BTC.qty_to_lots("0.001")
    assert order.qty == BTC.qty_to_lots("0.007") and order.leaves == BTC.qty_to_lots("0.006")
    assert order.replaced == {first_id: BTC.qty_to_lots("0.001")}
    assert [u.event.value for u in strategy.updates] == ["acknowledged", "amended", "fill"]
    assert len(session.oms.trades) == 1
    assert ledger.balance("binance", "BTC") == sum(venue_end["BTC"]) == sum(start["BTC"]) - Decimal("0.001")
    assert ledger.balance("binance", "USDT") == sum(venue_end["USDT"])
