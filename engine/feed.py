"""Feed latency: shift each venue's local timestamps and keep the merged feed sorted.

Why carry-over: with different feed latencies per venue, an event of a slow venue may
belong after events of the next chunk. Rows are released only up to the earliest local
time any later row could still have, so the merged order stays exactly (local_ts, source
order) across chunk boundaries, in bounded memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from engine.types import EVENT_DTYPE


def apply_feed_latency(chunks: Iterable[np.ndarray], feed_ns: np.ndarray,
                       shift: Callable[[np.ndarray], None] | None = None) -> Iterator[np.ndarray]:
    """Yield chunks with local_ts += feed_ns[instrument], re-merged in stable order.

    `shift(chunk)` (optional) then rewrites, in place, the local_ts of the instruments whose
    feed latency is time-indexed (venues.sim.latency.RecordedFeed, a session's recorded
    feed latency); their `feed_ns` must be 0 and the shift must never make a row earlier
    than its raw local_ts (the carry-over bound below assumes it)."""
    shifts = np.asarray(feed_ns, dtype=np.int64)
    if not shifts.any() and shift is None:
        yield from chunks
        return
    min_shift = int(shifts.min())
    held = np.zeros(0, dtype=EVENT_DTYPE)
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        shifted = chunk.copy()
        shifted["local_ts"] += shifts[shifted["instrument"].astype(np.intp)]
        if shift is not None:
            shift(shifted)
        merged = np.concatenate([held, shifted])
        merged = merged[np.argsort(merged["local_ts"], kind="stable")]
        # later raw rows have local_ts >= this chunk's last raw ts, so shifted >= that + min
        safe = int(chunk["local_ts"][-1]) + min_shift
        cut = int(np.searchsorted(merged["local_ts"], safe, side="left"))
        if cut:
            yield merged[:cut]
        held = merged[cut:]
    if len(held):
        yield held
