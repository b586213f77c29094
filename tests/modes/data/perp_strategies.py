"""Strategies of the derivatives backtest tests (tests/modes/test_modes_derivatives.py)."""

from decimal import Decimal

from engine import Strategy


class BuyOnce(Strategy):
    """Buy `qty` contracts at market at the first timer that sees a two-sided book."""

    def __init__(self, qty: Decimal = Decimal("1")):
        self.qty, self.sent = qty, False

    def on_start(self, ctx):
        self.inst = ctx.instruments[0]
        ctx.schedule(every_ns=1_000_000_000)

    def on_timer(self, ctx, ts):
        if not self.sent and ctx.book(self.inst).mid is not None:
            ctx.submit(self.inst, "buy", self.qty, type="market")
            self.sent = True
