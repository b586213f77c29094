"""Commands and lookups over an async ccxt client, surviving the venue's real faults.

Each method makes the ccxt call(s) with the request budget (`ratelimit.WeightLimiter`),
retries only what `outcomes.classify` says is safe to resend (`retry.Backoff`), and returns
the typed records of `engine.types.venue_reports` for the session's entry points
(`on_command_result`, `on_venue_state`, `on_venue_fill`, `on_balances`). It never decides
an order's fate from a guess: a submit whose reply was lost returns an AMBIGUOUS
CommandResult and, with `resolve=True` (default), the lookup by client id that settles it
(the OMS may look again; lookups are idempotent).

Why async: the session's event loop must never block on the network (ccxt.pro /
ccxt.async_support clients; `exchange.close()` is the caller's).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.oms import Order
from engine.types import Instrument
from engine.types.orders import ReasonCode
from engine.types.venue_reports import Command, CommandResult, Outcome, VenueFill, VenueOrderState
from venues.ccxt import parse
from venues.ccxt.http import ResponseTap
from venues.ccxt.orders import OrderMapping, amend_request
from venues.ccxt.outcomes import Classified, ambiguous_reply, classify
from venues.ccxt.ratelimit import WeightLimiter
from venues.ccxt.retry import Backoff
from venues.ccxt.timeunit import unit_ns

Record = CommandResult | VenueOrderState | VenueFill
_ENDPOINTS = {
    "create_order": ("POST", "/api/v3/order"),
    "cancel_order": ("DELETE", "/api/v3/order"),
    "edit_order": ("POST", "/api/v3/order/cancelReplace"),
    "fetch_order": ("GET", "/api/v3/order"),
    "fetch_my_trades": ("GET", "/api/v3/myTrades"),
    "fetch_balance": ("GET", "/api/v3/account"),
    "fetch_open_orders": ("GET", "/api/v3/openOrders"),
    "public_get_exchangeinfo": ("GET", "/api/v3/exchangeInfo"),
    "public_get_time": ("GET", "/api/v3/time"),
    "fetch_order_book": ("GET", "/api/v3/depth"),  # ccxt.pro's book snapshots (limit_book_snapshots)
}
def _futures_endpoints(api: str, account: str, positions: str) -> dict[str, tuple[str, str]]:
    """The gateway's calls on a Binance futures API ("fapi" USDⓈ-M, "dapi" COIN-M): the
    paths ccxt 4.5.90 sends them to, so the limiter spends each call's futures weight
    (venues.emulator.ratelimit.FUTURES_WEIGHTS)."""
    v1 = f"/{api}/v1"
    return {
        "create_order": ("POST", f"{v1}/order"), "cancel_order": ("DELETE", f"{v1}/order"),
        "edit_order": ("PUT", f"{v1}/order"), "fetch_order": ("GET", f"{v1}/order"),
        "fetch_my_trades": ("GET", f"{v1}/userTrades"), "fetch_balance": ("GET", account),
        "fetch_open_orders": ("GET", f"{v1}/openOrders"), "public_get_exchangeinfo": ("GET", f"{v1}/exchangeInfo"),
        "public_get_time": ("GET", f"{v1}/time"), "fetch_positions": ("GET", positions),
        "fetch_funding_history": ("GET", f"{v1}/income"), "fetch_my_liquidations": ("GET", f"{v1}/forceOrders"),
        "set_leverage": ("POST", f"{v1}/leverage"), "set_margin_mode": ("POST", f"{v1}/marginType"),
        "fetch_ledger": ("GET", f"{v1}/income"), "fetch_delivery_price": ("GET", "/futures/data/delivery-price"),
        "fetch_order_book": ("GET", f"{v1}/depth"),
    }


_FUTURES_ENDPOINTS = {
    "binanceusdm": _futures_endpoints("fapi", "/fapi/v3/account", "/fapi/v3/positionRisk"),
    "binancecoinm": _futures_endpoints("dapi", "/dapi/v1/account", "/dapi/v1/positionRisk"),
}
# public calls whose ccxt method differs on the futures APIs (the spot one would ask /api/v3)
_FUTURES_CALLS = {
    "binanceusdm": {"public_get_exchangeinfo": "fapipublic_get_exchangeinfo", "public_get_time": "fapipublic_get_time",
                    "fetch_delivery_price": "fapidata_get_delivery_price"},
    "binancecoinm": {"public_get_exchangeinfo": "dapipublic_get_exchangeinfo", "public_get_time": "dapipublic_get_time",
                     "fetch_delivery_price": "dapidata_get_delivery_price"},
}


def endpoints_for(exchange_id: str) -> dict[str, tuple[str, str]]:
    """The (HTTP method, path) each ccxt call of the gateway sends on that venue: Binance
    spot's for every venue but Binance's futures APIs (their weights differ)."""
    return _FUTURES_ENDPOINTS.get(exchange_id, _ENDPOINTS)


def limit_book_snapshots(exchange: Any, limiter: WeightLimiter,
                         sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> ResponseTap:
    """Book ccxt.pro's order-book snapshots of `exchange` in `limiter`'s request budget, and
    let every REST reply of the client correct the limiter (its weight headers, a 429's or
    418's Retry-After); returns the client's response tap.

    Why: a book watch (modes/live/feed.py) fetches a REST depth snapshot (GET /api/v3/depth,
    weight 5-250 by `limit`) when it starts and after every resync, through the client's
    own `fetch_order_book`, past any gateway. During a 429's Retry-After, or with the
    minute's weight spent, resyncs after stream errors then went out anyway, and repeated
    429s are what earns a 418 ban. The client's method is replaced on this instance by one
    that first waits for the limiter (`WeightLimiter.acquire`), as every gateway call does.
    The one place for it: a testnet/live `Gateway` calls it on the client its orders share
    with the book watch; a paper session, which has no gateway, on its market-data client
    (modes/live/driver.py). A client is wrapped once; a second call only adds the listener."""
    tap = ResponseTap.install(exchange)
    if limiter.observe not in tap.listeners:
        tap.listeners.append(limiter.observe)
    endpoints = endpoints_for(str(getattr(exchange, "id", "binance")))
    original = getattr(exchange, "fetch_order_book", None)
    if original is None or "fetch_order_book" not in endpoints or getattr(original, "_tickparity_limited", False):
        return tap
    http_method, path = endpoints["fetch_order_book"]

    async def fetch_order_book(symbol: str, limit: int | None = None, params: dict | None = None) -> Any:
        query = {"limit": str(limit)} if limit else None
        await limiter.acquire(http_method, path, query, sleep, in_flight=True)
        try:
            return await original(symbol, limit, params or {})
        finally:  # in flight until answered: a window opening meanwhile counts it (ratelimit doc)
            limiter.landed(*limiter.cost(http_method, path, query))

    fetch_order_book._tickparity_limited = True  # type: ignore[attr-defined]
    exchange.fetch_order_book = fetch_order_book
    return tap


PROBE_CLIENT_ID = "tickparity-health-probe"  # never an order's id: a cancel of it is refused (-2011)


class GiveUp(Exception):
    """A query failed after its retries (carries the last classification)."""

    def __init__(self, what: str, verdict: Classified) -> None:
        super().__init__(f"{what}: {verdict.evidence}")
        self.verdict = verdict


@dataclass
class GatewayStats:
    calls: int = 0
    retries: int = 0
    ambiguous: int = 0
    rejected: int = 0
    lookups: int = 0
    coalesced: int = 0  # cancels `cancel_all` did not send: that order's cancel was in flight
    waited_s: float = 0.0
    events: list[str] = field(default_factory=list)  # one line per retry / ambiguity (console, audit)


class Gateway:
    """The fault-aware command path of one venue account (see module doc).

    exchange: an async ccxt client (create it with `enableRateLimit=False`: this limiter
    knows the venue's weights); instruments: keyed by ccxt symbol; now: the local clock in
    ns (LiveClock.now); stp: the engine STP name sent with every order (None: the venue's
    account default); max_order_wait_s (seconds): a submit or amend that would have to wait
    longer than this in all for the request budget or a venue's 429 is rejected instead of
    sent late (`request_budget`, or `rate_limited` with the 429's evidence); after a 418 every
    order is refused `ip_banned` and nothing is sent until the ban's Retry-After.
    """

    def __init__(self, exchange: Any, instruments: Mapping[str, Instrument], *, now: Callable[[], int],
                 limiter: WeightLimiter | None = None, backoff: Backoff | None = None,
                 stp: str | None = None, resolve: bool = True, max_order_wait_s: float = 1.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.exchange = exchange
        self.instruments = dict(instruments)
        self.now = now
        venue_id = str(getattr(exchange, "id", "binance"))
        self.endpoints = endpoints_for(venue_id)
        self._calls = _FUTURES_CALLS.get(venue_id, {})
        self.position_info: dict[str, tuple[str, str]] = {}  # instrument id -> (entry price, isolated wallet)
        self.limiter = limiter or WeightLimiter.for_venue(venue_id)
        self.backoff = backoff or Backoff()
        self._stp = stp
        self.resolve = resolve
        self.max_order_wait_s = max_order_wait_s
        self.sleep = sleep
        self.stats = GatewayStats()
        self.sides: dict[str, int] = {}  # client id -> +1/-1 of orders seen open (adoption at start)
        self._history_from_ms: int | None = None  # contracts: see history_floor_ms
        self._delivery_prices: dict[str, str] = {}  # dated contract symbol -> its delivery price
        self._tickets: dict[str, tuple[int, bool, str]] = {}  # `_ticket`, per method
        self._mappings: dict[str, OrderMapping] = {}  # instrument id -> its order mapping (stp included)
        # client id -> its cancels (`cancel`, `cancel_all`) sent and not yet answered: one
        # pending cancel per order, as the session's rule (engine/session.py `cancel_in_flight`)
        self._cancelling: dict[str, int] = {}
        self.tap = limit_book_snapshots(exchange, self.limiter, self.sleep)
        # every attempt's outcome (method, None on success or the verdict): the live
        # session's venue health (modes.live.venue_health) listens here
        self.listeners: list[Callable[[str, Classified | None], None]] = []

    @property
    def stp(self) -> str | None:
        """The engine STP name sent with every order (None: the venue's account default)."""
        return self._stp

    @stp.setter
    def stp(self, stp: str | None) -> None:
        self._stp = stp
        self._mappings.clear()  # they carry the STP mode

    @property
    def unit_ns(self) -> int:
        """ns per unit of the venue's time fields (venues/ccxt/timeunit.py: µs when asked)."""
        return unit_ns(self.exchange)

    # -- one call, retried when safe ---------------------------------------------------------
    def hand_off(self, method: str, *args: Any) -> Coroutine[Any, Any, Any] | None:
        """The synchronous start of a call: book its request budget and hand it to ccxt (the
        coroutine of ccxt's method, created with the request's arguments, which ccxt runs on
        the event loop's next turn); None when the budget says wait (`_call` waits then).

        Why: the live hot path (tick -> strategy -> risk -> OMS -> venue) ends here with no
        await and no task hop in between; `_call(..., first=)` finishes what this started.
        The call's budget cost and ccxt method name are worked out once per method
        (`_ticket`), so booking is `WeightLimiter.spend` alone (bench/PROFILE.md 1e).
        """
        ticket = self._tickets.get(method) or self._ticket(method)
        if self.limiter.spend(ticket[0], ticket[1], True) > 0:  # in flight until `_call` lands it
            return None
        self.stats.calls += 1
        return getattr(self.exchange, ticket[2])(*args)

    def _ticket(self, method: str) -> tuple[int, bool, str]:
        """(weight, counts as an order, ccxt method name) of `method` sent without a query."""
        http_method, path = self.endpoints[method]
        ticket = self._tickets[method] = (*self.limiter.cost(http_method, path, None), self._calls.get(method, method))
        return ticket

    async def _call(self, command: Command | None, method: str, *args: Any,
                    query: dict[str, str] | None = None,
                    first: Coroutine[Any, Any, Any] | None = None) -> tuple[Any, Classified | None]:
        """(result, None) on success, (None, verdict) on a failure that is final. `first`:
        the first attempt, already handed to ccxt (`hand_off`). Each attempt is booked in
        flight and `landed` when it ends, whatever its end (ratelimit module doc: a window
        opening while it is in flight counts it)."""
        http_method, path = self.endpoints[method]
        cost = self.limiter.cost(http_method, path, query) if query is not None else self._tickets.get(
            method) or self._ticket(method)
        weight, is_order = cost[0], cost[1]
        attempt = 0
        unknown: Classified | None = None  # an earlier attempt that may have executed
        order = command in (Command.SUBMIT, Command.AMEND)
        waited = 0.0  # s this order has waited for the request budget or a 429 (max_order_wait_s)
        while True:
            if first is not None:  # the first attempt is already with ccxt
                call, first = first, None
            else:
                while (delay := self.limiter.spend(weight, is_order, True)) > 0:
                    if order and waited + delay > self.max_order_wait_s:
                        # an order sent that late would act on a market that has moved on:
                        # refused here, never queued (the venue's budget is spent, or a 429 or
                        # a 418 ban holds: `held`)
                        refused = self.held(delay)
                        self._tell(method, refused)
                        return None, refused
                    self.limiter.waits += 1
                    self.stats.waited_s += delay
                    waited += delay
                    await self.sleep(delay)
                self.stats.calls += 1
                call = getattr(self.exchange, self._calls.get(method, method))(*args)
            with ResponseTap.capture() as reply:
                try:
                    result = await call
                except Exception as exc:  # classified below; nothing is swallowed blind
                    verdict = classify(exc, command, status=reply.status, body=reply.body,
                                       headers=reply.headers)
                else:
                    self._tell(method, None)
                    return result, None
                finally:
                    self.limiter.landed(weight, is_order)
            self._tell(method, verdict)
            attempt += 1
            if unknown is not None and verdict.reason == ReasonCode.UNKNOWN_ORDER.value:
                # a resent cancel refused "unknown order" after an attempt whose fate is
                # unknown: that attempt may be what closed the order; only a lookup can say
                verdict = Classified(Outcome.AMBIGUOUS, False, True,
                                     evidence={**verdict.evidence, "earlier": dict(unknown.evidence)})
                self.stats.events.append(f"{method}: resent after {unknown.evidence}, then {verdict.evidence}")
                return None, verdict
            if verdict.executed_unknown:
                unknown = verdict
            if not verdict.retry or attempt >= self.backoff.max_attempts:
                return None, verdict
            delay = self.backoff.delay(attempt - 1, verdict.wait_s)
            if verdict.reason == ReasonCode.RATE_LIMITED.value:
                held, _ = self.limiter.hold()
                delay = max(delay, held)
                if order and waited + delay > self.max_order_wait_s:
                    # the venue's 429 outlasts what an order may wait: refused with its evidence
                    return None, verdict
                waited += delay
            self.stats.retries += 1
            self.stats.events.append(f"{method} retry {attempt} in {delay:.3f} s: {verdict.evidence}")
            self.stats.waited_s += delay
            await self.sleep(delay)

    def held(self, wait_s: float) -> Classified:
        """The local refusal of an order that would wait `wait_s` (s) longer than
        `max_order_wait_s` before it may be sent: `ip_banned` while a 418's ban holds,
        `rate_limited` while a 429's Retry-After holds (the venue's word for why), else
        `request_budget` (our own count of the venue's budget). Evidence `local` (never
        sent), `wait_s`, and the venue status behind the hold (`http_status`)."""
        _, status = self.limiter.hold()
        wait = round(wait_s, 3)
        if status == 418:
            return Classified(Outcome.REJECTED, False, False, ReasonCode.IP_BANNED.value, wait_s, evidence={
                "local": "HTTP 418: the venue banned this IP; nothing is sent to it until the ban ends",
                "http_status": 418, "wait_s": wait})
        if status == 429:
            return Classified(Outcome.REJECTED, False, False, ReasonCode.RATE_LIMITED.value, wait_s, evidence={
                "local": "HTTP 429: the venue's rate limit holds longer than an order may wait",
                "http_status": 429, "wait_s": wait})
        return Classified(Outcome.REJECTED, False, False, ReasonCode.REQUEST_BUDGET.value, wait_s, evidence={
            "local": "the venue's request budget is spent", "wait_s": wait})

    def held_s(self) -> float:
        """Seconds until a 429's or a 418's Retry-After lets requests to the venue go again
        (0.0: none holds). The live driver defers a reconciliation by it rather than wait."""
        return self.limiter.hold()[0]

    def _tell(self, method: str, verdict: Classified | None) -> None:
        for listener in self.listeners:
            listener(method, verdict)

    def _result(self, order: Order, command: Command, verdict: Classified | None,
                venue_order_id: str | None = None, reply: Any = None) -> CommandResult:
        if verdict is None:  # the raw reply is the evidence (the audit log keeps it)
            info = reply.get("info") if isinstance(reply, dict) else None
            return CommandResult(order.client_id, command, Outcome.CONFIRMED, self.now(), venue_order_id,
                                 evidence={"info": info} if info is not None else {})
        if verdict.outcome is Outcome.AMBIGUOUS:
            self.stats.ambiguous += 1
            self.stats.events.append(f"{command.value} {order.client_id} ambiguous: {verdict.evidence}")
        else:
            self.stats.rejected += 1
        return CommandResult(order.client_id, command, verdict.outcome, self.now(), None, verdict.reason,
                             dict(verdict.evidence))

    def _inst(self, symbol: str) -> Instrument:
        return self.instruments[symbol]

    # -- commands ---------------------------------------------------------------------------
    def start_submit(self, order: Order) -> tuple[Coroutine[Any, Any, Any] | None, Callable[[], Awaitable[list[Record]]]]:
        """`submit` in two steps, for the live hot path: map the order and hand it to ccxt
        now (`hand_off`, synchronous); returns (the handed-off call or None, a function
        whose coroutine finishes the command: reply, retries, typed outcome)."""
        args = self._order_args(order)
        first = self.hand_off("create_order", *args)
        return first, lambda: self.submit(order, _args=args, _first=first)

    def _order_args(self, order: Order) -> tuple[str, str, str, str, str | None, dict[str, Any]]:
        """create_order's arguments for `order` (`orders.OrderMapping` of its instrument,
        built on its first order with this gateway's STP mode)."""
        mapping = self._mappings.get(order.instrument.id)
        if mapping is None:
            mapping = self._mappings[order.instrument.id] = OrderMapping(order.instrument, self.stp)
        return mapping.args(order)

    async def submit(self, order: Order, *, _args: tuple | None = None,
                     _first: Coroutine[Any, Any, Any] | None = None) -> list[Record]:
        """Place `order`; CONFIRMED with its state and taking fills, REJECTED, or AMBIGUOUS (+ lookup)."""
        args = _args if _args is not None else self._order_args(order)
        reply, verdict = await self._call(Command.SUBMIT, "create_order", *args, first=_first)
        return await self._answer(order, Command.SUBMIT, reply, verdict)

    async def cancel(self, order: Order) -> list[Record]:
        """Cancel by client id; a refusal (-2011: not open) is followed by a lookup of the truth.
        (The session sends one pending cancel per order; `cancel_all` skips an order while
        this is in flight.)"""
        inst = order.instrument
        with self._cancel_in_flight(order.client_id):
            reply, verdict = await self._call(Command.CANCEL, "cancel_order", "", inst.symbol,
                                              {"origClientOrderId": order.client_id})
        return await self._answer(order, Command.CANCEL, reply, verdict, lookup_on_reject=True)

    async def amend(self, order: Order, price: int, qty: int) -> list[Record]:
        """Cancel-replace to price (ticks) / total qty (lots); never resent when ambiguous."""
        req = amend_request(order, price, qty, stp=self.stp)
        symbol, type_, side, amount, px, params = req.args()
        reply, verdict = await self._call(Command.AMEND, "edit_order", "", symbol, type_, side, amount, px, params)
        return await self._answer(order, Command.AMEND, reply, verdict, lookup_on_reject=True)

    async def _answer(self, order: Order, command: Command, reply: Any, verdict: Classified | None,
                      lookup_on_reject: bool = False) -> list[Record]:
        """The typed records of one command's outcome. A 200 whose body did not carry the
        order (cut short: `ambiguous_reply`) is AMBIGUOUS for a submit, a cancel and an
        amend alike, never read as a confirmation (its text is not the order)."""
        if verdict is None and ambiguous_reply(reply):
            verdict = Classified(Outcome.AMBIGUOUS, False, True, evidence={"reply": "no order in the body"})
        if verdict is None:
            inst = order.instrument
            state = parse.order_state(reply, inst, self.now(), "rest", self.unit_ns)
            if not state.client_id:
                state = _with_client_id(state, order.client_id)
            out: list[Record] = [self._result(order, command, None, state.venue_order_id, reply), state]
            out.extend(parse.reply_fills(reply, inst, self.now(), self.unit_ns) if command is not Command.CANCEL else ())
            if state.filled and command is not Command.SUBMIT:
                out.extend(await self._fills(order.client_id, state, inst))
            return out
        out = [self._result(order, command, verdict)]
        unsure = verdict.outcome is Outcome.AMBIGUOUS or (lookup_on_reject and verdict.outcome is Outcome.REJECTED)
        if self.resolve and unsure:
            out.extend(await self.lookup(order))
        return out

    # -- lookups ----------------------------------------------------------------------------
    async def lookup(self, order: Order) -> list[Record]:
        """The venue's truth about one order by client id: its state (found=False when the
        venue has none) and every fill it lists (myTrades), for the OMS's idempotent merge."""
        return await self.lookup_client_id(order.client_id, order.instrument)

    async def lookup_client_id(self, client_id: str, inst: Instrument, replaced: tuple[str, ...] = ()) -> list[Record]:
        """By client id Binance answers the open order first: after an amend by cancel-replace
        that is the replacement, whose trades are its own. `replaced`: the venue order ids the
        order's amends replaced (engine `Order.replaced`); their state and trades come first
        (best effort: one that fails is left out), so a fill of a replaced venue order that
        the stream lost is found too, and the OMS books it once by trade id."""
        import ccxt

        earlier: list[Record] = []
        for venue_order_id in replaced:
            reply, verdict = await self._call(None, "fetch_order", venue_order_id, inst.symbol, {})
            if verdict is not None:
                continue
            state = parse.order_state(reply, inst, self.now(), "query", self.unit_ns)
            if state.client_id != client_id:
                state = _with_client_id(state, client_id)
            earlier.append(state)
            if state.filled:
                try:
                    earlier.extend(await self._fills(client_id, state, inst))
                except GiveUp:
                    pass
        if earlier:
            return earlier + await self.lookup_client_id(client_id, inst)
        self.stats.lookups += 1
        reply, verdict = await self._call(None, "fetch_order", "", inst.symbol, {"origClientOrderId": client_id})
        if verdict is not None:
            if verdict.evidence.get("code") == -2013 or verdict.evidence.get("exception") == ccxt.OrderNotFound.__name__:
                now = self.now()
                return [VenueOrderState(client_id, None, _REJECTED, 0, 0, 0, 0, now, source="query", found=False)]
            raise GiveUp(f"lookup {client_id}", verdict)
        state = parse.order_state(reply, inst, self.now(), "query", self.unit_ns)
        if not state.client_id:
            state = _with_client_id(state, client_id)
        out: list[Record] = [state]
        if state.filled:
            out.extend(await self._fills(client_id, state, inst))
        return out

    async def _fills(self, client_id: str, state: VenueOrderState, inst: Instrument) -> list[VenueFill]:
        trades, verdict = await self._call(None, "fetch_my_trades", inst.symbol, None, None,
                                           {"orderId": state.venue_order_id})
        if verdict is not None:
            raise GiveUp(f"fills of {client_id}", verdict)
        return [parse.trade_fill(t, inst, client_id, self.now(), self.unit_ns) for t in trades]

    async def open_orders(self) -> list[tuple[Instrument, VenueOrderState]]:
        """Every open order of the account on our instruments (ours and not ours)."""
        out: list[tuple[Instrument, VenueOrderState]] = []
        for symbol, inst in self.instruments.items():
            reply, verdict = await self._call(None, "fetch_open_orders", symbol, query={"symbol": symbol})
            if verdict is not None:
                raise GiveUp(f"open orders of {symbol}", verdict)
            for o in reply:
                state = parse.order_state(o, inst, self.now(), "query", self.unit_ns)
                self.sides[state.client_id] = 1 if o.get("side") == "buy" else -1
                out.append((inst, state))
        return out

    async def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """{asset: (free, locked)} of the account, exact."""
        reply, verdict = await self._call(None, "fetch_balance")
        if verdict is not None:
            raise GiveUp("balances", verdict)
        return parse.balances(reply)

    async def market_status(self) -> dict[str, str]:
        """{ccxt symbol: the venue's trading status} of our instruments (Binance spot
        exchangeInfo `status`: TRADING, BREAK = cancel-only maintenance, HALT; weight 20).
        Raises GiveUp when the venue did not answer."""
        ids = {self.exchange.market(symbol)["id"]: symbol for symbol in self.instruments}
        query = {"symbols": json.dumps(sorted(ids), separators=(",", ":"))}
        reply, verdict = await self._call(None, "public_get_exchangeinfo", query, query=query)
        if verdict is not None:
            raise GiveUp("market status", verdict)
        return {ids[s["symbol"]]: str(s.get("status")) for s in reply.get("symbols", ()) if s.get("symbol") in ids}

    async def probe(self, calls: str) -> None:
        """One harmless call testing a kind of endpoint after failures (venue health's
        half-open breaker, modes.live.venue_health): "orders" cancels a client id no order
        ever had (DELETE /api/v3/order; the venue's answer is -2011 Unknown order, weight 1,
        not counted as an order), "queries" reads the server time (GET /api/v3/time). The
        outcome reaches `listeners`; nothing is returned or raised."""
        if calls == "orders":
            symbol = next(iter(self.instruments))
            await self._call(Command.CANCEL, "cancel_order", "", symbol, {"origClientOrderId": PROBE_CLIENT_ID})
        else:
            await self._call(None, "public_get_time")

    async def positions(self) -> dict[str, Decimal]:
        """{instrument id: signed contracts} of the account's contract positions (ccxt
        fetch_positions; a contract not listed is flat), exact from the venue's text."""
        symbols = [s for s, i in self.instruments.items() if i.contract]
        if not symbols:
            return {}
        reply, verdict = await self._call(None, "fetch_positions", symbols)
        if verdict is not None:
            raise GiveUp("positions", verdict)
        out: dict[str, Decimal] = {}
        for p in reply:
            inst = self.instruments.get(p.get("symbol"))
            info = p.get("info") or {}
            if inst is not None and "positionAmt" in info:
                amount = Decimal(str(info["positionAmt"]))
                if amount:
                    out[inst.id] = amount
                    # what a warm restart adopts (modes.live.derivatives.adopt_open_positions)
                    self.position_info[inst.id] = (str(info.get("entryPrice", "0")),
                                                   str(info.get("isolatedWallet", "0")))
        return out

    def history_floor_ms(self) -> int:
        """The session's first history query time (ms, the local clock): funding and
        liquidations before it are already in the wallet the ledger was seeded from, so
        they are never booked again."""
        if self._history_from_ms is None:
            self._history_from_ms = self.now() // 1_000_000
        return self._history_from_ms

    async def funding_since(self) -> list[tuple[str, str, Decimal, int]]:
        """The account's funding payments since `history_floor_ms` (ccxt
        fetch_funding_history: Binance's FUNDING_FEE income) on our contracts: (instrument
        id, income id, amount received, time ms), exact from the venue's text."""
        since_ms = self.history_floor_ms()
        out: list[tuple[str, str, Decimal, int]] = []
        for symbol, inst in self.instruments.items():
            if not inst.contract or inst.type != "swap":
                continue
            reply, verdict = await self._call(None, "fetch_funding_history", symbol, since_ms, 1000)
            if verdict is not None:
                raise GiveUp(f"funding of {symbol}", verdict)
            for f in reply:
                info = f.get("info") or {}
                income_id = str(info.get("tranId") or f.get("id"))
                amount = Decimal(str(info.get("income", f.get("amount"))))
                if int(f.get("timestamp") or 0) >= since_ms:
                    out.append((inst.id, income_id, amount, int(f.get("timestamp") or 0)))
        return out

    async def deliveries(self) -> list[tuple[str, str, Decimal, int, str | None]]:
        """The venue's delivery settlements of our dated futures since `history_floor_ms`:
        (instrument id, income id, amount received, time ms, delivery price or None while
        the venue has not published it), exact from the venue's text.

        Binance books a delivery as a `DELIVERED_SETTELMENT` income (its spelling; ccxt
        fetch_ledger, type "settlement") and publishes the price at GET
        /futures/data/delivery-price (ccxt fapiDataGetDeliveryPrice / dapiDataGetDeliveryPrice,
        `[{deliveryTime, deliveryPrice}]`): the settlement's price is the latest delivery at or
        before the income's time. Asked at every reconciliation for each dated contract (one
        income query, as `funding_since` asks one per perpetual); the price only once a
        settlement is listed, and kept."""
        since_ms = self.history_floor_ms()
        out: list[tuple[str, str, Decimal, int, str | None]] = []
        for symbol, inst in self.instruments.items():
            if not inst.contract or inst.expiry_ns is None:
                continue
            market_id = self.exchange.market(symbol)["id"]
            reply, verdict = await self._call(None, "fetch_ledger", None, since_ms, 1000,
                                              {"incomeType": "DELIVERED_SETTELMENT", "symbol": market_id})
            if verdict is not None:
                raise GiveUp(f"delivery settlements of {symbol}", verdict)
            for entry in reply:
                info = entry.get("info") or {}
                ms = int(entry.get("timestamp") or 0)
                if ms < since_ms or info.get("incomeType") != "DELIVERED_SETTELMENT" or info.get("symbol") != market_id:
                    continue
                out.append((inst.id, str(info.get("tranId") or entry.get("id")), Decimal(str(info["income"])), ms,
                            await self._delivery_price(symbol, inst)))
        return out

    async def _delivery_price(self, symbol: str, inst: Instrument) -> str | None:
        """The delivery price (venue text) of the contract: the delivery-price row whose
        `deliveryTime` is the contract's delivery date (ccxt's market `expiry`, Binance's
        `deliveryDate`); None while it is not listed."""
        if symbol in self._delivery_prices:
            return self._delivery_prices[symbol]
        pair = inst.base + inst.quote  # Binance's pair: BTCUSDT (USDⓈ-M), BTCUSD (COIN-M)
        reply, verdict = await self._call(None, "fetch_delivery_price", {"pair": pair})
        if verdict is not None:
            raise GiveUp(f"delivery price of {pair}", verdict)
        expiry = self.exchange.market(symbol).get("expiry")
        rows = [r for r in reply or () if int(r.get("deliveryTime") or 0) == expiry]
        if not rows:
            return None
        price = str(rows[0]["deliveryPrice"])
        self._delivery_prices[symbol] = price
        return price

    async def liquidations(self) -> list[tuple[str, str, int, Decimal, Decimal, int]]:
        """The venue's liquidation orders on our contracts (ccxt fetch_my_liquidations:
        Binance's forceOrders): (instrument id, venue order id, side, average price,
        executed quantity, time ms) since `history_floor_ms`, exact from the venue's text."""
        since_ms = self.history_floor_ms()
        out: list[tuple[str, str, int, Decimal, Decimal, int]] = []
        for symbol, inst in self.instruments.items():
            if not inst.contract:
                continue
            reply, verdict = await self._call(None, "fetch_my_liquidations", symbol, since_ms,
                                              query={"symbol": symbol})  # weight 20 with a symbol
            if verdict is not None:
                raise GiveUp(f"liquidations of {symbol}", verdict)
            for row in reply:
                info = row.get("info") or {}
                if int(row.get("timestamp") or 0) < since_ms:
                    continue
                out.append((inst.id, str(info.get("orderId")), 1 if str(info.get("side")).upper() == "BUY" else -1,
                            Decimal(str(info.get("avgPrice"))), Decimal(str(info.get("executedQty"))),
                            int(row.get("timestamp") or 0)))
        return out

    async def configure_contract(self, inst: Instrument, leverage: int, margin_mode: str) -> list[str]:
        """Set the venue's leverage and margin mode of a contract (ccxt set_leverage,
        set_margin_mode) to the run's `[venues.X]` values; returns what was done, one line
        each. A margin mode already set is no error (Binance -4046)."""
        done = []
        _, verdict = await self._call(None, "set_leverage", leverage, inst.symbol)
        if verdict is not None:
            raise GiveUp(f"leverage of {inst.symbol}", verdict)
        done.append(f"{inst.id}: leverage {leverage}")
        _, verdict = await self._call(None, "set_margin_mode", margin_mode, inst.symbol)
        if verdict is not None and "-4046" not in str(verdict.evidence):
            raise GiveUp(f"margin mode of {inst.symbol}", verdict)
        done.append(f"{inst.id}: margin mode {margin_mode}")
        return done

    async def trades_since(self, symbol: str, from_id: int | None = None) -> list[dict[str, Any]]:
        """myTrades rows of a symbol (ccxt dicts), for reconciliation of fills."""
        params = {"fromId": from_id} if from_id is not None else {}
        reply, verdict = await self._call(None, "fetch_my_trades", symbol, None, 1000, params)
        if verdict is not None:
            raise GiveUp(f"my trades of {symbol}", verdict)
        return reply

    @contextlib.contextmanager
    def _cancel_in_flight(self, client_id: str) -> Iterator[None]:
        """Inside: a cancel of `client_id` is in flight (`cancel_all` sends it none)."""
        cancelling = self._cancelling
        cancelling[client_id] = cancelling.get(client_id, 0) + 1
        try:
            yield
        finally:
            if cancelling[client_id] == 1:
                del cancelling[client_id]
            else:
                cancelling[client_id] -= 1

    async def cancel_all(self, prefix: str | None = None) -> list[Record]:
        """Cancel every open order of the account on our instruments (kill switch, dead-man
        switch), or only those whose client id starts with `prefix` (this engine's); one
        DELETE per order by client id, so each answer is typed and audited.

        One pending cancel per order (the session's rule, engine/session.py
        `cancel_in_flight`): an order whose cancel is in flight (`cancel`, or another
        `cancel_all` still waiting for that order's answer) is not sent a second one, which
        would only queue behind the first (a 429's hold, the request budget) and be refused
        as an unknown order once the first closed it; it has no record here (the call in
        flight answers for it) and counts in `stats.coalesced`. The venue's open orders are
        listed once, at the start: run it again for what is still open afterwards."""
        out: list[Record] = []
        for inst, state in await self.open_orders():
            if prefix is not None and not state.client_id.startswith(prefix):
                continue
            if state.client_id in self._cancelling:
                self.stats.coalesced += 1
                continue
            with self._cancel_in_flight(state.client_id):
                reply, verdict = await self._call(Command.CANCEL, "cancel_order", "", inst.symbol,
                                                  {"origClientOrderId": state.client_id})
            if verdict is None:
                out.append(CommandResult(state.client_id, Command.CANCEL, Outcome.CONFIRMED, self.now(),
                                         state.venue_order_id))
                out.append(parse.order_state(reply, inst, self.now(), "rest", self.unit_ns))
            else:
                out.append(CommandResult(state.client_id, Command.CANCEL, verdict.outcome, self.now(), None,
                                         verdict.reason, dict(verdict.evidence)))
        return out


_REJECTED = parse.STATUS["REJECTED"]


def _with_client_id(state: VenueOrderState, client_id: str) -> VenueOrderState:
    from dataclasses import replace

    return replace(state, client_id=client_id)
