"""Cross-venue arbitrage: detect a fee-adjusted price gap of one asset between two venues,
take both legs at once, and hedge what one leg filled and the other did not.

Detector: on every book change of either venue, for each direction (buy on A, sell on B and
the reverse) the edge after taker fees is

    edge_bps = (bid_sell * (1 - taker_sell) - ask_buy * (1 + taker_buy)) / mid * 10^4

and an opportunity is `edge_bps >= min_edge_bps`. Size: the smaller displayed quantity of the
two touches, capped by `max_qty`, the quote held on the buy venue and the base held on the
sell venue (spot: a sale only where the base is held).

Executor: both legs go out as IOC limits at the observed touches (never worse). Leg risk: one
leg can fill while the other misses (the quote was gone when the order arrived). When both
legs are final, the imbalance `bought - sold` is hedged: the excess base is sold (or the
shortfall bought back) with an IOC at the best touch across both venues moved `hedge_slippage_bps`
through it, retried up to `hedge_attempts` times (a residual below every venue's lot, minimum quantity
or minimum notional is left as dust and counted); every attempt, outcome and hedge is audited
(`ctx.log`) with the realised edge. One arbitrage at a time; `cooldown_ms` between attempts.

Run it:  tickparity backtest --config examples/cross_venue_arb.toml
"""

from decimal import Decimal

from engine import Strategy
from engine.execution.router import best_taker_venue

_BPS = Decimal(10000)


