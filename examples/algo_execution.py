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
)

ALGOS = {"twap": TWAP, "vwap": VWAP, "pov": POV, "almgren_chriss": AlmgrenChriss,
         "limit_then_market": LimitThenMarket}


class AlgoExecution(Strategy):
    """`algo` names the algorithm; `options` are its keyword arguments (see docs/execution.md);
    `route = true` lets the smart order router split children across every venue of the run
    that trades the same asset (`quote_aliases` maps quotes, e.g. {USD = "USDT"})."""

    def __init__(self, algo: str = "twap", instrument: str | None = None, side: str = "buy",
                 quantity: Decimal = Decimal("1"), parent_id: str = "exec-1", route: bool = False,
                 quote_aliases: dict | None = None, max_venue_position: dict | None = None,
                 options: dict | None = None) -> None:
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
        self.algo = ctx.execute(cls(self.instrument, self.side, self.quantity, parent_id=self.parent_id,
                                    router=router, **self.options))
