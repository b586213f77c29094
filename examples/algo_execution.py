"""Run one execution algorithm from the run config: TWAP, VWAP, POV, Almgren–Chriss or
limit-then-market, optionally routed across venues by the smart order router.

The strategy only starts the algorithm (``ctx.execute``) on its first timer (the books exist
from then on) and lets it work: the algorithm owns the parent order, its children, timers
and catch-up (docs/execution.md).

Run it:  tickparity backtest --config examples/algo_execution.toml
"""

from decimal import Decimal

from engine import Strategy
from engine.execution import (
    POV,
    TWAP,
    VWAP,
    AlmgrenChriss,
    LimitThenMarket,
    SmartOrderRouter,
    volume_curve,
)

ALGOS = {"twap": TWAP, "vwap": VWAP, "pov": POV, "almgren_chriss": AlmgrenChriss,
         "limit_then_market": LimitThenMarket}


class AlgoExecution(Strategy):
    """`algo` names the algorithm; `options` are its keyword arguments (see docs/execution.md);
    `route = true` lets the smart order router split children across every venue of the run
    that trades the same asset (`quote_aliases` maps quotes, e.g. {USD = "USDT"}).

    VWAP without a `curve` option takes its curve from a dataset: `curve_data` (a store spec,
    e.g. "duckdb:data/history.duckdb") is read for the instrument's trades *before* the start
    (no look-ahead), folded onto the time of day and summed per bucket (`curve_buckets`)."""

    def __init__(self, algo: str = "twap", instrument: str | None = None, side: str = "buy",
                 quantity: Decimal = Decimal("1"), parent_id: str = "exec-1", route: bool = False,
                 quote_aliases: dict | None = None, max_venue_position: dict | None = None,
                 options: dict | None = None, curve_data: str | None = None, curve_buckets: int = 10) -> None:
        if algo not in ALGOS:
            raise ValueError(f"algo={algo!r}: expected one of {sorted(ALGOS)}")
        self.algo_name = algo
        self.instrument = instrument
        self.side = side
        self.quantity = Decimal(str(quantity))
        self.parent_id = parent_id
        self.route = bool(route)
        self.quote_aliases = dict(quote_aliases or {})
        self.max_venue_position = dict(max_venue_position or {})
        self.options = dict(options or {})
        self.curve_data = curve_data
        self.curve_buckets = int(curve_buckets)
        self.algo = None

    def on_start(self, ctx) -> None:
        self.instrument = self.instrument or ctx.instruments[0]
        ctx.schedule(at_ns=ctx.now)

    def on_timer(self, ctx, ts: int) -> None:
        if self.algo is not None:
            return
        router = None
        if self.route:
            router = SmartOrderRouter(quote_aliases=self.quote_aliases,
                                      max_venue_position=self.max_venue_position)
        cls = ALGOS[self.algo_name]
        if cls is VWAP and "curve" not in self.options and self.curve_data:
            self.options["curve"] = self.historical_curve(ctx)
            ctx.log("vwap curve from history", data=self.curve_data, curve=self.options["curve"])
        self.algo = ctx.execute(cls(self.instrument, self.side, self.quantity, parent_id=self.parent_id,
                                    router=router, **self.options))

    def historical_curve(self, ctx) -> list[float]:
        """Per-bucket traded volume of the instrument in `curve_data` before now (time of day)."""
        from engine.types import EventKind
        from replay.stores import open_store

        horizon_ns = int(Decimal(str(self.options.get("horizon_s", 600))) * 1_000_000_000)
        ts: list[int] = []
        qty: list[Decimal] = []
        spec = ctx.instrument(self.instrument)
        with open_store(self.curve_data) as store:
            for chunk in store.stream(self.instrument, None, ctx.now, 1 << 16):
                trades = chunk[chunk["kind"] == EventKind.TRADE]
                ts.extend(int(t) for t in trades["exch_ts"])
                qty.extend(spec.lots_to_qty(int(q)) for q in trades["qty"])
        curve = volume_curve(ts, qty, ctx.now, horizon_ns, self.curve_buckets)
        if sum(curve) <= 0:
            raise ValueError(f"{self.curve_data}: no trades of {self.instrument} in the time-of-day window before now")
        return curve