class CrossVenueArb(Strategy):
    def __init__(self, instruments: list[str] | None = None, min_edge_bps: Decimal = Decimal("1"),
                 max_qty: Decimal = Decimal("0.05"), hedge_slippage_bps: Decimal = Decimal("10"),
                 hedge_attempts: int = 3, cooldown_ms: int = 200) -> None:
        self.pair = list(instruments) if instruments else None
        self.min_edge = Decimal(str(min_edge_bps))
        self.max_qty = Decimal(str(max_qty))
        self.hedge_slippage = Decimal(str(hedge_slippage_bps)) / _BPS
        self.hedge_attempts = int(hedge_attempts)
        self.cooldown_ns = int(cooldown_ms) * 1_000_000
        self.legs: dict[str, dict] = {}  # client id -> {"side", "instrument", "filled", "done"}
        self.hedges: dict[str, Decimal] = {}  # hedge client id -> signed qty asked
        self.imbalance = Decimal(0)  # base bought - sold, still to hedge
        self.attempts_left = 0
        self.next_ts = 0
        self.stats = {"arbs": 0, "both_filled": 0, "both_missed": 0, "leg_misses": 0, "hedges": 0,
                      "dust": Decimal(0)}

    def on_start(self, ctx) -> None:
        self.pair = self.pair or ctx.instruments[:2]
        if len(self.pair) != 2:
            raise ValueError("cross_venue_arb needs two instruments of the same asset on two venues")
        a, b = (ctx.instrument(i) for i in self.pair)
        if (a.base, a.quote) != (b.base, b.quote) or a.venue == b.venue:
            raise ValueError(f"{self.pair}: expected the same base/quote on two different venues")
        self.lot = max(a.lot_size, b.lot_size)
        for inst in self.pair:
            ctx.subscribe(inst, book=True, trades=False)

    # -- detector -----------------------------------------------------------------------------
    def on_book(self, ctx, book) -> None:
        if self.legs or self.hedges or self.imbalance or ctx.now < self.next_ts:
            return
        first, second = self.pair
        for buy, sell in ((first, second), (second, first)):
            if self._try(ctx, buy, sell):
                return

    def _try(self, ctx, buy: str, sell: str) -> bool:
        bb, sb = ctx.book(buy), ctx.book(sell)
        ask, bid = bb.best_ask, sb.best_bid
        if ask is None or bid is None:
            return False
        taker_buy, taker_sell = ctx.fees(buy)[1] / _BPS, ctx.fees(sell)[1] / _BPS
        mid = (ask + bid) / 2
        edge_bps = (bid * (1 - taker_sell) - ask * (1 + taker_buy)) / mid * _BPS
        if edge_bps < self.min_edge:
            return False
        spec_buy, spec_sell = ctx.instrument(buy), ctx.instrument(sell)
        cash = ctx.balance(spec_buy.venue, spec_buy.quote) / (ask * (1 + taker_buy))
        held = ctx.balance(spec_sell.venue, spec_sell.base)
        qty = min(bb.best_ask_qty, sb.best_bid_qty, self.max_qty, cash, held)
        qty = (qty / self.lot).to_integral_value(rounding="ROUND_DOWN") * self.lot
        if qty <= 0 or qty < max(spec_buy.min_qty, spec_sell.min_qty):
            return False
        if qty * ask < spec_buy.min_notional or qty * bid < spec_sell.min_notional:
            return False  # the venues' filters would refuse a leg
        self.stats["arbs"] += 1
        ctx.log("arb", buy=buy, sell=sell, qty=qty, ask=ask, bid=bid, edge_bps=edge_bps.quantize(Decimal("0.01")))
        for inst, side, price in ((buy, "buy", ask), (sell, "sell", bid)):
            client_id = ctx.submit(inst, side, qty, price, tif="IOC")
            self.legs[client_id] = {"side": side, "instrument": inst, "filled": Decimal(0), "done": False}
        self.next_ts = ctx.now + self.cooldown_ns
        return True

    # -- executor: leg risk and hedging --------------------------------------------------------
    def on_order(self, ctx, update) -> None:
        final = update.status in ("filled", "cancelled", "rejected", "expired")
        leg = self.legs.get(update.client_id)
        if leg is not None:
            leg["filled"] = update.filled_qty
            leg["done"] = final
            if all(x["done"] for x in self.legs.values()):
                self._settle_legs(ctx)
            return
        if update.client_id in self.hedges and final:
            asked = self.hedges.pop(update.client_id)
            sign = 1 if asked > 0 else -1
            self.imbalance += sign * update.filled_qty
            if self.imbalance != 0:
                self._hedge(ctx)

    def _settle_legs(self, ctx) -> None:
        bought = sum((x["filled"] for x in self.legs.values() if x["side"] == "buy"), Decimal(0))
        sold = sum((x["filled"] for x in self.legs.values() if x["side"] == "sell"), Decimal(0))
        self.legs.clear()
        if bought == sold:
            self.stats["both_filled" if bought else "both_missed"] += 1
            ctx.log("arb_done", bought=bought, sold=sold)
            return
        self.stats["leg_misses"] += 1
        self.imbalance = bought - sold  # > 0: long base to sell; < 0: short base to buy back
        self.attempts_left = self.hedge_attempts
        ctx.log("arb_leg_risk", bought=bought, sold=sold, to_hedge=-self.imbalance, level="warning")
        self._hedge(ctx)

    def _hedge(self, ctx) -> None:
        if self.attempts_left <= 0:
            ctx.log("arb_hedge_gave_up", open=self.imbalance, level="error")
            self.imbalance = Decimal(0)
            return
        self.attempts_left -= 1
        side = "sell" if self.imbalance > 0 else "buy"
        best = best_taker_venue(ctx, self.pair, side, abs(self.imbalance))
        if best is None:
            # below every venue's minimum (a partial fill on a finer lot grid): dust, kept
            self.stats["dust"] += abs(self.imbalance)
            ctx.log("arb_dust", open=self.imbalance)
            self.imbalance = Decimal(0)
            return
        inst, price, qty = best
        spec = ctx.instrument(inst)
        move = 1 - self.hedge_slippage if side == "sell" else 1 + self.hedge_slippage
        limit = spec.round_price(price * move, "up" if side == "sell" else "down")
        self.stats["hedges"] += 1
        client_id = ctx.submit(inst, side, qty, limit, tif="IOC")
        self.hedges[client_id] = qty if side == "buy" else -qty
        # the hedge's fill moves the imbalance toward 0 in on_order
        ctx.log("arb_hedge", instrument=inst, side=side, qty=qty, limit=limit)

    def on_stop(self, ctx) -> None:
        ctx.log("arb_stats", **self.stats)
