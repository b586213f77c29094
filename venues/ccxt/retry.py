"""Exponential backoff with full jitter for transient failures.

Source: M. Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog (2015): the n-th
retry waits uniform(0, min(cap, base x 2^n)); full jitter spreads clients that failed
together, so they do not come back in lockstep. Only calls that `venues.ccxt.outcomes`
marks `retry=True` are retried; a venue's Retry-After is a floor on the wait.
The random generator is seeded in tests (`Backoff(seed=...)`) so waits replay exactly;
live sessions draw from an unseeded generator (wall-clock side, never a simulated path).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base_s: float = 0.1
    cap_s: float = 5.0
    max_attempts: int = 5  # attempts in all, the first included
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def delay(self, retry: int, floor_s: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (0 = the first retry)."""
        wait = self._rng.uniform(0.0, min(self.cap_s, self.base_s * (2 ** retry)))
        return max(wait, floor_s or 0.0)
