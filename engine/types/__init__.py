"""Value types shared by every layer: instruments, the market-event schema, order enums.

This package imports nothing from the rest of tickparity, so `replay`, `venues` and
`reports` can all depend on it without cycles (DESIGN: dependencies point downwards).
"""

from engine.types.instrument import (
    Instrument,
    default_instruments_path,
    load_instruments,
    parse_instrument_id,
)
from engine.types.market import EVENT_DTYPE, EventKind, Side, empty_events
from engine.types.orders import (
    ORDER_EVENT_DTYPE,
    Liquidity,
    OrderEventKind,
    OrderStatus,
    OrderType,
    RejectReason,
    TimeInForce,
)

__all__ = [
    "EVENT_DTYPE",
    "ORDER_EVENT_DTYPE",
    "EventKind",
    "Instrument",
    "Liquidity",
    "OrderEventKind",
    "OrderStatus",
    "OrderType",
    "RejectReason",
    "Side",
    "TimeInForce",
    "default_instruments_path",
    "empty_events",
    "load_instruments",
    "parse_instrument_id",
]
