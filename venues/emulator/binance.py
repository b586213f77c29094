"""Binance spot over HTTP and websockets, for unmodified ccxt (sync, async, pro).

Why aiohttp: it is a well-kept HTTP + websocket server already installed as a ccxt
dependency, so the emulator adds no package and no hand-written protocol code.
What is served, with the fields unmodified ccxt 4.5.90 reads (measured, see
docs/emulator.md): REST `/api/v3/{ping,time,exchangeInfo,depth,account,order,openOrders,
myTrades,order/cancelReplace}`, market streams on `/ws/{n}` (`<symbol>@depth@100ms`,
`@depth`, `@trade`, `@bookTicker`), and the websocket-API user data session on
`/ws-api/v3` (`userDataStream.subscribe.signature`: `executionReport`,
`outboundAccountPosition`). A read-only inspection view is at `/emulator/state` and
`/emulator/journal`; tests drive faults and the stepped clock through `/emulator/control/*`.
Every refusal is Binance's code and message; an unexpected error is a -1000 reply and a
journal line, never a traceback to the client.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import json
import logging
import time
import traceback
from collections import deque
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from engine.errors import ConfigError
from engine.types import Instrument
from engine.types.instrument import decimal_str
from venues.emulator.clock import NS_PER_MS, NS_PER_US, TIME_UNITS
from venues.emulator.control import is_clear, parse_body, parse_limits, parse_step
from venues.emulator.exchange import BinanceError, EmuOrder, Exchange, Pending, UserEvent
from venues.emulator.faults import KINDS as FAULT_KINDS
from venues.emulator.faults import REST_KINDS, FaultPlan
from venues.emulator.ratelimit import ORDER_ENDPOINTS, RateLimiter, request_weight
from venues.faults import fraction_ppm

log = logging.getLogger("tickparity.emulator")
# per request (the middleware and its handler run in one task): who signed it, clock skew
_ACCOUNT: contextvars.ContextVar[Any] = contextvars.ContextVar("emulator_account", default=None)
_SKEW_MS: contextvars.ContextVar[int] = contextvars.ContextVar("emulator_skew_ms", default=0)
# the request's time unit (ns per unit): X-MBX-TIME-UNIT, milliseconds without it
_UNIT_NS: contextvars.ContextVar[int] = contextvars.ContextVar("emulator_unit_ns", default=NS_PER_MS)
#: a timestamp parameter this large is in microseconds (Binance: "Timestamp parameters (e.g.
#: startTime, endTime, timestamp) can be passed in milliseconds or microseconds"); epoch ms
#: stay below it until the year 5138, epoch µs are above it since 1973
US_PARAM_FLOOR = 10**14
_EIGHT = Decimal("0.00000001")
MAX_RECV_WINDOW = 60_000
SUPPORTED_TYPES = {"LIMIT", "LIMIT_MAKER", "MARKET"}
BINANCE_ONLY_TYPES = {"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"}
TIFS = {"GTC", "IOC", "FOK"}
STREAM_KINDS = frozenset(FAULT_KINDS) - REST_KINDS


TIME_UNIT_HEADER = "X-MBX-TIME-UNIT"


def time_unit_ns(text: str | None, where: str) -> int:
    """ns per unit of a client's time unit: Binance's REST header `X-MBX-TIME-UNIT` or a
    websocket URL's `timeUnit` (spot API docs: MILLISECOND / millisecond / MICROSECOND /
    microsecond; none: milliseconds). Binance documents no code for another value; the
    emulator refuses it with -1100 naming `where` rather than guess a unit."""
    if text is None:
        return NS_PER_MS
    unit = TIME_UNITS.get(text)
    if unit is None:
        raise BinanceError(-1100, f"Illegal characters found in {where}; legal values are "
                           "MILLISECOND, millisecond, MICROSECOND, microsecond.")
    return unit


def param_us(value: int, last: bool = False) -> int:
    """A timestamp parameter (timestamp, startTime, endTime) as epoch µs: Binance takes it
    in milliseconds or microseconds, told apart by magnitude (US_PARAM_FLOOR). `last`: an
    inclusive end given in ms covers its whole millisecond."""
    if value >= US_PARAM_FLOOR:
        return value
    return value * 1000 + (999 if last else 0)


def fmt(value: Decimal) -> str:
    """Binance's 8-decimal strings ('0.00100000'); more decimals stay exact."""
    if value == value.quantize(_EIGHT):
        return f"{value.quantize(_EIGHT):f}"
    return decimal_str(value)


#: the path families of the venue's REST API (the middleware applies limits and faults to these)
REST_PREFIXES = ("/api/", "/fapi/", "/dapi/")


def rest_routes(router: web.UrlDispatcher) -> frozenset[str]:
    """"METHOD /path" of every REST route of `router` (HEAD and websocket paths left out)."""
    return frozenset(f"{route.method} {route.resource.canonical}" for route in router.routes()
                     if route.method != "HEAD" and route.resource is not None
                     and route.resource.canonical.startswith(REST_PREFIXES))


def _error_body(code: int, msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg}


def mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def not_required(name: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{name}' sent when not required.")


class ResponseLost(Exception):
    """A fault: the call executed, the reply must never reach the client."""


class BinanceServer:
    """The aiohttp application around one `Exchange` (see module doc)."""

    def __init__(self, exchange: Exchange, *, faults: FaultPlan | None = None,
                 limiter: RateLimiter | None = None, ping_interval: float = 20.0,
                 max_connection_s: float = 86400.0, max_incoming_per_s: int = 5,
                 reply_timeout_s: float = 10.0) -> None:
        self.exchange = exchange
        self.faults = faults or FaultPlan()
        # Binance documents X-MBX-TIME-UNIT / timeUnit for its spot API only (FuturesServer: False)
        self.time_units = True
        self.limiter = limiter or RateLimiter()
        self.ping_interval = ping_interval
        self.max_connection_s = max_connection_s
        self.max_incoming_per_s = max_incoming_per_s
        self.reply_timeout_s = reply_timeout_s
        self.market_ws: set[MarketConnection] = set()
        self.user_ws: set[UserConnection] = set()
        self._kick = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.skew_ms = 0
        self.stream_first = False  # control/limits: user events written before REST replies
        self._stale_until = 0.0
        self._gap_next = False
        self._stale_depth: list[tuple[int, int, tuple]] = []  # depth windows held by a stale_market fault
        self._user_fault: tuple[str, int] | None = None
        self._maintenance_timers: list[asyncio.TimerHandle] = []  # a maintenance's halt and resume
        self._held: list[UserEvent] = []
        self._held_since = 0.0
        self._user_delay_s = 0.0
        self._delayed: deque[tuple[float, UserEvent]] = deque()  # user_delay: (release, event)
        self.app = self._build_app()

    # ------------------------------------------------------------------ lifecycle ---
    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        self._venue_routes(r)
        r.add_get("/emulator/state", self.inspect_state)
        r.add_get("/emulator/journal", self.inspect_journal)
        r.add_get("/emulator/faults", self.list_faults)
        r.add_post("/emulator/control/faults", self.control_faults)
        r.add_post("/emulator/control/step", self.control_step)
        r.add_post("/emulator/control/limits", self.control_limits)
        return app

    def _venue_routes(self, r: web.UrlDispatcher) -> None:
        """Binance spot's REST and websocket paths (the futures server has its own)."""
        r.add_get("/api/v3/ping", self.ping)
        r.add_get("/api/v3/time", self.server_time)
        r.add_get("/api/v3/exchangeInfo", self.exchange_info)
        r.add_get("/api/v3/depth", self.depth)
        r.add_get("/api/v3/ticker/bookTicker", self.book_ticker)
        r.add_get("/api/v3/account", self.account)
        r.add_post("/api/v3/order", self.post_order)
        r.add_get("/api/v3/order", self.get_order)
        r.add_delete("/api/v3/order", self.delete_order)
        r.add_post("/api/v3/order/cancelReplace", self.cancel_replace)
        r.add_get("/api/v3/openOrders", self.open_orders)
        r.add_get("/api/v3/myTrades", self.my_trades)
        r.add_get("/ws", self.market_socket)
        r.add_get("/ws/{n}", self.market_socket)
        r.add_get("/ws-api/v3", self.user_socket)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Bind and start the market clock; returns the base URL (http://host:port)."""
        from venues.connection_resets import quiet_resets

        quiet_resets(asyncio.get_running_loop())  # a client that drops mid-ping: one line, no traceback
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._tasks = [asyncio.create_task(self._pump(), name="emulator-pump"),
                       asyncio.create_task(self._fault_scheduler(), name="emulator-faults")]
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        for conn in list(self.market_ws) + list(self.user_ws):
            await conn.close(1001, "server shutdown")
        if self._runner is not None:
            await self._runner.cleanup()
        journal = self.exchange.journal
        if journal.directory is not None:
            (journal.directory / "final_state.json").write_text(
                json.dumps(self.exchange.snapshot(), indent=2, sort_keys=True) + "\n")
        journal.close()

    def kick(self) -> None:
        self._kick.set()

    # ------------------------------------------------------------------ the clock ---
    def step(self) -> None:
        """Advance the venue to the clock's now and deliver what it produced."""
        ex = self.exchange
        ex.advance()
        for p in ex.take_completed():
            if p.waiter is not None and not p.waiter.done():
                p.waiter.set_result(p)
        self._deliver_user(ex.take_user_events())
        trades = ex.take_market_trades()
        self._publish_depth(ex.take_depth_updates())
        if time.monotonic() >= self._stale_until:
            for inst, rows, first_id in trades:
                self._publish_trades(inst, rows, first_id)
            tops: dict[int, tuple[int, int, int, int]] = {}
            for conn in list(self.market_ws):
                conn.send_tickers(tops)

    def _pump_interval(self) -> float:
        """Sleep until the next row is due (at most 20 ms), or 2 ms while a REST call waits
        for the venue (its answer's time is inside the sim); a request kicks the pump."""
        ex = self.exchange
        if ex.waiting():
            return 0.002
        nxt = ex.next_publish_ts()
        due = ex.next_depth_ts()  # the open depth window goes out when it ends
        if due is not None and (nxt is None or due < nxt):
            nxt = due
        if nxt is None:
            return 0.02
        return min(0.02, max(0.001, ex.clock.wall_for(nxt)))

    async def _pump(self) -> None:
        while True:
            try:
                self.step()
            except Exception:  # a bug: log it, keep serving (never a traceback to clients)
                log.error("emulator pump failed:\n%s", traceback.format_exc())
                self.exchange.journal.write("internal_error", self.exchange.clock.now(), 0,
                                            where="pump", error=traceback.format_exc(limit=3))
                await asyncio.sleep(0.1)
            self._kick.clear()
            try:
                await asyncio.wait_for(self._kick.wait(), self._pump_interval())
            except TimeoutError:
                pass

    def _publish_depth(self, updates: list[tuple[int, int, tuple]]) -> None:
        """`@depth@100ms` diffs of the windows the exchange closed (Exchange._publish cuts
        them on the market clock), stamped E = the window's end. A stale_market fault holds
        them; when it ends, each instrument's held windows go out merged into one diff (as
        a venue that recovers sends what changed)."""
        if time.monotonic() < self._stale_until:
            self._stale_depth += updates
            return
        if self._stale_depth:
            updates = _merge_windows(self._stale_depth + updates)
            self._stale_depth = []
        for t, k, diff in updates:
            if self._gap_next:
                self._gap_next = False
                continue  # update_id_gap fault: this diff is never sent
            msgs: dict[int, str] = {NS_PER_MS: self._depth_msg(k, diff, t)}  # by the connection's unit
            for conn in list(self.market_ws):
                unit = conn.unit_ns
                if unit not in msgs:
                    msgs[unit] = self._depth_msg(k, diff, t, unit)
                conn.send_depth(k, msgs[unit])

    async def _fault_scheduler(self) -> None:
        """Stream and venue-state faults of the schedule fire when their `after` passes."""
        while True:
            await asyncio.sleep(0.05)
            fault = self.faults.take(STREAM_KINDS)
            if fault is not None:
                await self._apply_stream_fault(fault)

    async def wait_for(self, pending: Pending) -> Pending:
        """Await the venue's answer to a new order or cancel (kicks the clock)."""
        if pending.done:
            return pending
        loop = asyncio.get_running_loop()
        pending.waiter = loop.create_future()
        self.step()
        if not pending.done:
            self.kick()
            try:
                await asyncio.wait_for(asyncio.shield(pending.waiter), self.reply_timeout_s)
            except TimeoutError:
                # the venue did not answer in time (a stepped clock not stepped): Binance's
                # "status unknown" reply; the order may still execute
                raise BinanceError(-1007, "Timeout waiting for response from backend server. "
                                   "Send status unknown; execution status unknown.", status=408) from None
        if self.stream_first:
            # the answer's user events were queued to the websockets in step(): let their
            # writers hand them to the sockets before this reply is written, so the
            # executionReport leaves first and often reaches the client before the REST
            # reply, as it does on Binance at times (a race every client must handle)
            writers = [c._writer for c in self.user_ws if c._writer is not None and not c._writer.done()]
            if writers:
                await asyncio.wait(writers, timeout=0.05)
        return pending

    # ------------------------------------------------------------------ middleware --
    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        path = request.path
        if not path.startswith(REST_PREFIXES):
            return await handler(request)
        ip = request.remote or "?"
        now_s = time.time()
        endpoint = f"{request.method} {path}"
        _ACCOUNT.set(None)
        _SKEW_MS.set(0)
        _UNIT_NS.set(NS_PER_MS)
        headers: dict[str, str] = {}
        try:
            if self.time_units:
                _UNIT_NS.set(time_unit_ns(request.headers.get(TIME_UNIT_HEADER), f"header '{TIME_UNIT_HEADER}'"))
            weight = request_weight(request.method, path, dict(request.query))
            self.limiter.check_ip(ip, weight, now_s)
            fault = self.faults.take({"rate_limit"}, endpoint)
            if fault is not None:
                self._log_fault(fault, endpoint)
                hold = fault.params.get("retry_after")
                self.limiter.force_429(ip, now_s, None if hold is None else float(hold))
                self.limiter.check_ip(ip, 1, now_s)
            spike = self.faults.spike(endpoint)
            if spike is not None:  # the request leg is slow: later calls may overtake it
                self._log_fault(spike, endpoint)
                # the request has arrived whole: read it now, so a client that times out
                # meanwhile does not undo it (the venue executes it, as a real one would)
                await request.read()
                await asyncio.sleep(float(spike.params["extra"]))
            fault = self.faults.take({"reject", "http_5xx_before", "clock_skew", "request_lost"},
                                     endpoint)
            if fault is not None:
                self._log_fault(fault, endpoint)
                if fault.kind == "request_lost":
                    # lost on the way in: never executed, never answered
                    await asyncio.sleep(float(fault.params["delay"]))
                    raise ResponseLost()
                if fault.kind == "reject":
                    raise BinanceError(int(fault.params["code"]),
                                       str(fault.params["msg"]),
                                       status=int(fault.params["status"]))
                if fault.kind == "http_5xx_before":
                    return self._fault_5xx(fault)
                _SKEW_MS.set(int(fault.params["skew_ms"]))
            resp = await handler(request)
            if spike is not None:  # ... and so is the reply leg
                await asyncio.sleep(float(spike.params["extra"]))
            after = self.faults.take({"response_lost", "http_5xx_after", "delay", "truncated_body"},
                                     endpoint)
            if after is not None:
                self._log_fault(after, endpoint)
                if after.kind == "response_lost":
                    raise ResponseLost()
                if after.kind == "http_5xx_after":
                    resp = self._fault_5xx(after)
                elif after.kind == "truncated_body":
                    resp = self._truncated(request, resp, bool(after.params["transport"]))
                else:
                    await asyncio.sleep(float(after.params["delay"]))
        except (ResponseLost, ConnectionResetError):  # ours to drop, or the client hung up
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never sent: the connection is gone
        except BinanceError as exc:
            headers.update(exc.headers)
            resp = web.json_response(exc.body(), status=exc.status)
        except web.HTTPException:
            raise
        except Exception:
            log.error("emulator request %s failed:\n%s", endpoint, traceback.format_exc())
            self.exchange.journal.write("internal_error", self.exchange.clock.now(), 0,
                                        where=endpoint, error=traceback.format_exc(limit=3))
            resp = web.json_response(_error_body(-1000, "An unknown error occurred while processing the request."),
                                     status=500)
        account = _ACCOUNT.get()
        headers.update(self.limiter.headers(ip, account.name if account is not None and (
            request.method, path) in ORDER_ENDPOINTS else None, now_s))
        for k, v in headers.items():
            resp.headers[k] = v
        return resp

    @staticmethod
    def _truncated(request: web.Request, resp: web.Response, transport: bool) -> web.Response:
        """truncated_body: the first half of the reply's JSON. As a complete HTTP message
        (Content-Length of the cut body: the client gets unparseable JSON), or with
        `transport` the full body's Content-Length and the connection closed after half
        (the client's HTTP layer sees the body end early). The raw write is the fault
        itself: a malformed HTTP exchange that no server library produces on purpose."""
        body = bytes(resp.body or b"")  # type: ignore[arg-type]
        cut = body[: len(body) // 2]
        if not transport:
            return web.Response(body=cut, status=resp.status, content_type="application/json")
        if request.transport is not None:
            head = (f"HTTP/1.1 {resp.status} OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
            request.transport.write(head + cut)
        raise ResponseLost()

    def _fault_5xx(self, fault) -> web.Response:
        status = int(fault.params["status"])
        body = fault.params["body"]
        if body == "json":
            return web.json_response(_error_body(-1001, "Internal error; unable to process your "
                                                 "request. Please try again."), status=status)
        if body == "empty":
            return web.Response(status=status)
        return web.Response(status=status, text=f"<html><body><h1>{status}</h1></body></html>",
                            content_type="text/html")

    def _log_fault(self, fault, where: str) -> None:
        ex = self.exchange
        t = ex.clock.now()
        ex.journal.write("fault", t, ex.clock.shown_ms(t), kind=fault.kind, where=where,
                         fired=fault.fired, params=fault.params)

    # ------------------------------------------------------------------ auth --------
    async def _params(self, request: web.Request) -> dict[str, str]:
        params = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        if request.method in ("POST", "PUT"):
            body = await request.text()
            params.update(parse_qsl(body, keep_blank_values=True))
        return params

    async def _signed(self, request: web.Request) -> tuple[Any, dict[str, str]]:
        """Check X-MBX-APIKEY, the HMAC-SHA256 signature over the query + body exactly as
        sent, and timestamp/recvWindow against wall time. Returns (account, params)."""
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            raise BinanceError(-2014, "API-key format invalid.", status=401)
        account = self.exchange.by_key.get(key)
        if account is None:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
        _ACCOUNT.set(account)
        query = request.rel_url.raw_query_string  # as sent: the signature covers these bytes
        body = (await request.text()) if request.method in ("POST", "PUT") else ""
        signature = None
        parts = []
        for text in (query, body):
            kept = []
            for piece in text.split("&") if text else []:
                if piece.startswith("signature="):
                    signature = piece[len("signature="):]
                else:
                    kept.append(piece)
            parts.append("&".join(kept))
        if not signature:
            raise mandatory("signature")
        payload = parts[0] + parts[1]
        expected = hmac.new(account.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise BinanceError(-1022, "Signature for this request is not valid.")
        params = await self._params(request)
        params.pop("signature", None)
        self._check_time(params, _SKEW_MS.get())
        return account, params

    def _check_time(self, params: Mapping[str, Any], skew_ms: int) -> None:
        ts_text = params.get("timestamp")
        if ts_text in (None, ""):
            raise mandatory("timestamp")
        try:
            ts = param_us(int(ts_text))
            recv = int(params.get("recvWindow", 5000))
        except (TypeError, ValueError):
            raise BinanceError(-1100, "Illegal characters found in parameter 'timestamp'; "
                               "legal range is '^[0-9]{1,20}$'.") from None
        if recv > MAX_RECV_WINDOW or recv <= 0:
            raise BinanceError(-1131, "recvWindow must be less than 60000")
        server = time.time_ns() // NS_PER_US + (skew_ms + self.skew_ms) * 1000  # µs: either unit compares exactly
        if ts - server > 1000 * 1000:
            raise BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if server - ts > recv * 1000:
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")

    # ------------------------------------------------------------------ helpers -----
    def _inst(self, params: Mapping[str, str], required: bool = True) -> int | None:
        symbol = params.get("symbol")
        if not symbol:
            if required:
                raise mandatory("symbol")
            return None
        k = self.exchange.symbol_index.get(symbol.upper())
        if k is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return k

    def _spec(self, k: int) -> Instrument:
        return self.exchange.instruments[k]

    def _ms(self, ts: int) -> int:
        return self.exchange.clock.shown_ms(ts)

    def _t(self, ts: int, unit_ns: int | None = None) -> int:
        """A market time as the client's time field: in the unit it asked for (`unit_ns`, a
        websocket's; else the REST request's X-MBX-TIME-UNIT), milliseconds by default."""
        return self.exchange.clock.shown(ts, _UNIT_NS.get() if unit_ns is None else unit_ns)

    def _server_time(self, unit_ns: int | None = None) -> int:
        """The wall clock (serverTime) in the client's unit (as `_t`)."""
        return time.time_ns() // (_UNIT_NS.get() if unit_ns is None else unit_ns)

    def _decimal(self, params: Mapping[str, str], name: str) -> Decimal | None:
        text = params.get(name)
        if text is None or text == "":
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                               "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.") from None
        if not value.is_finite() or value < 0:
            raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.")
        return value

    def _order_json(self, o: EmuOrder) -> dict[str, Any]:
        spec = self._spec(o.inst)
        return {
            "symbol": o.symbol, "orderId": o.order_id, "orderListId": -1,
            "clientOrderId": o.client_id, "price": fmt(spec.ticks_to_price(o.price)),
            "origQty": fmt(spec.lots_to_qty(o.qty)),
            "executedQty": fmt(spec.lots_to_qty(o.executed)),
            "cummulativeQuoteQty": fmt(o.cum_quote), "status": o.status,
            "timeInForce": o.tif, "type": o.type, "side": "BUY" if o.side > 0 else "SELL",
            "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": self._t(o.time_ns),
            "updateTime": self._t(o.update_ns), "isWorking": o.status != "PENDING_NEW",
            "workingTime": self._t(o.working_ns or o.time_ns),
            "origQuoteOrderQty": fmt(o.quote_qty or Decimal(0)),
            "selfTradePreventionMode": o.stp,
        }

    def _new_order_json(self, o: EmuOrder, resp_type: str) -> dict[str, Any]:
        base = {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1,
                "clientOrderId": o.client_id, "transactTime": self._t(o.working_ns or o.time_ns)}
        if resp_type == "ACK":
            return base
        full = self._order_json(o)
        for k in ("stopPrice", "icebergQty", "time", "updateTime", "isWorking"):
            full.pop(k)
        base.update(full)
        if resp_type == "FULL":
            base["fills"] = [{"price": fmt(f["price"]), "qty": fmt(f["qty"]),
                              "commission": fmt(f["commission"]),
                              "commissionAsset": f["commission_asset"], "tradeId": f["trade_id"]}
                             for f in o.fills]
        return base

    # ------------------------------------------------------------------ public REST -
    async def ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def server_time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": self._server_time() + self.skew_ms * NS_PER_MS // _UNIT_NS.get()})

    def _symbol_status(self) -> str:
        ex = self.exchange
        if ex.ended or ex.halted_reason:
            return "HALT"
        return "BREAK" if ex.cancel_only else "TRADING"

    async def exchange_info(self, request: web.Request) -> web.Response:
        ex = self.exchange
        wanted = None
        if request.query.get("symbol"):
            wanted = {request.query["symbol"].upper()}
        elif request.query.get("symbols"):
            try:
                wanted = {s.upper() for s in json.loads(request.query["symbols"])}
            except (ValueError, TypeError):
                raise BinanceError(-1100, "Illegal characters found in parameter 'symbols'.") from None
        symbols = []
        for k, spec in enumerate(ex.instruments):
            if wanted is not None and ex.symbols[k].upper() not in wanted:
                continue
            symbols.append(symbol_info(ex.symbols[k], spec, self._symbol_status(), ex.max_num_orders))
        if wanted is not None and not symbols:
            raise BinanceError(-1121, "Invalid symbol.")
        return web.json_response({
            "timezone": "UTC", "serverTime": self._server_time(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": self.limiter.weight_per_minute},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                 "limit": self.limiter.orders_per_10s},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
                 "limit": self.limiter.orders_per_day},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5,
                 "limit": 61000},
            ],
            "exchangeFilters": [], "symbols": symbols,
        })

    async def depth(self, request: web.Request) -> web.Response:
        k = self._inst(request.query)
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            raise BinanceError(-1100, "Illegal characters found in parameter 'limit'.") from None
        limit = max(1, min(limit, 5000))
        self.step()
        book = self.exchange.books[k]
        spec = self._spec(k)
        bids, asks = book.levels(limit)
        return web.json_response({
            "lastUpdateId": book.update_id,
            "bids": [[fmt(spec.ticks_to_price(p)), fmt(spec.lots_to_qty(q))] for p, q in bids],
            "asks": [[fmt(spec.ticks_to_price(p)), fmt(spec.lots_to_qty(q))] for p, q in asks],
        })

    async def book_ticker(self, request: web.Request) -> web.Response:
        k = self._inst(request.query)
        self.step()
        return web.json_response(self._ticker_msg(k))

    # ------------------------------------------------------------------ private REST
    async def account(self, request: web.Request) -> web.Response:
        acct, _ = await self._signed(request)
        self.step()
        return web.json_response({
            "makerCommission": 0, "takerCommission": 0, "buyerCommission": 0,
            "sellerCommission": 0, "canTrade": True, "canWithdraw": False, "canDeposit": False,
            "brokered": False, "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": self._t(acct.update_ns), "accountType": "SPOT",
            "balances": [{"asset": a, "free": fmt(acct.free.get(a, Decimal(0))),
                          "locked": fmt(acct.locked.get(a, Decimal(0)))} for a in acct.assets()],
            "permissions": ["SPOT"], "uid": self.exchange.accounts.index(acct) + 1,
        })

    def _parse_new(self, params: Mapping[str, str], check_notional: bool = True) -> dict[str, Any]:
        """Validate a new order's parameters as Binance does (codes -1102/-1106/-1116/-1115/
        -1013/-1117/-1014); returns the sim's units."""
        k = self._inst(params)
        spec = self._spec(k)
        side_text = params.get("side")
        if not side_text:
            raise mandatory("side")
        if side_text not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.")
        typ = params.get("type")
        if not typ:
            raise mandatory("type")
        if typ in BINANCE_ONLY_TYPES:
            raise BinanceError(-1014, "Unsupported order combination.")
        if typ not in SUPPORTED_TYPES:
            raise BinanceError(-1116, "Invalid orderType.")
        tif = params.get("timeInForce")
        if typ == "LIMIT":
            if not tif:
                raise mandatory("timeInForce")
            if tif not in TIFS:
                raise BinanceError(-1115, "Invalid timeInForce.")
        elif tif:
            raise not_required("timeInForce")
        qty = self._decimal(params, "quantity")
        quote_qty = self._decimal(params, "quoteOrderQty")
        price = self._decimal(params, "price")
        if typ == "MARKET":
            if price is not None:
                raise not_required("price")
            if qty is None and quote_qty is None:
                raise BinanceError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
            if qty is not None and quote_qty is not None:
                raise not_required("quoteOrderQty")
        else:
            if quote_qty is not None:
                raise not_required("quoteOrderQty")
            if price is None:
                raise mandatory("price")
            if qty is None:
                raise mandatory("quantity")
        price_ticks = 0
        if price is not None:
            if price <= 0 or price % spec.tick_size != 0:
                raise BinanceError(-1013, "Filter failure: PRICE_FILTER")
            price_ticks = int(price / spec.tick_size)
        lots = 0
        if qty is not None:
            if qty <= 0 or qty % spec.lot_size != 0 or qty < spec.min_qty:
                raise BinanceError(-1013, "Filter failure: LOT_SIZE")
            lots = int(qty / spec.lot_size)
        if quote_qty is not None and quote_qty <= 0:
            raise BinanceError(-1013, "Filter failure: NOTIONAL")
        notional = None
        if price is not None and qty is not None:
            notional = price * qty
        elif quote_qty is not None:
            notional = quote_qty
        elif qty is not None:  # a market order's notional at the current best price
            bid, _, ask, _ = self.exchange.books[k].top()
            ref = ask if side_text == "BUY" else bid
            notional = spec.ticks_to_price(ref) * qty if ref else None
        if check_notional and notional is not None and notional < spec.min_notional:
            raise BinanceError(-1013, "Filter failure: NOTIONAL")
        stp = params.get("selfTradePreventionMode")
        if stp is not None and stp not in ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH",
                                           "DECREMENT"):
            raise BinanceError(-1100, "Illegal characters found in parameter 'selfTradePreventionMode'.")
        # Binance: MARKET and LIMIT default to FULL, other types to ACK
        resp_type = params.get("newOrderRespType") or ("ACK" if typ == "LIMIT_MAKER" else "FULL")
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise BinanceError(-1100, "Illegal characters found in parameter 'newOrderRespType'.")
        client_id = params.get("newClientOrderId") or f"emu-{time.time_ns():x}"
        if len(client_id) > 36:
            raise BinanceError(-1100, "Illegal characters found in parameter 'newClientOrderId'; "
                               "legal range is '^[a-zA-Z0-9-_.]{1,36}$'.")
        return {"inst": k, "side": 1 if side_text == "BUY" else -1, "typ": typ,
                "tif": tif if typ == "LIMIT" else "GTC", "price": price_ticks, "qty": lots,
                "quote_qty": quote_qty, "client_id": client_id, "stp": stp,
                "resp_type": resp_type}

    async def _place(self, request: web.Request, acct, params: Mapping[str, str]) -> dict[str, Any]:
        p = self._parse_new(params)
        self.limiter.check_order(request.remote or "?", acct.name, time.time())
        if p["typ"] == "MARKET":
            self.step()  # its lock / quantity come from the book as of now
        resp_type = p.pop("resp_type")
        pending = self.exchange.new_order(acct, **p)
        await self.wait_for(pending)
        if pending.error is not None:
            raise pending.error
        return self._new_order_json(pending.answer(), resp_type)  # as the venue answered, not as now

    async def post_order(self, request: web.Request) -> web.Response:
        acct, params = await self._signed(request)
        return web.json_response(await self._place(request, acct, params))

    def _lookup(self, acct, params: Mapping[str, str], missing_code: int) -> EmuOrder:
        k = self._inst(params)
        oid_text = params.get("orderId")
        cid = params.get("origClientOrderId")
        if not oid_text and not cid:
            raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        oid = None
        if oid_text:
            try:
                oid = int(oid_text)
            except ValueError:
                raise BinanceError(-1100, "Illegal characters found in parameter 'orderId'.") from None
        self.step()
        order = self.exchange.find_order(acct, k, oid, cid)
        if order is None:
            if missing_code == -2013:
                raise BinanceError(-2013, "Order does not exist.")
            raise BinanceError(-2011, "Unknown order sent.")
        return order

    async def get_order(self, request: web.Request) -> web.Response:
        acct, params = await self._signed(request)
        return web.json_response(self._order_json(self._lookup(acct, params, -2013)))

    async def _cancel(self, acct, params: Mapping[str, str], prefix: str = "") -> dict[str, Any]:
        names = {"orderId": prefix + ("OrderId" if prefix else "orderId"),
                 "origClientOrderId": prefix + ("OrigClientOrderId" if prefix else "origClientOrderId")}
        lookup = {"symbol": params.get("symbol", ""),
                  "orderId": params.get(names["orderId"], ""),
                  "origClientOrderId": params.get(names["origClientOrderId"], "")}
        lookup = {k: v for k, v in lookup.items() if v}
        order = self._lookup(acct, lookup, -2011)
        new_cid = params.get("newClientOrderId" if not prefix else "cancelNewClientOrderId") or order.client_id
        pending = self.exchange.cancel_order(order, new_cid)
        await self.wait_for(pending)
        if pending.error is not None:
            raise pending.error
        order = pending.answer()  # the order as the cancel found it (Pending says why)
        out = self._order_json(order)
        for k in ("stopPrice", "icebergQty", "time", "updateTime", "isWorking", "workingTime"):
            out.pop(k)
        out["origClientOrderId"] = order.client_id
        out["clientOrderId"] = new_cid
        out["transactTime"] = self._t(order.update_ns)
        return out

    async def delete_order(self, request: web.Request) -> web.Response:
        acct, params = await self._signed(request)
        return web.json_response(await self._cancel(acct, params))

    async def cancel_replace(self, request: web.Request) -> web.Response:
        acct, params = await self._signed(request)
        mode = params.get("cancelReplaceMode")
        if not mode:
            raise mandatory("cancelReplaceMode")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise BinanceError(-1100, "Illegal characters found in parameter 'cancelReplaceMode'.")
        self._parse_new(params)  # validate the new order before cancelling anything
        cancel_resp: dict[str, Any] | None = None
        cancel_fail: dict[str, Any] | None = None
        try:
            cancel_resp = await self._cancel(acct, params, prefix="cancel")
        except BinanceError as exc:
            if mode == "STOP_ON_FAILURE":
                raise BinanceError(-2022, "Order cancel-replace failed.", data={
                    "cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
                    "cancelResponse": _error_body(exc.code, exc.msg), "newOrderResponse": None}) from None
            cancel_fail = _error_body(exc.code, exc.msg)
        try:
            new_resp = await self._place(request, acct, params)
        except BinanceError as exc:
            data = {"cancelResult": "SUCCESS" if cancel_resp else "FAILURE",
                    "newOrderResult": "FAILURE",
                    "cancelResponse": cancel_resp or cancel_fail,
                    "newOrderResponse": _error_body(exc.code, exc.msg)}
            raise BinanceError(-2021, "Order cancel-replace partially failed.", data=data) from None
        return web.json_response({"cancelResult": "SUCCESS" if cancel_resp else "FAILURE",
                                  "newOrderResult": "SUCCESS",
                                  "cancelResponse": cancel_resp or cancel_fail,
                                  "newOrderResponse": new_resp})

    async def open_orders(self, request: web.Request) -> web.Response:
        acct, params = await self._signed(request)
        k = self._inst(params, required=False)
        self.step()
        return web.json_response([self._order_json(o) for o in self.exchange.open_orders(acct, k)])

    async def my_trades(self, request: web.Request) -> web.Response:
        acct, params = await self._signed(request)
        return web.json_response([self._trade_json(t) for t in self._trades_of(acct, params)])

    def _trades_of(self, acct, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """The account's trades of `symbol` that myTrades / userTrades select (`orderId`,
        `fromId`, `startTime`, `endTime`, `limit`: the newest `limit` without `fromId`)."""
        k = self._inst(params)
        self.step()
        try:
            limit = min(int(params.get("limit", "500")), 1000)
            from_id = int(params["fromId"]) if params.get("fromId") else None
            start = param_us(int(params["startTime"])) if params.get("startTime") else None
            end = param_us(int(params["endTime"]), last=True) if params.get("endTime") else None
            order_id = int(params["orderId"]) if params.get("orderId") else None
        except ValueError:
            raise BinanceError(-1100, "Illegal characters found in a parameter.") from None
        out = []
        for t in self.exchange.trades[acct.name]:
            o = t["order"]
            if o.inst != k or (order_id is not None and o.order_id != order_id):
                continue
            if from_id is not None and t["trade_id"] < from_id:
                continue
            shown_us = self.exchange.clock.shown(t["ts"], NS_PER_US)
            if (start is not None and shown_us < start) or (end is not None and shown_us > end):
                continue
            out.append(t)
        if from_id is None and len(out) > limit:
            out = out[-limit:]
        return out[:limit]

    def _trade_json(self, t: dict[str, Any]) -> dict[str, Any]:
        o = t["order"]
        return {"symbol": o.symbol, "id": t["trade_id"], "orderId": o.order_id,
                "orderListId": -1, "price": fmt(t["price"]), "qty": fmt(t["qty"]),
                "quoteQty": fmt(t["quote_qty"]), "commission": fmt(t["commission"]),
                "commissionAsset": t["commission_asset"], "time": self._t(t["ts"]),
                "isBuyer": o.side > 0, "isMaker": t["is_maker"], "isBestMatch": True}

    # ------------------------------------------------------------------ inspection --
    async def inspect_state(self, request: web.Request) -> web.Response:
        self.step()
        state = self.exchange.snapshot()
        state["market_connections"] = len(self.market_ws)
        state["user_connections"] = len(self.user_ws)
        return web.json_response(state)

    async def inspect_journal(self, request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            return web.json_response(_error_body(-1100, "since: expected an integer"), status=400)
        return web.json_response([e for e in self.exchange.journal.recent if e["seq"] >= since])

    async def list_faults(self, request: web.Request) -> web.Response:
        return web.json_response([f.to_json() for f in self.faults.faults])

    async def control_faults(self, request: web.Request) -> web.Response:
        """POST a fault table as JSON (the `[[fault]]` keys), or {"clear": true}. Immediate
        kinds (ws_disconnect, user_expire, maintenance, stale_market, update_id_gap) act now.
        A bad body is a 400 naming the key, and the plan is left as it was."""
        try:
            body = parse_body(await request.read(), "control/faults")
            if is_clear(body):
                self.faults.clear()
                self.skew_ms = 0
                self._end_active_faults()
                return web.json_response({"faults": 0})
            fault = self.faults.add(body, rest_routes(self.app.router))  # validated before it is appended
        except ConfigError as exc:
            return web.json_response(_error_body(-1100, str(exc)), status=400)
        if fault.kind in STREAM_KINDS and not body.get("after"):
            # a test wants it now, not at the scheduler's next tick
            fault.fired += 1
            await self._apply_stream_fault(fault)
        return web.json_response(fault.to_json())

    def _end_active_faults(self) -> None:
        """{"clear": true} ends what faults already started, not only the plan: a stale market
        publishes again, pending user-stream faults and an update-id gap are dropped, a
        partial-fill drought ends now, and a maintenance in progress resumes trading (its
        scheduled halt is cancelled). Without this a cleared stale_market kept the market
        silent for its whole duration with an empty fault list."""
        ex = self.exchange
        self._stale_until = 0.0
        self._user_fault = None
        self._gap_next = False
        for conn in list(self.user_ws):  # user_silent: the muted subscriptions deliver again
            conn.speak_again()
        now = ex.clock.now()
        for venue in ex.core.venues:
            ex.core.set_fill_drought(venue, now, now, 1_000_000)  # an empty window replaces it
        for handle in self._maintenance_timers:
            handle.cancel()
        self._maintenance_timers.clear()
        if ex.cancel_only or ex.halted_reason == "maintenance":
            self._resume()

    async def _apply_stream_fault(self, fault) -> None:
        """Act on a stream or venue-state fault (already counted as fired)."""
        kind = fault.kind
        ex = self.exchange
        self._log_fault(fault, "streams")
        if kind == "ws_disconnect":
            which = fault.params["stream"]
            conns: list[Any] = []
            if which in ("market", "all"):
                conns += list(self.market_ws)
            if which in ("user", "all"):
                conns += list(self.user_ws)
            for c in conns:
                await c.close(1001, "fault: disconnect")
        elif kind == "user_expire":
            for c in list(self.user_ws):
                c.terminate_subscriptions()
        elif kind == "user_silent":
            for c in list(self.user_ws):
                c.go_silent()
        elif kind == "stale_market":
            self._stale_until = time.monotonic() + float(fault.params["duration"])
        elif kind == "update_id_gap":
            self._gap_next = True
        elif kind in ("user_duplicate", "user_reorder", "user_drop"):
            self._user_fault = (kind, int(fault.params["events"]))
        elif kind == "user_delay":
            self._user_fault = (kind, int(fault.params["events"]))
            self._user_delay_s = float(fault.params["delay"])
        elif kind == "partial_fill_drought":  # the backtest's drought, in market time from now
            now = ex.clock.now()
            end = now + int(float(fault.params["duration"]) * ex.clock.speed * 1e9)
            for venue in ex.core.venues:
                ex.core.set_fill_drought(venue, now, end, fraction_ppm(fault.params["fraction"]))
        elif kind == "maintenance":
            ex.cancel_only = True
            ex.journal.write("maintenance", ex.clock.now(), self._ms(ex.clock.now()), phase="cancel_only")
            self._maintenance_timers.append(asyncio.get_running_loop().call_later(
                float(fault.params["duration"]), self._halt, float(fault.params["halt"])))

    def _halt(self, halt_s: float) -> None:
        ex = self.exchange
        ex.halted_reason = "maintenance"
        ex.journal.write("maintenance", ex.clock.now(), self._ms(ex.clock.now()), phase="halt")
        self._maintenance_timers.append(asyncio.get_running_loop().call_later(halt_s, self._resume))

    def _resume(self) -> None:
        ex = self.exchange
        if ex.halted_reason == "maintenance":
            ex.halted_reason = ""
        ex.cancel_only = False
        ex.journal.write("maintenance", ex.clock.now(), self._ms(ex.clock.now()), phase="resume")

    async def control_step(self, request: web.Request) -> web.Response:
        """Stepped clock: {"to_ns": market ns} or {"by_ns": ns}; returns the new market time.
        A bad body (venues.emulator.control.parse_step) is a 400 and the clock stays."""
        clock = self.exchange.clock
        try:
            target = parse_step(parse_body(await request.read(), "control/step"), clock.now())
        except ConfigError as exc:
            return web.json_response(_error_body(-1100, str(exc)), status=400)
        if not clock.stepped:
            return web.json_response(_error_body(-1100, "the clock is not stepped (start with stepped=True)"),
                                     status=400)
        clock.step_to(target)
        self.step()
        return web.json_response({"market_ns": clock.now()})

    async def control_limits(self, request: web.Request) -> web.Response:
        """Set rate limits / websocket rules: weight_per_minute, orders_per_10s,
        orders_per_minute (futures), ban_after,
        ban_s, ban_grace_ms (429s of requests arriving this soon after a hold's first 429 do
        not count toward a ban: ratelimit module doc), ping_interval, max_connection_s, max_incoming_per_s, skew_ms, max_num_orders
        (the MAX_NUM_ORDERS filter), stream_first (an order's user events are written
        before its REST reply); reset (true: forget the counters, violations and bans).
        The whole body is validated first (venues.emulator.control.LIMIT_KEYS: types and
        minimums): a bad key is a 400 naming it and nothing is applied."""
        try:
            limits = parse_limits(parse_body(await request.read(), "control/limits"))
        except ConfigError as exc:
            return web.json_response(_error_body(-1100, str(exc)), status=400)
        if limits.get("reset"):
            self.limiter.reset()
        for key in ("weight_per_minute", "orders_per_10s", "orders_per_minute", "ban_after", "ban_s"):
            if key in limits:
                setattr(self.limiter, key, limits[key])
        if "ban_grace_ms" in limits:
            self.limiter.ban_grace_s = limits["ban_grace_ms"] / 1000
        for key in ("ping_interval", "max_connection_s", "max_incoming_per_s", "skew_ms", "stream_first"):
            if key in limits:
                setattr(self, key, limits[key])
        if "max_num_orders" in limits:
            self.exchange.max_num_orders = limits["max_num_orders"]
        return web.json_response({"ok": True, **limits})

    # ------------------------------------------------------------------ websockets --
    def _depth_msg(self, k: int, diff, t: int, unit_ns: int = NS_PER_MS) -> str:
        """One depthUpdate; `t` = the window's end (market ns), shown as the event time E
        (in the connection's time unit, `unit_ns` ns each)."""
        first, last, bids, asks = diff
        spec = self._spec(k)
        return json.dumps({
            "e": "depthUpdate", "E": self._t(t, unit_ns), "s": self.exchange.symbols[k], "U": first, "u": last,
            "b": [[fmt(spec.ticks_to_price(p)), fmt(spec.lots_to_qty(q))] for p, q in bids],
            "a": [[fmt(spec.ticks_to_price(p)), fmt(spec.lots_to_qty(q))] for p, q in asks],
        })

    def _ticker_msg(self, k: int) -> dict[str, Any]:
        spec = self._spec(k)
        book = self.exchange.books[k]
        bid, bq, ask, aq = book.top()
        return {"u": book.update_id, "s": self.exchange.symbols[k],
                "b": fmt(spec.ticks_to_price(bid)), "B": fmt(spec.lots_to_qty(bq)),
                "a": fmt(spec.ticks_to_price(ask)), "A": fmt(spec.lots_to_qty(aq))}

    def _publish_trades(self, k: int, rows, first_id: int) -> None:
        """`<symbol>@trade` messages; `t` = the trade id (first_id, first_id + 1, ...),
        `m` = the buyer was the maker (the row's side is the aggressor's)."""
        if not any(c.wants(k, "trade") for c in self.market_ws):
            return
        spec = self._spec(k)
        symbol = self.exchange.symbols[k]
        for n, row in enumerate(rows):
            msgs: dict[int, str] = {}  # by the connection's time unit
            for c in list(self.market_ws):
                if not c.wants(k, "trade"):
                    continue
                if c.unit_ns not in msgs:
                    stamp = self._t(int(row["exch_ts"]), c.unit_ns)
                    msgs[c.unit_ns] = json.dumps({"e": "trade", "E": stamp, "s": symbol, "t": first_id + n,
                                                  "p": fmt(spec.ticks_to_price(int(row["price"]))),
                                                  "q": fmt(spec.lots_to_qty(int(row["qty"]))), "T": stamp,
                                                  "m": int(row["side"]) < 0, "M": True})
                c.send_raw(msgs[c.unit_ns])

    def _ws_unit(self, request: web.Request) -> int:
        """A websocket's time unit from its URL's `timeUnit` (Binance's streams and
        websocket API: every time field of the connection's messages in that unit); a bad
        value is refused before the upgrade (HTTP 400, Binance's error body)."""
        if not self.time_units:
            return NS_PER_MS
        try:
            return time_unit_ns(request.query.get("timeUnit"), "parameter 'timeUnit'")
        except BinanceError as exc:
            raise web.HTTPBadRequest(text=json.dumps(exc.body()), content_type="application/json") from None

    async def market_socket(self, request: web.Request) -> web.WebSocketResponse:
        unit = self._ws_unit(request)
        ws = web.WebSocketResponse(heartbeat=self.ping_interval, autoping=True)
        await ws.prepare(request)
        conn = self._market_connection(ws)
        conn.unit_ns = unit
        self.market_ws.add(conn)
        try:
            await conn.run()
        finally:
            self.market_ws.discard(conn)
        return ws

    def _market_connection(self, ws: web.WebSocketResponse) -> MarketConnection:
        return MarketConnection(self, ws)

    async def user_socket(self, request: web.Request) -> web.WebSocketResponse:
        unit = self._ws_unit(request)
        ws = web.WebSocketResponse(heartbeat=self.ping_interval, autoping=True)
        await ws.prepare(request)
        conn = UserConnection(self, ws)
        conn.unit_ns = unit
        self.user_ws.add(conn)
        try:
            await conn.run()
        finally:
            self.user_ws.discard(conn)
        return ws

    def _deliver_user(self, events: list[UserEvent]) -> None:
        """Send user events, through the user-stream fault in force: drop or duplicate the
        next N, hold the next N back and send them in reverse order (flushed after 1 s if
        fewer come), or delay the next N by `delay` s with every later event queued behind
        them (the stream stalls, its order kept). Called on every clock step, so held and
        delayed events go out when due even if nothing new happens."""
        now = time.monotonic()
        if self._user_fault is not None and events:
            kind, n = self._user_fault
            head, events = events[:n], events[n:]
            left = n - len(head)
            self._user_fault = (kind, left) if left > 0 else None
            if kind == "user_duplicate":
                events = [e for e in head for _ in (0, 1)] + events
            elif kind == "user_reorder":
                self._held.extend(head)
                self._held_since = self._held_since or now
            elif kind == "user_delay":
                self._delayed.extend((now + self._user_delay_s, e) for e in head)
            # user_drop: head is gone
        if self._held and (self._user_fault is None or now - self._held_since > 1.0):
            events = self._held[::-1] + events
            self._held = []
            self._held_since = 0.0
            self._user_fault = None
        if self._delayed:
            self._delayed.extend((0.0, e) for e in events)  # behind the delayed ones
            events = []
            while self._delayed and self._delayed[0][0] <= now:
                events.append(self._delayed.popleft()[1])
        if not events:
            return
        for conn in list(self.user_ws):
            for ev in events:
                conn.send_event(ev)

    def user_payload(self, ev: UserEvent, unit_ns: int = NS_PER_MS) -> dict[str, Any]:
        """One user-stream event; its time fields (E, T, O, W, u) in the connection's unit."""
        ex = self.exchange
        acct = ev.account
        t = ev.payload["ts"]
        ms = self._t(t, unit_ns)
        if ev.kind == "balance":
            return {"e": "outboundAccountPosition", "E": ms, "u": self._t(acct.update_ns, unit_ns),
                    "B": [{"a": a, "f": fmt(acct.free.get(a, Decimal(0))),
                           "l": fmt(acct.locked.get(a, Decimal(0)))} for a in acct.assets()]}
        o = ev.order
        assert o is not None
        spec = self._spec(o.inst)
        fill = ev.payload["fill"]
        exec_type = ev.payload["exec_type"]
        canceled = exec_type == "CANCELED"
        return {
            "e": "executionReport", "E": ms, "s": o.symbol,
            "c": o.cancel_client_id if canceled and o.cancel_client_id else o.client_id,
            "S": "BUY" if o.side > 0 else "SELL", "o": o.type, "f": o.tif,
            "q": fmt(spec.lots_to_qty(o.qty)), "p": fmt(spec.ticks_to_price(o.price)),
            "P": "0.00000000", "F": "0.00000000", "g": -1,
            "C": o.client_id if canceled else "", "x": exec_type, "X": ev.payload["status"],
            "r": "NONE", "i": o.order_id,
            "l": fmt(fill["qty"]) if fill else "0.00000000",
            "z": fmt(spec.lots_to_qty(ev.payload["executed"])),
            "L": fmt(fill["price"]) if fill else "0.00000000",
            "n": fmt(fill["commission"]) if fill else "0",
            "N": fill["commission_asset"] if fill else None,
            "T": ms, "t": fill["trade_id"] if fill else -1, "I": ex.journal.count,
            "w": ev.payload["status"] in ("NEW", "PARTIALLY_FILLED"),
            "m": bool(fill["is_maker"]) if fill else False, "M": False, "O": self._t(o.time_ns, unit_ns),
            "Z": fmt(ev.payload["cum_quote"]),
            "Y": fmt(fill["quote_qty"]) if fill else "0.00000000",
            "Q": fmt(o.quote_qty or Decimal(0)), "W": self._t(o.working_ns or o.time_ns, unit_ns),
            "V": o.stp,
        }


def symbol_info(symbol: str, spec: Instrument, status: str, max_num_orders: int = 200) -> dict[str, Any]:
    """One exchangeInfo symbol, shaped as Binance's (filters from our instrument spec).

    Lists only filters the emulator enforces: no MAX_NUM_ALGO_ORDERS (stop and
    take-profit orders are refused with -1014, so no algo order can ever be open), no
    PERCENT_PRICE / ICEBERG_PARTS."""
    precision = max(0, -spec.lot_size.normalize().as_tuple().exponent,
                    -spec.tick_size.normalize().as_tuple().exponent, 8)
    return {
        "symbol": symbol, "status": status, "baseAsset": spec.base, "baseAssetPrecision": precision,
        "quoteAsset": spec.quote, "quotePrecision": precision, "quoteAssetPrecision": precision,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "icebergAllowed": False, "ocoAllowed": False, "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False, "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": fmt(spec.tick_size),
             "maxPrice": "1000000000.00000000", "tickSize": fmt(spec.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": fmt(max(spec.min_qty, spec.lot_size)),
             "maxQty": "9000000000.00000000", "stepSize": fmt(spec.lot_size)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": fmt(max(spec.min_qty, spec.lot_size)),
             "maxQty": "9000000000.00000000", "stepSize": fmt(spec.lot_size)},
            {"filterType": "NOTIONAL", "minNotional": fmt(spec.min_notional), "applyMinToMarket": True,
             "maxNotional": "9000000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 0},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": max_num_orders},
        ],
        "permissions": ["SPOT"], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT"],
    }


class _Connection:
    """Common websocket rules: at most `max_incoming_per_s` messages a second (else close
    1008, as Binance), a maximum connection age, pings by aiohttp's heartbeat."""

    def __init__(self, server: BinanceServer, ws: web.WebSocketResponse) -> None:
        self.server = server
        self.ws = ws
        self.opened = time.monotonic()
        self.unit_ns = NS_PER_MS  # the URL's timeUnit (BinanceServer._ws_unit)
        self._window = (0, 0)
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._writer: asyncio.Future | None = None

    def send_raw(self, text: str) -> None:
        """Queue a message; one writer task per connection sends them in order (a task per
        message would cost more than the send itself at thousands of messages a second)."""
        if self.ws.closed:
            return
        self._outbox.put_nowait(text)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        try:
            while not self._outbox.empty():
                await self.ws.send_str(self._outbox.get_nowait())
        except (ConnectionError, RuntimeError):
            pass

    async def close(self, code: int, reason: str) -> None:
        if not self.ws.closed:
            await self.ws.close(code=code, message=reason.encode())

    async def run(self) -> None:
        limit_task = asyncio.ensure_future(self._age_limit())
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                second = int(time.monotonic())
                w, n = self._window
                n = n + 1 if w == second else 1
                self._window = (second, n)
                if n > self.server.max_incoming_per_s:
                    await self.close(1008, "Too many requests")
                    break
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    await self.ws.send_str(json.dumps({"error": {"code": 3, "msg": "Invalid JSON"}}))
                    continue
                await self.handle(data)
        except ConnectionResetError as exc:  # a reply to a client that dropped meanwhile: routine
            from venues.connection_resets import log

            log.info("websocket client dropped before a reply (%s): connection closed", exc)
        finally:
            limit_task.cancel()

    async def _age_limit(self) -> None:
        await asyncio.sleep(self.server.max_connection_s)
        await self.close(1001, "24 hour connection limit")

    async def handle(self, data: Any) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class MarketConnection(_Connection):
    """`/ws/{n}`: SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS of depth, trade, bookTicker."""

    KINDS: tuple[str, ...] = ("depth", "trade", "bookTicker")  # stream kinds served

    def __init__(self, server: BinanceServer, ws: web.WebSocketResponse) -> None:
        super().__init__(server, ws)
        self.streams: set[tuple[int, str]] = set()
        self._last_ticker: dict[int, tuple] = {}

    def wants(self, k: int, kind: str) -> bool:
        return (k, kind) in self.streams

    def send_depth(self, k: int, msg: str) -> None:
        if (k, "depth") in self.streams:
            self.send_raw(msg)

    def send_tickers(self, tops: dict[int, tuple[int, int, int, int]]) -> None:
        """A bookTicker message per subscribed symbol whose top changed (`tops` caches
        each book's top for this step, shared by all connections)."""
        for k, kind in list(self.streams):
            if kind != "bookTicker":
                continue
            top = tops.get(k)
            if top is None:
                top = tops[k] = self.server.exchange.books[k].top()
            if self._last_ticker.get(k) != top:
                self._last_ticker[k] = top
                self.send_raw(json.dumps(self.server._ticker_msg(k)))

    async def handle(self, data: Any) -> None:
        if not isinstance(data, dict):
            await self.ws.send_str(json.dumps({"error": {"code": 3, "msg": "Invalid JSON"}}))
            return
        method = data.get("method")
        req_id = data.get("id")
        if method == "LIST_SUBSCRIPTIONS":
            names = [f"{self.server.exchange.symbols[k].lower()}@{kind}" for k, kind in sorted(self.streams)]
            await self.ws.send_str(json.dumps({"result": names, "id": req_id}))
            return
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            await self.ws.send_str(json.dumps({"error": {"code": 2, "msg": f"Invalid request: unknown method '{method}'"},
                                               "id": req_id}))
            return
        parsed = []
        for name in data.get("params") or []:
            sym, _, kind = str(name).partition("@")
            k = self.server.exchange.symbol_index.get(sym.upper())
            base_kind = kind.split("@")[0]
            if k is None or base_kind not in self.KINDS:
                await self.ws.send_str(json.dumps({"error": {"code": 2, "msg": f"Invalid request: invalid stream {name}"},
                                                   "id": req_id}))
                return
            parsed.append((k, base_kind))
        for item in parsed:
            (self.streams.add if method == "SUBSCRIBE" else self.streams.discard)(item)
        await self.ws.send_str(json.dumps({"result": None, "id": req_id}))


class UserConnection(_Connection):
    """`/ws-api/v3`: the websocket-API user data session (subscribe by signature)."""

    def __init__(self, server: BinanceServer, ws: web.WebSocketResponse) -> None:
        super().__init__(server, ws)
        self.subscriptions: dict[int, Any] = {}  # subscription id -> account
        self.muted: set[int] = set()  # subscriptions a user_silent fault silenced
        self._next_sub = 0

    def send_event(self, ev: UserEvent) -> None:
        for sub_id, acct in self.subscriptions.items():
            if acct is ev.account and sub_id not in self.muted:
                self.send_raw(json.dumps({"subscriptionId": sub_id,
                                          "event": self.server.user_payload(ev, self.unit_ns)}))

    def go_silent(self) -> None:
        """user_silent fault: the subscriptions open now receive nothing more, with no error,
        no eventStreamTerminated and the socket left open (pings still answered), as a
        server-side subscription that died quietly; a later subscription (on this
        connection or a new one) is served again."""
        self.muted.update(self.subscriptions)

    def speak_again(self) -> None:
        """{"clear": true}: the muted subscriptions deliver again."""
        self.muted.clear()

    def terminate_subscriptions(self) -> None:
        """user_expire fault: the session's subscriptions end, as when a session expires."""
        ms = self.server._t(self.server.exchange.clock.now(), self.unit_ns)
        for sub_id in list(self.subscriptions):
            self.send_raw(json.dumps({"subscriptionId": sub_id,
                                      "event": {"e": "eventStreamTerminated", "E": ms}}))
        self.subscriptions.clear()

    async def handle(self, data: Any) -> None:
        req_id = data.get("id") if isinstance(data, dict) else None
        try:
            if not isinstance(data, dict):
                raise BinanceError(-1000, "Invalid JSON")
            method = data.get("method")
            params = data.get("params") or {}
            if method == "userDataStream.subscribe.signature":
                acct = self._check_signature(params)
                sub_id = self._next_sub
                self._next_sub += 1
                self.subscriptions[sub_id] = acct
                await self.ws.send_str(json.dumps({"id": req_id, "status": 200,
                                                   "result": {"subscriptionId": sub_id}}))
            elif method == "userDataStream.unsubscribe":
                sub = params.get("subscriptionId")
                if sub is None:
                    self.subscriptions.clear()
                else:
                    self.subscriptions.pop(int(sub), None)
                await self.ws.send_str(json.dumps({"id": req_id, "status": 200, "result": {}}))
            elif method == "ping":
                await self.ws.send_str(json.dumps({"id": req_id, "status": 200, "result": {}}))
            elif method == "time":
                await self.ws.send_str(json.dumps({"id": req_id, "status": 200,
                                                   "result": {"serverTime": self.server._server_time(self.unit_ns)}}))
            else:
                raise BinanceError(-1000, f"Unsupported method '{method}' (the emulator serves "
                                   "userDataStream.subscribe.signature, unsubscribe, ping, time).")
        except BinanceError as exc:
            await self.ws.send_str(json.dumps({"id": req_id, "status": exc.status,
                                               "error": {"code": exc.code, "msg": exc.msg}}))

    def _check_signature(self, params: dict[str, Any]) -> Any:
        key = params.get("apiKey")
        acct = self.server.exchange.by_key.get(key or "")
        if acct is None:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
        signature = params.get("signature")
        if not signature:
            raise mandatory("signature")
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "signature")
        expected = hmac.new(acct.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(signature).lower()):
            raise BinanceError(-1022, "Signature for this request is not valid.")
        self.server._check_time(params, 0)
        return acct


def _merge_windows(updates: list[tuple[int, int, tuple]]) -> list[tuple[int, int, tuple]]:
    """Consecutive depth windows merged into one diff per instrument: the first U, the last
    u, each level at its last quantity; stamped with the last window's end."""
    merged: dict[int, list] = {}
    for t, k, (first, last, bids, asks) in updates:
        if k not in merged:
            merged[k] = [t, first, last, {}, {}]
        m = merged[k]
        m[0], m[2] = t, last
        m[3].update(bids)
        m[4].update(asks)
    return [(t, k, (first, last, sorted(b.items(), reverse=True), sorted(a.items())))
            for k, (t, first, last, b, a) in sorted(merged.items(), key=lambda kv: kv[1][0])]
