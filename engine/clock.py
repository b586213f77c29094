"""Clocks: the only thing, with the venues, that differs between modes.

Why two: a backtest's time is the replayed feed's local time, advanced by the kernel;
live modes read the wall clock. Strategies only ever see `ctx.now`, so the same code
runs under either.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

from engine.errors import InternalError


class Clock(Protocol):
    """Local time in int64 nanoseconds since the Unix epoch, UTC."""

    def now(self) -> int: ...


class SimClock:
    """Simulated local time; moves only forward, when the kernel says so."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = int(start_ns)

    def now(self) -> int:
        return self._now

    def advance_to(self, ts: int) -> None:
        if ts < self._now:
            raise InternalError(f"simulated clock cannot go back from {self._now} to {ts}")
        self._now = int(ts)


class LiveClock:
    """Wall-clock time for paper/testnet/live modes (never used on the simulated path)."""

    def now(self) -> int:
        return time.time_ns()  # LiveClock: the only wall-clock read, never on the simulated path


def wall_time_text() -> str:
    """The wall clock as 'YYYY-MM-DDTHH:MM:SSZ', for bookkeeping only (a store's import date,
    a writer lock's holder): never read on a simulated path, where time is the SimClock's."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # wall clock, like LiveClock
