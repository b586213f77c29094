"""venues/ccxt/wire.py: when each order request was written, on a real ccxt client over
127.0.0.1 against the emulator (aiohttp's request tracing on ccxt's session)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from gw_helpers import BTC, now_ns, order

from engine.types.venue_reports import CommandResult, Outcome
from venues.ccxt.gateway import Gateway
from venues.ccxt.ratelimit import WeightLimiter
from venues.ccxt.wire import WireTimes


def test_a_submit_a_refusal_and_a_cancel_each_get_the_time_they_were_written(emu):
    """A post-only buy above the best ask (refused: -2010, no venue time), a resting buy
    and its cancel: each request's write time lies inside its own call, is taken once
    (a second pop is None), and the submit's and the cancel's of one client id are apart."""
    import ccxt.async_support as ccxt_async

    async def go():
        wire = WireTimes(time.time_ns)
        ex = ccxt_async.binance(emu.ccxt_config("alice", timeout=3000, enableRateLimit=False))
        wire.install(ex)  # before the first REST call
        try:
            await ex.load_markets()
            gw = Gateway(ex, {"BTC/USDT": BTC}, now=now_ns, limiter=WeightLimiter())
            book = await ex.fetch_order_book("BTC/USDT", 5)
            ask, bid = Decimal(str(book["asks"][0][0])), Decimal(str(book["bids"][0][0]))
            refused = order("wire-1", +1, str(BTC.round_price(ask + 1)), post_only=True)
            rests = order("wire-2", +1, str(BTC.round_price(bid - 100)))
            spans = {}
            for name, o, call in (("refused", refused, "submit"), ("rests", rests, "submit"),
                                  ("cancel", rests, "cancel")):
                t0 = time.time_ns()
                records = await (gw.submit(o) if call == "submit" else gw.cancel(o))
                spans[name] = (t0, time.time_ns(), wire.pop(o.client_id, call), wire.pop(o.client_id, call),
                               next(r for r in records if isinstance(r, CommandResult)).outcome)
            return spans
        finally:
            await ex.close()

    spans = asyncio.run(asyncio.wait_for(go(), 30))
    assert [s[4] for s in spans.values()] == [Outcome.REJECTED, Outcome.CONFIRMED, Outcome.CONFIRMED]
    for t0, t1, written, again, _ in spans.values():
        assert t0 <= written <= t1 and again is None
