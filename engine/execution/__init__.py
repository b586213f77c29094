"""Execution algorithms and the smart order router: components a strategy starts from ctx.

    from engine.execution import TWAP
    algo = ctx.execute(TWAP("binance:BTC/USDT", "buy", "2", horizon_s=600, slices=10))

See docs/execution.md for every algorithm's parameters, the router's rules and the audit
records they write.
"""

from engine.execution.algos import (
    POV,
    TWAP,
    VWAP,
    AlmgrenChriss,
    ExecutionAlgorithm,
    LimitThenMarket,
    ScheduledAlgorithm,
    volume_curve,
)
from engine.execution.health import HealthSignals, VenueHealth
from engine.execution.host import Component
from engine.execution.router import (
    RouteParams,
    SmartOrderRouter,
    Split,
    VenueQuote,
    best_taker_venue,
    plan_aggressive,
    plan_passive,
)

__all__ = [
    "POV", "TWAP", "VWAP", "AlmgrenChriss", "Component", "ExecutionAlgorithm", "HealthSignals", "LimitThenMarket",
    "RouteParams", "ScheduledAlgorithm", "SmartOrderRouter", "Split", "VenueHealth", "VenueQuote",
    "best_taker_venue", "plan_aggressive", "plan_passive", "volume_curve",
]
