"""Venue reports (engine.types.venue_reports) to and from JSON, and onto the session.

Why here: the live driver records every report it applies (so `tickparity replay` can hand
the same ones back at the same step, as the same objects) and applies it through one
function, to the session's typed entry points (`on_command_result`, `on_venue_state`,
`on_venue_fill`, `on_balances`), where the OMS merges them.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from engine.types import Liquidity, OrderStatus
from engine.types.venue_reports import (
    Command,
    CommandResult,
    Outcome,
    VenueFill,
    VenueLiquidation,
    VenueOrderState,
)

_TYPES = {"command": CommandResult, "fill": VenueFill, "state": VenueOrderState, "liquidation": VenueLiquidation}
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
    if cls is VenueLiquidation:
        raw["fee"] = Decimal(raw["fee"])
    elif cls is VenueFill:
        raw["fee"] = Decimal(raw["fee"])
        raw["liquidity"] = Liquidity(raw["liquidity"])
    elif cls is VenueOrderState:
        raw["status"] = OrderStatus(raw["status"])
    else:
        raw["command"] = Command(raw["command"])
        raw["outcome"] = Outcome(raw["outcome"])
    return cls(**raw)


def apply_report(session: Any, report: Any) -> None:
    """Hand one report to the session's entry point for its type (engine/venue_merge.py
    merges them idempotently per client id)."""
    if isinstance(report, tuple):  # ("balances", venue, {asset: (free, locked)})
        session.on_balances(report[1], report[2])
    elif isinstance(report, VenueFill):
        session.on_venue_fill(report)
    elif isinstance(report, VenueLiquidation):  # the venue closed a contract position
        session.on_venue_liquidation(report)
    elif isinstance(report, VenueOrderState):
        session.on_venue_state(report)
    else:
        session.on_command_result(report)
