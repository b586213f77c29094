"""Venue faults in the simulated venue: outages, maintenance, rate-limit storms, rejects with
real venue codes, lost replies, latency spikes and disconnects, in simulated time.

Why here and in Python: faults act on requests and replies, which cross the Python adapter
(`venues.simulated.SimulatedVenue`) anyway; the numba matching core stays as it is. A
request a fault refuses never reaches the core; a reply a fault loses is taken out of the
core's event stream on its way to the session. What the session sees instead is queued here
with its local time and delivered by the backtest loop (`next_ts`, `deliver`):

- a refusal with a real venue code (Binance spot: -2010 "Market is closed." in cancel-only
  and halt, -1003 with HTTP 429 in a rate-limit storm, HTTP 418 during the ban that follows
  when the client does not back off, any code of venues.faults.BINANCE_REJECTS for `reject`)
  is an order event (REJECTED, or CANCEL_REJECTED for a cancel/amend) whose reason is the
  engine's reason code; the code, message and HTTP status are written to the audit log;
- a lost reply, a 5xx or a timeout (`outage`, `http_5xx_*`, `response_lost`, `delay` past
  the client's timeout) is an AMBIGUOUS `CommandResult` (engine.types.venue_reports): the
  OMS resolves it by looking the order up (`request_order_state`), never by resending;
- venue health (`ctx.venue_health`): "down" while the venue is out, in maintenance or
  disconnected, "rate_limited" after a 429, "up" again at the end. The venue's status is
  known as soon as it changes (a live driver learns it from the first timeout, its
  heartbeat or the venue's status endpoint within about a second).

The same adapter hook replays what a recorded session decided because of its venue's
rate-limit hold (`[venues.X] latency` `recorded`, latency.csv `held`: `_recorded_hold`):
the requests refused there are refused here with the session's reason and timing, and the
venue's health changes as the session's did (its `health` lines).

The vocabulary is the emulator's (venues/faults.py); times count from the first replayed
event; the `probability` draws come from a RNG seeded by the run's seed, so a run is
deterministic. Rules and figures: Binance spot API docs ("LIMITS": 429 with Retry-After
until the minute's window resets, repeated violations -> 418 bans of 2 minutes to 3 days;
"Error codes"), ccxt's default client timeout (10 s).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from engine.errors import ConfigError
from engine.types.orders import (
    ORDER_EVENT_DTYPE,
    OrderEventKind,
    OrderStatus,
    ReasonCode,
    RejectReason,
)
from engine.types.venue_reports import Command, CommandResult, Outcome, VenueOrderState
from venues.faults import (
    BINANCE_REJECTS,
    MARKET_CLOSED,
    SIM_KINDS,
    FaultSpec,
    fraction_ppm,
    parse_fault,
)
from venues.sim.budget import REFUSE, WAIT, RequestBudget
from venues.sim.latency import HEALTH_STATES, HELD_REASONS

CLIENT_TIMEOUT_NS = 10_000_000_000  # ccxt's default `timeout` (10,000 ms)
MINUTE_NS = 60_000_000_000  # Binance counts request weight per fixed minute
#: counted 429s tolerated in a hold: one more starts the ban (the request after it is a 418);
#: the emulator's RateLimiter.ban_after default and meaning (tests/venues/test_ban_after.py)
BAN_AFTER = 3
BAN_NS = 120_000_000_000  # the first ban lasts 2 minutes (Binance: 2 minutes to 3 days)
DISCONNECT_NS = 1_000_000_000  # ws_disconnect without `until`: reconnected after 1 s

_REASON_NUMBER = {
    "rate_limited": RejectReason.RATE_LIMITED, "ip_banned": RejectReason.IP_BANNED,
    "market_closed": RejectReason.MARKET_CLOSED, "venue_error": RejectReason.VENUE_ERROR,
    "insufficient_balance": RejectReason.INSUFFICIENT_BALANCE, "invalid_price": RejectReason.INVALID_PRICE,
    "invalid_qty": RejectReason.INVALID_QTY, "unknown_order": RejectReason.UNKNOWN_ORDER,
}
_STATUS = {OrderEventKind.ACK: OrderStatus.ACKNOWLEDGED, OrderEventKind.CANCELLED: OrderStatus.CANCELLED,
           OrderEventKind.REJECTED: OrderStatus.REJECTED, OrderEventKind.EXPIRED: OrderStatus.EXPIRED}
# the core's events that answer a command (a lost reply is the first of these after it)
_REPLIES = {"submit": (OrderEventKind.ACK, OrderEventKind.REJECTED),
            "cancel": (OrderEventKind.CANCELLED, OrderEventKind.CANCEL_REJECTED),
            "amend": (OrderEventKind.AMENDED, OrderEventKind.CANCEL_REJECTED, OrderEventKind.CANCELLED)}


@dataclass
class VenueFault:
    """One fault of a run: the venue it hits ("*" = every venue) and its spec."""

    venue: str
    spec: FaultSpec
    fired: int = 0


def parse_sim_fault(table: dict[str, Any], where: str, venue: str = "*") -> VenueFault:
    """A fault table of the shared vocabulary, checked for what the simulated venue models."""
    return VenueFault(venue, parse_fault(table, where, SIM_KINDS))


@dataclass
class _OrderBook:
    """What the venue knows of one order, for `request_order_state` answers."""

    instrument: int
    price: int
    qty: int
    status: OrderStatus | None = None  # None: the venue never received it
    filled: int = 0
    exch_ts: int = 0
    reason: str | None = None


class SimFaults:
    """The venue faults of one backtest and the answers they owe the session."""

    def __init__(self, faults: Sequence[VenueFault], seed: int) -> None:
        self.faults = list(faults)
        self._rng = random.Random(int(seed))
        self._queue: list[tuple[int, int, str, Any]] = []
        self._seq = 0
        self._session: Any = None
        self._t0 = 0
        self._lost: dict[int, list[tuple[str, int]]] = {}  # order_no -> [(command, deliver-at or -1)]
        self._held: dict[str, list[np.ndarray]] = {}  # venue -> user events held while disconnected
        self._orders: dict[int, _OrderBook] = {}
        self._retry_until: dict[str, int] = {}
        self._violations: dict[str, int] = {}
        self._banned_until: dict[str, int] = {}
        self._told_at: dict[str, int] = {}  # when the client received the venue's 429
        self._venues: Mapping[str, Any] = {}
        # [venues.X] request_budget (venues/sim/budget.py): the session's order-count limiter
        self._budgets: dict[str, RequestBudget] = {}
        self._waiting: dict[int, int] = {}  # order_no -> when its held submit goes out
        self._resending = False
        # the `recorded` latency's requests a venue's rate-limit hold refused in the session
        # (SimVenueConfig.held_requests): venue -> {(ts, kind, turn): (reason, local, round trip)},
        # and per venue the send time last counted and how many of each kind were sent at it
        self._held_rows: dict[str, dict[tuple[int, int, int], tuple[str, bool, int]]] = {}
        self._turns: dict[str, tuple[int, dict[int, int]]] = {}

    # -- set-up ---------------------------------------------------------------------------
    def venue_configs(self, configs: Mapping[str, Any], t0: int) -> dict[str, Any]:
        """The venue configs with the latency spikes of `latency_spike` faults added
        (venues.sim's spike model: extra entry latency by send time, in numba) and the
        windows of `partial_fill_drought` faults (SimVenueConfig.droughts: every passive fill
        the feed drives is cut to `fraction` of its size, at least one lot, in numba)."""
        out = dict(configs)
        for f in self.faults:
            if f.spec.kind == "partial_fill_drought":
                start = t0 + f.spec.after_ns
                row = (start, start + f.spec.params["duration"], fraction_ppm(f.spec.params["fraction"]))
                for name, cfg in out.items():
                    if f.venue in ("*", name):
                        if cfg.droughts:
                            raise ConfigError(f"venue {name}: one partial_fill_drought at a time")
                        out[name] = replace(cfg, droughts=(row,))
                continue
            if f.spec.kind != "latency_spike":
                continue
            start = t0 + f.spec.after_ns
            row = (start, start + f.spec.params["duration"], f.spec.params["extra"])
            for name, cfg in out.items():
                if f.venue in ("*", name):
                    out[name] = replace(cfg, spikes=tuple(cfg.spikes) + (row,))
        return out

    def bind(self, session: Any, t0: int, venues: Mapping[str, Any]) -> None:
        """Attach to the run's session (t0 = the first replayed local time) and schedule
        the health changes of the windowed kinds."""
        self._session, self._t0, self._venues = session, int(t0), venues
        for name, venue in venues.items():
            spec = getattr(getattr(venue, "config", None), "request_budget", None)
            if spec is not None:
                limits, max_wait, phase = spec
                self._budgets[name] = RequestBudget(tuple(limits), int(max_wait), int(phase))
            for ts, state in getattr(getattr(venue, "config", None), "recorded_health", np.zeros((0, 2))).tolist():
                # the session's venue health (latency.csv `health` lines): applied at its times
                self._push(int(ts), "health", (name, HEALTH_STATES[int(state)], "recorded in the session"))
            held = getattr(getattr(venue, "config", None), "held_requests", None)
            if held is not None and len(held):
                self._held_rows[name] = {(int(ts), int(kind), int(turn)): (HELD_REASONS[int(reason) - 1], bool(local),
                                                                           int(rtt))
                                         for ts, kind, turn, reason, local, rtt in held.tolist()}
        for f in self.faults:
            if f.venue != "*" and f.venue not in venues:
                raise ConfigError(f"venue fault on venue {f.venue!r}, which this run does not trade "
                                  f"(venues: {list(venues)})")
            for name in self._names(f.venue):
                for start, end, reason in self._windows(f):
                    self._push(start, "health", (name, "down", reason))
                    self._push(end, "health", (name, "up", f"{reason} over"))
        if any(f.spec.kind in _AMBIGUOUS_KINDS for f in self.faults) and not hasattr(session, "on_command_result"):
            raise ConfigError("venue faults " + ", ".join(sorted({f.spec.kind for f in self.faults} & _AMBIGUOUS_KINDS))
                              + " answer AMBIGUOUS: they need the session's on_command_result (the OMS "
                              "resolution by lookup), which this build does not have")

    def _names(self, venue: str) -> list[str]:
        return [n for n in self._venues if venue in ("*", n)]

    def _windows(self, f: VenueFault) -> list[tuple[int, int, str]]:
        s, t0 = f.spec, self._t0
        start = t0 + s.after_ns
        if s.kind == "maintenance":
            end = start + s.params["duration"] + s.params["halt"]
            return [(start, end, "maintenance")] if end > start else []
        if s.kind == "outage":
            return [(start, start + s.params["duration"], "outage")]
        if s.kind == "ws_disconnect":
            end = t0 + s.until_ns if s.until_ns is not None else start + DISCONNECT_NS
            return [(start, max(end, start + 1), "disconnect")]
        return []

    # -- the loop's side ------------------------------------------------------------------
    def next_ts(self) -> int | None:
        """Local time of the next answer owed to the session (None: nothing queued)."""
        return self._queue[0][0] if self._queue else None

    def deliver(self, now: int) -> None:
        """Hand the session every answer due at or before `now`, in (time, order) order."""
        s = self._session
        while self._queue and self._queue[0][0] <= now:
            ts, _, what, payload = heapq.heappop(self._queue)
            if what == "event":
                self._note_event(payload)
                s.on_order_event(payload)
            elif what == "health":
                venue, state, reason = payload
                s.set_venue_health(venue, state, reason)
                if state == "up" and venue in self._held:
                    for rec in self._held.pop(venue):  # the user stream reconnected: what it missed
                        rec = rec.copy()
                        rec["local_ts"] = ts
                        s.on_order_event(rec)
            elif what == "result":
                s.on_command_result(payload)
            elif what == "state":
                s.on_venue_state(payload)
            elif what == "send":  # a command the request budget held (intercept): it goes out now
                venue, command, order = payload
                self._waiting.pop(order.order_no, None)
                self._resending = True
                try:
                    getattr(self._venues[venue], command)(order, ts)
                finally:
                    self._resending = False

    def on_core_event(self, venue: str, rec: np.ndarray, now: int) -> bool:
        """A core event on its way to the session: False when a fault takes it (a lost
        reply, or a user-stream event while disconnected, held until the reconnect)."""
        no = int(rec["order_no"])
        self._note_event(rec)
        kind = OrderEventKind(int(rec["kind"]))
        lost = self._lost.get(no)
        if lost:
            for k, (command, hold_until) in enumerate(lost):
                if kind in _REPLIES[command]:
                    del lost[k]
                    if hold_until >= 0:  # a delayed reply: late, not lost
                        late = rec.copy()
                        late["local_ts"] = max(hold_until, now)
                        self._push(int(late["local_ts"]), "event", late)
                    return False
        for f in self.faults:
            if f.spec.kind == "ws_disconnect" and f.spec.params["stream"] in ("user", "all") \
                    and venue in self._names(f.venue):
                for start, end, _ in self._windows(f):
                    if start <= now < end:
                        self._held.setdefault(venue, []).append(rec.copy())
                        return False
        return True

    def _note_event(self, rec: np.ndarray) -> None:
        book = self._orders.get(int(rec["order_no"]))
        if book is None:
            return
        kind = OrderEventKind(int(rec["kind"]))
        book.exch_ts = int(rec["exch_ts"])
        if kind == OrderEventKind.FILL:
            book.filled = int(rec["filled"])
            book.status = OrderStatus.FILLED if int(rec["leaves"]) == 0 else OrderStatus.PARTIALLY_FILLED
        elif kind == OrderEventKind.AMENDED:
            book.price, book.qty = int(rec["order_price"]), int(rec["filled"]) + int(rec["leaves"])
        elif kind in _STATUS and not (kind == OrderEventKind.ACK and book.status is not None):
            book.status = _STATUS[kind]

    # -- the venue's side -----------------------------------------------------------------
    def intercept(self, venue: str, command: str, order: Any, ts: int, response_ns: int) -> bool:
        """A command on its way to the core at local time `ts`: True when a fault answers it
        instead (the core never sees it). Records what the venue would know of the order."""
        ts = int(ts)
        if command == "submit" and order.order_no not in self._orders:
            self._orders[order.order_no] = _OrderBook(order.instrument_index, order.price, order.qty)
        if self._budget_holds(venue, command, order, ts):
            return True
        if venue in self._held_rows and self._recorded_hold(venue, command, order, ts):
            return True
        off = ts - self._t0
        banned = self._banned_until.get(venue, -1)
        if ts < banned:
            self._refuse(venue, command, order, ts, response_ns, "ip_banned", -1003,
                         "Way too much request weight used; IP banned until "
                         f"{banned}.", 418, "rate_limit")
            return True
        if ts < self._retry_until.get(venue, -1):  # the window is used up
            # a request sent after the client had the 429 in hand did not back off; more
            # than BAN_AFTER such 429s earn a ban (the emulator's rule, venues/emulator/
            # ratelimit.py): the one that crosses is still a 429, every request after it a 418
            self._violations[venue] = self._violations.get(venue, 0) + (ts >= self._told_at.get(venue, -1))
            if self._violations[venue] > BAN_AFTER:
                self._banned_until[venue] = ts + BAN_NS
                self._violations[venue] = 0
                self._push(ts + response_ns, "health", (venue, "down", "ip banned (418)"))
                self._push(ts + BAN_NS, "health", (venue, "up", "ban over"))
            self._refuse(venue, command, order, ts, response_ns, "rate_limited", -1003,
                         BINANCE_REJECTS[-1003][0], 429, "rate_limit")
            return True
        for f in self.faults:
            if venue not in self._names(f.venue):
                continue
            s = f.spec
            if s.kind == "maintenance":
                phase = self._maintenance_phase(s, off)
                if phase == "halt" or (phase == "cancel-only" and command != "cancel"):
                    self._refuse(venue, command, order, ts, response_ns, "market_closed", *MARKET_CLOSED, 400,
                                 f"maintenance ({phase})")
                    return True
                continue
            if s.kind == "outage":
                if s.after_ns <= off < s.after_ns + s.params["duration"]:
                    reply = s.params["reply"]
                    at = ts + (CLIENT_TIMEOUT_NS if reply == "timeout" else response_ns)
                    self._ambiguous(venue, command, order, ts, at, "outage", {"reply": reply} | (
                        {"status": 503} if reply == "5xx" else {}))
                    return True
                continue
            if s.kind not in _REST or command not in s.commands() or not self._fires(f, off):
                continue
            if s.kind == "reject":
                code = int(s.params["code"])
                reason = BINANCE_REJECTS.get(code, (None, "venue_error"))[1]
                self._refuse(venue, command, order, ts, response_ns, reason, code,
                             str(s.params["msg"]), int(s.params["status"]), "reject")
                return True
            if s.kind == "rate_limit":
                minute_end = self._t0 + (off // MINUTE_NS + 1) * MINUTE_NS
                if s.params.get("retry_after") is not None:  # a hold of that length, not the minute's rest
                    minute_end = ts + int(s.params["retry_after"])
                self._retry_until[venue] = minute_end
                self._told_at[venue] = ts + response_ns
                self._violations[venue] = 0
                self._push(ts + response_ns, "health", (venue, "rate_limited", "429 Too Many Requests"))
                self._push(minute_end, "health", (venue, "up", "rate-limit window reset"))
                self._refuse(venue, command, order, ts, response_ns, "rate_limited", -1003,
                             BINANCE_REJECTS[-1003][0], 429, "rate_limit",
                             retry_after_s=-(-(minute_end - ts) // 1_000_000_000))
                return True
            if s.kind == "http_5xx_before":
                self._ambiguous(venue, command, order, ts, ts + response_ns, s.kind,
                                {"status": int(s.params["status"])})
                return True
            if s.kind == "request_lost":  # never reached the venue; the connection closes unanswered
                self._ambiguous(venue, command, order, ts, ts + int(s.params["delay"]) + response_ns,
                                s.kind, {})
                return True
            # executed, reply lost or late: the core runs it, its reply is taken on the way back
            hold = -1
            if s.kind == "delay":
                delay = int(s.params["delay"])
                if delay < CLIENT_TIMEOUT_NS:
                    hold = ts + delay
                    self._lost.setdefault(order.order_no, []).append((command, hold))
                    self._audit(ts, venue, s.kind, command, order, delay_ns=delay)
                    return False
                at = ts + CLIENT_TIMEOUT_NS
            elif s.kind in ("response_lost", "truncated_body"):  # no reply the client can read
                at = ts + response_ns
            else:  # http_5xx_after
                at = ts + response_ns
            self._lost.setdefault(order.order_no, []).append((command, hold))
            self._ambiguous(venue, command, order, ts, at, s.kind,
                            {"status": int(s.params["status"])} if s.kind == "http_5xx_after" else {},
                            executed=True)
            return False
        if command == "submit":
            self._orders[order.order_no].status = OrderStatus.SUBMITTED  # the venue has it
        return False

    def _budget_holds(self, venue: str, command: str, order: Any, ts: int) -> bool:
        """The request budget (venues/sim/budget.py) on a command at send time `ts`: a new
        order that fits is counted and goes on; one that fits in the next window within
        max_wait is held until then (and any later command of that order behind it, as the
        live gateway runs one order's commands in turn); one that does not is refused
        locally, `request_budget`, the venue's health "rate_limited" until the window ends.
        An amend is counted (Binance's cancel-replace places an order) but never held: one
        that would wait goes out at once, uncounted (the amend's price and quantity do not
        cross this hook; docs/simulated-venue.md "Request budget")."""
        budget = self._budgets.get(venue)
        if budget is None:
            return False
        if self._resending:  # a held command going out now: a held submit is counted here
            if command == "submit":
                budget.book(ts)
            return False
        if order.order_no in self._waiting:  # behind its held submit
            if command != "amend":
                self._push(self._waiting[order.order_no], "send", (venue, command, order))
                return True
            return False
        if command not in ("submit", "amend"):
            return False
        verdict, at = budget.decide(ts)
        if verdict == WAIT and command == "submit":
            self._waiting[order.order_no] = at
            self._audit(ts, venue, "request_budget", command, order, answer="held", until=at)
            self._push(at, "send", (venue, command, order))
            return True
        if verdict == WAIT:
            return False
        if verdict == REFUSE:
            wait_s = round((at - ts) / 1e9, 3)
            self._audit(ts, venue, "request_budget", command, order, answer="rejected", wait_s=wait_s)
            self._push(ts, "result", CommandResult(
                order.client_id, Command(command), Outcome.REJECTED, ts, reason=ReasonCode.REQUEST_BUDGET.value,
                evidence={"local": "the venue's request budget is spent", "wait_s": wait_s}))
            self._push(ts, "health", (venue, "rate_limited", "request budget spent"))
            self._push(at, "health", (venue, "up", "request budget window over"))
            return True
        return False

    def _recorded_hold(self, venue: str, command: str, order: Any, ts: int) -> bool:
        """A request the session's venue held (latency.csv `held`, venues/sim/latency.py
        held_requests): True when the request of this kind sent at `ts` in this turn (the
        n-th of its kind at that time, as the `recorded` model hands out the file's entries)
        was refused in the session because of a venue's 429 / 418. It is refused here with
        the session's reason, reaching the strategy when the session's refusal did (send +
        the recorded time to it), and never reaches the venue's kernel, which counts only
        the other requests of that time (recorded_requests_in_turn leaves these out)."""
        kind = _REQUEST_KINDS[command]
        last = self._turns.get(venue)
        counts = last[1] if last is not None and last[0] == ts else {}
        self._turns[venue] = (ts, counts)
        turn = counts.get(kind, 0)
        counts[kind] = turn + 1
        row = self._held_rows[venue].get((ts, kind, turn))
        if row is None:
            return False
        reason, local, round_trip = row
        at = ts + round_trip
        status = 418 if reason == "ip_banned" else 429
        evidence: dict[str, Any] = {"http_status": status, "recorded": "latency.csv held"}
        if local:  # the session's own refusal, never sent (venues.ccxt.gateway.Gateway.held)
            evidence["local"] = f"HTTP {status}: the venue's hold (recorded in the session)"
        self._audit(ts, venue, "recorded_hold", command, order, answer="rejected", reason=reason, local=local,
                    http_status=status)
        if command == "submit":
            self._orders[order.order_no].status = OrderStatus.REJECTED
            self._orders[order.order_no].reason = reason
        self._push(at, "result", CommandResult(order.client_id, Command(command), Outcome.REJECTED, at,
                                               reason=reason, evidence=evidence))
        return True

    @staticmethod
    def _maintenance_phase(s: FaultSpec, off: int) -> str | None:
        start = s.after_ns
        cancel_only = s.params["duration"]
        halt = s.params["halt"]
        if start <= off < start + cancel_only:
            return "cancel-only"
        if start + cancel_only <= off < start + cancel_only + halt:
            return "halt"
        return None

    def _fires(self, f: VenueFault, off: int) -> bool:
        s = f.spec
        if off < s.after_ns or (s.until_ns is not None and off >= s.until_ns):
            return False
        if s.count != -1 and f.fired >= s.count:
            return False
        if s.probability < 1.0 and self._rng.random() >= s.probability:
            return False
        f.fired += 1
        return True

    def _refuse(self, venue: str, command: str, order: Any, ts: int, response_ns: int, reason: str,
                code: int, msg: str, status: int, kind: str, **extra: Any) -> None:
        """The venue refuses: REJECTED for a new order, CANCEL_REJECTED for a cancel/amend."""
        self._audit(ts, venue, kind, command, order, answer="rejected", reason=reason, code=code, msg=msg,
                    http_status=status, **extra)
        rec = np.zeros(1, dtype=ORDER_EVENT_DTYPE)[0]
        rec["exch_ts"] = ts
        rec["local_ts"] = ts + response_ns
        rec["order_no"] = order.order_no
        rec["instrument"] = order.instrument_index
        rec["kind"] = OrderEventKind.REJECTED if command == "submit" else OrderEventKind.CANCEL_REJECTED
        rec["reason"] = _REASON_NUMBER.get(reason, RejectReason.VENUE_ERROR)
        rec["price"] = order.price
        rec["order_price"] = order.price
        rec["filled"] = order.filled
        rec["leaves"] = 0 if command == "submit" else max(0, order.qty - order.filled)
        if command == "submit":
            self._orders[order.order_no].status = OrderStatus.REJECTED
            self._orders[order.order_no].reason = reason
        self._push(ts + response_ns, "event", rec)

    def _ambiguous(self, venue: str, command: str, order: Any, ts: int, at: int, kind: str,
                   evidence: dict[str, Any], executed: bool = False) -> None:
        if command == "submit" and executed:
            self._orders[order.order_no].status = OrderStatus.SUBMITTED
        self._audit(ts, venue, kind, command, order, answer="ambiguous", executed=executed, **evidence)
        self._push(at, "result", CommandResult(order.client_id, Command(command), Outcome.AMBIGUOUS, at,
                                               reason=None, evidence={"fault": kind, **evidence}))

    def _audit(self, ts: int, venue: str, kind: str, command: str, order: Any, **fields: Any) -> None:
        self._session.audit.write(ts, "fault", venue=venue, kind=kind, command=command,
                                  client_id=order.client_id, **fields)

    def _push(self, ts: int, what: str, payload: Any) -> None:
        heapq.heappush(self._queue, (int(ts), self._seq, what, payload))
        self._seq += 1

    # -- lookups (QueryableVenue.request_order_state) ---------------------------------------
    def order_state(self, order: Any, ts: int, response_ns: int) -> None:
        """Answer a lookup by client id with what the venue knows of the order now; a venue
        that is out (outage, halt, ban) answers nothing the client can use until it is back,
        so the answer comes when the venue is."""
        book = self._orders.get(order.order_no)
        at = self._reachable(order.instrument.venue, int(ts)) + response_ns
        if book is None or book.status is None:
            state = VenueOrderState(order.client_id, None, OrderStatus.REJECTED, order.price, order.qty, 0,
                                    at, at, reason="unknown_order", source="query", found=False)
        else:
            state = VenueOrderState(order.client_id, str(order.order_no),
                                    OrderStatus.ACKNOWLEDGED if book.status == OrderStatus.SUBMITTED else book.status,
                                    book.price, book.qty, book.filled, book.exch_ts or at, at,
                                    reason=book.reason, source="query")
        self._push(at, "state", state)

    def _reachable(self, venue: str, ts: int) -> int:
        """The first time at or after `ts` the venue answers queries."""
        t = max(ts, self._banned_until.get(venue, -1))
        for f in self.faults:
            if venue in self._names(f.venue) and f.spec.kind in ("outage", "maintenance"):
                for start, end, _ in self._windows(f):
                    if f.spec.kind == "maintenance":  # queries work in cancel-only, not in the halt
                        start += f.spec.params["duration"]
                    if start <= t < end:
                        t = end
        return t


_REQUEST_KINDS = {"submit": 1, "cancel": 2, "amend": 3}  # codes.RQ_SUBMIT / RQ_CANCEL / RQ_AMEND
_REST = frozenset({"request_lost", "response_lost", "http_5xx_before", "http_5xx_after", "delay", "truncated_body",
                   "rate_limit", "reject"})
_AMBIGUOUS_KINDS = frozenset({"request_lost", "response_lost", "http_5xx_before", "http_5xx_after", "delay",
                              "truncated_body", "outage"})

