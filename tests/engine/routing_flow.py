"""Test strategy: a routed TWAP across every venue of the run; optionally marks a venue down."""

from decimal import Decimal

from engine import Strategy
from engine.execution import TWAP, SmartOrderRouter


class RoutedTWAP(Strategy):
    def __init__(self, side: str = "sell", quantity: Decimal = Decimal("1"), down_venue: str = "",
                 down_at_ms: int = 0, slices: int = 4, horizon_s: int = 40, style: str = "aggressive",
                 max_venue_position: dict | None = None) -> None:
        self.side, self.quantity = side, Decimal(str(quantity))
        self.down_venue, self.down_at_ms = down_venue, down_at_ms
        self.slices, self.horizon_s = slices, horizon_s
        self.style, self.max_venue_position = style, dict(max_venue_position or {})
        self.algo = None

    def on_start(self, ctx) -> None:
        ctx.schedule(at_ns=ctx.now)
        if self.down_venue:
            ctx.schedule(at_ns=ctx.now + self.down_at_ms * 1_000_000)

    def on_timer(self, ctx, ts: int) -> None:
        if self.algo is None:
            self.algo = ctx.execute(TWAP(ctx.instruments[0], self.side, self.quantity, parent_id="routed-1",
                                         horizon_s=self.horizon_s, slices=self.slices, style=self.style,
                                         router=SmartOrderRouter(max_venue_position=self.max_venue_position)))
        elif self.down_venue:
            ctx.set_venue_health(self.down_venue, "down", "test outage")
