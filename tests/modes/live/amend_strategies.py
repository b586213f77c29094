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


class BracketOnce(Strategy):
    """On start, unless the session took over contingent orders (`--resume`): a bracket whose
    entry rests below the book (limit buy 0.01 at 59990.00), stop-loss at 59000, resting
    take-profit at 61000, ids chosen by the engine. Part fills of the entry send, then amend,
    the take-profit (cancel-replace at Binance). Records what it found after a restart."""

    def on_start(self, ctx) -> None:
        found = ctx.contingent_orders()
        if found:
            ctx.record("resumed", ids=",".join(found))
            return
        ctx.submit_bracket(INST, "buy", "0.01", "59990", stop_loss_price="59000", take_profit_price="61000")

    def on_order(self, ctx, update) -> None:
        view = ctx.order(update.client_id)
        if view is None:  # a contingent order's own update (not a venue order)
            return
        ctx.record("update", client_id=update.client_id, event=str(update.event.value),
                   status=view.status, qty=str(view.qty), filled=str(view.filled_qty))


class AmendAcross(Strategy):
    """A post-only sell resting 0.5% over the ask; on the 3rd timer (500 ms) its price is
    amended to 1% under the bid: the cancel-replace cancels it and the post-only replacement would
    take, so the venue refuses it (Binance -2021, partially failed)."""

    def on_start(self, ctx) -> None:
        self.ticks = 0
        self.cid: str | None = None
        ctx.schedule(every_ns=500_000_000)

    def on_timer(self, ctx, ts: int) -> None:
        book = ctx.book(INST)
        if book.best_bid is None:
            return
        self.ticks += 1
        spec = ctx.instrument(INST)
        if self.cid is None:
            self.cid = ctx.submit(INST, "sell", Decimal("0.01"), spec.round_price(book.best_ask * Decimal("1.005"), "up"),
                                  post_only=True)
        elif self.ticks == 3:  # 1% under the bid: it would take whatever the book did since
            ctx.amend(self.cid, price=spec.round_price(book.best_bid * Decimal("0.99"), "down"))

    def on_order(self, ctx, update) -> None:
        ctx.record("update", client_id=update.client_id, event=str(update.event.value),
                   reason=None if update.reason is None else str(update.reason))


class RestTwo(Strategy):
    """On start, unless the session took orders over (`--resume`): two plain limit orders
    resting off the book, a buy of 0.01 at 59990.00 and a sell of 0.005 at 60010.00, ids
    chosen by the engine. Records what it found open after a restart."""

    def on_start(self, ctx) -> None:
        found = ctx.open_orders()
        if found:
            ctx.record("resumed", ids=",".join(found))
            return
        ctx.submit(INST, "buy", "0.01", "59990")
        ctx.submit(INST, "sell", "0.005", "60010")
