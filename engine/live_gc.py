"""The garbage collector's pauses off a live session's tick-to-order path.

Why: CPython's cyclic collector runs its youngest generation every 700 net container
allocations. A live quoting loop allocates ~50 per tick (orders, records, tasks), so a
collection lands on ~1.3% of ticks, inside the tick -> request p99 (issue 11 point 8,
target < 50 us), and each full collection walks everything start-up left alive (modules,
ccxt's markets, numba's dispatchers). `quiet_collector()` around the session's event loop:

1. collects once and freezes what is alive after start-up (`gc.freeze`: those objects move
   to a permanent generation that no later collection walks);
2. raises the youngest generation's threshold to `threshold0` (20,000 by default), so a
   collection lands on ~0.05% of ticks (beyond the p99.9 in bench/bench_live.py) and
   garbage cycles are still collected, in fewer, longer passes;
3. on exit unfreezes and restores the thresholds (tests run sessions in one process).

Measured (bench/PROFILE.md 1c): the p99 of the tick -> request path's thread CPU time
falls by ~15-30% on the shared 2-core VM; the p50 does not move. Nothing here changes what
the session decides or writes.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

LIVE_GEN0_THRESHOLD = 20_000


@contextmanager
def quiet_collector(threshold0: int = LIVE_GEN0_THRESHOLD) -> Iterator[None]:
    """Freeze start-up's objects and raise generation 0's threshold while the block runs
    (see the module docstring); restores the collector's settings on exit."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(max(int(threshold0), before[0]), before[1], before[2])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
