"""Venue health: the router's input, one interface for every mode.

Why one interface: the router and the algorithms must react the same way to a venue that
stops answering, whether the fault is simulated (a backtest or stress scenario's venue
fault, `venues/sim/faults.py`) or real (a testnet/live session's REST timeouts, a dropped
websocket, a 429). Both end in `TradingSession.set_venue_health(venue, state, reason)`
(`ctx.set_venue_health` for a strategy), which records the state here (`VenueHealth`),
audits a change (`decision` record, action `venue_health`) and tells every running component
(`Component.on_venue_health`: an algorithm cancels its open children on a venue that is no
longer routable and re-routes their quantity once the cancels are confirmed).

The simulated venue knows its fault windows exactly and sets states itself. A live session
only sees symptoms; `HealthSignals` turns them into the same states with fixed, documented
rules (docs/execution.md, "Venue health"). It is pure (time stamps in, states out, no clock
of its own), so the live driver journals the changes it yields and a replay applies the same
changes at the same steps.

States: "up" (routable), "degraded" (routable, flagged in the audit: a venue on probation
after a run of failures), "rate_limited" and "down" (the router sends nothing there and
re-routes open slices).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.errors import ConfigError

#: venue health states, best first; only "up" and "degraded" venues receive new orders
HEALTH_STATES = ("up", "degraded", "rate_limited", "down")
_RANK = {s: i for i, s in enumerate(HEALTH_STATES)}
NS = 1_000_000_000


class VenueHealth:
    """Per-venue health as the session holds it (module docstring).

    Who feeds it: `TradingSession.set_venue_health`, called by a simulated venue fault
    (backtest, stress), by the live driver from `HealthSignals` (paper/testnet/live), or by
    a strategy that judges a feed stale. A run with no such input keeps every venue "up".
    """

    def __init__(self) -> None:
        self._state: dict[str, tuple[str, str, int]] = {}

    def set(self, venue: str, state: str, reason: str, ts: int) -> bool:
        """Record a state; returns True when it changed. Raises ConfigError for an unknown state."""
        if state not in HEALTH_STATES:
            raise ConfigError(f"venue health {state!r} for {venue}: expected one of {HEALTH_STATES}")
        before = self._state.get(venue, ("up", "", 0))[0]
        self._state[venue] = (state, reason, ts)
        return before != state

    def state(self, venue: str) -> str:
        return self._state.get(venue, ("up", "", 0))[0]

    def reason(self, venue: str) -> str:
        return self._state.get(venue, ("up", "", 0))[1]

    def routable(self, venue: str) -> bool:
        return self.state(venue) in ("up", "degraded")


@dataclass
class _Breaker:
    """The circuit breaker of one kind of REST call of one venue (orders, queries)."""

    failures: int = 0  # consecutive failures
    open_until: int | None = None  # open (down) until this time
    probation: bool = False  # half-open: degraded until the next answer
    trips: int = 0  # consecutive trips (the cool-off doubles with each)
    last_trip: int = 0
    last_failure: str = ""


@dataclass
class _Venue:
    breakers: dict[str, _Breaker] = field(default_factory=dict)  # call kind -> breaker
    closed: str = ""  # the venue says its market is closed (maintenance): why
    streams: dict[str, tuple[int, str]] = field(default_factory=dict)  # stream -> (last error ts, why)
    throttle_until: int = 0
    throttle_why: str = ""
    banned: bool = False


@dataclass
class HealthSignals:
    """Turns what a live session observes into venue health states (rules below; times ns).

    Rules, worst state wins:
    - **Banned / rate-limited**: a 418 (IP ban) makes the venue "down", a 429 "rate_limited",
      until the venue's Retry-After has passed (`throttle`).
    - **Market closed**: the venue said its market is closed (a -2010 "Market is closed."
      refusal, or its status endpoint shows a symbol not TRADING): "down" until its status
      endpoint shows TRADING again (`closed`).
    - **Stream lost**: a market or user stream that failed is "down" until data arrives on it
      again or `settle_ns` passes with no new error (ccxt.pro re-subscribes within 0.2 s and a
      connection that still fails raises again at once) (`stream`).
    - **REST failing** (a circuit breaker per kind of call, orders and queries):
      `fail_threshold` consecutive failed calls of a kind (time-outs, lost replies, 5xx,
      refused connections; a refusal with a venue code is an answer, not a failure) make the
      venue "down" for a cool-off of `cooloff_ns`, doubled with each trip in a row up to
      `max_cooloff_ns`; then "degraded" (on probation: routable) until the next answered call
      of that kind ("up", the trip count reset when it stays up a full `max_cooloff_ns`) or
      failed one ("down" again) (`rest`).
    """

    fail_threshold: int = 3
    cooloff_ns: int = 5 * NS
    max_cooloff_ns: int = 60 * NS
    settle_ns: int = 2 * NS
    _venues: dict[str, _Venue] = field(default_factory=dict)
    _reported: dict[str, tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.fail_threshold < 1:
            raise ConfigError(f"venue health fail_threshold={self.fail_threshold}: expected >= 1")
        if not 0 < self.cooloff_ns <= self.max_cooloff_ns:
            raise ConfigError(f"venue health cool-off {self.cooloff_ns} ns / max {self.max_cooloff_ns} ns: "
                              "expected 0 < cooloff <= max")

    def _v(self, venue: str) -> _Venue:
        return self._venues.setdefault(venue, _Venue())

    # -- inputs ---------------------------------------------------------------------------
    def rest(self, venue: str, ts: int, ok: bool, why: str = "", calls: str = "orders") -> None:
        """One REST call's outcome: `ok` = the venue answered (success or a coded refusal).
        `calls` names the breaker ("orders": create/cancel/amend; "queries": reads), so reads
        that still work do not hide order calls that fail (and the reverse)."""
        b = self._v(venue).breakers.setdefault(calls, _Breaker())
        if ok:
            b.failures = 0
            if b.open_until is not None and ts >= b.open_until:
                b.open_until, b.probation = None, False
            elif b.open_until is None:
                b.probation = False
            if b.trips and ts - b.last_trip >= self.max_cooloff_ns and b.open_until is None:
                b.trips = 0
            return
        b.last_failure = why
        if b.open_until is not None and ts < b.open_until:
            return  # already open: calls in flight when it tripped
        b.failures += 1
        if b.probation or b.failures >= self.fail_threshold:
            b.trips += 1
            b.last_trip = ts
            b.open_until = ts + min(self.cooloff_ns << (b.trips - 1), self.max_cooloff_ns)
            b.probation = True
            b.failures = 0

    def closed(self, venue: str, ts: int, closed: bool, why: str = "") -> None:
        """The venue's market is closed (maintenance) or, `closed=False`, trading again."""
        self._v(venue).closed = (why or "market closed") if closed else ""

    def stream(self, venue: str, name: str, ts: int, ok: bool, why: str = "") -> None:
        """A stream (`"market"`, `"user"`) failed (`ok=False`) or delivered data (`ok=True`)."""
        v = self._v(venue)
        if ok:
            v.streams.pop(name, None)
        else:
            v.streams[name] = (ts, why)

    def throttle(self, venue: str, ts: int, until_ns: int, banned: bool, why: str = "") -> None:
        """A 429 (`banned=False`) or 418 (`banned=True`) holding requests until `until_ns`."""
        v = self._v(venue)
        if ts >= v.throttle_until:  # the previous hold is over: a new 429 is no ban
            v.banned = False
        if until_ns > v.throttle_until or (banned and not v.banned and ts < v.throttle_until):
            v.throttle_until = max(until_ns, v.throttle_until)
            v.banned = banned or (v.banned and ts < v.throttle_until)
            v.throttle_why = why or ("IP banned (418)" if v.banned else "429 Too Many Requests")

    # -- outputs ------------------------------------------------------------------------------
    def state(self, venue: str, ts: int) -> tuple[str, str]:
        """(state, reason) of `venue` at `ts` (rules in the class docstring)."""
        v = self._venues.get(venue)
        if v is None:
            return "up", ""
        found: list[tuple[str, str]] = []
        if ts < v.throttle_until:
            found.append(("down" if v.banned else "rate_limited", v.throttle_why))
        if v.closed:
            found.append(("down", v.closed))
        for name, (since, why) in sorted(v.streams.items()):
            if ts - since < self.settle_ns:
                found.append(("down", f"{name} stream lost: {why}" if why else f"{name} stream lost"))
        for calls, b in sorted(v.breakers.items()):
            if b.open_until is not None and ts < b.open_until:
                found.append(("down", f"REST failing ({calls}): {b.last_failure}"))
            elif b.probation:
                found.append(("degraded", f"on probation after REST failures ({calls})"))
        if not found:
            return "up", ""
        return max(found, key=lambda s: _RANK[s[0]])

    def half_open(self, venue: str, ts: int) -> list[str]:
        """The kinds of call (breakers) of `venue` on probation at `ts`: the cool-off is over
        and no call of that kind has been answered since. A live session probes them with a
        harmless call, so a venue nobody sends orders to (a strategy that pauses while its
        venue is not "up") still comes back."""
        v = self._venues.get(venue)
        if v is None:
            return []
        return [calls for calls, b in sorted(v.breakers.items())
                if b.probation and (b.open_until is None or ts >= b.open_until)]

    def changes(self, venues: list[str], ts: int) -> list[tuple[str, str, str]]:
        """(venue, state, reason) for each venue whose state differs from the last one returned
        (every venue starts "up"); what the driver journals and applies at a step."""
        out = []
        for venue in venues:
            state, reason = self.state(venue, ts)
            if self._reported.get(venue, ("up", ""))[0] != state:
                self._reported[venue] = (state, reason)
                out.append((venue, state, reason))
        return out
