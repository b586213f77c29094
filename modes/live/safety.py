"""Reconciliation, warm restart, the dead-man switch and GTD expiry in a live session, as
recorded step actions (so `tickparity replay` re-runs them from the recorded answers).

The driver fetches what the venue says (open orders, balances) through each CcxtVenue's
gateway and records it as one step action `{"c": "reconcile", "at", "open", "bal",
"sides"}`; `apply` (called by `run_step`) runs `engine.reconcile.Reconciler` on it: at
"start" the ledger's balances are seeded from the venue's and orders of an earlier session
of ours are adopted before any new order; later a difference closes the gate (new submits
refused with `fail_closed`). `{"c": "deadman", "why"}` and `{"c": "halt", "why", "cancel"}`
(a strategy exception) halt the strategy and cancel its orders (unless cancel is false). docs/live.md "Reconciliation", "Warm restart", "Dead-man switch".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.reconcile import (
    CONFIRM_AFTER,
    Reconciler,
    check_confirm_after,
    halt_strategy,
    seed_ledger,
)
from modes.live.reports import report_from_json, report_json

ROOT_PREFIX = "tp"  # every session's client ids start with it (a session adds its own stamp)


async def fetch(ccxt_venues: dict[str, Any], at: str, confirm_after: int | None = CONFIRM_AFTER) -> dict[str, Any]:
    """The venue's open orders and balances as a step record (raises the gateway's GiveUp);
    `confirm`: the reconciler's confirm_after (engine.reconcile), recorded so a replay
    counts balance gaps by the session's rule."""
    record: dict[str, Any] = {"c": "reconcile", "at": at, "open": [], "bal": {}, "sides": {},
                              "confirm": confirm_after}
    for name, venue in ccxt_venues.items():
        for inst, state in await venue.gateway.open_orders():
            record["open"].append([inst.id, report_json(state)])
        record["bal"][name] = {a: [str(f), str(lk)] for a, (f, lk) in sorted((await venue.gateway.balances()).items())}
        record["sides"].update(venue.gateway.sides)
    if any(i.contract for v in ccxt_venues.values() for i in v.instruments.values()):
        from modes.live import derivatives  # contracts: positions and funding (docs/derivatives.md)

        record.update(await derivatives.fetch(ccxt_venues))
    return record


def reconciler(session: Any) -> Reconciler:
    rec = getattr(session, "_reconciler", None)
    if rec is None:
        rec = session._reconciler = Reconciler(session, prefix=ROOT_PREFIX)
    return rec


def apply(built: Any, record: dict[str, Any]) -> None:
    """Run one recorded safety action on the session (see module doc)."""
    session = built.session
    if record["c"] in ("deadman", "halt"):  # the dead-man switch; a strategy exception
        built.current[0] = record["c"]
        halt_strategy(session, record["why"], cancel=record.get("cancel", True))
        return
    built.current[0] = "reconcile"
    balances = {v: {a: (Decimal(f), Decimal(lk)) for a, (f, lk) in assets.items()} for v, assets in record["bal"].items()}
    if record["at"] == "start":
        for venue, assets in balances.items():
            seed_ledger(session, venue, assets)
    venue_open = [(session.instruments[i], report_from_json(s)) for i, s in record["open"]]
    from modes.live import derivatives

    if record["at"] == "start" and "pos" in record:  # positions already at the venue: adopt or refuse
        for line in derivatives.adopt_open_positions(session, record):
            from modes.console import warn

            warn(f"adopted the venue's position {line} (docs/derivatives.md)")
    positions = derivatives.apply(session, record)  # funding booked before balances compare
    rec = reconciler(session)
    # a recording from before `confirm` existed: a gap counted only at a settled check
    rec.confirm_after = check_confirm_after(record.get("confirm"), "reconcile record confirm")
    rec.check(record["at"], venue_open, balances, sides=record.get("sides"), positions=positions)
