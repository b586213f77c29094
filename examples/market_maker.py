"""A market maker: quotes both sides around the mid, skewed against its inventory.

Run it:  tickparity backtest --config examples/market_maker.toml
Written only against the documented Strategy API, so it runs unchanged in every mode.
"""

from decimal import Decimal

from engine import Strategy


class MarketMaker(Strategy):
    def __init__(
        self,
        instrument: str | None = None,
        half_spread_bps: Decimal = Decimal("4"),
        qty: Decimal = Decimal("0.01"),
        max_position: Decimal = Decimal("0.1"),
        skew_bps: Decimal = Decimal("2"),
        refresh_ms: int = 100,
    ) -> None:
        # Decimal parameters arrive exactly as written in [run.params] or --param (never via float)
        self.instrument = instrument
        self.half_spread = Decimal(str(half_spread_bps)) / Decimal(10000)
        self.qty = Decimal(qty)
        self.max_position = Decimal(max_position)
        self.skew = Decimal(str(skew_bps)) / Decimal(10000)
        self.refresh_ns = int(refresh_ms) * 1_000_000
        self.quotes: dict[str, str | None] = {"buy": None, "sell": None}

    def on_start(self, ctx) -> None:
        self.instrument = self.instrument or ctx.instruments[0]
        self.spec = ctx.instrument(self.instrument)
        ctx.schedule(every_ns=self.refresh_ns)

    def on_timer(self, ctx, ts: int) -> None:
        health = self.venue_state(ctx)
        if health != "up":
            # down (outage, maintenance, disconnect): pull the quotes, send nothing new;
            # rate limited: send nothing at all until the window resets (a 418 ban follows otherwise)
            if health == "down":
                self._pull_quotes(ctx)
            return
        book = ctx.book(self.instrument)
        mid = book.mid
        if mid is None:
            return
        position = ctx.position(self.instrument)
        # lean the quotes against inventory: long -> lower both prices to sell more
        lean = mid * self.skew * (position / self.max_position)
        bid = self.spec.round_price(mid * (1 - self.half_spread) - lean, "down")
        ask = self.spec.round_price(mid * (1 + self.half_spread) - lean, "up")
        # post-only quotes must stay on the passive side of the touch, whatever the lean
        tick = self.spec.tick_size
        if book.best_ask is not None:
            bid = min(bid, book.best_ask - tick)
        if book.best_bid is not None:
            ask = max(ask, book.best_bid + tick)
        targets = {"buy": bid, "sell": ask}
        for side, price in targets.items():
            allowed = position < self.max_position if side == "buy" else position > -self.max_position
            self._quote(ctx, side, price if allowed else None)

    def _quote(self, ctx, side: str, price: Decimal | None) -> None:
        client_id = self.quotes[side]
        order = ctx.order(client_id) if client_id else None
        if order is not None and order.is_open:
            if price is not None and order.price == price:  # Decimals, like every ctx answer
                return
            ctx.cancel(client_id)
            self.quotes[side] = None
        if price is not None:
            self.quotes[side] = ctx.submit(self.instrument, side, self.qty, price, post_only=True)

    def venue_state(self, ctx) -> str:
        """The venue's health: "up", "degraded", "rate_limited" or "down" (ctx.venue_health)."""
        return ctx.venue_health(self.spec.venue)

    def _pull_quotes(self, ctx) -> None:
        for client_id in self.quotes.values():
            order = ctx.order(client_id) if client_id else None
            if order is not None and order.is_open and order.cancel_req_ts is None:
                ctx.cancel(client_id)

    def on_order(self, ctx, update) -> None:
        if update.status in ("filled", "cancelled", "rejected", "expired"):
            for side, client_id in self.quotes.items():
                if client_id == update.client_id:
                    self.quotes[side] = None

    def on_stop(self, ctx) -> None:
        for client_id in ctx.open_orders(self.instrument):
            ctx.cancel(client_id)
