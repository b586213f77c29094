"""One pass over a feed chunk that finds the first bad row, without temporary arrays."""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.types.market import EventKind

V_OK = 0
V_BACKWARDS = 1
V_INSTRUMENT = 2
V_NEGATIVE = 3
V_KIND = 4
V_SIDE = 5

_DELTA = int(EventKind.BOOK_DELTA)
_MAX_KIND = int(EventKind.CLEAR)


@njit(cache=True)
def validate_chunk_nb(chunk, last_local, n_instruments):
    """(code, first bad row, number of bad rows, rows stamped at the exchange after their
    local time) of a chunk; code V_OK if all is well.

    Every replayed row passes here, so the common case -- nothing wrong -- is one pass
    without branches (an OR of all the conditions); only a chunk with a bad row takes the
    slow pass that names the first one and counts them."""
    bad = 0
    future = 0
    prev = last_local
    for i in range(chunk.shape[0]):
        row = chunk[i]
        kind = np.int64(row.kind)
        side = np.int64(row.side)
        local = row.local_ts
        bad |= (np.int64(local < prev) | np.int64(np.int64(row.instrument) >= n_instruments)
                | np.int64(row.qty < 0) | np.int64(row.price < 0)
                | np.int64(np.uint64(kind - 1) > np.uint64(_MAX_KIND - 1))  # kind < 1 or > max
                | (np.int64(kind == _DELTA) & np.int64(side != 1) & np.int64(side != -1)))
        future += np.int64(row.exch_ts > local)
        prev = local
    if bad == 0:
        return V_OK, -1, 0, future
    return _find_bad_nb(chunk, last_local, n_instruments)


@njit(cache=True)
def _find_bad_nb(chunk, last_local, n_instruments):
    """The slow pass of validate_chunk_nb: the first bad row and the count, same tuple."""
    code = V_OK
    first = -1
    count = 0
    future = 0
    prev = last_local
    for i in range(chunk.shape[0]):
        row = chunk[i]
        if row.exch_ts > row.local_ts:
            future += 1
        c = V_OK
        if row.local_ts < prev:
            c = V_BACKWARDS
        elif np.int64(row.instrument) >= n_instruments:
            c = V_INSTRUMENT
        elif row.qty < 0 or row.price < 0:
            c = V_NEGATIVE
        elif np.int64(row.kind) < 1 or np.int64(row.kind) > _MAX_KIND:
            c = V_KIND
        elif np.int64(row.kind) == _DELTA and np.int64(row.side) != 1 and np.int64(row.side) != -1:
            c = V_SIDE
        if c != V_OK:
            count += 1
            if first < 0:
                first = i
                code = c
        else:
            prev = row.local_ts
    return code, first, count, future
