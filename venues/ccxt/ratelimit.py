"""The venue's request budget on our side: Binance's weights and order counts (spot, and
the USDⓈ-M / COIN-M futures APIs: `WeightLimiter.for_venue`).

Binance counts in fixed wall-clock windows (spot: REQUEST_WEIGHT 6,000 per minute per IP;
ORDERS 50 per 10 s and 160,000 per day per account; USDⓈ-M futures: 2,400 per minute, ORDERS
300 per 10 s and 1,200 per minute; COIN-M: 2,400, ORDERS 1,200 per minute; the weights and
limits are venues.emulator.ratelimit's, the one table the emulator enforces). The weight budget is
shared with every other process on the same IP, which we cannot see except through the
`X-MBX-USED-WEIGHT-1M` header of each reply: `observe` raises the local count to it, so a
neighbour's spending makes us wait too. A 429 carries `Retry-After`: every request then
waits until it has passed, because repeated 429s are what earns a 418 ban (2 minutes to 3
days) — after the first 429 we send nothing more in that window, so we never provoke one.

The limiter is a token bucket whose tokens come back at the venue's window boundaries
(that is how the venue itself counts; a continuously refilling bucket would believe in
tokens the venue has not given back yet). A request counts in the window in which it
*reaches* the venue, which the client cannot see: one sent before a boundary and still in
flight when it passes (a latency spike holds requests for seconds, then they all arrive at
once) may be counted in the next window. So a request booked `in_flight=True` stays in
flight until `landed` (answered, or failed); every window opens with the weight and orders
still in flight, not with 0. Without it, after a 2 s spike on a market maker's submits the
30-odd held ones arrived in a window we believed empty, on top of the 26 we sent there:
8 answered 429 -1015 one after another, and the emulator banned the IP for them (issue #11).
An in-flight request is counted in both windows until it lands: at most that many orders
are left unused, never one too many.

When a 429's or 418's hold ends, one request goes first and the others wait for its answer
(`PROBE_WAIT_S` at a time). Why: the venue may have started a ban while answering 429 (the
emulator's `ban_after`: the request that starts the ban is still answered 429; requests a
spike held and delivered after the first 429 count toward it), so the hold's end is not
proof that the IP may call again; before, every request queued behind the hold went at
once (the trial's 27 cancels and a reconciliation, all answered 418). Now one meets the
ban and the limiter holds the rest for its Retry-After. `headroom` keeps a share of the IP's weight budget
unused for the requests other processes start between two of our headers (the order
counts are the account's: their whole budget is used).

Use it with ccxt's own limiter off (`enableRateLimit=False`): ccxt's is a 50 ms leaky
bucket that knows neither the weights nor the headers.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from venues.ccxt.outcomes import retry_after
from venues.emulator.ratelimit import LIMITS, ORDER_ENDPOINTS, request_weight

#: the shortest hold after a 418 without Retry-After (Binance: bans last 2 minutes to 3 days)
BAN_FLOOR_S = 120.0
#: how long a request waits, at a time, for the answer to the first one after a hold (module doc)
PROBE_WAIT_S = 0.02
ORDER_COUNT_HEADER = "x-mbx-order-count-10s"
ORDER_COUNT_1M_HEADER = "x-mbx-order-count-1m"
WEIGHT_HEADER = "x-mbx-used-weight-1m"


@dataclass
class WeightLimiter:
    """Request weight per minute (per IP) and orders per 10 s / per day (per account).

    `wall` is the wall clock in seconds (the venue's windows are wall-clock intervals);
    tests pass a fake one. Figures are Binance spot's published defaults.
    """

    weight_per_minute: int = 6000
    orders_per_10s: int | None = 50
    orders_per_day: int | None = 160_000
    orders_per_minute: int | None = None  # USDⓈ-M / COIN-M futures: 1,200
    headroom: float = 0.9
    wall: Callable[[], float] = time.time
    _minute: int = -1
    _weight: int = 0
    _tens: int = -1
    _orders: int = 0
    _day: int = -1
    _orders_day: int = 0
    _min: int = -1
    _orders_min: int = 0
    _span: tuple[int, int] = (0, 0)  # the 10 s window `now` was last rolled into: [start, end) s
    _flight_weight: int = 0  # weight of the requests booked in_flight and not `landed` yet
    _flight_orders: int = 0  # of which new orders
    _probe: int = 0  # after a 429/418: 1 = the next request is the first since, 2 = it is in flight
    blocked_until: float = 0.0
    held_status: int | None = None  # the venue status (429, 418) whose Retry-After set blocked_until
    waits: int = 0  # how often a request had to wait (reported on the console / in tests)
    throttled: int = 0  # 429/418 replies seen (requests already in flight when the first came back count too)
    bans: int = 0  # 418 replies seen: the IP was banned (the limiter's purpose is that this stays 0)
    log: list[tuple[float, str]] = field(default_factory=list)

    @classmethod
    def for_venue(cls, venue: str, **kw) -> WeightLimiter:
        """The limiter of a Binance API by ccxt venue id (binance, binanceusdm, binancecoinm;
        venues.emulator.ratelimit.LIMITS); other venues get Binance spot's figures."""
        weight, per_10s, per_minute, per_day = LIMITS.get(venue, LIMITS["binance"])
        return cls(weight_per_minute=weight, orders_per_10s=per_10s, orders_per_minute=per_minute,
                   orders_per_day=per_day, **kw)

    def _roll(self, now: float) -> None:
        minute, tens, day = int(now // 60), int(now // 10), int(now // 86400)
        # a window opens with what is still in flight: the venue may count it there (module doc)
        if minute != self._min:
            self._min, self._orders_min = minute, self._flight_orders
        if minute != self._minute:
            self._minute, self._weight = minute, self._flight_weight
        if tens != self._tens:
            self._tens, self._orders = tens, self._flight_orders
        if day != self._day:
            self._day, self._orders_day = day, self._flight_orders
        # every window boundary (day, minute) is a 10 s one: until the next 10 s boundary no
        # count restarts, so `spend` compares `now` with this span instead of rolling
        self._span = (tens * 10, tens * 10 + 10)

    @staticmethod
    def cost(method: str, path: str, query: dict[str, str] | None = None) -> tuple[int, bool]:
        """(weight, counts as an order) of one request, method/path as sent (`"POST",
        "/api/v3/order"`); query for the weight of depth and openOrders. What `reserve`
        books; a caller that sends the same request shape again and again (the gateway's
        order placement) works it out once and calls `spend`."""
        return request_weight(method, path, query or {}), (method, path) in ORDER_ENDPOINTS

    def reserve(self, method: str, path: str, query: dict[str, str] | None = None,
                in_flight: bool = False) -> float:
        """Book the request's weight and return 0.0, or return the seconds to wait first.

        method/path as sent (`"POST", "/api/v3/order"`); query for the weight of depth and
        openOrders; in_flight: as `spend`'s.
        """
        return self.spend(*self.cost(method, path, query), in_flight)

    def spend(self, weight: int, is_order: bool, in_flight: bool = False) -> float:
        """`reserve` of a request whose `cost` is (weight, is_order): book it and return 0.0,
        or return the seconds to wait first (nothing booked). in_flight: the request is sent
        now and the caller calls `landed(weight, is_order)` once it is answered or failed;
        until then every window that opens counts it too (module doc).

        Why separate: the live hot path books an order on every submit; the windows are
        rolled only when `now` has left the current 10 s span (one comparison otherwise),
        with no per-call tuple, dict or weight lookup (bench/PROFILE.md 1e)."""
        now = self.wall()
        if now < self.blocked_until:
            return self.blocked_until - now
        if self._probe == 2:  # the first request since a hold is on its way: its answer first
            return PROBE_WAIT_S
        start, end = self._span
        if not start <= now < end:  # a window may have turned (or the clock stepped back)
            self._roll(now)
        if self._weight + weight > self.weight_per_minute * self.headroom:
            return (self._minute + 1) * 60 - now + 0.001
        if is_order:
            # the order counts are per account (the headers correct them): the whole budget
            if self.orders_per_10s is not None and self._orders >= self.orders_per_10s:
                return (self._tens + 1) * 10 - now + 0.001
            if self.orders_per_minute is not None and self._orders_min >= self.orders_per_minute:
                return (self._min + 1) * 60 - now + 0.001
            if self.orders_per_day is not None and self._orders_day >= self.orders_per_day:
                return (self._day + 1) * 86400 - now + 0.001
            self._orders += 1
            self._orders_min += 1
            self._orders_day += 1
        self._weight += weight
        if in_flight:
            self._flight_weight += weight
            self._flight_orders += is_order
        if self._probe:  # this one is the first since a hold: the others wait for its answer
            self._probe = 2 if in_flight else 0
        return 0.0

    def landed(self, weight: int, is_order: bool) -> None:
        """A request booked `in_flight` was answered or failed: it reached the venue (or
        never will) by now, so windows opening later no longer count it. The windows are
        rolled first, so one that turned while it was in flight still counts it."""
        now = self.wall()
        start, end = self._span
        if not start <= now < end:
            self._roll(now)
        self._flight_weight = max(0, self._flight_weight - weight)
        self._flight_orders = max(0, self._flight_orders - is_order)
        if self._probe == 2:  # answered (`observe` has seen a 418 if it met one) or failed
            self._probe = 0

    async def acquire(self, method: str, path: str, query: dict[str, str] | None = None,
                      sleep: Callable[[float], object] = asyncio.sleep, in_flight: bool = False) -> float:
        """Wait until the request fits, book it (in_flight: as `spend`'s); returns the seconds waited."""
        waited = 0.0
        while True:
            delay = self.reserve(method, path, query, in_flight)
            if delay <= 0:
                return waited
            self.waits += 1
            waited += delay
            await sleep(delay)  # type: ignore[misc]

    def observe(self, status: int, headers: dict[str, str]) -> None:
        """Correct the counts from a reply's headers; block on 429/418 for Retry-After.

        A 429 without Retry-After blocks to the end of the current minute.
        """
        now = self.wall()
        self._roll(now)
        lower = {k.lower(): v for k, v in headers.items()}
        used = _int(lower.get(WEIGHT_HEADER))
        if used is not None and used > self._weight:
            self._weight = used
        orders = _int(lower.get(ORDER_COUNT_HEADER))
        if orders is not None and orders > self._orders:
            self._orders = orders
        orders_min = _int(lower.get(ORDER_COUNT_1M_HEADER))
        if orders_min is not None and orders_min > self._orders_min:
            self._orders_min = orders_min
        if status not in (418, 429) and self._probe == 2:
            self._probe = 0  # a reply after the hold: the venue answers again
        if status in (418, 429):
            self._probe = 1
            self.throttled += 1
            self.bans += status == 418
            after = retry_after(headers)
            if after is not None:
                until = now + after
            else:  # a ban lasts at least BAN_FLOOR_S (Binance: 2 minutes to 3 days); a 429 the minute
                until = now + BAN_FLOOR_S if status == 418 else (self._minute + 1) * 60
            banned = self.held_status == 418 and now < self.blocked_until
            self.held_status = 418 if status == 418 or banned else 429  # a ban outranks a 429
            self.blocked_until = max(self.blocked_until, until)
            self.log.append((now, f"HTTP {status}: no requests until {math.ceil(until - now)} s from now"))

    def hold(self) -> tuple[float, int | None]:
        """(seconds, status) of the venue's own hold: the 429's or 418's Retry-After still in
        force, (0.0, None) when there is none (the local budget is `spend`'s business)."""
        left = self.blocked_until - self.wall()
        if left <= 0:
            return 0.0, None
        return left, self.held_status

    @property
    def used_weight(self) -> int:
        self._roll(self.wall())
        return self._weight


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
