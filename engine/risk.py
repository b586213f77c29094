"""Pre-trade risk checks that run before every submit, in every mode.

Why a reason code and not an exception: a refused order becomes a REJECTED order
update the strategy can react to; raising would kill the strategy on a routine limit.
The codes are the risk entries of the one vocabulary, `engine.types.orders.REASONS`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from engine.errors import ConfigError
from engine.types.orders import ReasonCode


@dataclass(frozen=True, kw_only=True)
class RiskConfig:
    """Limits from the run config's ``[risk]`` table; None disables a check."""

    max_order_notional: Decimal | None = None  # quote units per order
    max_position: Decimal | None = None  # |base qty| per instrument after the fill
    max_open_orders: int | None = None
    price_band_bps: Decimal | None = None  # fat finger: limit price vs local mid
    max_orders_per_second: int | None = None
    reduce_only: bool = False  # whole-account reduce-only mode
    # contracts (checked by engine/margin.py through the session's margin check)
    max_leverage: Decimal | None = None  # account notional / margin balance after the order
    max_margin_ratio: Decimal | None = None  # refuse adding exposure at or above this ratio (0-1)

    @classmethod
    def from_table(cls, table: dict[str, Any] | None) -> RiskConfig:
        table = dict(table or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(f"[risk] unknown key(s) {unknown}; known: {sorted(known)}")
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key in ("max_open_orders", "max_orders_per_second"):
                if not isinstance(value, int) or value <= 0:
                    raise ConfigError(f"[risk] {key} = {value!r}: expected a positive integer")
                values[key] = value
            elif key == "reduce_only":
                if not isinstance(value, bool):
                    raise ConfigError(f"[risk] reduce_only = {value!r}: expected true or false")
                values[key] = value
            else:
                try:
                    number = Decimal(str(value))
                except Exception:
                    raise ConfigError(f"[risk] {key} = {value!r}: expected a number") from None
                if number <= 0:
                    raise ConfigError(f"[risk] {key} = {value!r}: expected a positive number")
                values[key] = number
        return cls(**values)


class RiskEngine:
    """Stateful checks (order rate) plus stateless limits; `check` returns a reason or None."""

    def __init__(self, config: RiskConfig) -> None:
        self.config = config
        self._recent_submits: deque[int] = deque()
        self.killed = False

    def check(
        self,
        *,
        now: int,
        side: int,
        qty: Decimal,
        price: Decimal | None,
        mid: Decimal | None,
        position: Decimal,
        open_orders: int,
        reduce_only: bool,
    ) -> ReasonCode | None:
        cfg = self.config
        if self.killed:
            return ReasonCode.KILL_SWITCH
        reference = price if price is not None else mid
        if cfg.max_order_notional is not None and reference is not None:
            if qty * reference > cfg.max_order_notional:
                return ReasonCode.MAX_ORDER_NOTIONAL
        if cfg.max_position is not None and abs(position + side * qty) > cfg.max_position:
            return ReasonCode.MAX_POSITION
        if reduce_only or cfg.reduce_only:
            if position == 0 or (position > 0) == (side > 0) or qty > abs(position):
                return ReasonCode.REDUCE_ONLY
        if cfg.max_open_orders is not None and open_orders >= cfg.max_open_orders:
            return ReasonCode.MAX_OPEN_ORDERS
        if cfg.price_band_bps is not None and price is not None and mid is not None and mid > 0:
            if abs(price - mid) / mid * 10000 > cfg.price_band_bps:
                return ReasonCode.PRICE_BAND
        if cfg.max_orders_per_second is not None:
            window_start = now - 1_000_000_000
            while self._recent_submits and self._recent_submits[0] <= window_start:
                self._recent_submits.popleft()
            if len(self._recent_submits) >= cfg.max_orders_per_second:
                return ReasonCode.ORDER_RATE
            self._recent_submits.append(now)
        return None
