"""A cancel that races a fill: the venue answers -2011 "Unknown order sent." because the
order has just filled, and the fill's executionReport has not reached the session. The
OMS must not take the refusal at face value (the order still open, the fill unbooked until
the next reconciliation): it looks the order up by client id and books what the venue
shows (engine/venue_merge.py `_merge_command`; the live CcxtVenue's gateway leaves the
lookup to the OMS, `resolve=False`). Real ccxt over 127.0.0.1 against the emulator."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from race_session import BTC, Race, bob_takes, run_race

from engine.types import OrderStatus
from engine.types.venue_reports import CommandResult, Outcome


def test_a_cancel_refused_unknown_order_after_a_fill_is_looked_up_and_the_fill_booked(tmp_path):
    """On a market that never moves (bid 60000, ask 60010), the session rests a sell at
    60005; bob's buy fills it at the venue; the session, which has not heard of the fill
    (no user stream here: the executionReport is still on its way), cancels it. The venue
    refuses (-2011, reason unknown_order); the OMS then looks the order up by client id and
    books the fill: the order ends FILLED, the ledger holds the trade, the strategy is told."""

    async def race(r: Race) -> None:
        assert r.session.oms.by_client["race-sell"].status == OrderStatus.ACKNOWLEDGED
        taker = await asyncio.to_thread(bob_takes, r.emu, 0.004)
        assert taker["filled"] == 0.004  # alice's order filled at the venue
        r.session.cancel("race-sell")  # the race: sent before the fill is known here

    r = run_race(tmp_path, "race-sell", race)
    cancel = next(x for x in r.records if isinstance(x, CommandResult) and x.command.value == "cancel")
    assert (cancel.outcome, cancel.reason, cancel.evidence["code"]) == (Outcome.REJECTED, "unknown_order", -2011)
    order = r.session.oms.by_client["race-sell"]
    assert order.status == OrderStatus.FILLED and order.filled == BTC.qty_to_lots("0.004")
    assert [u.event.value for u in r.strategy.updates][-2:] == ["cancel_rejected", "fill"]
    assert r.strategy.updates[-1].status.value == "filled"
    assert len(r.session.oms.trades) == 1
    # the ledger now holds what the venue holds (Binance: the seller pays its fee in quote)
    assert r.ledger.balance("binance", "BTC") == sum(r.end["BTC"]) == sum(r.start["BTC"]) - Decimal("0.004")
    assert r.ledger.balance("binance", "USDT") == sum(r.end["USDT"])
