"""A leveraged perpetual long: buy `qty` contracts at market once, then hold.

It exists to show contracts in a backtest (docs/derivatives.md): margin, funding, the
margin and liquidation-distance charts of the report, and the venue's liquidation when the
price falls through the liquidation price (`tickparity stress` with
scenarios/library/perp-long-crash-2021-05-19.toml).
"""

from decimal import Decimal

from engine import Strategy


class PerpLong(Strategy):
    """Buy `qty` contracts of the run's first instrument at market, then hold them."""

    def __init__(self, qty: Decimal = Decimal("1")):
        self.qty, self.sent = qty, False

    def on_start(self, ctx):
        self.inst = ctx.instruments[0]
        ctx.schedule(every_ns=1_000_000_000)

    def on_timer(self, ctx, ts):
        if not self.sent and ctx.book(self.inst).mid is not None:
            ctx.submit(self.inst, "buy", self.qty, type="market")
            self.sent = True

    def on_order(self, ctx, update):
        if update.reason == "liquidation":
            ctx.record("liquidated", price=update.last_fill_price, qty=update.last_fill_qty)
