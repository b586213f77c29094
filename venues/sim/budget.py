"""The order-count budget of a backtest's venue: what a live session's request limiter does
to the same orders (`[venues.X] request_budget`, docs/simulated-venue.md "Request budget").

Binance counts new orders per account in fixed windows of its clock (spot: ORDERS 50 per
10 s; USDⓈ-M futures: 300 per 10 s and 1,200 per minute; COIN-M: 1,200 per minute; a new
order past the count is refused with -1015 "Too many new orders", HTTP 429). A live
session never lets the venue refuse it: its gateway counts the orders it sends in the same
windows (venues/ccxt/ratelimit.py `WeightLimiter`, the numbers of
venues/emulator/ratelimit.py `LIMITS`, whole budget, windows aligned on the clock) and a
new order (submit, or an amend: Binance's cancel-replace places an order) that does not
fit waits for the next window when that is at most `max_order_wait_s` (1 s) away, and is
refused locally otherwise (`request_budget`, venue health "rate_limited" until the window
ends: venues/ccxt/gateway.py, modes/live/venue_health.py). So the rule a backtest needs to
see what a session saw is the session's, not the venue's: the same numbers, counted at the
request's send time, the same wait, the same local refusal; a strategy that would exceed
the venue's budget live is refused in its backtest too. Cancels and lookups are not
orders (Binance counts them as request weight only, far from binding here). Not modelled:
the live limiter opens a window with the orders still in flight at its start (the venue
may count them there; ratelimit module doc); here a window opens at 0, as this hook does
not know when an order's answer comes back.

`phase_ns` places the windows: they start at phase + k * window on the backtest's clock.
Live they start at whole multiples of the window on the wall clock; a backtest of a
recorded session on its dataset's clock (bench/bench_parity.py) gives the offset between
the two.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: venues/ccxt/gateway.py Gateway(max_order_wait_s=1.0): an order that would wait longer
#: for the budget is refused (a test pins the two equal)
MAX_WAIT_NS = 1_000_000_000
NS_PER_S = 1_000_000_000

SEND, WAIT, REFUSE = "send", "wait", "refuse"


@dataclass
class RequestBudget:
    """One account's new-order counts per fixed window (see module doc). `limits`: (orders,
    window_ns) pairs (Binance spot: ((50, 10 s), (160,000, 1 day))); `max_wait_ns`: the
    longest wait for a window before an order is refused; `phase_ns`: where windows start."""

    limits: tuple[tuple[int, int], ...]
    max_wait_ns: int = MAX_WAIT_NS
    phase_ns: int = 0
    _window: dict[int, int] = field(default_factory=dict)  # window_ns -> index of the current window
    _count: dict[int, int] = field(default_factory=dict)  # window_ns -> orders booked in it

    def _index(self, window: int, ts: int) -> int:
        return (ts - self.phase_ns) // window

    def _roll(self, ts: int) -> None:
        for _, window in self.limits:
            k = self._index(window, ts)
            if k > self._window.get(window, k - 1):  # windows only move forward
                self._window[window], self._count[window] = k, 0

    def wait_ns(self, ts: int) -> int:
        """ns until a new order sent at `ts` fits every window (0: now)."""
        self._roll(ts)
        wait = 0
        for orders, window in self.limits:
            if self._count[window] + 1 > orders:
                end = self.phase_ns + (self._window[window] + 1) * window
                wait = max(wait, end - ts)
        return wait

    def book(self, ts: int) -> None:
        """Count a new order sent at `ts` (it fits: wait_ns(ts) == 0)."""
        self._roll(ts)
        for _, window in self.limits:
            self._count[window] += 1

    def decide(self, ts: int) -> tuple[str, int]:
        """What the session's gateway does with a new order at `ts`: (SEND, ts) booked now;
        (WAIT, t) it goes out at t, the next window's start, booked there (wait <=
        max_wait_ns: call `book(t)` when it is sent); (REFUSE, t) refused locally, the
        budget spent until t."""
        wait = self.wait_ns(ts)
        if wait == 0:
            self.book(ts)
            return SEND, ts
        if wait > self.max_wait_ns:
            return REFUSE, ts + wait
        return WAIT, ts + wait


def budget_limits(exchange: str) -> tuple[tuple[int, int], ...]:
    """The order-count windows of a Binance API by ccxt id (venues.emulator.ratelimit.LIMITS,
    the table the live limiter and the emulator use; other ids get Binance spot's): (orders,
    window_ns) pairs."""
    from venues.emulator.ratelimit import LIMITS

    _weight, per_10s, per_minute, per_day = LIMITS.get(exchange, LIMITS["binance"])
    out = []
    for orders, seconds in ((per_10s, 10), (per_minute, 60), (per_day, 86400)):
        if orders is not None:
            out.append((int(orders), seconds * NS_PER_S))
    return tuple(out)
