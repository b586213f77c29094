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
    local time) of a chunk; code V_OK if all is well. The last figure is legal (clock skew
    in real captures) but turns off dormant exchange sides (dormant_nb.py)."""
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
