"""Contingent order specs (what a strategy asks for) and their engine-side records.

Vocabulary (docs/contingent-orders.md): ccxt's unified names where ccxt has one
(``trigger_price`` = ccxt ``triggerPrice``/``stopPrice``, ``trailing_amount`` =
``trailingAmount``, ``trailing_percent`` = ``trailingPercent``, ``stop_loss_price`` /
``take_profit_price`` = ``stopLossPrice`` / ``takeProfitPrice``), NautilusTrader's where
ccxt has none (``display_qty``, ``trigger_type``, OCO / OTO contingency types,
``emulated``, ``released``). Trailing by basis points (``trailing_bps``) is the house
unit; ``trailing_percent`` x 100 is the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from engine.types import Instrument


class Kind(StrEnum):
    """The order types the engine emulates (and the two plain ones a group may hold)."""

    LIMIT = "limit"  # plain: sent to the venue as soon as the leg is active
    MARKET = "market"
    STOP_MARKET = "stop_market"  # ccxt 'stop' / Binance STOP_LOSS: market order once touched
    STOP_LIMIT = "stop_limit"  # ccxt 'stop limit' / Binance STOP_LOSS_LIMIT: limit order once touched
    TRAILING_STOP = "trailing_stop"  # trailing stop-market (Nautilus TRAILING_STOP_MARKET)
    TAKE_PROFIT = "take_profit"  # market-if-touched (Binance TAKE_PROFIT, Nautilus MARKET_IF_TOUCHED)
    TAKE_PROFIT_LIMIT = "take_profit_limit"  # limit-if-touched (Nautilus LIMIT_IF_TOUCHED)
    ICEBERG = "iceberg"  # a limit order shown display_qty at a time, refilled at the back of the queue


TRIGGER_KINDS = frozenset({Kind.STOP_MARKET, Kind.STOP_LIMIT, Kind.TRAILING_STOP, Kind.TAKE_PROFIT,
                           Kind.TAKE_PROFIT_LIMIT})
#: stop-like kinds win a tie against take-profits touched by the same market event
STOP_KINDS = frozenset({Kind.STOP_MARKET, Kind.STOP_LIMIT, Kind.TRAILING_STOP})
LIMIT_KINDS = frozenset({Kind.LIMIT, Kind.STOP_LIMIT, Kind.TAKE_PROFIT_LIMIT, Kind.ICEBERG})


class State(StrEnum):
    """Where an emulated order is (the `contingent` table's `state`)."""

    PENDING = "pending"  # waiting for its parent (OTO child, bracket exit before the entry fills)
    ARMED = "armed"  # trigger order watching its reference price
    WORKING = "working"  # released: its order(s) are at the venue (or on their way)
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


FINAL_STATES = frozenset({State.FILLED, State.CANCELLED, State.REJECTED, State.EXPIRED})


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """One order a contingent group holds (a leg), in Decimals as the strategy writes it.

    `type` is a `Kind` value. `price` is the limit price (limit, stop_limit,
    take_profit_limit, iceberg). `trigger_price` arms stop_market / stop_limit /
    take_profit / take_profit_limit. A trailing_stop takes exactly one of
    `trailing_amount` (price units), `trailing_bps` or `trailing_percent`, and may wait
    for `trailing_trigger_price` (ccxt `trailingTriggerPrice`, Nautilus
    `activation_price`) before it starts trailing. `display_qty`
    is an iceberg's shown size. `trigger_type`: 'last' (last trade, default), 'mid' or
    'bid_ask' (a buy watches the best ask, a sell the best bid).
    """

    instrument: str
    side: str
    qty: Decimal | str
    price: Decimal | str | None = None
    type: str = "limit"
    trigger_price: Decimal | str | None = None
    trigger_type: str = "last"
    trailing_amount: Decimal | str | None = None
    trailing_bps: Decimal | str | None = None
    trailing_percent: Decimal | str | None = None
    trailing_trigger_price: Decimal | str | None = None
    display_qty: Decimal | str | None = None
    tif: str | None = None
    post_only: bool = False
    reduce_only: bool = False
    client_id: str | None = None


@dataclass(slots=True)
class Leg:
    """The engine's record of one emulated order (ticks, lots; reference units per triggers.py)."""

    id: str
    kind: Kind
    instrument: Instrument
    index: int  # the session's instrument index
    side: int
    qty: int  # lots; a bracket exit's qty follows the position it protects
    price: int | None  # ticks
    trigger: int | None  # reference units (None: not a trigger order, or a trailing stop before its first reference)
    trigger_type: str
    trailing_amount: int | None = None  # reference units
    trailing_bps: Decimal | None = None
    activation: int | None = None  # trailing stops: reference at which trailing starts (None: at once)
    activated: bool = True
    display: int | None = None  # lots
    tif: str | None = None
    post_only: bool = False
    reduce_only: bool = False
    group: str | None = None
    role: str = "order"  # order | leg (OCO) | parent | child (OTO) | entry | stop_loss | take_profit
    state: State = State.PENDING
    seq: int = 0  # arming order (ties among stops / among take-profits)
    watermark: int | None = None  # trailing stops: best reference seen since arming
    filled: int = 0
    notional: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    orders: list[str] = field(default_factory=list)  # client ids of the venue orders it released, in order
    live: str | None = None  # the venue order currently working
    cancelling: bool = False  # a cancel of `live` is on its way (the engine or the strategy asked)
    propagate_cancel: bool = False  # once cancelled, the group's rules run (the strategy cancelled this leg)
    reason: str | None = None
    created_ts: int = 0
    armed_ts: int | None = None
    triggered_ts: int | None = None
    trigger_reference: int | None = None  # the reference value that touched (reference units)
    done_ts: int | None = None

    @property
    def is_done(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def is_trigger(self) -> bool:
        return self.kind in TRIGGER_KINDS


@dataclass(slots=True)
class Group:
    """OCO, OTO or bracket: the legs it links and the group-wide quantities."""

    id: str
    kind: str  # "oco" | "oto" | "bracket"
    legs: list[str]
    trigger_on: str = "first_fill"  # OTO: release children on the parent's "first_fill" or "full_fill"
    position: int = 0  # bracket: lots the entry filled minus lots the exits filled (what the exits protect)
    fee_lots: int = 0  # bracket: entry fees charged in the base asset, rounded up to lots (not for sale)
    closing: bool = False  # bracket: an exit has started, the entry's remainder is being cancelled
    created_ts: int = 0
