"""A tap on ccxt's REST replies: the HTTP status, headers and body of each request.

Why: ccxt's exception classes alone cannot tell a 401 from a transient 429 (on a non-Binance
host a -2015 becomes DDoSProtection once a private call succeeded), and the venue's
used-weight headers are the only way to see the weight other processes on the same IP
spent. ccxt calls `exchange.on_rest_response(status, reason, url, method, headers, body,
...)` for every reply that arrived (never for a lost one); the tap wraps that method on the
instance (ccxt itself is unmodified) and writes into a slot bound to the current asyncio
task through a ContextVar, so concurrent requests never see each other's replies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Reply:
    """What came back for one request; `status` None = no reply arrived (lost, refused, timed out)."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    url: str = ""
    method: str = ""


_SLOT: ContextVar[Reply | None] = ContextVar("tickparity_ccxt_reply", default=None)


class ResponseTap:
    """Installed once per ccxt client; `capture()` around each call yields its Reply.

    `listeners` get (status, headers) of every reply, captured or not (the rate limiter's
    correction from X-MBX-USED-WEIGHT-1M and Retry-After).
    """

    def __init__(self) -> None:
        self.listeners: list[Callable[[int, dict[str, str]], None]] = []

    @classmethod
    def install(cls, exchange: Any) -> ResponseTap:
        existing = getattr(exchange, "_tickparity_tap", None)
        if existing is not None:
            return existing
        tap = cls()
        original = exchange.on_rest_response

        def on_rest_response(code, reason, url, method, response_headers, response_body,
                             request_headers, request_body):
            slot = _SLOT.get()
            headers = {str(k): str(v) for k, v in (response_headers or {}).items()}
            if slot is not None:
                slot.status, slot.headers, slot.url, slot.method = int(code), headers, url, method
                slot.body = response_body if isinstance(response_body, str) else ""
            for listener in tap.listeners:
                listener(int(code), headers)
            return original(code, reason, url, method, response_headers, response_body,
                            request_headers, request_body)

        exchange.on_rest_response = on_rest_response
        exchange._tickparity_tap = tap
        return tap

    @staticmethod
    @contextlib.contextmanager
    def capture() -> Iterator[Reply]:
        """The Reply of the ccxt call made inside the block (same task / thread)."""
        reply = Reply()
        token = _SLOT.set(reply)
        try:
            yield reply
        finally:
            _SLOT.reset(token)
