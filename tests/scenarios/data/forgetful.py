"""Test strategy: rests one bid far below the touch and never cancels it, not even on stop:
the order is left working without an owner when the run ends (no_orphan_orders must catch it)."""

from decimal import Decimal

from engine import Strategy


class Forgetful(Strategy):
    def __init__(self, qty: str = "0.001") -> None:
        self.qty = Decimal(qty)
        self.sent = False

    def on_start(self, ctx) -> None:
        ctx.schedule(every_ns=1_000_000_000)

    def on_timer(self, ctx, ts: int) -> None:
        inst = ctx.instruments[0]
        book = ctx.book(inst)
        if self.sent or book.best_bid is None:
            return
        price = ctx.instrument(inst).round_price(book.best_bid * Decimal("0.9"), "down")
        ctx.submit(inst, "buy", self.qty, price, post_only=True)
        self.sent = True
