"""Venue reports (engine.types.venue_reports) to and from JSON, and onto the session.

Why here: the live driver records every report it applies (so `tickparity replay` can hand
the same ones back at the same step) and applies it through one function. The session's
typed entry points (`on_command_result`, `on_venue_state`, `on_venue_fill`) are the OMS's;
`apply_report` calls them when the session has them, and otherwise translates a report
into the venue-event row (`ORDER_EVENT_DTYPE`) that `TradingSession.on_order_event` takes,
keeping the minimum state that translation needs (fills seen by trade id, the last status
told). That fallback is the bridge until the OMS merges reports itself.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import numpy as np

from engine.types import Liquidity, OrderEventKind, OrderStatus
from engine.types.orders import ORDER_EVENT_DTYPE, VENUE_REASONS
from engine.types.venue_reports import Command, CommandResult, Outcome, VenueFill, VenueOrderState

_REASON_CODES = {code.value: int(number) for number, code in VENUE_REASONS.items()}
_TYPES = {"command": CommandResult, "fill": VenueFill, "state": VenueOrderState}
_NAMES = {cls: name for name, cls in _TYPES.items()}


def report_json(report: Any) -> dict[str, Any]:
    """A report as a JSON-able dict with its type under "t" (Decimal and enums as text).
    A balances report is the tuple ("balances", venue, {asset: (free, locked)})."""
    if isinstance(report, tuple):
        _, venue, balances = report
        return {"t": "balances", "venue": venue,
                "balances": {a: [str(f), str(u)] for a, (f, u) in sorted(balances.items())}}
    out: dict[str, Any] = {"t": _NAMES[type(report)]}
    for f in dataclasses.fields(report):
        value = getattr(report, f.name)
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, OrderStatus | Liquidity):
            value = int(value)
        elif isinstance(value, Outcome | Command):
            value = value.value
        out[f.name] = value
    return out


def report_from_json(raw: dict[str, Any]) -> Any:
    """The inverse of `report_json`."""
    raw = dict(raw)
    if raw["t"] == "balances":
        return ("balances", raw["venue"], {a: (Decimal(f), Decimal(u)) for a, (f, u) in raw["balances"].items()})
    cls = _TYPES[raw.pop("t")]
    if cls is VenueFill:
        raw["fee"] = Decimal(raw["fee"])
        raw["liquidity"] = Liquidity(raw["liquidity"])
    elif cls is VenueOrderState:
        raw["status"] = OrderStatus(raw["status"])
    else:
        raw["command"] = Command(raw["command"])
        raw["outcome"] = Outcome(raw["outcome"])
    return cls(**raw)


class ReportBridge:
    """Applies reports to a session (see module doc)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._typed = all(hasattr(session, n) for n in ("on_command_result", "on_venue_state", "on_venue_fill"))
        self._fills: set[tuple[str, str]] = set()
        self._told: dict[str, OrderStatus] = {}

    def apply(self, report: Any) -> None:
        session = self.session
        if isinstance(report, tuple):  # ("balances", venue, {asset: (free, locked)})
            if hasattr(session, "on_balances"):
                session.on_balances(report[1], report[2])
            return
        if self._typed:
            if isinstance(report, VenueFill):
                session.on_venue_fill(report)
            elif isinstance(report, VenueOrderState):
                session.on_venue_state(report)
            else:
                session.on_command_result(report)
            return
        order = session.oms.by_client.get(report.client_id)
        if order is None:
            return  # not ours (another session on the account): reconciliation reports it
        if isinstance(report, VenueFill):
            key = (report.client_id, report.trade_id)
            if key in self._fills or not order.is_open:
                return
            self._fills.add(key)
            leaves = max(order.qty - order.filled - report.qty, 0)
            self._event(order, OrderEventKind.FILL, report.exch_ts, price=report.price, qty=report.qty,
                        liquidity=int(report.liquidity), leaves=leaves, filled=order.filled + report.qty)
        elif isinstance(report, VenueOrderState):
            told = self._told.get(report.client_id)
            status = report.status
            if status == told or not order.is_open:
                return
            kinds = {OrderStatus.ACKNOWLEDGED: OrderEventKind.ACK, OrderStatus.CANCELLED: OrderEventKind.CANCELLED,
                     OrderStatus.REJECTED: OrderEventKind.REJECTED, OrderStatus.EXPIRED: OrderEventKind.CANCELLED}
            if status in (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED):
                if order.status == OrderStatus.SUBMITTED:  # a fill's state before its ack
                    self._event(order, OrderEventKind.ACK, report.exch_ts)
                return  # fills are booked from VenueFill records only
            kind = kinds.get(status)
            if kind is None:
                return
            if kind != OrderEventKind.ACK and order.filled < report.filled:
                return  # fills still to come: the end is told once they are booked
            self._told[report.client_id] = status
            if kind == OrderEventKind.ACK and order.status != OrderStatus.SUBMITTED:
                return
            self._event(order, kind, report.exch_ts, leaves=max(order.qty - order.filled, 0))
        elif isinstance(report, CommandResult):
            if report.outcome == Outcome.AMBIGUOUS:
                # never resend: ask the venue what it has under this client id (the answer
                # comes back as a VenueOrderState report, found or not)
                venue = session.venues[order.instrument.venue]
                if hasattr(venue, "request_order_state"):
                    venue.request_order_state(order, session.clock.now())
            elif report.outcome == Outcome.REJECTED:
                if report.command == Command.SUBMIT and order.status == OrderStatus.SUBMITTED:
                    self._told[report.client_id] = OrderStatus.REJECTED
                    self._event(order, OrderEventKind.REJECTED, report.local_ts,
                                reason=_REASON_CODES.get(report.reason or "", 0))
                elif report.command != Command.SUBMIT:
                    self._event(order, OrderEventKind.CANCEL_REJECTED, report.local_ts,
                                leaves=max(order.qty - order.filled, 0))

    def _event(self, order: Any, kind: OrderEventKind, exch_ts: int, *, price: int = 0, qty: int = 0,
               liquidity: int = 0, leaves: int = 0, filled: int | None = None, reason: int = 0) -> None:
        rec = np.zeros(1, dtype=ORDER_EVENT_DTYPE)[0]
        rec["exch_ts"] = exch_ts
        rec["local_ts"] = self.session.clock.now()
        rec["order_no"] = order.order_no
        rec["instrument"] = order.instrument_index
        rec["kind"] = int(kind)
        rec["liquidity"] = liquidity
        rec["reason"] = reason
        rec["price"] = price
        rec["qty"] = qty
        rec["filled"] = order.filled if filled is None else filled
        rec["leaves"] = leaves
        rec["order_price"] = order.price
        self.session.on_order_event(rec)
