"""Binance's REST rate limits: request weight per IP per minute, orders per account per
window (spot: 10 s and day; USDⓈ-M futures: 10 s and minute; COIN-M: minute), 429 with
Retry-After, and a 418 ban for clients that do not back off. The one place for Binance's
weights and limits: the emulator enforces them and the live client's token bucket
(venues.ccxt.ratelimit) spends them.

Sources: Binance spot API docs, "LIMITS" (REQUEST_WEIGHT 6,000 / 1 MINUTE per IP, ORDERS
50 / 10 SECOND and 160,000 / 1 DAY per account; "Repeatedly violating rate limits and/or
failing to back off after receiving 429s will result in an automated IP ban (HTTP status
418)", bans last 2 minutes to 3 days); USDⓈ-M futures (developers.binance.com/docs/
derivatives/usds-margined-futures/general-info, "LIMITS"): REQUEST_WEIGHT 2,400 / minute per
IP, ORDERS 1,200 / minute and 300 / 10 s per account; COIN-M
(.../coin-margined-futures/general-info): REQUEST_WEIGHT 2,400 / minute, ORDERS 1,200 /
minute. Windows are fixed intervals of wall time, as Binance counts them; a client may
have `ban_after` counted 429s in a hold: the next counted one (still answered 429) starts a
ban, every request after it a 418, each ban twice as long as the last (capped at 3 days).
The simulated venue's `rate_limit` (venues/sim/faults.py) follows the same rule.

Which 429s count toward the ban: Binance bans for "failing to back off after receiving
429s". A request that arrives less than `ban_grace_s` after the first 429 of a hold was
sent could not have been held back by it: the client sent it before that 429 reached it
(a market maker's refresh of 2 cancels and 2 submits, all in flight when the hold began).
Such 429s are still answered 429 but do not count; every later one does. Why 200 ms by
default: Binance publishes no figure; it covers a request round trip to a far region
(about 150-250 ms to Tokyo from Europe) and, over loopback, a loaded client's scheduling
of requests it already started (tens of ms on 2 busy cores), while a client that really
keeps calling through a hold of seconds is still banned after `ban_after` more requests.
The simulated venue's rule is the same idea in market time: it counts a request only
when sent after the client received the 429 (venues/sim/faults.py `_told_at`). A hold
(an "episode") starts with a 429 sent when no earlier 429's Retry-After still runs; a
client that waited the Retry-After out and meets a new 429 gets the grace again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from venues.emulator.exchange import BinanceError

# request weights of the endpoints we serve (Binance spot docs, 2025)
WEIGHTS = {
    ("GET", "/api/v3/ping"): 1,
    ("GET", "/api/v3/time"): 1,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/account"): 20,
    ("POST", "/api/v3/order"): 1,
    ("GET", "/api/v3/order"): 4,
    ("DELETE", "/api/v3/order"): 1,
    ("POST", "/api/v3/order/cancelReplace"): 1,
    ("GET", "/api/v3/myTrades"): 20,
    ("GET", "/api/v3/ticker/bookTicker"): 2,
}
# request weights of the futures endpoints we serve, each from its page of Binance's
# derivatives docs (developers.binance.com/docs/derivatives/usds-margined-futures/... and
# .../coin-margined-futures/..., "Request Weight"); the ones that depend on a parameter are
# in futures_weight. A new order weighs 0 on the IP limit ("1 on 10s order rate limit;
# 1 on 1min order rate limit; 0 on IP rate limit"): it counts on the ORDERS limits only.
FUTURES_WEIGHTS = {
    ("GET", "/fapi/v1/ping"): 1, ("GET", "/fapi/v1/time"): 1, ("GET", "/fapi/v1/exchangeInfo"): 1,
    ("GET", "/fapi/v1/premiumIndex"): 1,
    ("POST", "/fapi/v1/order"): 0, ("GET", "/fapi/v1/order"): 1, ("DELETE", "/fapi/v1/order"): 1,
    ("GET", "/fapi/v1/userTrades"): 5, ("GET", "/fapi/v1/income"): 30,
    ("GET", "/fapi/v2/account"): 5, ("GET", "/fapi/v3/account"): 5,
    ("GET", "/fapi/v2/balance"): 5, ("GET", "/fapi/v3/balance"): 5,
    ("GET", "/fapi/v2/positionRisk"): 5, ("GET", "/fapi/v3/positionRisk"): 5,
    ("GET", "/fapi/v1/leverageBracket"): 1, ("POST", "/fapi/v1/leverage"): 1, ("POST", "/fapi/v1/marginType"): 1,
    ("POST", "/fapi/v1/listenKey"): 1, ("PUT", "/fapi/v1/listenKey"): 1, ("DELETE", "/fapi/v1/listenKey"): 1,
    ("GET", "/dapi/v1/ping"): 1, ("GET", "/dapi/v1/time"): 1, ("GET", "/dapi/v1/exchangeInfo"): 1,
    ("GET", "/dapi/v1/premiumIndex"): 10,
    ("POST", "/dapi/v1/order"): 0, ("GET", "/dapi/v1/order"): 1, ("DELETE", "/dapi/v1/order"): 1,
    ("GET", "/dapi/v1/income"): 20, ("GET", "/dapi/v1/account"): 5, ("GET", "/dapi/v1/balance"): 1,
    ("GET", "/dapi/v1/positionRisk"): 1, ("GET", "/dapi/v1/leverageBracket"): 1,
    ("GET", "/dapi/v2/leverageBracket"): 1, ("POST", "/dapi/v1/leverage"): 1, ("POST", "/dapi/v1/marginType"): 1,
    ("POST", "/dapi/v1/listenKey"): 1, ("PUT", "/dapi/v1/listenKey"): 1, ("DELETE", "/dapi/v1/listenKey"): 1,
}
ORDER_ENDPOINTS = {("POST", "/api/v3/order"), ("POST", "/api/v3/order/cancelReplace"),
                   ("POST", "/fapi/v1/order"), ("POST", "/dapi/v1/order")}
MAX_BAN_S = 3 * 86400
#: each Binance API's limits: (weight per minute, orders per 10 s, per minute, per day;
#: None = no such window), by ccxt venue id (module doc for the sources)
LIMITS: dict[str, tuple[int, int | None, int | None, int | None]] = {
    "binance": (6000, 50, None, 160_000),
    "binanceusdm": (2400, 300, 1200, None),
    "binancecoinm": (2400, None, 1200, None),
}
#: the order-count windows, in seconds, with the suffix of their reply header
ORDER_WINDOWS = ((10, "10S"), (60, "1M"), (86400, "1D"))


def depth_weight(limit: int) -> int:
    """GET /api/v3/depth weight by limit (1-100: 5, 101-500: 25, 501-1000: 50, more: 250)."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def futures_weight(method: str, path: str, query: dict[str, str]) -> int:
    """A /fapi or /dapi request's weight (FUTURES_WEIGHTS; by parameter: depth 2 for a
    limit up to 50, 5 for 100, 10 for 500, 20 for 1000 (default limit 500); openOrders 1
    with a symbol, 40 without; forceOrders 20 / 50; bookTicker 2 / 5; COIN-M userTrades 20
    with a symbol, 40 by pair). Unlisted endpoints weigh 1."""
    tail = path.split("/", 3)[-1]
    has_symbol = bool(query.get("symbol"))
    if tail == "depth":
        try:
            limit = int(query.get("limit", "500"))
        except ValueError:
            limit = 500
        return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20
    if tail == "openOrders":
        return 1 if has_symbol else 40
    if tail == "forceOrders":
        return 20 if has_symbol else 50
    if tail == "ticker/bookTicker":
        return 2 if has_symbol else 5
    if tail == "userTrades" and path.startswith("/dapi/"):
        return 20 if has_symbol else 40
    return FUTURES_WEIGHTS.get((method, path), 1)


