"""Venue faults as scenario perturbations: a `[[perturbations]]` table whose kind is one of
the simulated venue's fault kinds is a fault table of the shared vocabulary
(venues/faults.py, the exchange emulator's `[[fault]]` schedule), plus `venue`.

Why the same table: one file must mean the same disaster in a backtest and, later, against
the local exchange emulator (`--via emulator`), so the keys are the emulator's (`after`,
`until`, `count`, `probability`, `endpoint` and the kind's own); `venue` picks the
simulated venue it hits (default every venue of the run).

What a fault also does to the market data (the feed the venue and our process see) is
part of the fault, so a file says "maintenance" once:

- `maintenance`: the halt phase is a gap in the data (the engine is stopped: no book
  changes, no trades), resynchronised by a snapshot when trading resumes (`data_gap`);
- `outage`: the same for the whole outage (the venue's engine is down);
- `ws_disconnect` with stream "market" or "all": our process receives no market data until
  the reconnect, then the backlog (`stale_feed`), while the venue keeps trading.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.errors import ConfigError
from engine.types import Instrument
from scenarios.feed import FeedPerturbation
from scenarios.perturbations import DataGap, StaleFeed
from venues.faults import SIM_KINDS
from venues.sim.faults import DISCONNECT_NS, VenueFault, parse_sim_fault


def _text(ns: int) -> str:
    return f"{ns}ns"


class VenueFaultPerturbation(FeedPerturbation):
    """Base of the venue-fault kinds (one subclass per kind, `fault_kind`)."""

    fault_kind = ""

    def __init__(self, venue: str = "*", **table: Any) -> None:
        if not isinstance(venue, str) or not venue:
            raise ConfigError(f"venue = {venue!r}: expected a venue name of the run or '*'")
        self.venue = venue
        self.fault = parse_sim_fault({"kind": self.fault_kind, **table}, self.fault_kind, venue)
        self.instrument = "*"

    def bind(self, t0: int, instruments: Sequence[Instrument]) -> None:
        venues = sorted({i.venue for i in instruments})
        if self.venue != "*" and self.venue not in venues:
            raise ConfigError(f"{self.fault_kind}: venue {self.venue!r} is not a venue of the run ({venues})")
        self.indices = [k for k, i in enumerate(instruments) if self.venue in ("*", i.venue)]

    def venue_fault(self) -> VenueFault:
        """A fresh copy for one run (a fault counts its firings)."""
        return VenueFault(self.fault.venue, self.fault.spec)

    def feed_effects(self) -> list[FeedPerturbation]:
        """The feed perturbations the fault implies (see module doc), bound to its venue."""
        spec = self.fault.spec
        out: list[FeedPerturbation] = []
        if spec.kind == "maintenance" and spec.params["halt"] > 0:
            start = spec.after_ns + spec.params["duration"]
            out.append(DataGap(at=_text(max(start, 1)), duration=_text(spec.params["halt"])))
        elif spec.kind == "outage":
            out.append(DataGap(at=_text(max(spec.after_ns, 1)), duration=_text(spec.params["duration"])))
        elif spec.kind == "ws_disconnect" and spec.params["stream"] in ("market", "all"):
            end = spec.until_ns if spec.until_ns is not None else spec.after_ns + DISCONNECT_NS
            if end > spec.after_ns:
                out.append(StaleFeed(at=_text(max(spec.after_ns, 1)), duration=_text(end - spec.after_ns)))
        for p in out:
            p.bind = _venue_bind(p, self.venue)  # type: ignore[method-assign]
        return out


def _venue_bind(p: FeedPerturbation, venue: str):
    original = p.bind

    def bind(t0: int, instruments: Sequence[Instrument]) -> None:
        original(t0, instruments)
        p.indices = [k for k, i in enumerate(instruments) if venue in ("*", i.venue)]

    return bind


VENUE_FAULT_KINDS: dict[str, type] = {
    kind: type(f"VenueFault_{kind}", (VenueFaultPerturbation,), {
        "fault_kind": kind,
        "__doc__": f"The venue fault {kind!r} of the shared vocabulary (venues/faults.py).",
        "__module__": __name__,
    })
    for kind in sorted(SIM_KINDS)
}
