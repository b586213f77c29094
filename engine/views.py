"""Read-only objects handed to strategy callbacks: book, trade and order-update views.

Why views of Decimals: strategies think in prices and quantities; the engine keeps
ticks and lots. A view converts exactly at the edge and never lets a strategy mutate
engine state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

import numpy as np

from engine.types import Instrument, OrderStatus


class Status(StrEnum):
    """Order status as strategies see it; compares equal to plain strings ('filled')."""

    PENDING = "pending"
    SUBMITTED = "submitted"
    ACKNOWLEDGED = "acknowledged"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @classmethod
    def of(cls, status: OrderStatus) -> Status:
        return _STATUS_OF[status]


_STATUS_OF = {s: Status[s.name] for s in OrderStatus}  # a dict lookup: this runs per order update


class BookSource(Protocol):
    """What a venue exposes of its local (latency-delayed) book."""

    def top_of_book(self, instrument_index: int) -> tuple[int, int, int, int]: ...

    def levels(self, instrument_index: int, side: int, n: int) -> tuple[np.ndarray, np.ndarray]: ...


class BookView:
    """The local order book of one instrument, as of `ctx.now`."""

    __slots__ = ("_instrument", "_index", "_source", "_price", "_mid")

    def __init__(self, instrument: Instrument, index: int, source: BookSource,
                 price: Callable[[int], Decimal] | None = None,
                 mid: Callable[[int, int], Decimal] | None = None) -> None:
        """`price(ticks)` / `mid(bid_ticks, ask_ticks)`: the conversions, by default
        `instrument.ticks_to_price` and the price of bid + ask ticks / 2; the session
        passes its grid's remembered ones (the same Decimals, converted once per value:
        a quoting strategy reads the same few prices again and again)."""
        self._instrument = instrument
        self._index = index
        self._source = source
        self._price = instrument.ticks_to_price if price is None else price
        self._mid = mid

    @property
    def instrument(self) -> Instrument:
        """The instrument's spec (read-only: one BookView per instrument serves every callback)."""
        return self._instrument

    def _top(self) -> tuple[int, int, int, int]:
        return self._source.top_of_book(self._index)

    @property
    def best_bid(self) -> Decimal | None:
        px, qty, _, _ = self._source.top_of_book(self._index)
        return self._price(px) if qty > 0 else None

    @property
    def best_ask(self) -> Decimal | None:
        _, _, px, qty = self._source.top_of_book(self._index)
        return self._price(px) if qty > 0 else None

    @property
    def best_bid_qty(self) -> Decimal:
        return self._instrument.lots_to_qty(self._top()[1])

    @property
    def best_ask_qty(self) -> Decimal:
        return self._instrument.lots_to_qty(self._top()[3])

    @property
    def mid(self) -> Decimal | None:
        bid_px, bid_qty, ask_px, ask_qty = self._source.top_of_book(self._index)
        if bid_qty <= 0 or ask_qty <= 0:
            return None
        if self._mid is not None:
            return self._mid(bid_px, ask_px)
        return self._instrument.ticks_to_price(bid_px + ask_px) / 2

    @property
    def spread(self) -> Decimal | None:
        bid_px, bid_qty, ask_px, ask_qty = self._top()
        if bid_qty <= 0 or ask_qty <= 0:
            return None
        return self._price(ask_px - bid_px)

    def bids(self, n: int = 5) -> list[tuple[Decimal, Decimal]]:
        """Best n bid levels as (price, qty), best first."""
        return self._levels(1, n)

    def asks(self, n: int = 5) -> list[tuple[Decimal, Decimal]]:
        """Best n ask levels as (price, qty), best first."""
        return self._levels(-1, n)

    def _levels(self, side: int, n: int) -> list[tuple[Decimal, Decimal]]:
        prices, qtys = self._source.levels(self._index, side, n)
        inst = self._instrument
        return [(inst.ticks_to_price(int(p)), inst.lots_to_qty(int(q))) for p, q in zip(prices, qtys, strict=True)]

    def __repr__(self) -> str:
        return f"BookView({self._instrument.id} bid={self.best_bid} ask={self.best_ask})"


@dataclass(frozen=True, slots=True)
class TradeView:
    """A market trade seen on the local side; `side` is the aggressor ('buy'/'sell')."""

    instrument: str
    side: str
    price: Decimal
    qty: Decimal
    ts: int
    exch_ts: int


class Event(StrEnum):
    """What one order update reports (the order's `status` is its state after it).

    Why both: a refused amend or cancel changes nothing about the order, so its status
    cannot say what happened; FIX answers such a request with an OrderCancelReject
    carrying the order's unchanged status, and `event` plays that message's part.
    """

    REJECTED = "rejected"  # refused on entry: locally, by risk or by the venue
    ACKNOWLEDGED = "acknowledged"
    FILL = "fill"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    AMENDED = "amended"
    CANCEL_REJECTED = "cancel_rejected"  # a cancel the venue refused; the order is unchanged
    AMEND_REJECTED = "amend_rejected"  # an amend the venue refused; the order is unchanged
    PENDING_APPROVAL = "pending_approval"  # held for an operator's approval ([risk] approval_notional)
    TRIGGERED = "triggered"  # an emulated stop / take-profit touched its trigger and released its order


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """What happened to one of our orders; one per venue response or local decision.

    `status` is the order's state after this update; `event` says what happened (a
    refused amend: event 'amend_rejected', the order's unchanged status, and the reason).
    `reason` is a code of `engine.types.orders.REASONS`, or None when there is none.
    """

    client_id: str
    instrument: str
    side: str
    status: Status
    event: Event
    filled_qty: Decimal
    leaves_qty: Decimal
    last_fill_price: Decimal | None
    last_fill_qty: Decimal
    fee: Decimal
    liquidity: str | None
    reason: str | None
    ts: int
    price: Decimal | None
    qty: Decimal
    parent_id: str | None = None
    # a fill's fee as the venue charged it (Binance spot: a buy pays in the base asset it
    # receives); `fee` above is the same fee valued in the quote asset
    fee_charged: Decimal | None = None
    fee_asset: str | None = None


_FINAL = frozenset({Status.FILLED, Status.CANCELLED, Status.REJECTED, Status.EXPIRED})


@dataclass(frozen=True, slots=True)
class OrderView:
    """One order as `ctx.order(client_id)` returns it: a read-only snapshot in Decimals.

    Why a snapshot and not the OMS record: the engine keeps ticks and lots and must stay
    the only writer of order state; like every other `ctx` answer, the strategy gets
    exact prices and quantities it cannot change. Take a new one to see later changes.
    `price` is None for market orders; timestamps are local ns (None until they happen).
    """

    client_id: str
    instrument: str
    side: str  # "buy" | "sell"
    type: str  # "limit" | "market"
    tif: str  # "GTC", "IOC", "FOK", "GTX", "GTD" (market orders: "IOC" or "FOK")
    status: Status
    price: Decimal | None
    qty: Decimal
    filled_qty: Decimal
    leaves_qty: Decimal
    avg_fill_price: Decimal | None
    fees: Decimal
    reason: str | None
    post_only: bool
    reduce_only: bool
    parent_id: str | None
    expire_ns: int | None
    created_ts: int
    ack_ts: int | None
    first_fill_ts: int | None
    last_fill_ts: int | None
    cancel_req_ts: int | None
    done_ts: int | None

    @property
    def is_open(self) -> bool:
        """True until the order is filled, cancelled, rejected or expired."""
        return self.status not in _FINAL
