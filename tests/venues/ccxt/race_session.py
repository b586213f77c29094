"""A session resting one sell on the emulator's still market, for the race tests (a cancel or
an amend sent before the session hears of a fill the venue already made).

`run_race` starts the emulator on a market that never moves (bid 60000, ask 60010), builds the
engine's TradingSession over the product's `CcxtVenue` (real async ccxt over 127.0.0.1, no
user stream: the fill's executionReport never arrives, so only the OMS's lookups can find
it), rests the strategy's sell at 60005 and then hands everything to the test's `race`
coroutine, which makes the venue fill and sends the racing command.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from emu_helpers import IDS, make_emulator, step, still_market
from fault_session import TopBook

from engine.audit import AuditLog
from engine.clock import LiveClock
from engine.ledger import Ledger
from engine.risk import RiskConfig, RiskEngine
from engine.session import TradingSession
from engine.strategy import Strategy
from engine.types import load_instruments
from modes.live.reports import apply_report
from venues.ccxt import CcxtVenue

BTC = load_instruments()["binance:BTC/USDT"]


class Seller(Strategy):
    """Rests one sell of 0.004 at 60005 (inside the spread) at start; records its updates."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.updates: list = []

    def on_start(self, ctx):
        ctx.submit(BTC.id, "sell", Decimal("0.004"), Decimal("60005.00"), client_id=self.client_id)

    def on_order(self, ctx, update):
        self.updates.append(update)


@dataclass
class Race:
    """What a race test reads: the session and its parts, every venue record the session got,
    the account's balances at the start and at the end (`(free, locked)` per asset)."""

    emu: Any
    session: TradingSession
    venue: CcxtVenue
    strategy: Seller
    ledger: Ledger
    records: list
    start: dict
    end: dict | None = None


async def settle(venue: CcxtVenue) -> None:
    """Wait until every command task the venue started has ended."""
    while venue.tasks:
        await asyncio.gather(*list(venue.tasks), return_exceptions=True)


def run_race(tmp_path, client_id: str, race: Callable[[Race], Awaitable[None]]) -> Race:
    """Start the emulator and the session (its sell acknowledged), run `race`, settle, read the
    venue's balances; within 60 s."""
    import ccxt.async_support as ccxt_async

    with make_emulator(tmp_path / "still", source=still_market(), ids=IDS[:1]) as emu:
        step(emu, 1.0)

        async def go() -> Race:
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
                strategy = Seller(client_id)
                session = TradingSession(strategy=strategy, instruments={BTC.id: BTC}, venues={"binance": venue},
                                         clock=LiveClock(), ledger=ledger, risk=RiskEngine(RiskConfig.from_table(None)),
                                         audit=AuditLog(tmp_path / "audit.jsonl"), id_prefix="race")
                box.append(session)
                session.start()
                await settle(venue)
                state = Race(emu, session, venue, strategy, ledger, records, start)
                await race(state)
                await settle(venue)
                state.end = await venue.gateway.balances()
                return state
            finally:
                await ex.close()

        return asyncio.run(asyncio.wait_for(go(), 60))


def bob_takes(emu, qty: float) -> dict:
    """Bob's IOC buy at 60010 (the ask): it fills alice's sell at 60005 first. Blocking."""
    import ccxt

    bob = ccxt.binance(emu.ccxt_config("bob", timeout=3000))
    return bob.create_order("BTC/USDT", "limit", "buy", qty, 60010.0, {"timeInForce": "IOC"})
