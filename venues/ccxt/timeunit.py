"""Binance's microsecond venue times for a ccxt client: ask for them, and read them.

Binance's spot API stamps every time field in milliseconds unless the client asks for
microseconds (spot API docs, CHANGELOG 2024-12-09 "Microsecond support"): a REST request
with the header `X-MBX-TIME-UNIT: MICROSECOND` gets its response time fields
(`transactTime`, `updateTime`, `workingTime`, `time`, `serverTime`) in µs; a websocket whose
URL carries `timeUnit=MICROSECOND` (the market streams, the websocket API's user data
session) gets every event time of its messages (`E`, `T`, `O`, `W`, ...) in µs. Timestamp
parameters of requests (`timestamp`, `startTime`, `endTime`) may be ms or µs either way.
The USDⓈ-M / COIN-M futures APIs document no such option: only ccxt's `binance` (spot) is
asked.

Why ask: a venue time in whole ms is too coarse for a quote at the touch. The touch of a
liquid book changes about once a millisecond, and a backtest that places a recorded order's
arrival somewhere in its millisecond sends an order that rested and filled live into a
touch that had moved (bench/README.md "Parity").

ccxt (4.5) has no option for it and its parsers take every time field as ms. So the unit
is a property of the client: `ask_microseconds` sets the header on every REST request (ccxt
merges `exchange.headers` into each), the parameter on the websocket URLs, and records the
unit on the client; every place that turns a venue time into ns multiplies by
`unit_ns(exchange)`, whether it reads Binance's raw field (`info`) or ccxt's unified
`timestamp` (the same number: ccxt copies the field). ccxt's `datetime` strings of such a
client are wrong (its iso8601 gives None past the year 9999) and are never read.
"""

from __future__ import annotations

from typing import Any

NS_PER_MS = 1_000_000
NS_PER_US = 1_000
HEADER = "X-MBX-TIME-UNIT"
_ATTR = "tickparity_unit_ns"
_QUERY = "timeUnit=MICROSECOND"
#: the ccxt ids whose API documents the microsecond option (Binance spot)
MICROSECOND_VENUES = frozenset({"binance"})


def unit_ns(exchange: Any) -> int:
    """ns per unit of the venue times `exchange` receives: NS_PER_US after
    `ask_microseconds`, else NS_PER_MS (ccxt's and Binance's default)."""
    return int(getattr(exchange, _ATTR, NS_PER_MS))


def _with_query(url: str) -> str:
    return url + ("&" if "?" in url else "?") + _QUERY


def ask_microseconds(exchange: Any) -> bool:
    """Ask the venue behind the ccxt.pro client `exchange` for µs venue times (module doc),
    before any request or subscription. Returns False, changing nothing, for an exchange
    whose API does not document the option (anything but ccxt's `binance`)."""
    if str(getattr(exchange, "id", "")) not in MICROSECOND_VENUES or unit_ns(exchange) == NS_PER_US:
        return unit_ns(exchange) == NS_PER_US
    exchange.headers = dict(exchange.headers or {}) | {HEADER: "MICROSECOND"}
    ws = exchange.urls["api"].get("ws") or {}
    if isinstance(ws.get("ws-api"), dict) and ws["ws-api"].get("spot"):
        ws["ws-api"]["spot"] = _with_query(ws["ws-api"]["spot"])  # the user data session
    stream = exchange.stream

    def stream_with_unit(type: str, subscription_hash: str, *args: Any) -> str:
        # a market stream's URL is `urls.api.ws[type] + '/' + stream(...)` (ccxt.pro binance)
        name = stream(type, subscription_hash, *args)
        return _with_query(name) if type == "spot" else name

    exchange.stream = stream_with_unit
    setattr(exchange, _ATTR, NS_PER_US)
    return True
