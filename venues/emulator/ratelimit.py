"""Binance's REST rate limits: request weight per IP per minute, orders per account per 10 s
and per day, 429 with Retry-After, and a 418 ban for clients that do not back off.

Source: Binance spot API docs, "LIMITS" (REQUEST_WEIGHT 6,000 / 1 MINUTE per IP, ORDERS
50 / 10 SECOND and 160,000 / 1 DAY per account; "Repeatedly violating rate limits and/or
failing to back off after receiving 429s will result in an automated IP ban (HTTP status
418)", bans last 2 minutes to 3 days). Windows are fixed intervals of wall time, as
Binance counts them; `ban_after` 429s inside a ban window turn into a 418, each ban twice
as long as the last (capped at 3 days).
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
ORDER_ENDPOINTS = {("POST", "/api/v3/order"), ("POST", "/api/v3/order/cancelReplace")}
MAX_BAN_S = 3 * 86400


def depth_weight(limit: int) -> int:
    """GET /api/v3/depth weight by limit (1-100: 5, 101-500: 25, 501-1000: 50, more: 250)."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def request_weight(method: str, path: str, query: dict[str, str]) -> int:
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
    """Fixed-window counters per IP (weight) and per account (orders); see module doc."""

    weight_per_minute: int = 6000
    orders_per_10s: int = 50
    orders_per_day: int = 160_000
    ban_after: int = 3
    ban_s: float = 120.0
    _weight: dict[str, tuple[int, int]] = field(default_factory=dict)  # ip -> (minute, used)
    _orders: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    _violations: dict[str, int] = field(default_factory=dict)
    _banned_until: dict[str, float] = field(default_factory=dict)
    _next_ban: dict[str, float] = field(default_factory=dict)

    def used_weight(self, ip: str, now_s: float) -> int:
        minute, used = self._weight.get(ip, (-1, 0))
        return used if minute == int(now_s // 60) else 0

    def order_counts(self, account: str, now_s: float) -> tuple[int, int]:
        w10, n10, day, nday = self._orders.get(account, (-1, 0, -1, 0))
        return (n10 if w10 == int(now_s // 10) else 0, nday if day == int(now_s // 86400) else 0)

    def headers(self, ip: str, account: str | None, now_s: float) -> dict[str, str]:
        out = {"X-MBX-USED-WEIGHT-1M": str(self.used_weight(ip, now_s))}
        if account is not None:
            n10, nday = self.order_counts(account, now_s)
            out["X-MBX-ORDER-COUNT-10S"] = str(n10)
            out["X-MBX-ORDER-COUNT-1D"] = str(nday)
        return out

    def reset(self) -> None:
        """Forget every counter, violation and ban (control API, tests)."""
        for table in (self._weight, self._orders, self._violations, self._banned_until, self._next_ban):
            table.clear()

    def force_429(self, ip: str, now_s: float) -> None:
        """A fault: use up this minute's weight, so the next request gets a 429."""
        self._weight[ip] = (int(now_s // 60), self.weight_per_minute)

    def check_ip(self, ip: str, weight: int, now_s: float) -> None:
        """Count a request's weight; raise 418 while banned, 429 over the limit."""
        until = self._banned_until.get(ip, 0.0)
        if now_s < until:
            raise BinanceError(
                -1003, f"Way too much request weight used; IP banned until {int(until * 1000)}. "
                "Please use WebSocket Streams for live updates to avoid bans.", status=418,
                headers={"Retry-After": str(math.ceil(until - now_s))})
        minute = int(now_s // 60)
        m, used = self._weight.get(ip, (minute, 0))
        if m != minute:
            used = 0
            self._violations[ip] = 0
        used += weight
        self._weight[ip] = (minute, used)
        if used > self.weight_per_minute:
            self._violate(ip, now_s)
            raise BinanceError(
                -1003, f"Too much request weight used; current limit is {self.weight_per_minute} "
                "request weight per 1 MINUTE. Please use WebSocket Streams for live updates to "
                "avoid polling the API.", status=429,
                headers={"Retry-After": str(math.ceil((minute + 1) * 60 - now_s))})

    def _violate(self, ip: str, now_s: float) -> None:
        n = self._violations.get(ip, 0) + 1
        self._violations[ip] = n
        if n > self.ban_after:
            length = min(self._next_ban.get(ip, self.ban_s), MAX_BAN_S)
            self._banned_until[ip] = now_s + length
            self._next_ban[ip] = min(length * 2, MAX_BAN_S)
            self._violations[ip] = 0

    def check_order(self, ip: str, account: str, now_s: float) -> None:
        """Count one new order for the account; raise 429 -1015 over 10 s / day limits."""
        w10 = int(now_s // 10)
        day = int(now_s // 86400)
        a, n10, d, nday = self._orders.get(account, (w10, 0, day, 0))
        if a != w10:
            n10 = 0
        if d != day:
            nday = 0
        n10 += 1
        nday += 1
        self._orders[account] = (w10, n10, day, nday)
        if n10 > self.orders_per_10s:
            self._violate(ip, now_s)
            raise BinanceError(-1015, f"Too many new orders; current limit is {self.orders_per_10s} "
                               "orders per 10 SECOND.", status=429,
                               headers={"Retry-After": str(math.ceil((w10 + 1) * 10 - now_s))})
        if nday > self.orders_per_day:
            self._violate(ip, now_s)
            raise BinanceError(-1015, f"Too many new orders; current limit is {self.orders_per_day} "
                               "orders per 1 DAY.", status=429,
                               headers={"Retry-After": str(math.ceil((day + 1) * 86400 - now_s))})
