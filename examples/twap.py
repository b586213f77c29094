"""TWAP executor: buys (or sells) a parent quantity in equal slices over a horizon.

Each slice is a marketable limit IOC capped `max_slippage_bps` through the touch; what a
slice cannot fill rolls into the next one, and the last slice sweeps the remainder.
A slice waits for a book: a timer that finds no touch on the order's side (the book has
not arrived yet, e.g. a backtest whose feed latency delays the opening snapshot past the
first timer) sends nothing and does not count the slice, so the next timer sends it and
the parent is still cut into `slices` equal parts (never 9 slices of 1/9 for 10 asked).
Run it:  tickparity backtest --config examples/twap.toml
"""

from decimal import Decimal

from engine import Strategy


class TWAP(Strategy):
    def __init__(
        self,
        instrument: str | None = None,
        side: str = "buy",
        quantity: Decimal = Decimal("1"),
        horizon_s: int = 600,
        slices: int = 20,
        max_slippage_bps: Decimal = Decimal("10"),
        parent_id: str = "twap-1",
    ) -> None:
        if side not in ("buy", "sell"):
            raise ValueError("side must be 'buy' or 'sell'")
        self.instrument = instrument
        self.side = side
        self.quantity = Decimal(quantity)
        self.horizon_ns = int(horizon_s) * 1_000_000_000
        self.slices = int(slices)
        self.max_slippage = Decimal(str(max_slippage_bps)) / Decimal(10000)
        self.parent_id = parent_id
        self.filled = Decimal(0)
        self.sent = 0

    def on_start(self, ctx) -> None:
        self.instrument = self.instrument or ctx.instruments[0]
        self.spec = ctx.instrument(self.instrument)
        self.interval = self.horizon_ns // self.slices
        ctx.schedule(every_ns=self.interval, at_ns=ctx.now)

    def on_timer(self, ctx, ts: int) -> None:
        if self.sent >= self.slices or self.filled >= self.quantity:
            return
        if ctx.venue_health(self.spec.venue) != "up":
            return  # down or rate limited: this slice goes out one interval later, merged into the next
        book = ctx.book(self.instrument)
        touch = book.best_ask if self.side == "buy" else book.best_bid
        if touch is None:
            return  # no book yet: the slice waits for the next timer (module doc)
        if self.sent == 0:
            # the parent records decision time, arrival prices (from the book the first
            # slice sees: there is none in on_start) and the target, for implementation shortfall
            ctx.open_parent(self.instrument, self.side, self.quantity, parent_id=self.parent_id)
        self.sent += 1
        remaining = self.quantity - self.filled
        slices_left = self.slices - self.sent + 1
        slice_qty = self.spec.round_qty(remaining / slices_left, "down")
        if self.sent == self.slices:
            slice_qty = remaining
        if slice_qty <= 0:
            return
        if self.side == "buy":
            cap = self.spec.round_price(touch * (1 + self.max_slippage), "down")
        else:
            cap = self.spec.round_price(touch * (1 - self.max_slippage), "up")
        ctx.submit(self.instrument, self.side, slice_qty, cap, tif="IOC", parent_id=self.parent_id)

    def on_order(self, ctx, update) -> None:
        if update.last_fill_qty:
            self.filled += update.last_fill_qty
        if self.filled >= self.quantity:
            ctx.close_parent(self.parent_id)

    def on_stop(self, ctx) -> None:
        if self.sent:  # the parent opens with the first slice
            ctx.close_parent(self.parent_id, reason="horizon_end")
