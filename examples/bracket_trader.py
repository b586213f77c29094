"""A bracket trader: buys at the bid with a protective stop and a take-profit attached.

Run it:  tickparity backtest --config examples/bracket_trader.toml
Every `every_s` seconds, when flat and no bracket is live, it sends a bracket
(docs/contingent-orders.md): a limit buy at the best bid, a stop-loss `stop_bps` below and
a take-profit `take_bps` above. The engine sizes the exits to what the entry fills, resizes
them on partial fills, and cancels one when the other closes the position; a bracket whose
entry has not filled after `entry_timeout_s` is cancelled. Written only against the
documented Strategy API, so it runs unchanged in every mode.
"""

from decimal import Decimal

from engine import Strategy


class BracketTrader(Strategy):
    def __init__(
        self,
        instrument: str | None = None,
        qty: Decimal = Decimal("0.01"),
        stop_bps: Decimal = Decimal("10"),
        take_bps: Decimal = Decimal("15"),
        every_s: int = 5,
        entry_timeout_s: int = 20,
        trigger_type: str = "last",
    ) -> None:
        self.instrument = instrument
        self.qty = Decimal(qty)
        self.stop = Decimal(str(stop_bps)) / Decimal(10000)
        self.take = Decimal(str(take_bps)) / Decimal(10000)
        self.every_ns = int(every_s) * 1_000_000_000
        self.timeout_ns = int(entry_timeout_s) * 1_000_000_000
        self.trigger_type = trigger_type
        self.live: str | None = None  # the bracket working now
        self.sent_ts = 0
        self.stats = {"brackets": 0, "stops": 0, "take_profits": 0, "expired_entries": 0}

    def on_start(self, ctx) -> None:
        self.instrument = self.instrument or ctx.instruments[0]
        self.spec = ctx.instrument(self.instrument)
        ctx.schedule(every_ns=self.every_ns)
        # a session resumed with `--resume` took over the previous one's bracket (its stop is
        # restored; a leg that filled while no session ran is looked up and booked at start):
        # follow that one rather than open a second (docs/contingent-orders.md "Restart")
        for leg_id in ctx.contingent_orders(self.instrument):
            view = ctx.contingent(leg_id)
            if view and view.get("contingency") == "bracket":
                self.live = view["group_id"]
                self.sent_ts = ctx.now
                break

    def on_timer(self, ctx, ts: int) -> None:
        if self.live is not None:
            bracket = ctx.contingent(self.live)
            if bracket["done"]:
                self.live = None
            elif ts - self.sent_ts > self.timeout_ns and Decimal(ctx.contingent(f"{self.live}.entry")["filled_qty"]) == 0:
                ctx.cancel(self.live)  # the entry never filled: give up on this one
                self.stats["expired_entries"] += 1
                self.live = None
            return
        bid = ctx.book(self.instrument).best_bid
        # still holding a position (a bracket's exits leave the dust the venue's base-asset
        # fee took from the entry: it is not for sale, docs/contingent-orders.md)
        if bid is None or abs(ctx.position(self.instrument)) >= self.qty / 2:
            return
        self.live = ctx.submit_bracket(
            self.instrument, "buy", self.qty, bid,
            stop_loss_price=self.spec.round_price(bid * (1 - self.stop), "down"),
            take_profit_price=self.spec.round_price(bid * (1 + self.take), "up"),
            trigger_type=self.trigger_type)
        self.sent_ts = ts
        self.stats["brackets"] += 1

    def on_order(self, ctx, update) -> None:
        # the stop's own updates say when it fired; the take-profit's venue order when it filled
        if update.event == "triggered" and update.client_id.endswith(".sl"):
            self.stats["stops"] += 1
        if update.client_id.endswith(".tp") and update.status == "filled":
            self.stats["take_profits"] += 1

    def on_stop(self, ctx) -> None:
        ctx.log("bracket_stats", **self.stats)
