"""Order enums and the own-order event record the simulated venue hands the kernel.

Plain IntEnums so numba kernels and numpy records use the same codes the Python OMS
reads (vectorbt style: kernels return a status plus a reason code, Python raises).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class OrderType(IntEnum):
    LIMIT = 0
    MARKET = 1


class TimeInForce(IntEnum):
    GTC = 0
    IOC = 1
    FOK = 2
    GTX = 3  # post-only: rejected if it would take liquidity
    GTD = 4  # good till a venue-time deadline


class OrderStatus(IntEnum):
    PENDING = 0
    SUBMITTED = 1
    ACKNOWLEDGED = 2
    PARTIALLY_FILLED = 3
    FILLED = 4
    CANCELLED = 5
    REJECTED = 6
    EXPIRED = 7


TERMINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class Liquidity(IntEnum):
    NONE = 0
    MAKER = 1
    TAKER = 2


class OrderEventKind(IntEnum):
    """What a venue reports about one of our orders."""

    ACK = 1  # accepted and resting (or about to match)
    FILL = 2  # a (partial) fill; leaves says what remains
    CANCELLED = 3  # cancelled on request, by IOC/FOK remainder, or by self-trade prevention
    REJECTED = 4  # refused on entry (reason says why)
    EXPIRED = 5  # GTD deadline passed
    AMENDED = 6  # amend applied (price/qty now as in the record)
    CANCEL_REJECTED = 7  # cancel/amend of an unknown or finished order


class RejectReason(IntEnum):
    NONE = 0
    POST_ONLY_WOULD_CROSS = 1
    FOK_NOT_FILLABLE = 2
    NO_LIQUIDITY = 3  # market order on an empty side
    UNKNOWN_ORDER = 4
    ALREADY_CLOSED = 5
    SELF_TRADE = 6
    INVALID_QTY = 7
    INVALID_PRICE = 8
    IOC_REMAINDER = 9  # remainder of an IOC or a market order cancelled
    USER_CANCEL = 10
    VENUE_DOWN = 11
    RISK = 12
    DUPLICATE_CLIENT_ID = 13
    INSUFFICIENT_BALANCE = 14


# One record per venue response. `order_no` is the kernel-assigned integer id of the order
# (the OMS maps it to the client id). Fill records carry price/qty of this fill; `filled`
# and `leaves` are cumulative after the event. `exch_ts` is when the venue produced it,
# `local_ts` when the strategy learns it (exch_ts + response latency).
ORDER_EVENT_DTYPE = np.dtype(
    [
        ("exch_ts", "i8"),
        ("local_ts", "i8"),
        ("order_no", "i8"),
        ("instrument", "u2"),
        ("kind", "u1"),
        ("liquidity", "u1"),
        ("reason", "u2"),
        ("price", "i8"),
        ("qty", "i8"),
        ("filled", "i8"),
        ("leaves", "i8"),
        ("order_price", "i8"),
    ],
    align=True,
)
