"""`CcxtVenue`: the QueryableVenue protocol over ccxt async / ccxt.pro (testnet and live).

Why a thin, non-blocking adapter: the session calls `submit`/`cancel`/`amend` synchronously
from a strategy callback; the venue answers over the network. Each call here starts an
asyncio task and returns at once; every answer — the REST reply, the user stream's
executionReports and trades, a lookup — becomes a typed record of
`engine.types.venue_reports` handed to `sink`, which the live driver applies to the session
at its next step (and records, for `tickparity replay`). Commands, lookups, open orders and
balances go through `venues.ccxt.gateway.Gateway`: the venue's request budget
(`ratelimit`), retries of what is safe to resend (`retry`), and the typed outcome of each
failure from the HTTP status, the venue's code and ccxt's exception (`outcomes`; a submit
that may have reached the venue is never resent); resolving an ambiguous outcome is the
OMS's job, through `request_order_state`, never a blind resubmit.

ccxt vocabulary (unified API, https://docs.ccxt.com): `create_order(symbol, type, side,
amount, price, params)` with `newClientOrderId`, `timeInForce` (GTC/IOC/FOK), `postOnly`;
`edit_order` is Binance spot's cancelReplace (the order loses its queue priority, as on the
venue); statuses open/closed/canceled/expired/rejected.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from functools import partial
from typing import Any

import numpy as np

from engine.oms import Order
from engine.types import Instrument, Liquidity, OrderStatus, TimeInForce
from engine.types.venue_reports import (
    Command,
    CommandResult,
    Outcome,
    VenueFill,
    VenueLiquidation,
    VenueOrderState,
)
from venues.ccxt.gateway import Gateway
from venues.ccxt.orders import ExpiryWatch
from venues.ccxt.parse import expired_meaning, venue_amount
from venues.ccxt.ratelimit import WeightLimiter
from venues.ccxt.wire import WireTimes
from venues.sim.latency import HELD_REASONS, LOCAL_SUFFIX

_GTD = TimeInForce.GTD
#: seconds a user-stream watch may wait for a message before the stream's health is checked
#: (docs/live.md "Reconnects"). A subscription can die with no error and no close (a
#: server-side session that expired quietly; ccxt 4.5.90 does not even wake a pending watch
#: on eventStreamTerminated), and a watch with no guard then waits forever while fills go
#: unreported. Silence alone proves nothing (Binance's user stream has no heartbeat of its
#: own, and a resting order with no fill has nothing to say), so a silent stream is asked for
#: evidence first (`CcxtVenue._probe_user_stream`): re-subscribed only when the venue shows a
#: change of our orders the stream did not report.
USER_STREAM_GUARD_S = 5.0
#: while the stream stays silent after a re-subscription, each further one waits twice as
#: long as the last, up to this (s): a persistent difference costs one reconnect and one
#: reconciliation a minute, not one every 5 s
USER_STREAM_GUARD_MAX_S = 60.0
#: s a healthy stream is given to deliver a change the probe saw at the venue before the
#: difference counts as evidence of a dead stream (the stream's message may be on its way:
#: Binance's user stream trails its REST state by milliseconds, rarely more)
USER_STREAM_GRACE_S = 1.0
#: ccxt.pro's subscription key of a Binance user-data stream on its websocket client: the
#: account type (spot: the websocket API's signature subscription; USDⓈ-M / COIN-M: the
#: listenKey stream)
USER_STREAM_TYPES = ("spot", "margin", "linear", "inverse")
#: Binance futures: the client id of the venue's own liquidation orders starts with it
#: (user data stream docs, "Order Update": "autoclose-": liquidation order)
LIQUIDATION_PREFIX = "autoclose-"

_STATUS = {"canceled": OrderStatus.CANCELLED, "expired": OrderStatus.EXPIRED,
           "rejected": OrderStatus.REJECTED}

def order_status(order: dict[str, Any], filled: int) -> OrderStatus:
    """A ccxt unified order's status as the engine's (open + fills = partially filled)."""
    status = order.get("status")
    if status == "open":
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.ACKNOWLEDGED
    if status == "closed":
        return OrderStatus.FILLED
    return _STATUS.get(status, OrderStatus.ACKNOWLEDGED)


class CcxtVenue:
    """One ccxt venue for the engine (see module doc).

    `exchange`: a ccxt.pro exchange instance (markets loaded by `start`); `instruments`: the
    run's instruments on this venue, by session index; `book`: the local book (a push-mode
    SimCore: `local_bbo`, `local_levels`); `sink(report)`: where records go; `clock()`: the
    local time stamped on records (the driver's LiveClock); `on_round_trip(send_ns,
    exch_ns, reply_ns, command, seq, venue)`: each measured order round trip (the latency
    file; seq numbers the venue's commands in the order the session sent them; venue the
    order's venue name), with `wire_ns=` the local time its request was written when `wire`
    (a venues.ccxt.wire.WireTimes on `exchange`) saw it: a refusal's arrival is estimated
    from it; `client_id=` the order's (a refused cancel arrived after the order's last fill).
    `user_stream_guard_s`, `on_user_silent(venue, silent_s, first, evidence)`,
    `expects_user_events()`, `expected_open()`: the user-stream guard (`_user_silent`);
    `expects_user_events` says whether the stream has anything to report (the session's open
    orders on this venue; default: always), since a quiet stream with nothing open and
    nothing in flight is no silence; `expected_open` is {client id: filled lots} of the
    session's orders known to rest on this venue (acknowledged, no lookup outstanding), what
    a probe of the venue's open orders is compared with (None: no view of the session's
    orders, so no evidence can be had and a silence with something to report counts as a
    dead stream, as before the probe).
    """

    def __init__(self, name: str, exchange: Any, instruments: dict[int, Instrument], book: Any,
                 sink: Callable[[Any], None], clock: Callable[[], int], *,
                 maker_fee_bps: Decimal = Decimal(0), taker_fee_bps: Decimal = Decimal(0),
                 on_round_trip: Callable[[int, int | None, int, str, int, str], None] | None = None,
                 on_error: Callable[[str, BaseException], None] | None = None,
                 limiter: WeightLimiter | None = None, wire: WireTimes | None = None,
                 user_stream_guard_s: float = USER_STREAM_GUARD_S,
                 on_user_silent: Callable[[str, float, bool, str], None] | None = None,
                 expects_user_events: Callable[[], bool] | None = None,
                 expected_open: Callable[[], dict[str, int]] | None = None) -> None:
        self.name = name
        self.exchange = exchange
        self.instruments = dict(instruments)
        self._by_symbol = {inst.symbol: (i, inst) for i, inst in self.instruments.items()}
        self.book = book
        self.sink = sink
        self.clock = clock
        self.maker_fee_bps = maker_fee_bps
        self.taker_fee_bps = taker_fee_bps
        self.on_round_trip = on_round_trip or (lambda *a, **k: None)
        self.on_error = on_error or (lambda what, exc: None)
        self.wire = wire
        self.tasks: set[asyncio.Task] = set()
        self._last_command: dict[str, asyncio.Task] = {}  # client id -> its latest command
        self.venue_ids: dict[str, str] = {}  # client id -> venue order id
        # the receipt time of each user-stream message, by (client id, venue time, trade id):
        # its order state and its fill reach us through two ccxt watches (_receipt)
        self._receipts: dict[tuple, int] = {}
        self._receipt_order: deque[tuple] = deque()
        self.in_flight = 0
        self.commands_sent = 0  # the seq of the latest command (on_round_trip)
        # resolve=False: an ambiguous outcome, and a cancel or amend refused as an unknown
        # order (-2011), are the OMS's to resolve (engine/venue_merge.py: request_order_state)
        self.expiry = ExpiryWatch()
        # the user-stream guard (_user_silent): since when the stream counts as silent
        # (monotonic s: its last message, re-subscription or probe that found it consistent),
        # its last message, messages so far (a probe's answer counts only if none came
        # meanwhile), the wait before the next check, whether the stream is in a silence
        # (logged once per silence), the probe running, and the counts
        self.user_stream_guard_s = user_stream_guard_s
        self.on_user_silent = on_user_silent or _log_silence
        self.expects_user_events = expects_user_events or (lambda: True)
        self.expected_open = expected_open
        self._user_last = self._user_message_at = time.monotonic()
        self._user_messages = 0
        self._user_wait = user_stream_guard_s
        self._user_quiet = False
        self._user_probe: asyncio.Task | None = None
        self.user_resubscribes = 0
        self.user_probes = 0  # probes of a silent stream (each a GET openOrders per symbol)
        self.user_quiet_ok = 0  # ... that found the venue agreeing with what the stream said
        # the second evidence of a dead stream (_owed_reports): a command the venue confirmed
        # by REST produces a report on the user stream too (Binance: every accepted order,
        # cancel and cancel-replace is an executionReport). Per client id with a command in
        # flight, when the stream last spoke of it (monotonic s), and per client id whose
        # confirmed command the stream has not told yet, (the confirmation's time, command)
        self._told: dict[str, float] = {}
        self._owed: dict[str, tuple[float, str]] = {}
        self.gateway = Gateway(exchange, {inst.symbol: inst for inst in self.instruments.values()},
                               now=clock, limiter=limiter, resolve=False)

    # -- the Venue protocol ------------------------------------------------------------
    def submit(self, order: Order, ts: int) -> None:
        """Hand the order to ccxt now, synchronously (Gateway.start_submit: the session's
        hot path ends here with no await); a task finishes the command."""
        if not self.in_flight and not self.expects_user_events():
            self._user_last = time.monotonic()  # the stream has something to report from now on
        if order.tif == _GTD:  # sent as GTC; the engine cancels it at expiry
            self.expiry.add(order.client_id, order.gtd_ts)
        first, finish = self.gateway.start_submit(order)
        # a task cancelled before it ran (shutdown) leaves the handed-off call unstarted: closed then
        self._spawn_in_order(order.client_id, self._submit, (order, finish, self._sent(ts)), unstarted=first)

    def cancel(self, order: Order, ts: int) -> None:
        self._spawn_in_order(order.client_id, self._cancel, (order, self._sent(ts)))

    def amend(self, order: Order, price: int, qty: int, ts: int) -> None:
        self._spawn_in_order(order.client_id, self._amend, (order, price, qty, self._sent(ts)))

    def _sent(self, ts: int) -> tuple[int, int]:
        """(the session's time of a command, its seq): what its round trip is recorded with."""
        self.commands_sent += 1
        return int(ts), self.commands_sent

    def top_of_book(self, instrument_index: int) -> tuple[int, int, int, int]:
        return self.book.local_bbo(instrument_index)

    def levels(self, instrument_index: int, side: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self.book.local_levels(instrument_index, side, n)

    # -- QueryableVenue ----------------------------------------------------------------
    def request_order_state(self, order: Order, ts: int) -> None:
        # the venue order ids its amends replaced (Binance cancel-replace), numeric ones: a
        # restart's placeholder for what earlier ones filled names no venue order
        replaced = tuple(v for v in order.replaced if v.isdigit())
        self._spawn(self._lookup(order.instrument, order.client_id, replaced))

    def request_open_orders(self, ts: int) -> None:
        self._spawn(self._open_orders())

    def request_balances(self, ts: int) -> None:
        self._spawn(self._balances())

    def push(self, rows: np.ndarray) -> None:  # market rows go to the local book, not here
        self.book.push(rows)

    # -- async work --------------------------------------------------------------------
    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def _spawn_in_order(self, client_id: str, command: Callable[..., Awaitable[None]], args: tuple,
                        unstarted: Coroutine[Any, Any, Any] | None = None) -> asyncio.Task:
        """Run one order's commands one after another, in the order the session sent them.

        Why: HTTP requests on separate connections may overtake each other, and a cancel
        that reaches Binance before its order's create is refused (-2011 Unknown order)
        while the order then rests; the simulated venue's FIFO latency queue never
        reorders one order's requests, so neither may the live path. Orders are
        independent of each other and still run concurrently. An order's first command
        (every submit) has nothing to wait for and runs as the task itself, with one done
        callback (`_done`): no wrapper coroutine between the submit and ccxt's call."""
        previous = self._last_command.get(client_id)
        if previous is None or previous.done():
            coro = command(*args)
        else:
            coro = _after(previous, command, args)
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        self._last_command[client_id] = task
        task.add_done_callback(partial(self._done, client_id, unstarted))
        return task

    def _done(self, client_id: str, unstarted: Coroutine[Any, Any, Any] | None, task: asyncio.Task) -> None:
        """An order's command task ended: forget it; close its handed-off call if it never ran."""
        self.tasks.discard(task)
        if self._last_command.get(client_id) is task:
            del self._last_command[client_id]
        if unstarted is not None and task.cancelled():
            unstarted.close()

    async def _command(self, command: str, order: Order, call: Awaitable[list[Any]], sent: tuple[int, int]) -> None:
        """Run one command through the gateway and hand its records to the sink.

        `sent`: the session's time of the request (the `ts` of submit/cancel/amend) and its
        seq (several requests of one decision share a time; a backtest takes their
        recorded latencies in this order: venues/sim/latency.py recorded_requests_in_turn), not
        this task's start: the round trip it reports (on_round_trip, the session's
        latency.csv) then holds everything between the decision and the venue, as a
        backtest's request stamped with the decision's time needs (a timer due at 500 ms
        that a loaded step ran at 501.4 ms decided at 500 ms in both; measured from the
        task's start, a backtest's request arrived 1.4 ms + the task's wait too early). A
        venue's refusal is a round trip too (a post-only order that would cross is refused
        at its arrival, which a backtest must reproduce); a refusal of our own (the request
        budget, evidence `local`) never left. A refusal a venue's 429 / 418 hold caused, the
        venue's answer or ours while the hold lasted (`_held`), is recorded with its reason,
        timed to the refusal's record: a backtest's `recorded` latency refuses the same
        request so at the same time (modes/live/recording.py `held`)."""
        sent, seq = sent
        started = time.monotonic()  # a stream report of this command comes after this
        self.in_flight += 1
        try:
            records = await call
        except Exception as exc:  # a bug below the gateway: the OMS looks the order up
            self.on_error(f"{command} {order.client_id}", exc)
            self.sink(CommandResult(order.client_id, Command(command), Outcome.AMBIGUOUS, self.clock(),
                                    evidence={"exception": type(exc).__name__, "message": str(exc)[:500]}))
            return
        finally:
            self.in_flight -= 1
        now = self.clock()
        exch = next((r.exch_ts for r in records if isinstance(r, VenueOrderState) and r.exch_ts), None)
        wire = self.wire.pop(order.client_id, command) if self.wire is not None else None
        for rec in records:
            if isinstance(rec, CommandResult):
                held = _held(rec)
                if held is not None:  # the venue's hold refused it: the backtest refuses it too
                    self.on_round_trip(sent, None, rec.local_ts, command, seq, order.instrument.venue,
                                       client_id=order.client_id, held=held)
                elif rec.outcome == Outcome.CONFIRMED or (rec.outcome == Outcome.REJECTED
                                                          and "local" not in rec.evidence):
                    if wire is None:
                        self.on_round_trip(sent, exch, now, command, seq, order.instrument.venue,
                                           client_id=order.client_id)
                    else:
                        self.on_round_trip(sent, exch, now, command, seq, order.instrument.venue, wire_ns=wire,
                                           client_id=order.client_id)
                if rec.outcome == Outcome.AMBIGUOUS:  # a refusal is an answer, not a venue error
                    self.on_error(f"{command} {order.client_id}", AmbiguousOutcome(rec.evidence))
                if rec.venue_order_id:
                    self.venue_ids[rec.client_id] = rec.venue_order_id
                if rec.outcome == Outcome.CONFIRMED:
                    self._owe_report(rec.client_id, command, started)
            self.sink(rec)
        self._told.pop(order.client_id, None)

    async def _submit(self, order: Order, finish: Callable[[], Awaitable[list[Any]]], sent: tuple[int, int]) -> None:
        await self._command("submit", order, finish(), sent)

    async def _cancel(self, order: Order, sent: tuple[int, int]) -> None:
        self.expiry.discard(order.client_id)
        await self._command("cancel", order, self.gateway.cancel(order), sent)

    async def _amend(self, order: Order, price: int, qty: int, sent: tuple[int, int]) -> None:
        await self._command("amend", order, self.gateway.amend(order, price, qty), sent)

    async def _lookup(self, inst: Instrument, cid: str, replaced: tuple[str, ...] = ()) -> None:
        try:
            records = await self.gateway.lookup_client_id(cid, inst, replaced)
        except Exception as exc:  # retries spent: the OMS asks again on its next check
            self.on_error(f"lookup {cid}", exc)
            return
        for rec in records:
            if isinstance(rec, VenueOrderState) and rec.venue_order_id:
                self.venue_ids[cid] = rec.venue_order_id
            self.sink(rec)

    async def _open_orders(self) -> None:
        try:
            found = await self.gateway.open_orders()
        except Exception as exc:
            self.on_error("open orders", exc)
            return
        for _, state in found:
            self.sink(state)

    async def _balances(self) -> None:
        try:
            balances = await self.gateway.balances()
        except Exception as exc:
            self.on_error("balances", exc)
            return
        self.sink(("balances", self.name, balances))

    def expired(self, now_ns: int) -> list[str]:
        """GTD orders whose deadline passed (Binance spot has no GTD): the driver cancels
        them through the session, so the cancel is audited like any other."""
        return self.expiry.due(now_ns)

    # -- user stream -------------------------------------------------------------------
    async def watch_orders(self) -> None:
        """Forever: executionReports as VenueOrderState records (and their fills); guarded
        against a silently dead stream (`_user_silent`)."""
        await watch_loop(self.exchange.watch_orders, self._on_orders, self._user_error, "user stream (orders)",
                         guard_s=self.user_stream_guard_s, on_silent=self._user_silent)

    async def watch_my_trades(self) -> None:
        """Forever: our trades from the user stream as VenueFill records (the client id is
        the executionReport's `c`, else the venue order id's known client id); guarded as
        watch_orders (one stream: one guard)."""
        await watch_loop(self.exchange.watch_my_trades, self._on_my_trades, self._user_error, "user stream (trades)",
                         guard_s=self.user_stream_guard_s, on_silent=self._user_silent)

    def _user_error(self, what: str, exc: BaseException) -> None:
        """A user-stream watch raised (the socket closed: `ws_disconnect`): the reports the
        stream owed until then were lost with the old connection, never to come, and the
        reconciliation after the error (`on_error`: the driver's "reconnect") recovers
        what they were. Kept, they would be taken for evidence that the new subscription is
        dead at its first quiet guard time (issue #11: a cancel confirmed during a
        reconnect was still "owed" 15 s later)."""
        self._owed.clear()
        self.on_error(what, exc)

    def _user_heard(self) -> None:
        """A user-stream message arrived: the stream lives; a silence (if any) is over."""
        self._user_last = self._user_message_at = time.monotonic()
        self._user_messages += 1
        if self._user_quiet:
            self._user_quiet = False
            self._user_wait = self.user_stream_guard_s

    def _heard_of(self, cid: str) -> None:
        """The stream reported our order `cid`: what a confirmed command of it owed is told
        (`_owe_report`); with a command of it in flight, its REST reply may still come."""
        self._owed.pop(cid, None)
        if cid in self._last_command:
            self._told[cid] = self._user_message_at

    def _owe_report(self, cid: str, command: str, started: float) -> None:
        """The venue confirmed `command` of `cid` by REST: the user stream owes a report of
        it (Binance sends an executionReport for every accepted order, cancel and
        cancel-replace, https://developers.binance.com/docs/binance-spot-api-docs/user-data-stream),
        unless it told one already since the command started (the stream may overtake the
        REST reply: the emulator's `stream_first`)."""
        if self._told.get(cid, -1.0) < started:
            self._owed[cid] = (time.monotonic(), command)

    def _owed_reports(self, now: float) -> str:
        """The evidence of a dead stream that an active session gives (empty if none):
        confirmed commands whose report is still untold `USER_STREAM_GRACE_S` after their
        REST reply. A strategy that cancels and re-quotes every few hundred ms has no order
        resting unchanged for the probe to ask about (`_watched`), and its cancels' lookups
        explain every fill the stream hid: only the reports the stream owes show it dead."""
        late = sorted((at, cid, command) for cid, (at, command) in self._owed.items()
                      if now - at >= USER_STREAM_GRACE_S)
        if not late:
            return ""
        at, cid, command = late[0]
        return (f"{len(late)} command(s) the venue confirmed were never reported on the stream "
                f"({command} {cid} {now - at:.1f} s ago)")

    def _watched(self) -> dict[str, int]:
        """{client id: filled lots} of our orders resting on this venue whose changes only
        the stream would tell (`expected_open`, less orders with a command in flight: its
        REST reply tells those)."""
        if self.expected_open is None:
            return {}
        pending = self._last_command
        return {cid: filled for cid, filled in self.expected_open().items()
                if cid not in pending or pending[cid].done()}

    def _user_silent(self) -> None:
        """A user-stream watch got nothing for `user_stream_guard_s`. Silence is no evidence:
        Binance's user stream has no heartbeat of its own (ccxt.pro answers the socket's
        pings, which a subscription that died quietly still gets answered), and a stream
        with nothing to report says nothing. So when the whole stream (both watches) has
        been silent that long while our orders rest on the venue, the venue is asked
        (`_probe_user_stream`: its open orders, one cheap GET per symbol); only a change the
        venue shows and the stream never told is evidence that it is dead. With nothing of
        ours resting, nothing in flight, or a 429 / 418 holding every request, there is
        nothing to ask: the silence clock restarts. Without `expected_open` (no view of the
        session's orders) a silence with something to report counts as dead (`_resubscribe`).
        An active session has a second, cheaper evidence, checked first: commands the venue
        confirmed by REST whose report the stream still owes after the grace
        (`_owed_reports`)."""
        now = time.monotonic()
        owed = self._owed_reports(now)
        if owed:
            # the evidence is there; only the silence's length is awaited. Not restarted
            # below: the other watch's guard expiring first (or nothing resting to probe)
            # pushed the re-subscription a whole guard time later (issue #11: 10 s, not 5)
            if now - self._user_last >= self._user_wait * 0.99:
                self._resubscribe(now, owed)
            return
        if self.expected_open is None:
            if not self.in_flight and not self.expects_user_events():
                self._user_last = now  # nothing open, nothing in flight: a quiet stream is no silence
                return
        elif not self._watched() or self.gateway.held_s() > 0:
            self._user_last = now  # nothing the stream owes us, or the venue may not be asked now
            return
        silent = now - self._user_last
        if silent < self._user_wait * 0.99:  # the other watch heard something, or already checked
            return
        if self.expected_open is None:
            self._resubscribe(now, "")
        elif self._user_probe is None or self._user_probe.done():
            self._user_probe = self._spawn(self._probe_user_stream())

    async def _probe_user_stream(self) -> None:
        """Is a silent stream healthy? Ask the venue for our open orders and compare them with
        what the session has heard (`_watched`): every order it believes resting must still
        rest, filled no more than it knows. Agreement (or any stream message meanwhile):
        the stream is quiet, not lost; nothing is said and the next check comes
        `user_stream_guard_s` later. A difference is given USER_STREAM_GRACE_S for the stream
        to deliver it (its message may be on the way, or already heard and not yet applied);
        still untold, the stream is dead: `_resubscribe`. A probe the venue does not answer
        is no evidence either way (its failure reaches venue health through the gateway)."""
        heard = self._user_messages
        self.user_probes += 1
        try:
            found = await self.gateway.open_orders()
        except Exception as exc:  # no answer: no evidence; asked again after another guard time
            self.on_error("probe of the user stream (open orders)", exc)
            self._user_last = time.monotonic()
            return
        untold = self._untold(found)
        if untold and self._user_messages == heard:
            await asyncio.sleep(USER_STREAM_GRACE_S)
            untold = self._untold(found)  # against the session's view now
        if not untold or self._user_messages != heard:
            self.user_quiet_ok += 1
            self._user_last = time.monotonic()
            return
        self._resubscribe(time.monotonic(), "the venue shows " + "; ".join(untold[:3])
                          + (f" (+{len(untold) - 3} more)" if len(untold) > 3 else ""))

    def _untold(self, found: list[tuple[Instrument, VenueOrderState]]) -> list[str]:
        """What the venue's open orders (`found`) show of our resting orders that the session
        has not heard: an order no longer open, or filled further."""
        at_venue = {state.client_id: state.filled for _, state in found}
        untold = []
        for cid, filled in self._watched().items():
            if cid not in at_venue:
                untold.append(f"order {cid} no longer open")
            elif at_venue[cid] > filled:
                untold.append(f"order {cid} filled {at_venue[cid]} lots, {filled} heard")
        return untold

    def _resubscribe(self, now: float, evidence: str) -> None:
        """The stream is taken for dead: its websocket client is dropped
        (`drop_user_stream`) and the next watch connects and subscribes afresh; further
        re-subscriptions within one silence wait twice as long each (up to
        USER_STREAM_GUARD_MAX_S). Then `on_user_silent(venue, silent seconds, first,
        evidence)`: the driver reconciles (events lost in the silence are recovered from
        REST) and logs the first firing of a silence only."""
        silent = now - self._user_message_at
        first = not self._user_quiet
        self._user_quiet = True
        self._user_last = now
        self._user_wait = min(self._user_wait * 2, USER_STREAM_GUARD_MAX_S)
        self.user_resubscribes += 1
        self._owed.clear()  # the reconciliation that follows recovers what they were
        drop_user_stream(self.exchange, f"{self.name}: user stream silent for {silent:.1f} s")
        self.on_user_silent(self.name, silent, first, evidence)

    def _on_orders(self, orders: list[dict[str, Any]]) -> None:
        self._user_heard()
        now = self.clock()
        for o in orders:
            entry = self._by_symbol.get(o.get("symbol"))
            if entry is None:
                continue
            cid = str(o.get("clientOrderId"))
            if cid.startswith(LIQUIDATION_PREFIX):  # the venue's order, not ours
                self._liquidation_from_order(entry[1], o, now)
            else:
                self._heard_of(cid)
                at = self._receipt(cid, o.get("lastUpdateTimestamp") or o.get("timestamp"), o.get("info"), now)
                self._order_records(entry[1], o, at, "stream", cid)

    def _on_my_trades(self, trades: list[dict[str, Any]]) -> None:
        self._user_heard()
        now = self.clock()
        by_venue_id = {v: c for c, v in self.venue_ids.items()}
        for t in trades:
            entry = self._by_symbol.get(t.get("symbol"))
            info = t.get("info") or {}
            oid = str(t.get("order"))
            cid = (info.get("c") if isinstance(info, dict) else None) or by_venue_id.get(oid)
            if cid and str(cid).startswith(LIQUIDATION_PREFIX):
                continue  # the venue's liquidation: booked from its order update (_on_orders)
            if entry is not None and cid:
                self._heard_of(str(cid))
                at = self._receipt(str(cid), t.get("timestamp"), info, now)
                self._fill_record(entry[1], t, str(cid), oid, at, "stream")

    #: user-stream messages whose receipt time is kept for the other watch (_receipt)
    RECEIPTS_KEPT = 1024

    def _receipt(self, cid: str, venue_ts: Any, info: Any, now: int) -> int:
        """The local receipt time (ns) of the user-stream message behind a record: the first
        stamp taken of it. One executionReport reaches us twice, as an order (watch_orders)
        and as a trade (watch_my_trades), each resolved in its own task; between the two the
        loop may run a whole session step. Stamped apart, the order state's receipt was 349
        µs after the fill's, the recorded response leg (report_latency.csv, order states)
        was that much long, and a backtest delivered the fill after a timer the session had
        seen it before (bench/README.md "Parity", session 10). A message is known by its
        order's client id, venue time and trade id (executionReport `t`; -1 or absent for
        an update without a trade)."""
        key = (cid, venue_ts, info.get("t") if isinstance(info, dict) else None)
        first = self._receipts.get(key)
        if first is not None:
            return min(first, now)
        self._receipts[key] = now
        self._receipt_order.append(key)
        if len(self._receipt_order) > self.RECEIPTS_KEPT:
            self._receipts.pop(self._receipt_order.popleft(), None)
        return now

    def _liquidation_from_order(self, inst: Instrument, o: dict[str, Any], now: int) -> None:
        """A Binance futures ORDER_TRADE_UPDATE of the venue's LIQUIDATION order: its fill
        (`x` TRADE: price `L`, cumulative quantity `z`, fee `n`) as a VenueLiquidation (the
        session books the lots of that order it has not booked yet)."""
        info = o.get("info") or {}
        if not isinstance(info, dict) or info.get("x") != "TRADE":
            return
        self.sink(VenueLiquidation(
            instrument=inst.id, venue_order_id=str(o.get("id")), side=1 if o.get("side") == "buy" else -1,
            price=inst.price_to_ticks(Decimal(str(info["L"]))), filled=inst.qty_to_lots(Decimal(str(info["z"]))),
            fee=venue_amount(info.get("n") or 0), exch_ts=int(info.get("T") or 0) * self.gateway.unit_ns, local_ts=now,
            source="stream"))

    def _order_records(self, inst: Instrument, o: dict[str, Any], now: int, source: str, cid: str) -> None:
        """The fills an order reply/report carries, then its state (fills first: the OMS
        books fills only from fill records and a state may close the order)."""
        oid = str(o.get("id"))
        for t in o.get("trades") or ():
            self._fill_record(inst, t, cid, oid, now, source)
        self.sink(self._state(inst, o, now, source, cid))

    def _fill_record(self, inst: Instrument, t: dict[str, Any], cid: str, oid: str, now: int, source: str) -> None:
        fee = t.get("fee") or {}
        if t.get("id") is None:
            return  # a fill without a trade id cannot be deduplicated: the query finds it
        self.sink(VenueFill(
            client_id=cid, venue_order_id=oid, trade_id=str(t["id"]),
            price=inst.price_to_ticks(Decimal(repr(float(t["price"])))),
            qty=inst.qty_to_lots(Decimal(repr(float(t["amount"])))),
            fee=venue_amount(repr(float(fee.get("cost") or 0))), fee_asset=str(fee.get("currency") or inst.quote),
            liquidity=Liquidity.MAKER if t.get("takerOrMaker") == "maker" else Liquidity.TAKER,
            exch_ts=int(t.get("timestamp") or 0) * self.gateway.unit_ns, local_ts=now, source=source))

    def _state(self, inst: Instrument, o: dict[str, Any], now: int, source: str, cid: str) -> VenueOrderState:
        filled = inst.qty_to_lots(Decimal(repr(float(o.get("filled") or 0))))
        # ccxt's safe_order fills a market order's empty price with its average fill price
        # (off the tick grid after fills at several levels): a market order has no price
        price = None if o.get("type") == "market" else o.get("price")
        status, reason = order_status(o, filled), None
        if status is OrderStatus.EXPIRED:  # an IOC / market remainder, or self-trade prevention
            info = o.get("info") if isinstance(o.get("info"), dict) else {}
            status, reason = expired_meaning(str(info.get("X") or info.get("status") or "").upper(),
                                             o.get("timeInForce"), o.get("type"))
        return VenueOrderState(
            client_id=cid, venue_order_id=None if o.get("id") is None else str(o["id"]),
            status=status, reason=reason,
            price=inst.price_to_ticks(Decimal(repr(float(price)))) if price else 0,
            qty=inst.qty_to_lots(Decimal(repr(float(o.get("amount") or 0)))), filled=filled,
            exch_ts=int(o.get("lastUpdateTimestamp") or o.get("timestamp") or 0) * self.gateway.unit_ns,
            local_ts=now, source=source)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class UserStreamSilent(Exception):
    """Why a user-stream client was dropped by the guard (`drop_user_stream`): a pending
    watch of that stream ends with it and simply watches again (not a stream error)."""


def drop_user_stream(exchange: Any, why: str) -> int:
    """Drop the ccxt.pro websocket client(s) carrying `exchange`'s user-data stream (those
    holding a USER_STREAM_TYPES subscription), as ccxt drops a client after a connection
    error: its pending watches are rejected with UserStreamSilent(why), the client is
    forgotten and its socket closed, so the next watch_orders / watch_my_trades connects and
    subscribes afresh (the spot websocket API's signature subscription, or the futures
    listenKey stream). Market-data clients are left alone. Returns the clients dropped."""
    error = UserStreamSilent(why)
    dropped = 0
    for client in list((getattr(exchange, "clients", None) or {}).values()):
        subscriptions = getattr(client, "subscriptions", None) or {}
        if any(key in subscriptions for key in USER_STREAM_TYPES):
            client.on_error(error)
            dropped += 1
    return dropped


def _log_silence(venue: str, silent_s: float, first: bool, evidence: str = "") -> None:
    """The default `on_user_silent`: one warning per silence (the first re-subscription)."""
    if first:
        from venues.connection_resets import log

        log.warning("%s: user stream silent for %.1f s%s: re-subscribed (reconcile with the venue to recover "
                    "what it missed)", venue, silent_s, f" while {evidence}" if evidence else "")


async def watch_loop(watch: Callable[[], Awaitable[Any]], handle: Callable[[Any], None],
                     on_error: Callable[[str, BaseException], None], what: str, pause_s: float = 0.2, *,
                     guard_s: float | None = None, on_silent: Callable[[], None] | None = None) -> None:
    """Forever: `handle(await watch())`. A ccxt error (socket closed, checksum gap, a
    terminated user stream) is reported through `on_error`; the next watch reconnects and
    resubscribes (ccxt.pro does both, with a fresh book snapshot) after `pause_s`.

    `guard_s` (seconds; the user stream: USER_STREAM_GUARD_S): a watch that gets nothing for
    that long is given up (asyncio.timeout around it) and `on_silent()` called, which may
    re-subscribe (CcxtVenue._user_silent); then the loop watches again. A watch ended by
    the guard's own re-subscription (UserStreamSilent) watches again at once, no error."""
    import ccxt

    while True:
        try:
            if guard_s is None:
                got = await watch()
            else:
                async with asyncio.timeout(guard_s):
                    got = await watch()
        except asyncio.CancelledError:
            raise
        except TimeoutError:  # the guard expired: nothing came for guard_s
            if guard_s is None:
                raise
            if on_silent is not None:
                on_silent()
            continue
        except UserStreamSilent:
            continue
        except ccxt.BaseError as exc:
            on_error(what, exc)
            await asyncio.sleep(pause_s)
            continue
        handle(got)


def _info(reply: dict[str, Any]) -> Any:
    """The raw venue payload of a ccxt reply (kept as evidence in the audit log)."""
    return reply.get("info")


def _held(result: CommandResult) -> str | None:
    """latency.csv's `held` of a command's outcome (modes/live/recording.py): the reason of a
    refusal the venue's rate limit caused (`rate_limited`: a 429 or Binance's -1003 / -1015;
    `ip_banned`: a 418), with `-local` when the gateway refused it before sending (evidence
    `local`: a 429's or 418's hold outlasted what an order may wait); None otherwise (the
    request budget's own local refusal, `request_budget`, is `[venues.X] request_budget`'s
    to reproduce)."""
    if result.outcome != Outcome.REJECTED or result.reason not in HELD_REASONS:
        return None
    return result.reason + (LOCAL_SUFFIX if "local" in result.evidence else "")


async def _after(previous: asyncio.Task, command: Callable[..., Awaitable[None]], args: tuple) -> None:
    """`command(*args)` once the order's previous command has ended (its own outcome is
    reported by itself)."""
    if not previous.done():
        await asyncio.wait([previous])
    await command(*args)


class AmbiguousOutcome(Exception):
    """An order command whose outcome is unknown (no answer, a 5xx, a body without the
    order), as `on_error` reports it: summary.json `errors` shows `plain` exceptions by
    their message alone, a sentence for the user (`ambiguous_text`), not a class name."""

    plain = True

    def __init__(self, evidence: dict[str, Any]) -> None:
        super().__init__(ambiguous_text(evidence))


def ambiguous_text(evidence: dict[str, Any]) -> str:
    """What an ambiguous outcome's evidence (venues/ccxt/outcomes.py classify) means, in
    words: `ambiguous (ccxt ExchangeNotAvailable, HTTP 503, venue code -1007 "Timeout
    waiting..."): outcome unknown, the order is looked up by client id` (what the OMS
    then does: engine/venue_merge.py). Keys it does not know are kept as key=value."""
    return f"ambiguous ({_evidence_words(evidence)}): outcome unknown, the order is looked up by client id"


def _evidence_words(evidence: dict[str, Any]) -> str:
    words: list[str] = []
    for key, value in evidence.items():
        if key == "exception":
            words.append(f"ccxt {value}")
        elif key == "http_status":
            words.append(f"HTTP {value}")
        elif key == "code":
            words.append(f"venue code {value}")
        elif key == "msg":
            words.append(json.dumps(str(value)[:120]))
        elif key == "cancel_code":
            words.append(f"cancel code {value}")
        elif key == "transport":
            words.append(f"transport: {value}")
        elif key == "reply":
            words.append(f"reply: {value}")
        elif key == "earlier" and isinstance(value, dict):
            words.append(f"after an earlier attempt of unknown outcome ({_evidence_words(value)})")
        else:
            words.append(f"{key}={value}")
    return ", ".join(words) or "no evidence"
