"""The one implementation of the per-order pre-trade checks, in ticks and lots.

Why one function for two callers: the plain path (`engine.risk.RiskEngine`, every mode)
and the compiled fast path (`venues.sim.compiled_nb`, inside numba) must refuse the same
orders for the same reasons. Each check here is written once in the subset of Python that
numba compiles; `register_jitable` leaves it an ordinary Python function for the
interpreter (Python ints: exact, nothing to dispatch) and compiles it inline into any
`@njit` kernel that calls it. The compiled path therefore needs no replay re-check.

What lives here: every rule decidable on one instrument's grid from integers — the venue
minimums (min_qty, min_notional) and the six per-order limits (state, max_order_notional,
max_position, reduce-only / reducing, max_open_orders, price_band, order rate), plus the
order value the approval threshold compares. What does not: the exposure limits (they
value every instrument's position and held orders at its own mid and sum across
instruments and venues) and the PnL / reject / slippage triggers, which stay Python in
`engine.risk`.

Exactness: `risk_limits` converts each Decimal threshold once into an integer bound on an
order's value in "half units" (lots x 2 x ticks for a price-quoted instrument, lots x 2 for
an inverse contract whose quote value does not depend on the price), rounded in the
direction that keeps every verdict the Decimal rule's (tests/engine/test_risk_kernel.py
checks them against the former Decimal code on random orders).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import numpy as np
from numba.extending import register_jitable

from engine.types import Instrument
from engine.types.orders import ReasonCode

# limits[i, RL_*] per instrument (values are in half units unless said; -1 = check off)
RL_MIN_QTY = 0  # lots: qty below is refused (venue rule "min_qty"); 0 = off
RL_MIN_NOTIONAL2 = 1  # an order value below is refused (venue rule "min_notional"); 0 = off
RL_MAX_NOTIONAL2 = 2  # an order value above is refused
RL_MAX_POSITION = 3  # |lots| after the fill above is refused
RL_MAX_OPEN = 4  # open orders (excluding the new one) at or above refuse it
RL_BAND_NUM = 5  # price band in bps = num / den
RL_BAND_DEN10K = 6  # 10,000 x den; 0 = off
RL_MAX_RATE = 7  # submits per rolling second; 0 = off
RL_REDUCE_ONLY = 8  # 1: the whole account is reduce-only
RL_PRICED = 9  # 1: value = lots x price (spot, linear); 0: inverse (contracts x contract_size)
RL_APPROVAL2 = 10  # an order value at or above needs approval
RL_NF = 11

# risk states as the kernel sees them (RiskEngine.state, with the kill switch apart)
ST_ACTIVE = 0
ST_REDUCING = 1
ST_HALTED = 2
ST_KILLED = 3

# verdicts (0 = accepted), in the order they are checked
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
RISK_HALTED = 10
RISK_REDUCING = 11
#: not a refusal: every check passed and the order's value is at or above approval_notional
RISK_NEEDS_APPROVAL = 12
_C = ReasonCode
REASONS = {RISK_MIN_QTY: _C.MIN_QTY, RISK_MIN_NOTIONAL: _C.MIN_NOTIONAL, RISK_KILL: _C.KILL_SWITCH,
           RISK_MAX_NOTIONAL: _C.MAX_ORDER_NOTIONAL, RISK_MAX_POSITION: _C.MAX_POSITION,
           RISK_REDUCE_ONLY: _C.REDUCE_ONLY, RISK_MAX_OPEN: _C.MAX_OPEN_ORDERS,
           RISK_PRICE_BAND: _C.PRICE_BAND, RISK_RATE: _C.ORDER_RATE, RISK_HALTED: _C.RISK_HALTED,
           RISK_REDUCING: _C.RISK_REDUCING}
#: REASONS as a tuple indexed by verdict (None = accepted): the Python caller's lookup
REASON_OF: tuple[ReasonCode | None, ...] = tuple(REASONS.get(code) for code in range(max(REASONS) + 1))

RATE_WINDOW_NS = 1_000_000_000
#: a check that is off, where "off" is a bound no order value reaches
OFF = (1 << 62)


def _ceil(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_CEILING))


def _floor(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_FLOOR))


def _bound(n: int) -> int:
    """An integer bound as the int64 limits table holds it: one past OFF saturates at OFF.
    Why: a large limit ("max_order_notional = 1e12" on BTC/USDT's 0.01 x 0.00001 grid is
    2e19 half units) does not fit int64 and crashed the run. Saturating errs on the safe
    side: only an order valued above 2^62 half units (~2.3e11 USDT there) is judged against
    OFF instead of the larger limit (refused, or sent for approval)."""
    return n if n < OFF else OFF


def half_unit(inst: Instrument) -> Decimal:
    """The quote value of one unit of `order_value2`: half of one lot at one tick
    (x contract_size for contracts), or for an inverse contract half of one lot's face
    value (contracts x contract_size quote units, whatever the price; docs/derivatives.md)."""
    size = inst.contract_size if inst.contract else Decimal(1)
    if inst.inverse:
        return inst.lot_size * size / 2
    return inst.tick_size * inst.lot_size * size / 2


def risk_limits(config: Any, instruments: Sequence[Instrument]) -> np.ndarray:
    """Exact integer limits per instrument (rows of RL_*) from a `RiskConfig` and each
    instrument's venue minimums. A Decimal bound B becomes floor(B / half_unit) for a
    "value above B is refused" rule and ceil(B / half_unit) for "below" / "at or above":
    an integer value compares with the integer bound exactly as with B. A bound beyond
    int64 saturates at OFF (`_bound`)."""
    out = np.zeros((len(instruments), RL_NF), dtype=np.int64)
    band_num = band_den = 0
    if config.price_band_bps is not None:
        band_num, band_den = config.price_band_bps.as_integer_ratio()
    for i, inst in enumerate(instruments):
        unit = half_unit(inst)
        row = out[i]
        row[RL_MIN_QTY] = _bound(_ceil(inst.min_qty / inst.lot_size))
        row[RL_MIN_NOTIONAL2] = _bound(_ceil(inst.min_notional / unit)) if inst.min_notional else 0
        row[RL_MAX_NOTIONAL2] = -1 if config.max_order_notional is None else _bound(_floor(config.max_order_notional / unit))
        row[RL_MAX_POSITION] = -1 if config.max_position is None else _bound(_floor(config.max_position / inst.lot_size))
        row[RL_MAX_OPEN] = -1 if config.max_open_orders is None else _bound(config.max_open_orders)
        row[RL_BAND_NUM] = band_num
        row[RL_BAND_DEN10K] = 10_000 * band_den
        row[RL_MAX_RATE] = config.max_orders_per_second or 0
        row[RL_REDUCE_ONLY] = 1 if config.reduce_only else 0
        row[RL_PRICED] = 0 if inst.inverse else 1
        row[RL_APPROVAL2] = -1 if config.approval_notional is None else _bound(_ceil(config.approval_notional / unit))
    return out


def rate_window(config: Any) -> np.ndarray:
    """The order-rate window for `pretrade_check`: [head, count, ts x (cap + 1)]."""
    return np.zeros(2 + (config.max_orders_per_second or 0) + 1, dtype=np.int64)


@register_jitable
def order_value2(lim, lots, price_ticks, mid2):
    """An order's value in half units (see `half_unit`): a limit order at its price, a
    market one (price_ticks 0) at the mid (`mid2` = bid + ask in ticks, 0 = none: value 0,
    the notional rules cannot refuse it); an inverse contract's value is its face value,
    whatever the price (so known without a mid)."""
    if lim[RL_PRICED] == 0:
        return 2 * lots
    if price_ticks > 0:
        return 2 * lots * price_ticks
    return lots * mid2


@register_jitable
def venue_minimums(lim, lots, reference_ticks):
    """The venue's lot and notional filters (ccxt refuses below them before sending):
    RISK_MIN_QTY, RISK_MIN_NOTIONAL or RISK_OK. `reference_ticks`: the limit price, or for
    a market order the touch it would take (0 = none: min_notional is not decidable,
    except for an inverse contract, whose value needs no price)."""
    if lots < lim[RL_MIN_QTY]:
        return RISK_MIN_QTY
    if lim[RL_MIN_NOTIONAL2] > 0 and (reference_ticks > 0 or lim[RL_PRICED] == 0):
        if order_value2(lim, lots, reference_ticks, 0) < lim[RL_MIN_NOTIONAL2]:
            return RISK_MIN_NOTIONAL
    return RISK_OK


@register_jitable
def pretrade_check(lim, ring, state, bypass, now, side, lots, price_ticks, mid2, position, open_orders,
                   reduce_only, count):
    """The state and the six per-order limits for one new order (docs/risk.md), in this
    order: halted / killed, max_order_notional, max_position, reduce-only (the order's
    flag or the account's) / reducing, max_open_orders, price_band, order rate. Returns a
    RISK_* verdict. Units: lots, ticks (price 0 = market), `mid2` = bid + ask in ticks (0 =
    a side is empty), `position` signed lots, `open_orders` excluding this order.
    `state`: ST_*; `bypass` (the kill switch's own orders) skips the state and the rate.
    The order-rate window `ring` ([head, count, ts...]) counts the submit when every
    earlier check passed and `count`. An order that passes them all and whose value is at
    or above approval_notional gets RISK_NEEDS_APPROVAL (not a refusal; the caller runs
    the exposure limits first, then asks for the approval)."""
    if not bypass:
        if state == ST_KILLED:
            return RISK_KILL
        if state == ST_HALTED:
            return RISK_HALTED
    value2 = order_value2(lim, lots, price_ticks, mid2)
    cap = lim[RL_MAX_NOTIONAL2]
    if cap >= 0 and value2 > cap:
        return RISK_MAX_NOTIONAL
    cap = lim[RL_MAX_POSITION]
    if cap >= 0:
        after = position + side * lots
        if after > cap or -after > cap:
            return RISK_MAX_POSITION
    account_reduce = lim[RL_REDUCE_ONLY] != 0
    if reduce_only or account_reduce or (state == ST_REDUCING and not bypass):
        if position == 0 or (position > 0) == (side > 0) or lots > abs(position):
            return RISK_REDUCE_ONLY if (reduce_only or account_reduce) else RISK_REDUCING
    cap = lim[RL_MAX_OPEN]
    if cap >= 0 and open_orders >= cap:
        return RISK_MAX_OPEN
    if lim[RL_BAND_DEN10K] > 0 and price_ticks > 0 and mid2 > 0:
        # |price - mid| / mid x 10,000 > num / den, with mid = mid2 / 2, in integers
        if abs(2 * price_ticks - mid2) * lim[RL_BAND_DEN10K] > lim[RL_BAND_NUM] * mid2:
            return RISK_PRICE_BAND
    cap = lim[RL_MAX_RATE]
    if cap > 0 and not bypass:
        size = len(ring) - 2
        head = ring[0]
        n = ring[1]
        start = now - RATE_WINDOW_NS
        while n > 0 and ring[2 + head] <= start:
            head = (head + 1) % size
            n -= 1
        ring[0] = head
        ring[1] = n
        if n >= cap:
            return RISK_RATE
        if count:
            ring[2 + (head + n) % size] = now
            ring[1] = n + 1
    cap = lim[RL_APPROVAL2]
    if cap >= 0 and not bypass and value2 >= cap and value2 > 0:
        return RISK_NEEDS_APPROVAL
    return RISK_OK


@register_jitable
def needs_approval(lim, lots, price_ticks, mid2, bypass):
    """True when the order's value is at or above approval_notional (and > 0)."""
    cap = lim[RL_APPROVAL2]
    if cap < 0 or bypass:
        return False
    value2 = order_value2(lim, lots, price_ticks, mid2)
    return value2 >= cap and value2 > 0
