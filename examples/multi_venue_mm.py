"""A multi-venue market maker: quotes one asset on every venue around the consolidated mid,
skewed against the inventory summed over venues, and hedges excess inventory on the venue
with the best price.

- Fair value: the consolidated mid, (best bid over venues + best ask over venues) / 2, or the
  mean of the venue mids when the consolidated book is crossed (a venue lagging the leader).
- Quotes: per venue, bid = fair * (1 - half_spread - maker_fee) - lean and ask = fair * (1 +
  half_spread + maker_fee) - lean, so a fill earns at least `half_spread_bps` after that venue's
  maker fee (a rebate tightens the quote); lean = fair * skew * inventory / max_position.
  Post-only, never through the venue's own touch; a sell is posted only where the base is held.
- Hedge: when |inventory| exceeds `hedge_threshold`, the excess is sent as an IOC on the venue
  with the best price after taker fee, capped `hedge_slippage_bps` through the touch.

Run it:  tickparity backtest --config examples/multi_venue_mm.toml
"""

from decimal import Decimal

from engine import Strategy
from engine.execution.router import best_taker_venue

_BPS = Decimal(10000)


class MultiVenueMarketMaker(Strategy):
    def __init__(self, instruments: list[str] | None = None, half_spread_bps: Decimal = Decimal("1"),
                 qty: Decimal = Decimal("0.01"), max_position: Decimal = Decimal("0.1"),
                 skew_bps: Decimal = Decimal("1"), hedge_threshold: Decimal = Decimal("0.08"),
                 hedge_slippage_bps: Decimal = Decimal("10"), refresh_ms: int = 200) -> None:
        self.venue_instruments = list(instruments) if instruments else None
        self.half_spread = Decimal(str(half_spread_bps)) / _BPS
        self.qty = Decimal(str(qty))
        self.max_position = Decimal(str(max_position))
        self.skew = Decimal(str(skew_bps)) / _BPS
        self.hedge_threshold = Decimal(str(hedge_threshold))
        self.hedge_slippage = Decimal(str(hedge_slippage_bps)) / _BPS
        self.refresh_ns = int(refresh_ms) * 1_000_000
        self.quotes: dict[tuple[str, str], str | None] = {}
        self.hedge_id: str | None = None

    def on_start(self, ctx) -> None:
        if self.venue_instruments is None:
            first = ctx.instrument(ctx.instruments[0])
            self.venue_instruments = [i for i in ctx.instruments
                                      if (ctx.instrument(i).base, ctx.instrument(i).quote) == (first.base, first.quote)]
        ctx.schedule(every_ns=self.refresh_ns)

    def inventory(self, ctx) -> Decimal:
        return sum((ctx.position(i) for i in self.venue_instruments), Decimal(0))

    def fair(self, ctx) -> Decimal | None:
        books = [ctx.book(i) for i in self.venue_instruments]
        bids = [b.best_bid for b in books if b.best_bid is not None]
        asks = [b.best_ask for b in books if b.best_ask is not None]
        if not bids or not asks:
            return None
        if max(bids) < min(asks):
            return (max(bids) + min(asks)) / 2
        mids = [b.mid for b in books if b.mid is not None]
        return sum(mids, Decimal(0)) / len(mids) if mids else None

    def on_timer(self, ctx, ts: int) -> None:
        fair = self.fair(ctx)
        if fair is None:
            return
        inventory = self.inventory(ctx)
        if abs(inventory) > self.hedge_threshold and self.hedge_id is None:
            self._hedge(ctx, inventory)
        lean = fair * self.skew * (inventory / self.max_position)
        for inst in self.venue_instruments:
            spec = ctx.instrument(inst)
            book = ctx.book(inst)
            maker = ctx.fees(inst)[0] / _BPS
            bid = spec.round_price(fair * (1 - self.half_spread - maker) - lean, "down")
            ask = spec.round_price(fair * (1 + self.half_spread + maker) - lean, "up")
            if book.best_ask is not None:
                bid = min(bid, book.best_ask - spec.tick_size)
            if book.best_bid is not None:
                ask = max(ask, book.best_bid + spec.tick_size)
            can_buy = inventory < self.max_position
            can_sell = inventory > -self.max_position and ctx.balance(spec.venue, spec.base) >= self.qty
            self._quote(ctx, inst, "buy", bid if can_buy else None)
            self._quote(ctx, inst, "sell", ask if can_sell else None)

    def _quote(self, ctx, inst: str, side: str, price: Decimal | None) -> None:
        key = (inst, side)
        client_id = self.quotes.get(key)
        order = ctx.order(client_id) if client_id else None
        if order is not None and order.is_open:
            if price is not None and order.price == price:
                return
            ctx.cancel(client_id)
            self.quotes[key] = None
            return  # re-quote on the next refresh, once the cancel is through
        if price is not None:
            self.quotes[key] = ctx.submit(inst, side, self.qty, price, post_only=True)

    def _hedge(self, ctx, inventory: Decimal) -> None:
        side = "sell" if inventory > 0 else "buy"
        best = best_taker_venue(ctx, self.venue_instruments, side, abs(inventory) - self.hedge_threshold / 2)
        if best is None:
            return
        inst, price, qty = best
        spec = ctx.instrument(inst)
        move = 1 - self.hedge_slippage if side == "sell" else 1 + self.hedge_slippage
        limit = spec.round_price(price * move, "up" if side == "sell" else "down")
        ctx.log("mm_hedge", instrument=inst, side=side, qty=qty, inventory=inventory)
        self.hedge_id = ctx.submit(inst, side, qty, limit, tif="IOC")

    def on_order(self, ctx, update) -> None:
        if update.status in ("filled", "cancelled", "rejected", "expired"):
            if update.client_id == self.hedge_id:
                self.hedge_id = None
            for key, client_id in self.quotes.items():
                if client_id == update.client_id:
                    self.quotes[key] = None

    def on_stop(self, ctx) -> None:
        for client_id in ctx.open_orders():
            ctx.cancel(client_id)
