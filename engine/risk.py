"""Pre-trade risk: limits checked before every submit and amend, risk states, triggers.

Why a reason code and not an exception: a refused order becomes a REJECTED order
update the strategy can react to; raising would kill the strategy on a routine limit.
The codes are the risk entries of the one vocabulary, `engine.types.orders.REASONS`.

Why integers on the hot path: every limit is converted once (`bind`) into an integer bound
on lots x (2 x mid in ticks), rounded the way that keeps "refuse" exact, so a check with
every limit on is integer compares (bench/bench_risk.py). The per-order limits and the venue
minimums are `engine.risk_nb`'s functions, the one implementation the compiled fast path
also runs inside numba; what stays here is what spans instruments (the exposure limits:
every instrument's position and held orders valued at its own mid, summed per venue and in
total), the states, and the triggers. Money that must be exact (PnL for the daily loss and
drawdown triggers) stays Decimal.

States (docs/risk.md): ACTIVE (every limit applies) -> REDUCING (only orders that reduce a
position) -> HALTED (every new order refused; the kill switch and auto-disable end here).
Only `resume` (an operator or the strategy, audited with who and why) leaves HALTED; the
daily-loss REDUCING state also ends by itself at the next daily reset.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from types import SimpleNamespace
from typing import Any

from engine.errors import ConfigError, InternalError
from engine.risk_nb import (
    REASON_OF as _REASON_OF,
)
from engine.risk_nb import (
    RISK_NEEDS_APPROVAL,
    RL_BAND_DEN10K,
    RL_BAND_NUM,
    RL_MAX_NOTIONAL2,
    RL_MAX_POSITION,
    ST_ACTIVE,
    ST_HALTED,
    ST_KILLED,
    ST_REDUCING,
    half_unit,
    needs_approval,
    order_value2,
    pretrade_check,
    rate_window,
    risk_limits,
    venue_minimums,
)
from engine.types import Instrument
from engine.types.orders import ReasonCode

DAY_NS = 86_400 * 1_000_000_000
SECOND_NS = 1_000_000_000
ACTIONS = ("reducing", "halt", "kill")
_APPROVAL_MODES = ("approve", "reject")
# Enum members read through the class cost ~0.4 us each on Python 3.11 (EnumType lookup);
# the hot path reads them from plain namespaces instead.
_C = SimpleNamespace(**{code.name: code for code in ReasonCode})


class RiskState(StrEnum):
    """The risk engine's state (docs/risk.md, "States")."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


_S = SimpleNamespace(**{state.name: state for state in RiskState})
_ACTIVE = RiskState.ACTIVE  # a module global: check_submit's read
#: check_submit's answer for an order at or above approval_notional (the guard decides it)
APPROVAL = "approval"

#: [risk] max_orders_per_second's largest value (the rate window holds one int64 per order)
MAX_ORDERS_PER_SECOND = 10_000_000  # bench/bench_risk.py runs at this bound (an 80 MB window)
_INT_KEYS = ("max_open_orders", "max_orders_per_second", "max_cancels_per_second", "disable_after_rejects",
             "disable_after_slippage_fills", "disable_after_ambiguous")
_BOOL_KEYS = ("reduce_only", "kill_flatten")
_CHOICE_KEYS = {"on_daily_loss": ACTIONS, "on_drawdown": ACTIONS, "on_disable": ACTIONS,
                "approval_in_backtest": _APPROVAL_MODES}
#: keys the compiled fast path (engine.risk_nb) applies; any other key set is refused there
COMPILED_KEYS = ("max_order_notional", "max_position", "max_open_orders", "price_band_bps",
                 "max_orders_per_second", "reduce_only")


