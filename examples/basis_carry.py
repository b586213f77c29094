"""Cash-and-carry: long spot, short the perpetual of the same asset, collect funding.

With a positive funding rate the short perpetual receives funding while the spot long
hedges the price; the report's Contracts section shows the funding received against the
fees paid (docs/derivatives.md). Both legs are market orders sent at the first timer
that sees both books; the run holds them to the end.
"""

from decimal import Decimal

from engine import Strategy


class BasisCarry(Strategy):
    """Buy `qty` on the first instrument (spot), sell `qty` on the second (perpetual)."""

    def __init__(self, qty: Decimal = Decimal("0.5")):
        self.qty, self.sent = qty, False

    def on_start(self, ctx):
        self.spot, self.perp = ctx.instruments[0], ctx.instruments[1]
        ctx.schedule(every_ns=1_000_000_000)

    def on_timer(self, ctx, ts):
        if self.sent or ctx.book(self.spot).mid is None or ctx.book(self.perp).mid is None:
            return
        ctx.submit(self.spot, "buy", self.qty, type="market")
        ctx.submit(self.perp, "sell", self.qty, type="market")
        self.sent = True
