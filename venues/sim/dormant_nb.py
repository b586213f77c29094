"""Dormant exchange sides: a venue with no orders does not maintain its exchange book.

Why: the exchange book exists only to match our orders. A venue with no resting order, no
request in flight and no consumed liquidity cannot produce anything from it, yet keeping it
costs as much as the local book -- half of a plain replay. So such a venue's exchange side
goes *dormant* and skips the feed; the local book keeps going.

Why waking is exact: both sides apply the same rows in the same (buffer) order, so after
the local side has applied rows [0, li) the exchange book of an eager run, at the point it
had applied those same rows, is a copy of the local book. Waking therefore copies the
venue's local levels into its exchange levels and rewinds the venue's exchange cursor to
li; the exchange side then applies rows li, li+1, ... as it always does, all of them before
the request that woke it (a request sent at local time `now` arrives at `now + latency`,
and every row from li on is applied at its `exch_ts`). This needs `exch_ts <= local_ts`
on every row already applied locally, i.e. rows [0, li) lie in the exchange's past; the
core checks that per chunk and turns dormancy off for the rest of the run (waking every
venue) the first time a row breaks it. Venues with L3 rows never sleep: their exchange
side also keeps a venue-order table that the local levels cannot rebuild.

Outside the kernel nothing changes: fills, responses, tapes and wake-ups are identical
with and without dormancy (tests/venues/sim/test_sim_dormant.py runs both on random flows).
"""

from __future__ import annotations

from numba import njit

from venues.sim.book_nb import book_row_nb
from venues.sim.codes import (
    S_LAZY_OFF,
    S_LI,
    VF_DORMANT,
    VF_NOLAZY,
    VF_NORDERS,
    VF_PULL_HI,
    VF_XI,
    XI_PULLED,
)


@njit(cache=True, _nrt=False)
def wake_exchange_nb(v, S, V, inst_venue, xinst, kx, qt, cs, cnt, insnap):
    """Rebuild dormant venue v's exchange books from its local books (see module doc).

    Rows the venue pulled ahead of its cursor before it slept (core_nb.pull_rows_nb) are
    not in the copy once they lie at or after the local cursor, so every instrument's
    pulled mark is reset to it. The instruments' exchange clocks are kept: a row behind
    a clock is at or before the local time already reached, so it lands before any
    request sent from now on either way, and the waking request resets the clock of
    its instrument to its arrival."""
    if V[v, VF_DORMANT] == 0:
        return
    for i in range(inst_venue.shape[0]):
        if inst_venue[i] != v:
            continue
        xinst[i, XI_PULLED] = S[S_LI]
        for local_row in (book_row_nb(i, 1, 1), book_row_nb(i, -1, 1)):
            exch_row = local_row - 2
            n = cnt[local_row]
            for j in range(n):
                kx[exch_row, j] = kx[local_row, j]
                qt[exch_row, j] = qt[local_row, j]
                cs[exch_row, j] = 0
            cnt[exch_row] = n
        insnap[2 * i] = insnap[2 * i + 1]
    V[v, VF_XI] = S[S_LI]
    V[v, VF_PULL_HI] = S[S_LI]
    V[v, VF_DORMANT] = 0


@njit(cache=True, _nrt=False)
def wake_all_nb(S, V, inst_venue, xinst, kx, qt, cs, cnt, insnap):
    for v in range(V.shape[0]):
        wake_exchange_nb(v, S, V, inst_venue, xinst, kx, qt, cs, cnt, insnap)


@njit(cache=True, _nrt=False)
def sleep_idle_nb(S, V, inst_venue, cs, cnt):
    """Put to sleep every venue whose exchange side has nothing to do (see module doc).

    Consumed liquidity (`cs`) is exchange-only state that the local book cannot restore, so
    a venue waits until the feed has overwritten every level our taker fills consumed.
    """
    if S[S_LAZY_OFF] != 0:
        return
    for v in range(V.shape[0]):
        if V[v, VF_DORMANT] != 0 or V[v, VF_NOLAZY] != 0 or V[v, VF_NORDERS] != 0:
            continue
        idle = True
        for i in range(inst_venue.shape[0]):
            if inst_venue[i] != v:
                continue
            for b in (book_row_nb(i, 1, 0), book_row_nb(i, -1, 0)):
                for j in range(cnt[b]):
                    if cs[b, j] != 0:
                        idle = False
        if idle:
            V[v, VF_DORMANT] = 1