@dataclass(frozen=True, kw_only=True)
class RiskConfig:
    """Limits from the run config's ``[risk]`` table; None disables a check (docs/risk.md).

    Units: notional/loss limits in the instrument's quote currency; positions in base
    units; bps = 1/10,000; rates per rolling second; windows and timeouts in seconds.
    """

    # the six original limits (meaning and units unchanged)
    max_order_notional: Decimal | None = None  # quote units per order (market: qty x mid)
    max_position: Decimal | None = None  # |base qty| per instrument after the fill
    max_open_orders: int | None = None
    price_band_bps: Decimal | None = None  # fat finger: limit price vs local mid
    max_orders_per_second: int | None = None
    reduce_only: bool = False  # whole-account reduce-only mode
    # contracts (checked by engine/margin.py through the session's margin check)
    max_leverage: Decimal | None = None  # account notional / margin balance after the order
    max_margin_ratio: Decimal | None = None  # refuse adding exposure at or above this ratio (0-1)
    # exposure at the local mid, quote units; open, in-flight, pending and armed orders count
    max_position_notional: Decimal | None = None  # per instrument, worst-case position
    max_total_position_notional: Decimal | None = None  # sum over instruments
    max_open_notional: Decimal | None = None  # per instrument, open order qty (both sides)
    max_total_open_notional: Decimal | None = None
    max_venue_exposure_pct: Decimal | None = None  # % of max_total_position_notional one venue may hold
    # losses (quote units), evaluated at every fill and equity sample
    max_daily_loss: Decimal | None = None  # realized - fees + unrealized since the daily reset
    daily_reset_utc: str = "00:00"  # HH:MM UTC
    on_daily_loss: str = "reducing"
    max_drawdown: Decimal | None = None  # from the run's peak PnL
    on_drawdown: str = "kill"
    # cancels
    max_cancels_per_second: int | None = None
    # auto-disable, within disable_window_s
    disable_after_rejects: int | None = None  # venue rejects
    disable_slippage_bps: Decimal | None = None  # a fill this far (adverse) from its arrival mid ...
    disable_after_slippage_fills: int = 1  # ... this many times
    disable_after_ambiguous: int | None = None  # ambiguous venue outcomes (live modes)
    disable_window_s: Decimal = Decimal(60)
    on_disable: str = "halt"
    # approvals
    approval_notional: Decimal | None = None  # quote units; at or above needs approval
    approval_in_backtest: str = "reject"
    approval_timeout_s: Decimal = Decimal(300)
    # the kill switch triggered by on_* = "kill"
    kill_flatten: bool = False
    kill_max_slippage_bps: Decimal = Decimal(50)

    @classmethod
    def from_table(cls, table: dict[str, Any] | None) -> RiskConfig:
        """Validate a ``[risk]`` table; ConfigError naming the key (one line) otherwise."""
        table = dict(table or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(f"[risk] unknown key(s) {unknown}; known: {sorted(known)}")
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key in _INT_KEYS:
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise ConfigError(f"[risk] {key} = {value!r}: expected a positive integer")
                if key == "max_orders_per_second" and value > MAX_ORDERS_PER_SECOND:
                    # the order-rate window keeps one int64 time per order (engine.risk_nb.rate_window)
                    raise ConfigError(f"[risk] {key} = {value!r}: expected at most {MAX_ORDERS_PER_SECOND:,} "
                                      "(the rate window keeps one time per order)")
                values[key] = value
            elif key in _BOOL_KEYS:
                if not isinstance(value, bool):
                    raise ConfigError(f"[risk] {key} = {value!r}: expected true or false")
                values[key] = value
            elif key in _CHOICE_KEYS:
                if value not in _CHOICE_KEYS[key]:
                    raise ConfigError(f"[risk] {key} = {value!r}: expected one of {list(_CHOICE_KEYS[key])}")
                values[key] = value
            elif key == "daily_reset_utc":
                reset_offset_ns(value)
                values[key] = value
            else:
                if isinstance(value, bool):
                    raise ConfigError(f"[risk] {key} = {value!r}: expected a number")
                try:
                    number = Decimal(str(value))
                except Exception:
                    raise ConfigError(f"[risk] {key} = {value!r}: expected a number") from None
                if not number.is_finite() or number <= 0:
                    raise ConfigError(f"[risk] {key} = {value!r}: expected a positive number")
                if key == "price_band_bps" and (number > 1_000_000 or number.normalize().as_tuple().exponent < -4):
                    # the band is an integer ratio num / den the compiled check multiplies in
                    # int64 (engine.risk_nb.pretrade_check): den <= 10^4 and num <= 10^10
                    raise ConfigError(f"[risk] {key} = {value!r}: expected at most 1,000,000 bps with at most "
                                      "4 decimal places (1e-4 bps = 1e-8 of the price)")
                if key == "max_venue_exposure_pct" and number > 100:
                    raise ConfigError(f"[risk] {key} = {value!r}: expected a percentage in (0, 100]")
                if key == "max_margin_ratio" and number > 1:  # the venue liquidates at 1: never acts
                    raise ConfigError(f"[risk] {key} = {value!r}: expected a margin ratio in (0, 1] "
                                      "(maintenance / margin balance; the venue liquidates at 1)")
                values[key] = number
        config = cls(**values)
        if config.max_venue_exposure_pct is not None and config.max_total_position_notional is None:
            raise ConfigError("[risk] max_venue_exposure_pct: a share of max_total_position_notional, "
                              "which is not set")
        return config

    def keys_set(self) -> list[str]:
        """The keys that differ from their default (what a run's config turns on)."""
        default = RiskConfig()
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)]


