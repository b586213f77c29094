"""The pre-trade checks of `engine.risk` (and the venue minimums of the session) in ticks
and lots, for compiled strategies whose submits never leave numba during a backtest.

Why a second implementation: `RiskEngine.check` works in exact Decimals on whatever a
venue reports; the compiled loop needs the same decision per submit without Python. The
limits are converted exactly once (`risk_limits`): every Decimal threshold becomes an
integer bound on lots or on lots*ticks, rounded in the direction that keeps "reject"
identical. The fast path replays every submit through the real `RiskEngine` afterwards
and raises if the two ever disagree (see modes.backtest_compiled), and
tests/engine/test_engine_compiled.py compares them on random orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np
from numba import njit

from engine.risk import RiskConfig
from engine.types import Instrument
from engine.types.orders import ReasonCode

# limits[i, RL_*] per instrument; -1 = check off
RL_MIN_QTY = 0  # lots: qty below is refused (venue rule "min_qty")
RL_MIN_NOTIONAL = 1  # lots*ticks below is refused (venue rule "min_notional"); 0 = off
RL_MAX_NOTIONAL = 2  # lots*ticks above is refused
RL_MAX_POSITION = 3  # |lots| after the fill above is refused
RL_MAX_OPEN = 4
RL_BAND_NUM = 5  # price band in bps = num/den; den 0 = off
RL_BAND_DEN = 6
RL_MAX_RATE = 7  # submits per second
RL_REDUCE_ONLY = 8
RL_NF = 9

# reason codes (0 = accepted), in the order the session checks them
RISK_OK = 0
RISK_MIN_QTY = 1
RISK_MIN_NOTIONAL = 2
RISK_KILL = 3
RISK_MAX_NOTIONAL = 4
RISK_MAX_POSITION = 5
RISK_REDUCE_ONLY = 6
RISK_MAX_OPEN = 7
RISK_PRICE_BAND = 8
RISK_RATE = 9
_C = ReasonCode
REASONS = {RISK_MIN_QTY: _C.MIN_QTY, RISK_MIN_NOTIONAL: _C.MIN_NOTIONAL, RISK_KILL: _C.KILL_SWITCH,
           RISK_MAX_NOTIONAL: _C.MAX_ORDER_NOTIONAL, RISK_MAX_POSITION: _C.MAX_POSITION,
           RISK_REDUCE_ONLY: _C.REDUCE_ONLY, RISK_MAX_OPEN: _C.MAX_OPEN_ORDERS,
           RISK_PRICE_BAND: _C.PRICE_BAND, RISK_RATE: _C.ORDER_RATE}

RATE_WINDOW_NS = 1_000_000_000


def _ceil(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_CEILING))


def _floor(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_FLOOR))


def risk_limits(config: RiskConfig, instruments: Sequence[Instrument]) -> np.ndarray:
    """Exact integer limits per instrument (see RL_*)."""
    out = np.full((len(instruments), RL_NF), -1, dtype=np.int64)
    for i, inst in enumerate(instruments):
        unit = inst.tick_size * inst.lot_size  # quote value of one lot at one tick
        out[i, RL_MIN_QTY] = _ceil(inst.min_qty / inst.lot_size)
        out[i, RL_MIN_NOTIONAL] = _ceil(inst.min_notional / unit) if inst.min_notional else 0
        if config.max_order_notional is not None:
            out[i, RL_MAX_NOTIONAL] = _floor(config.max_order_notional / unit)
        if config.max_position is not None:
            out[i, RL_MAX_POSITION] = _floor(config.max_position / inst.lot_size)
        if config.max_open_orders is not None:
            out[i, RL_MAX_OPEN] = config.max_open_orders
        if config.price_band_bps is not None:
            num, den = config.price_band_bps.as_integer_ratio()
            out[i, RL_BAND_NUM] = num
            out[i, RL_BAND_DEN] = den
        else:
            out[i, RL_BAND_NUM] = 0
            out[i, RL_BAND_DEN] = 0
        if config.max_orders_per_second is not None:
            out[i, RL_MAX_RATE] = config.max_orders_per_second
        out[i, RL_REDUCE_ONLY] = 1 if config.reduce_only else 0
    return out


def rate_window(config: RiskConfig) -> np.ndarray:
    """The order-rate ring buffer: [head, count, ts...]."""
    n = config.max_orders_per_second or 0
    return np.zeros(2 + n + 1, dtype=np.int64)


@njit(cache=True)
def risk_check_nb(limits, ring, killed, inst, now, side, qty, price, bid, bid_qty, ask, ask_qty,
                  position, open_orders):
    """A limit order's verdict, in the order TradingSession.submit + RiskEngine.check apply
    them; returns a RISK_* code. `open_orders` excludes the new order. Updates the
    order-rate window like RiskEngine (only when every earlier check passed)."""
    lim = limits[inst]
    if qty < lim[RL_MIN_QTY]:
        return RISK_MIN_QTY
    if lim[RL_MIN_NOTIONAL] > 0 and qty * price < lim[RL_MIN_NOTIONAL]:
        return RISK_MIN_NOTIONAL
    if killed:
        return RISK_KILL
    if lim[RL_MAX_NOTIONAL] >= 0 and qty * price > lim[RL_MAX_NOTIONAL]:
        return RISK_MAX_NOTIONAL
    after = position + side * qty
    if lim[RL_MAX_POSITION] >= 0 and abs(after) > lim[RL_MAX_POSITION]:
        return RISK_MAX_POSITION
    if lim[RL_REDUCE_ONLY] != 0:
        if position == 0 or (position > 0) == (side > 0) or qty > abs(position):
            return RISK_REDUCE_ONLY
    if lim[RL_MAX_OPEN] >= 0 and open_orders >= lim[RL_MAX_OPEN]:
        return RISK_MAX_OPEN
    if lim[RL_BAND_DEN] > 0 and bid_qty > 0 and ask_qty > 0 and bid + ask > 0:
        # |price - mid| / mid * 10000 > band, with mid = (bid + ask) / 2, in integers
        if abs(2 * price - (bid + ask)) * 10000 * lim[RL_BAND_DEN] > lim[RL_BAND_NUM] * (bid + ask):
            return RISK_PRICE_BAND
    cap = lim[RL_MAX_RATE]
    if cap >= 0:
        size = ring.shape[0] - 2
        head = ring[0]
        count = ring[1]
        start = now - RATE_WINDOW_NS
        while count > 0 and ring[2 + head] <= start:
            head = (head + 1) % size
            count -= 1
        if count >= cap:
            ring[0] = head
            ring[1] = count
            return RISK_RATE
        ring[2 + (head + count) % size] = now
        ring[0] = head
        ring[1] = count + 1
    return RISK_OK
