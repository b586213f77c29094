"""The emulator's market clock: dataset time replayed against the wall clock.

Why a clock object of its own: the same exchange runs at `--speed X` against the wall clock
(market time = data start + X * wall time elapsed) or stepped by a test (market time moves
only when told), and every timestamp a client sees is market time shifted so that the data
start is the moment the emulator started. Signatures and recvWindow are checked against
wall time (what the client's own clock says), never against market time.
"""

from __future__ import annotations

import time

from engine.errors import ConfigError

NS_PER_MS = 1_000_000
NS_PER_US = 1_000
#: Binance's time units (spot API docs, CHANGELOG 2024-12-09 "Microsecond support"): the
#: REST header `X-MBX-TIME-UNIT` and the websocket URL parameter `timeUnit` take these four
#: spellings; without one every time field is in milliseconds. -> ns per unit
TIME_UNITS = {"MILLISECOND": NS_PER_MS, "millisecond": NS_PER_MS,
              "MICROSECOND": NS_PER_US, "microsecond": NS_PER_US}


class MarketClock:
    """Maps wall time to market time (int ns) and market time to client-facing ms."""

    def __init__(self, data_start_ns: int, *, speed: float = 1.0, stepped: bool = False,
                 wall_start_ns: int | None = None) -> None:
        if not stepped and not speed > 0:
            raise ConfigError(f"--speed {speed!r}: must be > 0")
        self.speed = float(speed)
        self.stepped = bool(stepped)
        self.data_start_ns = int(data_start_ns)
        self.wall_start_ns = time.time_ns() if wall_start_ns is None else int(wall_start_ns)
        self._mono_start = time.monotonic_ns()
        self._stepped_now = int(data_start_ns)
        # client-facing time = market time + shift: the data start shows as the start time
        self.shift_ns = self.wall_start_ns - self.data_start_ns
        self._last = int(data_start_ns)

    def now(self) -> int:
        """Market time now (ns); never goes backwards."""
        if self.stepped:
            t = self._stepped_now
        else:
            elapsed = time.monotonic_ns() - self._mono_start
            t = self.data_start_ns + int(elapsed * self.speed)
        if t > self._last:
            self._last = t
        return self._last

    def step_to(self, market_ns: int) -> int:
        """Stepped mode: move market time to `market_ns` (never backwards)."""
        if not self.stepped:
            raise ConfigError("the market clock follows the wall clock; step it only in stepped mode")
        self._stepped_now = max(self._stepped_now, int(market_ns))
        return self.now()

    def shown_ms(self, market_ns: int) -> int:
        """Client-facing epoch ms of a market time."""
        return (int(market_ns) + self.shift_ns) // NS_PER_MS

    def shown(self, market_ns: int, unit_ns: int = NS_PER_MS) -> int:
        """Client-facing epoch time of a market time in the client's unit (`unit_ns` ns per
        unit: NS_PER_MS by default, NS_PER_US when the client asked for microseconds)."""
        return (int(market_ns) + self.shift_ns) // int(unit_ns)

    def wall_for(self, market_ns: int) -> float:
        """Seconds of wall time until market time reaches `market_ns` (0 if passed)."""
        if self.stepped:
            return 0.0
        return max(0.0, (int(market_ns) - self.now()) / 1e9 / self.speed)


def wall_ms() -> int:
    """The wall clock in epoch ms (what signatures and recvWindow are checked against)."""
    return time.time_ns() // NS_PER_MS
