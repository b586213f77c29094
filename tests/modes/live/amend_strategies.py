"""Strategies for the live amend tests (loaded by path, as a user's file is)."""

from __future__ import annotations

from decimal import Decimal

from engine import Strategy

INST = "binance:BTC/USDT"


class AmendOnce(Strategy):
    """The user's report (cancel-replace on Binance spot): on a 1 s timer, a buy of 0.01 at
    mid * 0.99 (it rests, far from the touch); on the 4th timer `ctx.amend` of it to
    `amend_qty` and/or `amend_price_bps` (price moved by that many bp). Records every
    update it gets as `update` decisions (event, status, qty, price)."""

    def __init__(self, amend_qty: str = "0.02", amend_price_bps: int = 0) -> None:
        self.amend_qty = Decimal(amend_qty) if amend_qty else None
        self.amend_price_bps = int(amend_price_bps)
        self.ticks = 0
        self.cid: str | None = None

    def on_start(self, ctx) -> None:
        ctx.schedule(every_ns=1_000_000_000)

    def on_timer(self, ctx, ts: int) -> None:
        self.ticks += 1
        book = ctx.book(INST)
        if self.cid is None and book.mid is not None:
            spec = ctx.instrument(INST)
            self.cid = ctx.submit(INST, "buy", Decimal("0.01"), spec.round_price(book.mid * Decimal("0.99")))
        elif self.ticks == 4 and self.cid is not None:
            order = ctx.order(self.cid)
            price = None
            if self.amend_price_bps:
                spec = ctx.instrument(INST)
                price = spec.round_price(order.price * (1 + Decimal(self.amend_price_bps) / 10_000))
            ctx.amend(self.cid, qty=self.amend_qty, price=price)

    def on_order(self, ctx, update) -> None:
        view = ctx.order(update.client_id)
        ctx.record("update", client_id=update.client_id, event=str(update.event.value),
                   status=view.status, qty=str(view.qty), price=str(view.price))
