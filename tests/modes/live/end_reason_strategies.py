"""Strategy for the live end-reason tests (loaded by path, as a user's file is)."""

from __future__ import annotations

from decimal import Decimal

from engine import Strategy

INST = "binance:BTC/USDT"


class IocAndCancel(Strategy):
    """On its first timer with a book: an IOC buy 0.5% under the bid (it cannot fill: its
    remainder ends at once) and a resting buy 1% under the bid; on the third timer, a
    cancel of the resting one. Records every update as an `update` decision."""

    def on_start(self, ctx) -> None:
        self.ticks = 0
        self.resting: str | None = None
        ctx.schedule(every_ns=500_000_000)

    def on_timer(self, ctx, ts: int) -> None:
        book = ctx.book(INST)
        if book.best_bid is None:
            return
        self.ticks += 1
        spec = ctx.instrument(INST)
        if self.ticks == 1:
            ctx.submit(INST, "buy", Decimal("0.01"), spec.round_price(book.best_bid * Decimal("0.995"), "down"),
                       tif="IOC")
            self.resting = ctx.submit(INST, "buy", Decimal("0.01"),
                                      spec.round_price(book.best_bid * Decimal("0.99"), "down"))
        elif self.ticks == 3 and self.resting is not None:
            ctx.cancel(self.resting)

    def on_order(self, ctx, update) -> None:
        ctx.record("update", client_id=update.client_id, event=str(update.event.value),
                   reason=None if update.reason is None else str(update.reason))
