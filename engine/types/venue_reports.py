"""What a venue tells the engine about our orders, as typed records (the live-mode contract).

Why records and not the numeric `ORDER_EVENT_DTYPE`: a real venue reports things the
simulated venue's numeric rows do not carry (its order id, the trade id of each fill, the fee
and the asset it was charged in, the raw reply as evidence) and it reports them more than
once and out of order (the REST reply, the user-stream event and a later query all describe
the same order). The engine's OMS merges these records idempotently per client id and
deduplicates fills by trade id; the simulated venue's rows are converted to the same records,
so one merge path serves every mode.

Units: prices in ticks, quantities in lots (the instrument's integer units), times in ns
(`exch_ts` venue time, `local_ts` the engine's clock at receipt), fees as exact Decimals in
`fee_asset`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from engine.types.orders import Liquidity, OrderStatus


class Outcome(StrEnum):
    """The typed outcome of one command (submit, cancel, amend) sent to a venue.

    confirmed: the venue accepted it (its reply or a report proves it);
    rejected: the venue refused it, with evidence (its error code and message);
    ambiguous: we cannot know yet (timeout, 5xx, lost reply, truncated body). The OMS
    resolves an ambiguous command by looking the order up by client id (order, open orders,
    my trades), never by resending it.
    """

    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    AMBIGUOUS = "ambiguous"


class Command(StrEnum):
    SUBMIT = "submit"
    CANCEL = "cancel"
    AMEND = "amend"


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A venue's answer (or the lack of one) to one command about one order."""

    client_id: str
    command: Command
    outcome: Outcome
    local_ts: int
    venue_order_id: str | None = None
    reason: str | None = None  # a code of engine.types.orders.REASONS when rejected
    evidence: dict[str, Any] = field(default_factory=dict)  # venue code, message, HTTP status


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One fill as the venue reports it; `trade_id` makes it unique per instrument."""

    client_id: str
    venue_order_id: str
    trade_id: str
    price: int  # ticks
    qty: int  # lots, this fill
    fee: Decimal  # exact, in fee_asset
    fee_asset: str  # Binance spot: the asset received, or BNB
    liquidity: Liquidity
    exch_ts: int
    local_ts: int
    source: str = "stream"  # "stream" (user data), "rest" (order reply), "query" (myTrades), "sim"


@dataclass(frozen=True, slots=True)
class BookedFill:
    """One fill as the engine books it: built once, where the engine accepts a fill (the
    merge of a `VenueFill` or a simulated venue's FILL row, engine/venue_merge.py
    `_book_fill`; the compiled path's bulk pass, engine/bulk.py; a liquidation or delivery,
    engine/session.py `on_liquidation`), and handed as it is to every listener
    (engine/venue_merge.py `_hand_fill`, `_audit_fill`, `_record_fill`, `_fill_update`): the OMS (the order's filled lots, notional, fees,
    status), the ledger (balances, position, fees), the parent order, the audit log's
    `fill` record, the run directory's fills row and the strategy's `OrderUpdate`. Why one
    record: each listener used to be handed the fill's parts by hand, each converting the
    ticks and lots again.

    Units: `price_ticks` / `lots` the instrument's integer units, `price` / `qty` the same
    as exact Decimals; `fee` exact in `fee_asset` as the venue charged it, `fee_quote` the
    same fee valued in the instrument's quote asset (engine.ledger.Ledger.fee_in_quote);
    `liquidity` "maker" or "taker" ("delivery" for a contract's delivery); `exch_ts` venue
    time, `ts` the engine's clock (ns). `trade_id` and `venue_order_id` are None for a
    fill the engine books itself (a liquidation or delivery: no venue trade); `source`
    "stream" / "rest" / "query" / "sim" as the report's, or "liquidation" / "delivery".
    """

    client_id: str
    venue_order_id: str | None
    trade_id: str | None
    price_ticks: int
    lots: int
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_asset: str
    fee_quote: Decimal
    liquidity: str
    exch_ts: int
    ts: int
    source: str


@dataclass(frozen=True, slots=True)
class VenueLiquidation:
    """The venue closed a contract position itself (Binance: a LIQUIDATION order whose
    client id starts with `autoclose-`). `filled` is the order's cumulative executed
    quantity as this report knows it (the user stream's `z`, or the order's `executedQty`
    from a query): the session books what it has not booked of that order yet, at `price`
    (the last fill's, or the order's average), so the stream and the query never book the
    same lots twice. Not an order of ours: booked as a `liquidation-N` fill."""

    instrument: str  # instrument id
    venue_order_id: str
    side: int  # +1 buy (a short closed), -1 sell (a long closed)
    price: int  # ticks
    filled: int  # lots, cumulative for the venue's order
    fee: Decimal  # of the part this report brings
    exch_ts: int
    local_ts: int
    source: str = "stream"  # "stream" (ORDER_TRADE_UPDATE) or "query" (forceOrders)


@dataclass(frozen=True, slots=True)
class VenueOrderState:
    """The venue's view of one order at `exch_ts` (a reply, an executionReport or a query).

    `filled` is cumulative (lots). A state may arrive before or after the fills it counts:
    the OMS books fills only from `VenueFill` records (deduplicated by trade id) and uses
    `filled` to detect fills it has not seen yet (then it asks for them).
    """

    client_id: str
    venue_order_id: str | None
    status: OrderStatus  # ACKNOWLEDGED, PARTIALLY_FILLED, FILLED, CANCELLED, REJECTED, EXPIRED
    price: int  # ticks (0 for market orders)
    qty: int  # lots, total
    filled: int  # lots, cumulative
    exch_ts: int
    local_ts: int
    reason: str | None = None
    source: str = "stream"  # "stream", "rest", "query", "sim"
    found: bool = True  # False: a lookup by client id found no such order at the venue
