"""Trigger arithmetic of contingent orders: pure integer functions, no engine state.

Why separate: these few rules decide when a protective order fires; kept pure they are
tested exhaustively (hypothesis, tests/engine/contingent) and shared by the manager and
the watch-array thresholds, so the numba loop and Python never disagree.

Units: a *reference* is an int in the trigger type's unit: ticks for ``last`` (last
trade) and ``bid_ask`` (a buy watches the best ask, a sell the best bid: the opposite
best, what the order will trade against), and ticks x 2 for ``mid`` (bid + ask, so a
half-tick mid stays exact).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

TRIGGER_TYPES = ("last", "mid", "bid_ask")
#: scale of a reference unit per trigger type (mid is watched as bid + ask)
SCALE = {"last": 1, "mid": 2, "bid_ask": 1}

# direction of a trigger condition
GE = 1  # fires when reference >= trigger
LE = -1  # fires when reference <= trigger


def stop_direction(side: int) -> int:
    """A stop (stop-market, stop-limit, trailing) buys when the price rises to its trigger and
    sells when it falls to it: buy -> GE, sell -> LE (ccxt triggerDirection 'above'/'below')."""
    return GE if side > 0 else LE


def take_profit_direction(side: int) -> int:
    """A take-profit (market/limit if touched) fires on the favourable side: buy -> LE, sell -> GE."""
    return -stop_direction(side)


def touched(direction: int, reference: int, trigger: int) -> bool:
    """The condition is met: a touch counts (reference == trigger fires)."""
    return reference >= trigger if direction == GE else reference <= trigger


def trailing_offset(watermark: int, amount: int | None, bps: Decimal | None) -> int:
    """Distance (reference units) of a trailing stop's trigger from its watermark.

    By amount: that many units. By bps: watermark x bps / 10,000 rounded up to a whole
    unit, so the trigger sits at least the stated distance away (never closer than asked).
    """
    if amount is not None:
        return amount
    assert bps is not None
    return int((Decimal(watermark) * bps / 10_000).to_integral_value(rounding=ROUND_CEILING))


def trailing_trigger(side: int, watermark: int, amount: int | None, bps: Decimal | None) -> int:
    """The trigger of a trailing stop with this watermark: a sell trails below the highest
    reference seen (high - offset), a buy above the lowest (low + offset)."""
    offset = trailing_offset(watermark, amount, bps)
    return watermark - offset if side < 0 else watermark + offset


def trail(side: int, watermark: int | None, reference: int) -> int:
    """The watermark after seeing `reference`: it only ever moves in the order's favour
    (a sell's high rises, a buy's low falls); the first reference seen starts it."""
    if watermark is None:
        return reference
    return max(watermark, reference) if side < 0 else min(watermark, reference)
