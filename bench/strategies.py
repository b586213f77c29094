"""The benchmark market maker, written only against the documented Strategy API.

It is the same logic as the hftbacktest loop in `bench.bench_sim` (`_hbt_quote_nb`): every
`every_ms` it reads the local best bid and ask and, per side, keeps exactly one post-only
order at that price — an open order at another price is cancelled and a new one is sent
in the same wake (cancel/replace without waiting for the cancel to be confirmed).
"""

from __future__ import annotations

from decimal import Decimal

from engine import Strategy


class TouchQuoter(Strategy):
    """One post-only bid at the best bid and one post-only ask at the best ask."""

    def __init__(self, qty: str = "0.01", every_ms: int = 100) -> None:
        self.qty = Decimal(qty)
        self.every_ns = int(every_ms) * 1_000_000
        self.submits = 0
        self.cancels = 0
        self._cancelling: set[str] = set()

    def on_start(self, ctx) -> None:
        self.inst = ctx.instruments[0]
        self.spec = ctx.instrument(self.inst)
        ctx.subscribe(self.inst, book=False, trades=False)  # timers only: no book/trade wakes
        ctx.schedule(every_ns=self.every_ns)

    def on_timer(self, ctx, ts: int) -> None:
        book = ctx.book(self.inst)
        bid, ask = book.best_bid, book.best_ask
        if bid is None or ask is None:
            return
        targets = {"buy": bid, "sell": ask}
        quoted = {"buy": False, "sell": False}
        open_ids = ctx.open_orders(self.inst)
        if self._cancelling:
            self._cancelling.intersection_update(open_ids)
        for client_id in open_ids:
            if client_id in self._cancelling:
                continue  # a cancel is already on its way
            order = ctx.order(client_id)
            if order.price == targets[order.side] and not quoted[order.side]:
                quoted[order.side] = True
            elif ctx.cancel(client_id):
                self._cancelling.add(client_id)
                self.cancels += 1
        if not quoted["buy"]:
            ctx.submit(self.inst, "buy", self.qty, bid, post_only=True)
            self.submits += 1
        if not quoted["sell"]:
            ctx.submit(self.inst, "sell", self.qty, ask, post_only=True)
            self.submits += 1
