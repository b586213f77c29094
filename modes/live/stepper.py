"""The deterministic heart of paper/testnet/live: one step of the session at a given time.

Why a separate, clock-free object: `tickparity replay` must re-run a recorded session and
get byte-identical orders, fills and ledger. Everything the live driver (modes.live.driver)
does that depends on the outside world — the wall clock, the rows the feed received, the
venue's replies — enters here as arguments of `push` and `step`; the driver records those
arguments (modes.live.recording) and the replay hands the same ones back in the same order.
Nothing here reads a clock or awaits.

The session's clock is a `SimClock` that the stepper moves, as the backtest's driver does:
within a step it advances to each wake-up of the simulated venue's local side (a row's
local time, a response's local time, a timer), never beyond the step's `now`. So a paper
session is literally the backtest's loop run on rows that arrived live.

Market rows go into a push-mode `SimCore` (venues.sim), whose local side is the backtest's
numba book code; in paper mode its exchange side is also the venue our orders go to. When
the core needs a row it has not got (`WakeKind.STARVED`), the step pushes one *heartbeat*
per instrument: a TRADE row with side 0 and qty 0 at local time `now + 1` and exchange time
`now + 1 - feed_ns` (the venue's configured feed latency). It moves nothing in either book
and fills nothing (venues.sim skips side-0 trades); it states that no row earlier than that
will come, which is true of the local side (rows are stamped at receipt) and is the feed
latency assumption on the exchange side. Heartbeats are derived from `now` alone, so a
replay regenerates them; they are never recorded as market data and never reach
`on_trade`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from engine.clock import SimClock
from engine.session import TradingSession
from engine.types import EVENT_DTYPE, EventKind, OrderEventKind

INT64_MAX = np.iinfo(np.int64).max


def heartbeat_rows(n_instruments: int, now: int, feed_ns: np.ndarray) -> np.ndarray:
    """One no-op TRADE row (side 0, qty 0) per instrument at local now+1 (see module doc)."""
    rows = np.zeros(n_instruments, dtype=EVENT_DTYPE)
    rows["instrument"] = np.arange(n_instruments)
    rows["kind"] = EventKind.TRADE
    rows["local_ts"] = now + 1
    rows["exch_ts"] = now + 1 - feed_ns
    return rows


class Stepper:
    """Advance one TradingSession over a push-mode SimCore, step by step (see module doc).

    `apply_report(report)` applies one venue report (testnet/live) to the session;
    `on_wake(kind)` is told which callback is about to run ("on_timer", "on_book", ...)
    so a recorded request can name the decision that made it.
    """

    def __init__(self, session: TradingSession, core: Any, clock: SimClock, writer: Any,
                 feed_ns: np.ndarray, sample_ns: int,
                 apply_report: Callable[[Any], None] | None = None,
                 on_wake: Callable[[str], None] = lambda kind: None,
                 on_round_trip: Callable[[int, int | None, int, str, int | None, str], None] | None = None,
                 contracts: Any = None, on_rows: Callable[[np.ndarray], None] | None = None) -> None:
        from venues.sim import WakeKind

        self.session = session
        self.core = core
        self.clock = clock
        self.writer = writer
        self.feed_ns = np.asarray(feed_ns, dtype=np.int64)
        self.sample_ns = int(sample_ns)
        self.next_sample = clock.now()
        self.apply_report = apply_report
        self.on_wake = on_wake
        self.on_round_trip = on_round_trip  # paper mode: the simulated venue's round trips
        self.WakeKind = WakeKind
        self.last_local = clock.now()
        self.rows_pushed = 0
        self._heartbeat = False  # pushed this step (one per step, at now + 1)
        self.steps = 0
        self._marks: deque[Any] = deque()  # MARK_PRICE rows not applied yet
        # paper mode with contracts: the simulated venue's contract side (marks, funding,
        # liquidations; venues.sim.derivatives.ContractVenue over PushedContractRows), run
        # at its wake-ups as the backtest's driver runs it
        self.contracts = contracts
        # testnet/live: the market rows also go to the strategy's book view
        # (modes.live.own_depth.OwnOrdersHidden: which depth message the local book shows)
        self.on_rows = on_rows

    def push(self, rows: np.ndarray) -> None:
        """Market rows in receipt order (local_ts already >= every earlier row's). Mark
        prices and funding settlements (MARK_PRICE / FUNDING_RATE rows,
        modes.live.derivatives) never reach the matching core: in paper mode they go to the
        simulated venue's contract side (`contracts`); in testnet/live a mark sets the
        ledger's mark when a step reaches its local time and a funding row is only recorded
        (the venue's own payments are booked)."""
        if len(rows) == 0:
            return
        marks = np.isin(rows["kind"], (EventKind.MARK_PRICE, EventKind.FUNDING_RATE))
        if marks.any():
            if self.contracts is not None:
                self.contracts.feed.push(rows[marks])
            else:
                self._marks.extend(r for r in rows[marks] if int(r["kind"]) == EventKind.MARK_PRICE)
            self.rows_pushed += int(marks.sum())
            self.last_local = max(self.last_local, int(rows["local_ts"][-1]))
            rows = rows[~marks]
            if len(rows) == 0:
                return
        self.core.push(rows)
        if self.on_rows is not None:
            self.on_rows(rows)
        self.rows_pushed += len(rows)
        self.last_local = max(self.last_local, int(rows["local_ts"][-1]))

    def step(self, now: int, reports: Iterable[Any] = ()) -> None:
        """Run the session up to local time `now`: the simulated venue's wake-ups (rows,
        responses, timers) and the venue's reports in time order (a report at its local
        receipt time, after everything due before it), then equity sampling.

        Why reports are not simply applied first: a step that runs late (a loaded
        machine) would otherwise move the clock to a report's receipt time before a
        timer that was due earlier, and the timer would decide later than in a backtest
        of the same period (README "Parity")."""
        clock = self.clock
        self.steps += 1
        now = max(int(now), clock.now())
        self._heartbeat = False
        for report in reports:
            at = max(clock.now(), min(now, int(getattr(report, "local_ts", now))))
            self._advance(at, now)
            clock.advance_to(max(clock.now(), at))
            self._apply_marks(clock.now())
            self.on_wake("on_order")
            assert self.apply_report is not None
            self.apply_report(report)
        self._advance(now, now)
        self._apply_marks(now)

    def _apply_marks(self, upto: int) -> None:
        """Set the ledger's mark from the mark-price rows received by local time `upto`
        (testnet/live). Called before each callback at its time, never for the whole step
        up front: a step that runs late holds marks received after a timer that was due
        earlier in it, and that timer must decide on the mark it would have had (as in a
        backtest, and as the step orders reports)."""
        session = self.session
        while self._marks and int(self._marks[0]["local_ts"]) <= upto:
            row = self._marks.popleft()
            inst = list(session.instruments.values())[int(row["instrument"])]
            session.ledger.derivatives.set_mark(inst.id, inst.ticks_to_price(int(row["price"])), int(row["exch_ts"]))

    def _advance(self, limit: int, now: int) -> None:
        """Wake-ups up to local time `limit` (<= the step's `now`, which bounds heartbeats)."""
        session, core, clock, W = self.session, self.core, self.clock, self.WakeKind
        while True:
            t_timer = session.next_timer_ts()
            bound = limit if t_timer is None else min(limit, t_timer)
            bound = min(bound, max(self.next_sample, clock.now()))
            if self.contracts is not None:
                bound = self.contracts.bound(bound)
            # armed contingent orders wake the session when touched, as in a backtest
            wake = core.run_until(bound, session.wake_book, session.wake_trade, session.triggers)
            kind = wake.kind
            if kind == W.STARVED:
                if self._heartbeat:  # the venue side waits for rows beyond now: the next step goes on
                    break
                hb = heartbeat_rows(len(session.instruments), max(now, self.last_local), self.feed_ns)
                core.push(hb)
                self.last_local = int(hb["local_ts"][0])
                self._heartbeat = True
                continue
            if kind == W.END:
                break
            clock.advance_to(max(int(wake.ts), clock.now()))
            self._apply_marks(clock.now())
            if kind == W.ORDER:
                self.on_wake("on_order")
                if self.on_round_trip is not None:
                    self._round_trip(wake.record)
                session.on_order_event(wake.record)
                if int(wake.record["kind"]) == OrderEventKind.FILL:
                    session.sample_equity()
            elif kind == W.BOOK:
                self.on_wake("on_book")
                session.on_book(int(wake.instrument))
            elif kind == W.TRADE:
                rec = wake.record
                if int(rec["side"]) != 0:  # a heartbeat is no trade
                    self.on_wake("on_trade")
                    session.on_trade(int(wake.instrument), int(rec["side"]), int(rec["price"]),
                                     int(rec["qty"]), int(rec["exch_ts"]))
            else:  # BOUND
                t = clock.now()
                if self.contracts is not None:
                    self.contracts.advance(t, session)
                if t >= self.next_sample:
                    self.sample()
                    self.next_sample = t + self.sample_ns
                self.on_wake("on_timer")
                session.fire_timers(t)
                if bound >= limit:
                    break

    def _round_trip(self, rec: Any) -> None:
        """A submit's first answer (ack or reject): send -> venue -> back, in local ns."""
        if int(rec["kind"]) not in (OrderEventKind.ACK, OrderEventKind.REJECTED):
            return
        order = self.session.oms.by_no.get(int(rec["order_no"]))
        if order is not None and order.ack_ts is None:
            self.on_round_trip(order.created_ts, int(rec["exch_ts"]), int(rec["local_ts"]), "submit", None,
                               order.instrument.venue)

    def sample(self) -> None:
        """An equity sample now, and the simulated venue's BBO/trade tape into the run."""
        if self.contracts is not None:
            self.contracts.sample(self.clock.now())
        # as the backtest: no equity sample while a coin wallet (COIN-M) has no price yet
        if self.contracts is None or self.contracts.valued():
            self.session.sample_equity()
        self.drain()

    def drain(self) -> None:
        self.writer.add_bbo(self.core.drain_bbo())
        trades = self.core.drain_trades()
        self.writer.add_trades(trades[trades["side"] != 0])  # heartbeats are no trades
