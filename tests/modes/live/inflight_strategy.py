"""A quoting strategy that always has an order in flight (tests/modes/live/test_live_reconcile_gap.py):
every 250 ms a new post-only buy 1% under the best bid (it never fills), the oldest of
more than two resting ones cancelled."""

from __future__ import annotations

from decimal import Decimal

from engine import Strategy


class AlwaysInFlight(Strategy):
    def __init__(self, every_ms: int = 250) -> None:
        self.every_ns = int(every_ms) * 1_000_000
        self.sent: list[str] = []

    def on_start(self, ctx) -> None:
        self.instrument = ctx.instruments[0]
        self.spec = ctx.instrument(self.instrument)
        ctx.schedule(every_ns=self.every_ns)

    def on_timer(self, ctx, ts: int) -> None:
        bid = ctx.book(self.instrument).best_bid
        if bid is None:
            return
        price = self.spec.round_price(bid * Decimal("0.99"), "down")
        cid = ctx.submit(self.instrument, "buy", Decimal("0.001"), price, post_only=True)
        if cid:
            self.sent.append(cid)
        resting = [c for c in self.sent
                   if (o := ctx.order(c)) is not None and o.status == "acknowledged" and o.cancel_req_ts is None]
        if len(resting) > 2:
            ctx.cancel(resting[0])

    def on_stop(self, ctx) -> None:
        for client_id in ctx.open_orders(self.instrument):
            ctx.cancel(client_id)
