"""`Gateway.cancel_all` keeps the session's rule of one pending cancel per order
(engine/session.py `cancel_in_flight`): real async ccxt over 127.0.0.1 against the emulator."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

from emu_helpers import control, get_json, step
from gw_helpers import BTC, fault, gateway, order

from engine.types.venue_reports import Command, CommandResult, Outcome


def test_cancel_all_sends_no_second_cancel_while_one_is_in_flight(emu):
    """Two resting orders; cancels reach the venue 0.4 s late (and answer 0.4 s late: the
    emulator's `latency_spike`), so the venue still lists an order open while its cancel
    travels. A's cancel is in flight
    (`Gateway.cancel`) when two kill-switch `cancel_all`s run at once: neither sends A a
    second cancel, and B gets one cancel between them (the other sees it in flight), so
    each order has exactly one DELETE and no refusal (-2011) comes back. Without the rule,
    A had three cancels and B two, the extra ones refused by the venue as unknown orders."""
    step(emu, 0.5)
    cids = ("ca-a", "ca-b")

    async def go():
        async with gateway(emu) as gw:
            book = await gw.exchange.fetch_order_book("BTC/USDT", 5)
            px = BTC.round_price(Decimal(str(book["bids"][0][0]))) - 50
            orders = {cid: order(cid, +1, str(px)) for cid in cids}
            for o in orders.values():
                records = await gw.submit(o)
                assert next(r for r in records if isinstance(r, CommandResult)).outcome is Outcome.CONFIRMED
            sent: Counter[str] = Counter()
            real = gw.exchange.cancel_order

            async def counted(id, symbol=None, params=None):  # noqa: A002 - ccxt's name
                sent[params["origClientOrderId"]] += 1
                return await real(id, symbol, params)

            gw.exchange.cancel_order = counted
            await fault(emu, {"kind": "latency_spike", "endpoint": "DELETE /api/v3/order", "duration": "30s",
                              "extra": "400ms"})
            first = asyncio.create_task(gw.cancel(orders["ca-a"]))
            while not sent["ca-a"]:
                await asyncio.sleep(0.005)
            kills = await asyncio.gather(gw.cancel_all("ca-"), gw.cancel_all("ca-"))
            own = await first
            await fault(emu, {"clear": True})
            left = [s.client_id for _, s in await gw.open_orders() if s.client_id.startswith("ca-")]
            return sent, own, kills, left, gw.stats.coalesced

    try:
        sent, own, kills, left, coalesced = asyncio.run(asyncio.wait_for(go(), 30))
    finally:
        control(emu, "faults", {"clear": True})
    assert sent == {"ca-a": 1, "ca-b": 1}
    assert coalesced == 3  # A by both kill switches, B by the one that came second
    results = [r for r in own + kills[0] + kills[1] if isinstance(r, CommandResult)]
    assert sorted((r.client_id, r.command, r.outcome) for r in results) == [
        ("ca-a", Command.CANCEL, Outcome.CONFIRMED), ("ca-b", Command.CANCEL, Outcome.CONFIRMED)]
    assert left == []
    requests = [e for e in get_json(emu, "/emulator/journal") if e["event"] == "cancel_request"]
    ids = {e["order_id"]: e["client_order_id"] for e in get_json(emu, "/emulator/journal")
           if e["event"] == "order_new" and e["client_order_id"] in cids}
    assert sorted(ids[e["order_id"]] for e in requests if e["order_id"] in ids) == ["ca-a", "ca-b"]
