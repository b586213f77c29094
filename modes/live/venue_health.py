"""Venue health of a testnet/live session: what the venues' connections show, fed to the
router through the engine's one interface (`engine.execution.health`).

Why here: the symptoms live in the ccxt layer (every REST attempt's outcome, through
`venues.ccxt.gateway.Gateway.listeners`; the request budget's 429/418 holds in
`venues.ccxt.ratelimit.WeightLimiter`; market and user stream errors from the driver's watch
loops; the venue's own trading status), and the engine must not import it. `HealthSignals`
turns them into states with fixed rules; the driver takes the changes at each step, journals
them in the step record (`"vh"`) and applies them there through
`TradingSession.set_venue_health` (modes.live.driver.run_step), so `tickparity replay`
applies the same changes at the same steps without any network.

What maps to what (docs/execution.md, "Venue health"):
- a REST attempt that timed out, lost its reply, got a 5xx or could not connect: a failure
  (`HealthSignals.rest`, one breaker for order calls, one for queries); any answer from the
  venue, a coded refusal included, is a success; a breaker on probation is probed every
  PROBE_S with a harmless call of its kind (`Gateway.probe`), so the venue comes back even
  when nothing else is sent there;
- a 429 / 418: "rate_limited" / "down" until the limiter's `blocked_until` (Retry-After);
  an order the gateway refuses locally because the request budget is spent (it would wait
  longer than `max_order_wait_s`): "rate_limited" for that wait;
- a -2010 "Market is closed." refusal, or the status poll (`market_status`, every
  `poll_s`) showing one of our symbols not TRADING: "down" until the poll shows TRADING;
- an error of a market stream (book, trades) or of the user stream: "down" until data
  arrives again (market) or the stream stays quiet without error for `settle_ns`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from engine.execution.health import HealthSignals
from engine.types import Instrument
from venues.ccxt.outcomes import Classified
from venues.ccxt.venue import CcxtVenue

NS = 1_000_000_000
ORDER_METHODS = ("create_order", "cancel_order", "edit_order")  # the "orders" breaker; the rest "queries"
PROBE_S = 0.5  # how often a breaker on probation is probed
POLL_S = 10.0  # the status poll: exchangeInfo weighs 20 of the 6,000 a minute (3.3 % at 10 s)


class LiveVenueHealth:
    """The symptoms of each ccxt venue of a session, as venue health changes.

    `venues`: the session's CcxtVenue by name; `instruments`: the run's instruments in
    session index order (rows carry the index); `clock()`: the driver's local time in ns;
    `poll_s`: the status poll's period (0: no poll; market-closed then clears only when the
    next order is accepted).
    """

    def __init__(self, venues: Mapping[str, CcxtVenue], instruments: Mapping[str, Instrument],
                 clock: Callable[[], int], *, poll_s: float = POLL_S,
                 signals: HealthSignals | None = None) -> None:
        self.venues = dict(venues)
        self.names = list(self.venues)
        self.clock = clock
        self.poll_s = poll_s
        self.signals = signals or HealthSignals()
        self._venue_of = np.array([self.names.index(i.venue) if i.venue in self.venues else -1
                                   for i in instruments.values()], dtype=np.int64)
        for name, venue in self.venues.items():
            venue.gateway.listeners.append(self._listener(name))

    # -- symptoms ---------------------------------------------------------------------
    def _listener(self, venue: str) -> Callable[[str, Classified | None], None]:
        def on_attempt(method: str, verdict: Classified | None) -> None:
            self.rest_outcome(venue, method, verdict)
        return on_attempt

    def rest_outcome(self, venue: str, method: str, verdict: Classified | None) -> None:
        """One REST attempt of `venue` (see module doc for the mapping)."""
        now = self.clock()
        calls = "orders" if method in ORDER_METHODS else "queries"
        if verdict is None:
            self.signals.rest(venue, now, True, calls=calls)
            if method == "create_order":  # an order accepted: the market is open
                self.signals.closed(venue, now, False)
            return
        evidence = verdict.evidence
        if "local" in evidence:  # refused here: the budget is spent, or a 429 / 418 holds, until wait_s
            status = evidence.get("http_status")
            self.signals.throttle(venue, now, now + int(float(evidence.get("wait_s", 0)) * NS), status == 418,
                                  f"HTTP {status}: held" if status else "request budget spent")
            return
        status = evidence.get("http_status")
        if status in (418, 429) or evidence.get("code") in (-1003, -1015):
            limiter = self.venues[venue].gateway.limiter
            held_s = max(limiter.blocked_until - limiter.wall(), verdict.wait_s or 0.0)
            self.signals.throttle(venue, now, now + int(held_s * NS), status == 418,
                                  f"HTTP {status or 429}: {evidence.get('msg') or 'request limit'}")
            self.signals.rest(venue, now, True, calls=calls)  # the venue answered
            return
        if verdict.reason == "market_closed":
            self.signals.closed(venue, now, True, f"market closed: {evidence.get('msg') or 'refused'}")
            self.signals.rest(venue, now, True, calls=calls)
            return
        failed = verdict.executed_unknown or bool(evidence.get("never_sent"))
        why = evidence.get("exception", "error") + (f" HTTP {status}" if status else "")
        self.signals.rest(venue, now, not failed, why, calls=calls)

    def stream_error(self, venue: str, what: str, exc: BaseException) -> None:
        """A watch loop's error: `what` is "user stream (...)", "book ID" or "trades ID"."""
        stream = "user" if what.startswith("user stream") else "market"
        self.signals.stream(venue, stream, self.clock(), False, type(exc).__name__)

    def rows(self, rows: np.ndarray) -> None:
        """Market rows arrived: their venues' market streams deliver again."""
        now = self.clock()
        for k in np.unique(self._venue_of[rows["instrument"].astype(np.intp)]):
            if k >= 0:
                self.signals.stream(self.names[k], "market", now, True)

    async def poll_status(self, venue: str) -> None:
        """Forever (a task): the venue's trading status every `poll_s`; a symbol not TRADING
        (BREAK: cancel-only, HALT) marks the market closed, all TRADING opens it again."""
        gateway = self.venues[venue].gateway
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                status = await gateway.market_status()
            except Exception:  # the failed attempts already reached rest_outcome
                continue
            closed = sorted(f"{symbol} {s}" for symbol, s in status.items() if s != "TRADING")
            self.signals.closed(venue, self.clock(), bool(closed),
                                f"status {', '.join(closed)}" if closed else "")

    async def probe(self, venue: str) -> None:
        """Forever (a task): every PROBE_S, a harmless call of each kind on probation
        (`Gateway.probe`), whose outcome closes the breaker or trips it again."""
        gateway = self.venues[venue].gateway
        while True:
            await asyncio.sleep(PROBE_S)
            for calls in self.signals.half_open(venue, self.clock()):
                await gateway.probe(calls)

    def tasks(self) -> list[Any]:
        """The probe coroutines, and the status-poll ones unless `poll_s` is 0."""
        return [self.probe(v) for v in self.names] + ([self.poll_status(v) for v in self.names]
                                                      if self.poll_s > 0 else [])

    # -- the driver's side ----------------------------------------------------------------
    def changes(self, now: int) -> list[list[str]]:
        """[[venue, state, reason], ...] that changed since the last call (the step record's
        `"vh"`; JSON-friendly lists)."""
        return [list(c) for c in self.signals.changes(self.names, now)]
