"""Contingent orders emulated by the engine: stop-market, stop-limit, trailing stop,
take-profit, iceberg, OCO, OTO and bracket (docs/contingent-orders.md).

Strategies use them through `ctx` (`ctx.submit_stop`, `ctx.submit_bracket`, ...) and
`OrderSpec` for the legs of OCO / OTO groups.
"""

from engine.contingent.orders import Kind, OrderSpec, State

__all__ = ["Kind", "OrderSpec", "State"]
