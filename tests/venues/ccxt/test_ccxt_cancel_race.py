"""A cancel that races a fill: the venue answers -2011 "Unknown order sent." because the
order has just filled, and the fill's executionReport has not reached the session. The
OMS must not take the refusal at face value (the order still open, the fill unbooked until
the next reconciliation): it looks the order up by client id and books what the venue
shows (engine/venue_merge.py `_merge_command`; the live CcxtVenue's gateway leaves the
lookup to the OMS, `resolve=False`). Real ccxt over 127.0.0.1 against the emulator."""

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
    """Rests one sell inside the spread at start; records its updates."""

    def __init__(self) -> None:
        self.updates = []

    def on_start(self, ctx):
        ctx.submit(BTC.id, "sell", Decimal("0.004"), Decimal("60005.00"), client_id="race-sell")

    def on_order(self, ctx, update):
        self.updates.append(update)


async def _settle(venue: CcxtVenue) -> None:
    while venue.tasks:
        await asyncio.gather(*list(venue.tasks), return_exceptions=True)


def test_a_cancel_refused_unknown_order_after_a_fill_is_looked_up_and_the_fill_booked(tmp_path):
    """On a market that never moves (bid 60000, ask 60010), the session rests a sell at
    60005; bob's buy fills it at the venue; the session, which has not heard of the fill
    (no user stream here: the executionReport is still on its way), cancels it. The venue
    refuses (-2011, reason unknown_order); the OMS then looks the order up by client id and
    books the fill: the order ends FILLED, the ledger holds the trade, the strategy is told."""
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
                book = TopBook()  # the session's local book: the still market's touch
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
                order = session.oms.by_client["race-sell"]
                assert order.status == OrderStatus.ACKNOWLEDGED
                bob = ccxt.binance(emu.ccxt_config("bob", timeout=3000))
                taker = await asyncio.to_thread(bob.create_order, "BTC/USDT", "limit", "buy", 0.004, 60010.0,
                                                {"timeInForce": "IOC"})
                assert taker["filled"] == 0.004  # alice's order filled at the venue
                session.cancel("race-sell")  # the race: sent before the fill is known here
                await _settle(venue)
                return session, strategy, records, ledger, await venue.gateway.balances(), start
            finally:
                await ex.close()

        session, strategy, records, ledger, venue_end, start = asyncio.run(asyncio.wait_for(go(), 60))
    cancel = next(r for r in records if isinstance(r, CommandResult) and r.command.value == "cancel")
    assert (cancel.outcome, cancel.reason, cancel.evidence["code"]) == (Outcome.REJECTED, "unknown_order", -2011)
    order = session.oms.by_client["race-sell"]
    assert order.status == OrderStatus.FILLED and order.filled == BTC.qty_to_lots("0.004")
    assert [u.event.value for u in strategy.updates][-2:] == ["cancel_rejected", "fill"]
    assert strategy.updates[-1].status.value == "filled"
    assert len(session.oms.trades) == 1
    # the ledger now holds what the venue holds (Binance: the seller pays its fee in quote)
    assert ledger.balance("binance", "BTC") == sum(venue_end["BTC"]) == sum(start["BTC"]) - Decimal("0.004")
    assert ledger.balance("binance", "USDT") == sum(venue_end["USDT"])
