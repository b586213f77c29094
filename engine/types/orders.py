"""Order enums and the own-order event record the simulated venue hands the kernel.

Plain IntEnums so numba kernels and numpy records use the same codes the Python OMS
reads (vectorbt style: kernels return a status plus a reason code, Python raises).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

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
    STATE = 8  # answer to an order lookup (request_order_state): reason UNKNOWN_ORDER = not found


class RejectReason(IntEnum):
    """Numeric reason codes a (simulated) venue puts in ORDER_EVENT_DTYPE's `reason` field.

    The numba kernels use these numbers; everything above them reads the text code from
    `VENUE_REASONS` (below), so a reason has one name wherever it appears.
    """

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
    DUPLICATE_CLIENT_ID = 13
    INSUFFICIENT_BALANCE = 14
    RATE_LIMITED = 15  # HTTP 429 (Binance -1003): the minute's request weight is used up
    IP_BANNED = 16  # HTTP 418: banned for not backing off after 429s
    MARKET_CLOSED = 17  # Binance -2010 "Market is closed.": maintenance (cancel-only) or halt
    VENUE_ERROR = 18  # another venue error code (the audit log keeps the code and message)


class ReasonSource(StrEnum):
    """Who decided: the engine before sending, our risk limits, or the venue."""

    LOCAL = "local"  # the engine, before sending: the venue's published filters (as ccxt checks them) or the OMS
    RISK = "risk"  # our pre-trade risk limits (the run config's [risk] table)
    VENUE = "venue"  # the venue's own answer (the simulated matching engine, or a real exchange)


class ReasonCode(StrEnum):
    """Every reason an order update or the orders table can carry (see `REASONS`)."""

    # local checks
    MIN_QTY = "min_qty"
    MIN_NOTIONAL = "min_notional"
    DUPLICATE_CLIENT_ID = "duplicate_client_id"
    FAIL_CLOSED = "fail_closed"
    REQUEST_BUDGET = "request_budget"
    # risk
    KILL_SWITCH = "kill_switch"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    MAX_POSITION = "max_position"
    REDUCE_ONLY = "reduce_only"
    MAX_OPEN_ORDERS = "max_open_orders"
    PRICE_BAND = "price_band"
    ORDER_RATE = "order_rate"
    MAX_LEVERAGE = "max_leverage"
    MAX_MARGIN_RATIO = "max_margin_ratio"
    RISK_HALTED = "risk_halted"
    RISK_REDUCING = "risk_reducing"
    MAX_POSITION_NOTIONAL = "max_position_notional"
    MAX_TOTAL_POSITION_NOTIONAL = "max_total_position_notional"
    MAX_OPEN_NOTIONAL = "max_open_notional"
    MAX_TOTAL_OPEN_NOTIONAL = "max_total_open_notional"
    MAX_VENUE_EXPOSURE = "max_venue_exposure"
    NO_MARK = "no_mark"
    CANCEL_RATE = "cancel_rate"
    APPROVAL_REFUSED = "approval_refused"
    APPROVAL_TIMEOUT = "approval_timeout"
    APPROVAL_PENDING = "approval_pending"
    # venue
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    FOK_NOT_FILLABLE = "fok_not_fillable"
    NO_LIQUIDITY = "no_liquidity"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    INVALID_QTY = "invalid_qty"
    INVALID_PRICE = "invalid_price"
    DUPLICATE_ORDER = "duplicate_order"
    UNKNOWN_ORDER = "unknown_order"
    ALREADY_CLOSED = "already_closed"
    SELF_TRADE_PREVENTION = "self_trade_prevention"
    IOC_REMAINDER = "ioc_remainder"
    USER_CANCEL = "user_cancel"
    INSUFFICIENT_MARGIN = "insufficient_margin"
    MAX_NOTIONAL_AT_LEVERAGE = "max_notional_at_leverage"
    LIQUIDATION = "liquidation"
    DELIVERY = "delivery"
    RATE_LIMITED = "rate_limited"
    IP_BANNED = "ip_banned"
    MARKET_CLOSED = "market_closed"
    VENUE_ERROR = "venue_error"
    NOT_RECEIVED = "not_received"


@dataclass(frozen=True, slots=True)
class Reason:
    """One entry of the vocabulary: its code, who decides it, and what it means."""

    code: ReasonCode
    source: ReasonSource
    meaning: str


_L, _R, _V = ReasonSource.LOCAL, ReasonSource.RISK, ReasonSource.VENUE
_C = ReasonCode
# The one vocabulary of order reasons (README "Errors" prints this table). A code has one
# source: the same refusal is never spelled two ways by two layers.
REASONS: dict[ReasonCode, Reason] = {r.code: r for r in (
    Reason(_C.MIN_QTY, _L, "qty below the instrument's min_qty (the venue's lot-size filter)"),
    Reason(_C.MIN_NOTIONAL, _L, "qty x price (market: x the touch) below the instrument's min_notional"),
    Reason(_C.DUPLICATE_CLIENT_ID, _L, "client id already used by an order or parent of this run"),
    Reason(_C.FAIL_CLOSED, _L, "new orders refused: reconciliation with the venue found a difference, "
           "the dead-man switch fired, the strategy raised, or the session is stopping (docs/live.md)"),
    Reason(_C.REQUEST_BUDGET, _L, "the venue's request budget (weight / order count) is spent for longer "
           "than an order may wait: refused before sending rather than sent late (docs/live.md)"),
    Reason(_C.KILL_SWITCH, _R, "the kill switch is on: every new order is refused"),
    Reason(_C.MAX_ORDER_NOTIONAL, _R, "the order's quote value (qty x price x contract size, market at the local mid; COIN-M: contracts x "
           "contract size) above [risk] max_order_notional"),
    Reason(_C.MAX_POSITION, _R, "|position + signed qty| would exceed [risk] max_position"),
    Reason(_C.REDUCE_ONLY, _R, "reduce_only (order or [risk]) but the order would not only reduce the position"),
    Reason(_C.MAX_OPEN_ORDERS, _R, "[risk] max_open_orders already open"),
    Reason(_C.PRICE_BAND, _R, "limit price further than [risk] price_band_bps from the local mid"),
    Reason(_C.ORDER_RATE, _R, "more than [risk] max_orders_per_second submits in the last second"),
    Reason(_C.RISK_HALTED, _R, "risk state halted (auto-disable or an operator): new orders refused until resume"),
    Reason(_C.RISK_REDUCING, _R, "risk state reducing (daily loss or an operator): only orders that reduce a position"),
    Reason(_C.MAX_POSITION_NOTIONAL, _R, "worst-case position x local mid would exceed [risk] max_position_notional"),
    Reason(_C.MAX_TOTAL_POSITION_NOTIONAL, _R, "sum of worst-case positions x mids would exceed [risk] max_total_position_notional"),
    Reason(_C.MAX_OPEN_NOTIONAL, _R, "open order qty x local mid would exceed [risk] max_open_notional"),
    Reason(_C.MAX_TOTAL_OPEN_NOTIONAL, _R, "open order qty x mids over all instruments would exceed [risk] max_total_open_notional"),
    Reason(_C.MAX_VENUE_EXPOSURE, _R, "the venue's worst-case exposure would exceed [risk] max_venue_exposure_pct of the total limit"),
    Reason(_C.NO_MARK, _R, "an exposure limit is on and the instrument has no mid (nor a limit price) to value it"),
    Reason(_C.CANCEL_RATE, _R, "more than [risk] max_cancels_per_second cancels in the last second"),
    Reason(_C.APPROVAL_REFUSED, _R, "notional at or above [risk] approval_notional, refused (config in a backtest, or an operator)"),
    Reason(_C.APPROVAL_TIMEOUT, _R, "waited for approval longer than [risk] approval_timeout_s"),
    Reason(_C.APPROVAL_PENDING, _R, "amend of an order waiting for approval (cancel it and submit again)"),
    Reason(_C.POST_ONLY_WOULD_TAKE, _V, "post-only order (or amend) would take liquidity"),
    Reason(_C.FOK_NOT_FILLABLE, _V, "fill-or-kill order cannot fill completely"),
    Reason(_C.NO_LIQUIDITY, _V, "market order on an empty book side"),
    Reason(_C.INSUFFICIENT_BALANCE, _V, "the order needs more free balance than the account holds"),
    Reason(_C.INVALID_QTY, _V, "qty not positive"),
    Reason(_C.INVALID_PRICE, _V, "limit price not positive"),
    Reason(_C.DUPLICATE_ORDER, _V, "the venue already holds an order with this id"),
    Reason(_C.UNKNOWN_ORDER, _V, "cancel/amend of an order the venue never received"),
    Reason(_C.ALREADY_CLOSED, _V, "cancel/amend of an order that is already filled, cancelled or expired"),
    Reason(_C.SELF_TRADE_PREVENTION, _V, "self-trade prevention ended the order"),
    Reason(_C.IOC_REMAINDER, _V, "unfilled remainder of an IOC, FOK or market order cancelled"),
    Reason(_C.USER_CANCEL, _V, "cancelled at the strategy's request (or amended to qty <= filled)"),
    Reason(_C.MAX_LEVERAGE, _R, "contract account's notional / margin balance after the order above [risk] max_leverage"),
    Reason(_C.MAX_MARGIN_RATIO, _R, "contract account's margin ratio at or above [risk] max_margin_ratio (orders that add exposure)"),
    Reason(_C.INSUFFICIENT_MARGIN, _V, "the contract order's initial margin exceeds the available margin (Binance -2019)"),
    Reason(_C.MAX_NOTIONAL_AT_LEVERAGE, _V, "position after the order beyond the notional the set leverage allows (Binance -2027)"),
    Reason(_C.LIQUIDATION, _V, "the venue closed the position: margin ratio reached 100 % (a liquidation fill)"),
    Reason(_C.DELIVERY, _V, "a dated future reached its expiry: the venue closed the position at the delivery price"),
    Reason(_C.RATE_LIMITED, _V, "HTTP 429: the venue's request-weight or order-count window is used up (Binance "
           "-1003, -1015) for longer than the order may wait (live: max_order_wait_s, 1 s)"),
    Reason(_C.IP_BANNED, _V, "HTTP 418: the venue banned the IP for sending on after 429s (Binance: 2 minutes to "
           "3 days); nothing is sent to it until the ban ends"),
    Reason(_C.MARKET_CLOSED, _V, "the market is in maintenance (cancel-only) or halted (Binance -2010), or the dated future is delivered"),
    Reason(_C.VENUE_ERROR, _V, "another venue error; its code and message are in the audit log"),
    Reason(_C.NOT_RECEIVED, _V, "the command's reply was lost and a lookup by client id shows the venue "
           "never received it (a submit: no such order; a cancel or amend: the order unchanged)"),
)}

# numeric venue code (ORDER_EVENT_DTYPE `reason`) -> its code in the vocabulary
VENUE_REASONS: dict[int, ReasonCode] = {
    RejectReason.POST_ONLY_WOULD_CROSS: _C.POST_ONLY_WOULD_TAKE,
    RejectReason.FOK_NOT_FILLABLE: _C.FOK_NOT_FILLABLE,
    RejectReason.NO_LIQUIDITY: _C.NO_LIQUIDITY,
    RejectReason.UNKNOWN_ORDER: _C.UNKNOWN_ORDER,
    RejectReason.ALREADY_CLOSED: _C.ALREADY_CLOSED,
    RejectReason.SELF_TRADE: _C.SELF_TRADE_PREVENTION,
    RejectReason.INVALID_QTY: _C.INVALID_QTY,
    RejectReason.INVALID_PRICE: _C.INVALID_PRICE,
    RejectReason.IOC_REMAINDER: _C.IOC_REMAINDER,
    RejectReason.USER_CANCEL: _C.USER_CANCEL,
    RejectReason.DUPLICATE_CLIENT_ID: _C.DUPLICATE_ORDER,
    RejectReason.INSUFFICIENT_BALANCE: _C.INSUFFICIENT_BALANCE,
    RejectReason.RATE_LIMITED: _C.RATE_LIMITED,
    RejectReason.IP_BANNED: _C.IP_BANNED,
    RejectReason.MARKET_CLOSED: _C.MARKET_CLOSED,
    RejectReason.VENUE_ERROR: _C.VENUE_ERROR,
}


def venue_reason(code: int) -> str | None:
    """The vocabulary's text for a venue's numeric reason; None for 0 (no reason).

    Raises KeyError for a number outside `RejectReason`: a venue that invents codes is a
    bug to surface, not a reason to print as a number.
    """
    return None if code == 0 else VENUE_REASONS[code].value


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