def reset_offset_ns(text: object) -> int:
    """'HH:MM' (UTC) -> ns after midnight; ConfigError naming [risk] daily_reset_utc."""
    try:
        hours, minutes = str(text).split(":")
        h, m = int(hours), int(minutes)
        if not (0 <= h < 24 and 0 <= m < 60) or len(minutes) != 2:
            raise ValueError
    except ValueError:
        raise ConfigError(f"[risk] daily_reset_utc = {text!r}: expected 'HH:MM' (UTC)") from None
    return (h * 3600 + m * 60) * SECOND_NS


def _floor(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_FLOOR))


def _ceil(x: Decimal) -> int:
    return -_floor(-x)


def _window_count(window: deque[int], now: int, span: int) -> int:
    start = now - span
    while window and window[0] <= start:
        window.popleft()
    return len(window)


class RiskEngine:
    """Stateful pre-trade checks on bound instruments (`bind`); see the module docstring.

    `check_submit` is what the session calls before a submit: the per-order limits
    (`engine.risk_nb.pretrade_check`), then the exposure limits and the approval threshold.
    Exposure is held per key (`hold`): the session holds every order's leaves while it is
    open, in flight or pending approval; a contingent-order component holds what its armed
    orders could add.
    """

    def __init__(self, config: RiskConfig, *, interactive: bool = False) -> None:
        self.config = config
        #: live modes: an order needing approval waits for an operator; backtest: config decides
        self.interactive = interactive
        self.state = _S.ACTIVE
        self.state_reason: str | None = None  # what put the engine in its state (a trigger, 'kill', ...)
        #: set while the session sends the kill switch's flatten orders: they skip the state
        self.bypass = False
        #: (ts, action, fields) -> audit; the session sets it
        self.emit: Callable[[int, str, dict[str, Any]], None] | None = None
        self.refusals: dict[str, int] = {}  # reason -> count
        self.transitions: list[dict[str, Any]] = []
        self._recent_cancels: deque[int] = deque()
        self._rejects: deque[int] = deque()
        self._slips: deque[int] = deque()
        self._ambiguous: deque[int] = deque()
        self._window_ns = int(config.disable_window_s * SECOND_NS)
        self._reset_ns = reset_offset_ns(config.daily_reset_utc)
        self._day: int | None = None
        self._day_start_pnl = Decimal(0)
        self._peak_pnl: Decimal | None = None
        self.daily_loss = Decimal(0)
        self.drawdown = Decimal(0)
        # exposure bookkeeping (bind)
        self._exposure_on = any(x is not None for x in (
            config.max_position_notional, config.max_total_position_notional, config.max_open_notional,
            config.max_total_open_notional))
        self._instruments: list[Instrument] = []
        self._positions: list[Any] = []
        self._tops: list[Callable[[], tuple[int, int, int, int]]] = []
        self._buys: list[int] = []
        self._sells: list[int] = []
        self._mid2: list[int] = []  # last known 2 x mid in ticks, 0 = none yet
        self._held: dict[str, tuple[int, int, int]] = {}  # key -> (instrument index, side, lots)
        self._weight: list[int] = []  # value of lots x mid2 in common units
        self._venue_of: list[int] = []
        self._others: list[list[int]] = []
        self._lim_pos: list[int] = []
        self._lim_open: list[int] = []
        self._lim_total_pos = -1
        self._lim: list[list[int]] = []  # per instrument: engine.risk_nb's RL_* row
        self._priced: list[bool] = []
        self._lim_total_open = -1
        self._lim_venue = -1
        self._ring: list[int] = rate_window(config).tolist()  # the order-rate window (risk_nb layout)

    # -- the original six -----------------------------------------------------------------
    @property
    def killed(self) -> bool:
        """True once the kill switch fired and until `resume`."""
        return self.state is _S.HALTED and self.state_reason == "kill"

    @killed.setter
    def killed(self, value: bool) -> None:
        if value:
            self.state, self.state_reason = _S.HALTED, "kill"
        elif self.killed:
            self.state, self.state_reason = _S.ACTIVE, None

    def state_code(self) -> int:
        """The state as `engine.risk_nb.pretrade_check` takes it (ST_*)."""
        state = self.state
        if state is _ACTIVE:
            return ST_ACTIVE
        if state is _S.REDUCING:
            return ST_REDUCING
        return ST_KILLED if self.state_reason == "kill" else ST_HALTED

    def venue_rules(self, index: int, lots: int, reference_ticks: int) -> ReasonCode | None:
        """The venue's min_qty / min_notional filters for `lots` on bound instrument `index`
        (`reference_ticks`: the limit price, or a market order's touch; 0 = none), through
        the one kernel the compiled path runs (`engine.risk_nb.venue_minimums`)."""
        return _REASON_OF[venue_minimums(self._lim[index], lots, reference_ticks)]

    def check_submit(self, index: int, now: int, side: int, lots: int, price_ticks: int, open_orders: int,
                     reduce_only: bool, count: bool = True) -> str | None:
        """Every pre-submit rule of risk for a new order on a bound instrument (the
        session's hot path, bench/bench_risk.py): the state and the six per-order limits
        (`engine.risk_nb.pretrade_check`, the one implementation the compiled path runs
        in numba), then the exposure limits (`check_exposure`), then the approval
        threshold. Returns a risk reason, APPROVAL (the order needs an approval; the caller
        decides it) or None. Units: lots, ticks (0 = market, valued at the local mid),
        `open_orders` excluding this one. The order-rate window counts the submit once the
        per-order limits pass (and `count`); the instrument's mid is remembered."""
        bid, bid_qty, ask, ask_qty = self._tops[index]()
        if bid_qty > 0 and ask_qty > 0:
            mid2 = bid + ask
            self._mid2[index] = mid2
        else:
            mid2 = 0
        state = self.state
        code = pretrade_check(self._lim[index], self._ring, ST_ACTIVE if state is _ACTIVE else self.state_code(), self.bypass,
                              now, side, lots, price_ticks, mid2, self._positions[index].lots, open_orders,
                              reduce_only, count)
        if code and code != RISK_NEEDS_APPROVAL:
            return _REASON_OF[code]
        if self._exposure_on:
            reason = self.check_exposure(index, side, lots, price_ticks, mid2)
            if reason is not None:
                return reason
        return APPROVAL if code else None

    def check_dry(self, index: int, now: int, side: int, lots: int, price_ticks: int, open_orders: int
                  ) -> ReasonCode | None:
        """What `check_submit` would refuse an order for, without counting it in the
        order-rate window or asking for approval: the per-order limits and the exposure
        limits, at the instrument's mid now or the last one seen (contingent orders ask
        this before they arm or trigger, when a side of the book may be empty)."""
        mid2 = self.mid2(index)
        code = pretrade_check(self._lim[index], self._ring, self.state_code(), self.bypass, now, side, lots,
                              price_ticks, mid2, self._positions[index].lots, open_orders, False, False)
        if code and code != RISK_NEEDS_APPROVAL:
            return _REASON_OF[code]
        return self.check_exposure(index, side, lots, price_ticks)

    def needs_approval_lots(self, index: int, lots: int, price_ticks: int, mid2: int) -> bool:
        """True when an order of `lots` at `price_ticks` (0 = market, valued at mid2 / 2)
        is at or above approval_notional (`engine.risk_nb.needs_approval`)."""
        return needs_approval(self._lim[index], lots, price_ticks, mid2, self.bypass)

    def recent_submits(self) -> list[int]:
        """The order-rate window's submit times, oldest first (ns)."""
        ring = self._ring
        size = len(ring) - 2
        return [ring[2 + (ring[0] + k) % size] for k in range(ring[1])] if size > 0 else []

    def load_rate_window(self, ring: Sequence[int]) -> None:
        """Take over an order-rate window ([head, count, ts...], `rate_window`'s layout)
        that the compiled loop advanced."""
        if len(ring) != len(self._ring):
            raise InternalError(f"order-rate window of {len(ring)} slots, expected {len(self._ring)}")
        self._ring = [int(x) for x in ring]

    def check_amend(self, index: int, *, side: int, qty: int, leaves: int, new_leaves: int,
                    price_ticks: int) -> ReasonCode | None:
        """An amend of a limit order to total `qty` lots at `price_ticks`, its leaves going
        from `leaves` to `new_leaves`: the state (halted refuses; reducing refuses growth),
        max_order_notional on the whole amended quantity, max_position and the approval
        threshold when the leaves grow, price_band on the new price, and the exposure
        limits on the change in leaves. Integers, on `engine.risk_nb`'s bounds and value."""
        grows = new_leaves > leaves
        state = self.state
        if state is _S.HALTED:
            return _C.KILL_SWITCH if self.state_reason == "kill" else _C.RISK_HALTED
        if state is _S.REDUCING and grows:
            return _C.RISK_REDUCING
        lim = self._lim[index]
        cap = lim[RL_MAX_NOTIONAL2]
        if cap >= 0 and order_value2(lim, qty, price_ticks, 0) > cap:
            return _C.MAX_ORDER_NOTIONAL
        cap = lim[RL_MAX_POSITION]
        if grows and cap >= 0 and abs(self._positions[index].lots + side * new_leaves) > cap:
            return _C.MAX_POSITION
        mid2 = self.mid2_now(index)
        if lim[RL_BAND_DEN10K] and mid2 > 0:
            if abs(2 * price_ticks - mid2) * lim[RL_BAND_DEN10K] > lim[RL_BAND_NUM] * mid2:
                return _C.PRICE_BAND
        reason = self.check_exposure(index, side, new_leaves - leaves, price_ticks, mid2)
        if reason is None and grows and self.needs_approval_lots(index, qty, price_ticks, mid2):
            return _C.APPROVAL_REFUSED
        return reason

    # -- exposure -------------------------------------------------------------------------
    def bind(self, instruments: Sequence[Instrument], positions: Sequence[Any],
             tops: Sequence[Callable[[], tuple[int, int, int, int]]]) -> None:
        """Attach the run's instruments (index order), their ledger positions (`.lots`) and
        their local top of book ((bid, bid qty, ask, ask qty) in ticks/lots); converts the
        exposure limits to integer bounds. ConfigError (naming the key) when a total limit
        spans instruments quoted in different currencies."""
        cfg = self.config
        self._instruments = list(instruments)
        self._positions = list(positions)
        self._tops = list(tops)
        n = len(self._instruments)
        self._buys, self._sells, self._mid2 = [0] * n, [0] * n, [0] * n
        quotes = sorted({i.quote for i in self._instruments})
        for key in ("max_total_position_notional", "max_total_open_notional"):
            if getattr(cfg, key) is not None and len(quotes) > 1:
                raise ConfigError(f"[risk] {key}: the run's instruments quote in {', '.join(quotes)}; a total "
                                  "in one currency needs instruments with one quote currency")
        # the value of lots x mid2 in common units (`engine.risk_nb.half_unit`: a price-quoted
        # instrument's half of one lot at one tick; an inverse contract's half face value,
        # valued at a fixed "mid2" of 2 since its quote value does not move with the price)
        halves = [half_unit(i) for i in self._instruments]
        exponent = min((h.normalize().as_tuple().exponent for h in halves), default=0)
        common = Decimal(1).scaleb(min(int(exponent), 0))
        self._weight = [int(h / common) for h in halves]
        self._priced = [not i.inverse for i in self._instruments]
        venues: dict[str, int] = {}
        self._venue_of = [venues.setdefault(i.venue, len(venues)) for i in self._instruments]
        self._others = [[j for j in range(n) if j != i] for i in range(n)]
        # the per-order limits and the venue minimums as integer bounds (engine.risk_nb)
        self._lim = risk_limits(cfg, self._instruments).tolist()
        self._lim_pos = [-1 if cfg.max_position_notional is None else _floor(cfg.max_position_notional / h)
                         for h in halves]
        self._lim_open = [-1 if cfg.max_open_notional is None else _floor(cfg.max_open_notional / h)
                          for h in halves]
        self._lim_total_pos = (-1 if cfg.max_total_position_notional is None
                               else _floor(cfg.max_total_position_notional / common))
        self._lim_total_open = (-1 if cfg.max_total_open_notional is None
                                else _floor(cfg.max_total_open_notional / common))
        if cfg.max_venue_exposure_pct is not None and cfg.max_total_position_notional is not None:
            self._lim_venue = _floor(cfg.max_total_position_notional * cfg.max_venue_exposure_pct / 100 / common)

    def hold(self, key: str, instrument_index: int, side: int, lots: int) -> None:
        """Count `lots` (>= 0) on `side` of an instrument as exposure under `key` (an order's
        client id, or a contingent order's key), replacing what `key` held; 0 releases it."""
        held = self._held
        old = held.get(key)
        if old is not None and lots > 0 and old == (instrument_index, side, lots):
            return  # unchanged (an acknowledgement leaves the leaves): nothing to move
        if old is not None:
            del held[key]
            i, s, q = old
            if s > 0:
                self._buys[i] -= q
            else:
                self._sells[i] -= q
        if lots > 0:
            self._held[key] = (instrument_index, side, lots)
            if side > 0:
                self._buys[instrument_index] += lots
            else:
                self._sells[instrument_index] += lots

    def held(self, instrument_index: int) -> tuple[int, int]:
        """(buy lots, sell lots) held as exposure on an instrument."""
        return self._buys[instrument_index], self._sells[instrument_index]

    def mid2_now(self, instrument_index: int) -> int:
        """2 x the local mid in ticks now, 0 when a side is empty (remembers it for `mid2`)."""
        bid, bid_qty, ask, ask_qty = self._tops[instrument_index]()
        if bid_qty > 0 and ask_qty > 0:
            self._mid2[instrument_index] = bid + ask
            return bid + ask
        return 0

    def position_lots(self, instrument_index: int) -> int:
        """The signed position in lots of a bound instrument."""
        return self._positions[instrument_index].lots

    def mid2(self, instrument_index: int) -> int:
        """2 x the local mid in ticks (0 = never seen both sides); remembers the last one."""
        bid, bid_qty, ask, ask_qty = self._tops[instrument_index]()
        if bid_qty > 0 and ask_qty > 0:
            self._mid2[instrument_index] = bid + ask
        return self._mid2[instrument_index]

    def check_exposure(self, index: int, side: int, lots: int, price_ticks: int, mid2: int = 0) -> ReasonCode | None:
        """The exposure limits for adding `lots` on `side` of instrument `index` (amend: the
        change in leaves, may be negative). A measure the order does not increase never
        refuses it, so reducing orders pass an over-limit book. Each instrument is valued
        at its local mid now (the last one seen when a side is empty; for the order's own
        instrument without any, its limit price); NO_MARK when there is none. `mid2`: the
        caller's `mid2_now` of the instrument (0: look it up)."""
        if not self._exposure_on or self.bypass:
            return None
        if not self._priced[index]:
            mid2 = 2  # an inverse contract: its face value, at any price (engine.risk_nb.half_unit)
        elif mid2 == 0:
            mid2 = self.mid2(index)
        if mid2 == 0:
            if price_ticks <= 0:
                return _C.NO_MARK
            mid2 = 2 * price_ticks
        buys, sells = self._buys, self._sells
        p, b, s = self._positions[index].lots, buys[index], sells[index]
        # worst case before and after, without builtins (this runs before every submit)
        up, down = p + b, s - p  # |p + b|, |p - s| with their signs
        up, down = (up if up >= 0 else -up), (down if down >= 0 else -down)
        before = up if up > down else down
        if side > 0:
            grown = p + b + lots
            grown = grown if grown >= 0 else -grown
            after = grown if grown > down else down
        else:
            grown = s + lots - p
            grown = grown if grown >= 0 else -grown
            after = up if up > grown else grown
        increases = after > before
        lim = self._lim_pos[index]
        if increases and lim >= 0 and after * mid2 > lim:
            return _C.MAX_POSITION_NOTIONAL
        lim = self._lim_open[index]
        if lots > 0 and lim >= 0 and (b + s + lots) * mid2 > lim:
            return _C.MAX_OPEN_NOTIONAL
        check_total = increases and self._lim_total_pos >= 0
        check_open = lots > 0 and self._lim_total_open >= 0
        if not (check_total or check_open):
            return None
        # one pass over the other instruments for both totals (each valued at its mid once)
        weight, venue_of, positions, tops, mids = self._weight, self._venue_of, self._positions, self._tops, self._mid2
        priced = self._priced
        venue = venue_of[index]
        total = venue_total = after * mid2 * weight[index]
        open_total = (b + s + lots) * mid2 * weight[index]
        for j in self._others[index]:
            pj, bj, sj = positions[j].lots, buys[j], sells[j]
            if pj == 0 and bj == 0 and sj == 0:
                continue
            if priced[j]:
                bid, bid_qty, ask, ask_qty = tops[j]()
                if bid_qty > 0 and ask_qty > 0:
                    mids[j] = bid + ask
                m = mids[j]
                if m == 0:
                    return _C.NO_MARK
            else:
                m = 2
            m *= weight[j]
            up, down = pj + bj, sj - pj
            up, down = (up if up >= 0 else -up), (down if down >= 0 else -down)
            value = (up if up > down else down) * m
            total += value
            if venue_of[j] == venue:
                venue_total += value
            open_total += (bj + sj) * m
        if check_total:
            if total > self._lim_total_pos:
                return _C.MAX_TOTAL_POSITION_NOTIONAL
            if self._lim_venue >= 0 and venue_total > self._lim_venue:
                return _C.MAX_VENUE_EXPOSURE
        if check_open and open_total > self._lim_total_open:
            return _C.MAX_TOTAL_OPEN_NOTIONAL
        return None

    def needs_approval(self, notional: Decimal | None) -> bool:
        """True when an order's notional (quote units) is at or above approval_notional."""
        threshold = self.config.approval_notional
        return threshold is not None and notional is not None and notional >= threshold and not self.bypass

    def check_cancel(self, now: int) -> ReasonCode | None:
        """The cancel-rate limit; counts the cancel when it passes."""
        cap = self.config.max_cancels_per_second
        if cap is None or self.bypass:
            return None
        if _window_count(self._recent_cancels, now, SECOND_NS) >= cap:
            return _C.CANCEL_RATE
        self._recent_cancels.append(now)
        return None

    def refused(self, reason: str) -> None:
        """Count one refusal by reason (summary.json "risk", the report)."""
        self.refusals[reason] = self.refusals.get(reason, 0) + 1

    # -- states ---------------------------------------------------------------------------
    def set_state(self, now: int, state: RiskState, reason: str, *, who: str = "risk", why: str = "") -> bool:
        """Move to `state` (audited); False when already there. HALTED is left only by
        `resume` (set_state(ACTIVE) with a who and why); a weaker state never overrides
        a stronger one unless it is ACTIVE (resume)."""
        order = (_S.ACTIVE, _S.REDUCING, _S.HALTED)
        if state == self.state and (state is _S.ACTIVE or reason == self.state_reason):
            return False
        if state is not _S.ACTIVE and order.index(state) < order.index(self.state):
            return False
        record = {"from": self.state.value, "to": state.value, "reason": reason, "who": who, "why": why, "ts": now}
        self.state, self.state_reason = state, (None if state is _S.ACTIVE else reason)
        self.transitions.append(record)
        self._emit(now, "risk_state", {k: v for k, v in record.items() if k != "ts"})
        return True

    def _emit(self, now: int, action: str, fields: dict[str, Any]) -> None:
        if self.emit is not None:
            self.emit(now, action, fields)

    # -- triggers: PnL, rejects, slippage, ambiguous outcomes ------------------------------
    def on_pnl(self, now: int, pnl: Decimal) -> tuple[str, str] | None:
        """Feed the run's PnL (realized - fees + unrealized at the local mids, quote units).
        Returns (action, trigger) when a loss limit fires: action in ACTIONS, trigger
        'max_daily_loss' or 'max_drawdown'; the caller applies it (the session kills)."""
        cfg = self.config
        fired: tuple[str, str] | None = None
        if cfg.max_daily_loss is not None:
            day = (now - self._reset_ns) // DAY_NS
            if day != self._day:
                self._day, self._day_start_pnl = day, pnl
                if self.state is _S.REDUCING and self.state_reason == "max_daily_loss":
                    self.set_state(now, _S.ACTIVE, "daily_reset", who="risk", why="new trading day")
            self.daily_loss = self._day_start_pnl - pnl
            if self.daily_loss > cfg.max_daily_loss:
                fired = (cfg.on_daily_loss, "max_daily_loss")
        if cfg.max_drawdown is not None:
            self._peak_pnl = pnl if self._peak_pnl is None else max(self._peak_pnl, pnl)
            self.drawdown = self._peak_pnl - pnl
            if self.drawdown > cfg.max_drawdown and fired is None:
                fired = (cfg.on_drawdown, "max_drawdown")
        return fired

    def on_venue_reject(self, now: int) -> tuple[str, str] | None:
        """A venue refused one of our orders; (on_disable, trigger) after N in the window."""
        return self._count(self._rejects, now, self.config.disable_after_rejects, "disable_after_rejects")

    def on_fill_slippage(self, now: int, slippage_bps: Decimal) -> tuple[str, str] | None:
        """A fill `slippage_bps` worse than its arrival mid (adverse > 0)."""
        cfg = self.config
        if cfg.disable_slippage_bps is None or slippage_bps <= cfg.disable_slippage_bps:
            return None
        return self._count(self._slips, now, cfg.disable_after_slippage_fills, "disable_slippage_bps")

    def record_ambiguous(self, now: int) -> tuple[str, str] | None:
        """An ambiguous venue outcome (a command whose result is unknown; the OMS calls this)."""
        return self._count(self._ambiguous, now, self.config.disable_after_ambiguous, "disable_after_ambiguous")

    def _count(self, window: deque[int], now: int, limit: int | None, trigger: str) -> tuple[str, str] | None:
        if limit is None:
            return None
        window.append(now)
        if _window_count(window, now, self._window_ns) >= limit:
            return self.config.on_disable, trigger
        return None

    def summary(self) -> dict[str, Any]:
        """summary.json "risk": the state, refusals by reason, state changes."""
        return {"state": self.state.value, "state_reason": self.state_reason,
                "refusals": dict(sorted(self.refusals.items())),
                "transitions": list(self.transitions)}