def request_weight(method: str, path: str, query: dict[str, str]) -> int:
    if path.startswith(("/fapi/", "/dapi/")):
        return futures_weight(method, path, query)
    if path == "/api/v3/depth":
        try:
            return depth_weight(int(query.get("limit", "100")))
        except ValueError:
            return 5
    if path == "/api/v3/openOrders":
        return 6 if query.get("symbol") else 80
    return WEIGHTS.get((method, path), 1)


@dataclass
class RateLimiter:
    """Fixed-window counters per IP (weight) and per account (orders); see module doc.
    An order limit of None is a window the API does not have (`for_venue`)."""

    weight_per_minute: int = 6000
    orders_per_10s: int | None = 50
    orders_per_day: int | None = 160_000
    orders_per_minute: int | None = None
    ban_after: int = 3
    ban_s: float = 120.0
    ban_grace_s: float = 0.2  # 429s of requests arriving this soon after a hold's first 429 do not count (module doc)
    _weight: dict[str, tuple[int, int]] = field(default_factory=dict)  # ip -> (minute, used)
    # account -> {window seconds: (window index, orders)}
    _orders: dict[str, dict[int, tuple[int, int]]] = field(default_factory=dict)
    _violations: dict[str, int] = field(default_factory=dict)
    _banned_until: dict[str, float] = field(default_factory=dict)
    _next_ban: dict[str, float] = field(default_factory=dict)
    _held_until: dict[str, float] = field(default_factory=dict)  # a rate_limit fault's `retry_after` hold
    # ip -> (when the first 429 of the current hold was sent, the latest Retry-After's end)
    _episode: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def for_venue(cls, venue: str) -> RateLimiter:
        """The limits of a Binance API by ccxt venue id (LIMITS): binance, binanceusdm,
        binancecoinm."""
        weight, per_10s, per_minute, per_day = LIMITS[venue]
        return cls(weight_per_minute=weight, orders_per_10s=per_10s, orders_per_minute=per_minute,
                   orders_per_day=per_day)

    def order_limits(self) -> list[tuple[int, str, int]]:
        """(window seconds, header suffix, limit) of each order window in force."""
        limits = {10: self.orders_per_10s, 60: self.orders_per_minute, 86400: self.orders_per_day}
        return [(w, suffix, int(limits[w])) for w, suffix in ORDER_WINDOWS if limits[w] is not None]

    def used_weight(self, ip: str, now_s: float) -> int:
        minute, used = self._weight.get(ip, (-1, 0))
        return used if minute == int(now_s // 60) else 0

    def order_counts(self, account: str, now_s: float) -> dict[int, int]:
        """Orders of `account` in the current window of each order limit, by window seconds."""
        mine = self._orders.get(account, {})
        out = {}
        for w, _, _ in self.order_limits():
            index, n = mine.get(w, (-1, 0))
            out[w] = n if index == int(now_s // w) else 0
        return out

    def headers(self, ip: str, account: str | None, now_s: float) -> dict[str, str]:
        out = {"X-MBX-USED-WEIGHT-1M": str(self.used_weight(ip, now_s))}
        if account is not None:
            counts = self.order_counts(account, now_s)
            for w, suffix, _ in self.order_limits():
                out[f"X-MBX-ORDER-COUNT-{suffix}"] = str(counts[w])
        return out

    def reset(self) -> None:
        """Forget every counter, violation and ban (control API, tests)."""
        for table in (self._weight, self._orders, self._violations, self._banned_until, self._next_ban,
                      self._held_until, self._episode):
            table.clear()

    def force_429(self, ip: str, now_s: float, hold_s: float | None = None) -> None:
        """A fault: use up this minute's weight, so the next request gets a 429 whose
        Retry-After is the rest of the minute; with `hold_s`, the IP is held that many
        seconds instead (each request meanwhile a 429 with the time left, counted toward
        a ban like any other), the minute's weight untouched."""
        if hold_s is None:
            self._weight[ip] = (int(now_s // 60), self.weight_per_minute)
        else:
            self._held_until[ip] = now_s + hold_s

    def check_ip(self, ip: str, weight: int, now_s: float) -> None:
        """Count a request's weight; raise 418 while banned, 429 over the limit."""
        until = self._banned_until.get(ip, 0.0)
        if now_s < until:
            raise BinanceError(
                -1003, f"Way too much request weight used; IP banned until {int(until * 1000)}. "
                "Please use WebSocket Streams for live updates to avoid bans.", status=418,
                headers={"Retry-After": str(math.ceil(until - now_s))})
        held = self._held_until.get(ip, 0.0)
        if now_s < held:
            after = max(1, math.ceil(held - now_s))
            self._violate(ip, now_s, now_s + after)
            raise BinanceError(
                -1003, f"Too much request weight used; current limit is {self.weight_per_minute} "
                "request weight per 1 MINUTE. Please use WebSocket Streams for live updates to "
                "avoid polling the API.", status=429, headers={"Retry-After": str(after)})
        minute = int(now_s // 60)
        m, used = self._weight.get(ip, (minute, 0))
        if m != minute:
            used = 0
            self._violations[ip] = 0
        used += weight
        self._weight[ip] = (minute, used)
        if used > self.weight_per_minute:
            self._violate(ip, now_s, (minute + 1) * 60)
            raise BinanceError(
                -1003, f"Too much request weight used; current limit is {self.weight_per_minute} "
                "request weight per 1 MINUTE. Please use WebSocket Streams for live updates to "
                "avoid polling the API.", status=429,
                headers={"Retry-After": str(math.ceil((minute + 1) * 60 - now_s))})

    def _violate(self, ip: str, now_s: float, retry_until: float) -> None:
        """A 429 was sent to `ip` (its Retry-After ends at `retry_until`): count it toward
        a ban unless the request arrived within `ban_grace_s` of the hold's first 429 (it
        was on its way before the client could know: module doc)."""
        first, until = self._episode.get(ip, (0.0, -1.0))
        if now_s >= until:  # no 429 of ours holds: this one starts a new hold
            first = now_s
        self._episode[ip] = (first, max(until, retry_until))
        if now_s - first < self.ban_grace_s:
            return
        n = self._violations.get(ip, 0) + 1
        self._violations[ip] = n
        if n > self.ban_after:
            length = min(self._next_ban.get(ip, self.ban_s), MAX_BAN_S)
            self._banned_until[ip] = now_s + length
            self._next_ban[ip] = min(length * 2, MAX_BAN_S)
            self._violations[ip] = 0

    def check_order(self, ip: str, account: str, now_s: float) -> None:
        """Count one new order for the account; raise 429 -1015 over any order limit."""
        mine = self._orders.setdefault(account, {})
        over = None
        for w, _, limit in self.order_limits():
            index = int(now_s // w)
            i, n = mine.get(w, (index, 0))
            n = (n if i == index else 0) + 1
            mine[w] = (index, n)
            if n > limit and over is None:
                over = (w, limit, index)
        if over is not None:
            w, limit, index = over
            self._violate(ip, now_s, (index + 1) * w)
            label = {10: "10 SECOND", 60: "1 MINUTE", 86400: "1 DAY"}[w]
            raise BinanceError(-1015, f"Too many new orders; current limit is {limit} orders per {label}.",
                               status=429, headers={"Retry-After": str(math.ceil((index + 1) * w - now_s))})
