"""When each order request left for the venue: aiohttp's request tracing on ccxt's session.

A venue's refusal (Binance's -2010 "Order would immediately match and take." for a
post-only order that would cross) carries no venue time, so the session estimates the
request's arrival (modes/live/recording.py round_trip; docs/live.md "A refused order's
arrival"). From the decision's time and the reply's alone, every delay of the session's
own (a stalled event loop before the request left, a reply read late) lands in the
estimate. The moment the
request's body was written to the socket leaves only the wire and the venue's read of it,
which the accepted orders around it measure (their venue time less their own write time).

`WireTimes(clock)` is one `aiohttp.TraceConfig` per exchange: `install(exchange)` (in the
running event loop, before the exchange's first REST call) gives ccxt an aiohttp session
with the trace, built as ccxt builds its own (its TLS context and connector settings:
ccxt.async_support.base.exchange.Exchange.open); `pop(client_id)` is the local time (the
session's clock, ns) at which the last request carrying that `newClientOrderId` (a submit;
Binance's cancel-replace too) was written, `pop(client_id, "cancel")` the same for a cancel
(its `origClientOrderId`); None for a request that never left or a venue whose client is
not aiohttp's.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

_CLIENT_ID = re.compile(rb"(?:^|&)newClientOrderId=([^&]+)")
#: a submit whose reply never came is forgotten after this many newer ones (a bounded map)
KEEP = 4096


class WireTimes:
    """The local time each order request was written (module doc); `clock()`: ns."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self.clock = clock
        self._at: dict[tuple[str, str], int] = {}  # (command, client id) -> written at

    def install(self, exchange: Any) -> None:
        """Give `exchange` (a ccxt async client, not yet opened) a traced aiohttp session;
        call inside the running loop. An exchange that already has a session (opened, or
        given one by its config) is left alone: its requests have no wire time."""
        import aiohttp

        if getattr(exchange, "session", None) is not None or not getattr(exchange, "own_session", False):
            return
        exchange.session = False  # not None: open() sets the loop and TLS context and makes no session
        try:
            exchange.open()
        finally:
            exchange.session = None  # on failure ccxt makes its own untraced session as before
        trace = aiohttp.TraceConfig()
        trace.on_request_chunk_sent.append(self._chunk_sent)
        trace.on_request_headers_sent.append(self._headers_sent)
        connector = aiohttp.TCPConnector(ssl=exchange.ssl_context, enable_cleanup_closed=True,
                                         family=socket.AF_UNSPEC, happy_eyeballs_delay=0)
        exchange.tcp_connector = connector
        exchange.session = aiohttp.ClientSession(connector=connector, trust_env=exchange.aiohttp_trust_env,
                                                 trace_configs=[trace])

    async def _chunk_sent(self, session: Any, ctx: Any, params: Any) -> None:
        """A request body written to the transport: a submit's form carries its client id."""
        m = _CLIENT_ID.search(params.chunk or b"")
        if m:
            self._note("submit", m.group(1).decode())

    async def _headers_sent(self, session: Any, ctx: Any, params: Any) -> None:
        """A request with no body (Binance's DELETE /api/v3/order: its query names the order
        by origClientOrderId) is written with its headers."""
        if params.method == "DELETE":
            cid = params.url.query.get("origClientOrderId")
            if cid:
                self._note("cancel", cid)

    def _note(self, command: str, client_id: str) -> None:
        if len(self._at) >= KEEP:
            self._at.pop(next(iter(self._at)))
        self._at[(command, unquote(client_id))] = self.clock()

    def pop(self, client_id: str, command: str = "submit") -> int | None:
        """When the latest `command` ("submit": a new order, or a cancel-replace; "cancel")
        naming `client_id` was written (local ns), or None; forgotten once asked."""
        return self._at.pop(("cancel" if command == "cancel" else "submit", client_id), None)
