"""A small numba L2 book for validation: crossed-book checks and top-of-book traces.

Both sides are kept as ascending price arrays (best bid = last bid, best ask = first
ask), so inserting/removing a level is a binary search and a shift; books of a few
thousand levels (a Binance 1000-level snapshot plus diffs) stay fast. This is not the
simulated venue's matching book (venues/sim owns that); it only answers "what is the top
of book after this message" and "is the book crossed".
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.types import EventKind

CAPACITY = 1 << 16
_DELTA = EventKind.BOOK_DELTA.value
_SB = EventKind.SNAPSHOT_BEGIN.value
_SE = EventKind.SNAPSHOT_END.value
_TRADE = EventKind.TRADE.value
_CLEAR = EventKind.CLEAR.value
# state slots
N_BID, N_ASK, IN_SNAP, OVERFLOWED = range(4)


@njit(cache=True)
def _set_level(px, q, n, price, qty):
    """Set level price to qty (0 removes) in an ascending array; returns the new count or -1."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if px[mid] < price:
            lo = mid + 1
        else:
            hi = mid
    if lo < n and px[lo] == price:
        if qty == 0:
            for j in range(lo, n - 1):
                px[j] = px[j + 1]
                q[j] = q[j + 1]
            return n - 1
        q[lo] = qty
        return n
    if qty == 0:
        return n
    if n >= px.shape[0]:
        return -1
    for j in range(n, lo, -1):
        px[j] = px[j - 1]
        q[j] = q[j - 1]
    px[lo] = price
    q[lo] = qty
    return n + 1


@njit(cache=True)
def scan_nb(
    state,
    bid_px,
    bid_q,
    ask_px,
    ask_q,
    kind,
    side,
    price,
    qty,
    msg_end,
    top,
    crossed,
    stop_on_cross,
):
    """Apply rows; at each message end that touched the book record top and crossing.

    top[i] = (best bid, bid qty, best ask, ask qty) with -1 for an empty side, written
    only where msg_end[i]; crossed[i] is True where the book is crossed there. With
    stop_on_cross, returns right after the first crossed message; returns rows applied.
    """
    nb = state[N_BID]
    na = state[N_ASK]
    in_snap = state[IN_SNAP]
    touched = False
    done = kind.shape[0]
    for i in range(kind.shape[0]):
        k = kind[i]
        if k == _DELTA:
            if side[i] > 0:
                r = _set_level(bid_px, bid_q, nb, price[i], qty[i])
                if r < 0:
                    state[OVERFLOWED] = 1
                else:
                    nb = r
            elif side[i] < 0:
                r = _set_level(ask_px, ask_q, na, price[i], qty[i])
                if r < 0:
                    state[OVERFLOWED] = 1
                else:
                    na = r
            touched = True
        elif k == _SB:
            if side[i] >= 0:
                nb = 0
            if side[i] <= 0:
                na = 0
            in_snap = 1
            touched = True
        elif k == _SE:
            in_snap = 0
            touched = True
        elif k == _CLEAR:
            nb = 0
            na = 0
            touched = True
        if msg_end[i] and touched and in_snap == 0:
            bb = bid_px[nb - 1] if nb > 0 else -1
            ba = ask_px[0] if na > 0 else -1
            top[i, 0] = bb
            top[i, 1] = bid_q[nb - 1] if nb > 0 else -1
            top[i, 2] = ba
            top[i, 3] = ask_q[0] if na > 0 else -1
            crossed[i] = nb > 0 and na > 0 and bb >= ba
            touched = False
            if crossed[i] and stop_on_cross:
                done = i + 1
                break
    state[N_BID] = nb
    state[N_ASK] = na
    state[IN_SNAP] = in_snap
    return done


def message_ends(events: np.ndarray) -> np.ndarray:
    """Row i ends a message when the next row has other stamps or the kind group changes."""
    n = len(events)
    end = np.ones(n, dtype=np.bool_)
    if n > 1:
        same = (events["exch_ts"][1:] == events["exch_ts"][:-1]) & (
            events["local_ts"][1:] == events["local_ts"][:-1]
        )
        trade = events["kind"] == _TRADE
        same &= trade[1:] == trade[:-1]
        end[:-1] = ~same
    return end


class BookScanner:
    """Streaming wrapper: feed chunks of one instrument, get top/crossed per message end."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.state = np.zeros(4, dtype=np.int64)
        self.bid_px = np.zeros(capacity, np.int64)
        self.bid_q = np.zeros(capacity, np.int64)
        self.ask_px = np.zeros(capacity, np.int64)
        self.ask_q = np.zeros(capacity, np.int64)

    @property
    def overflowed(self) -> bool:
        return bool(self.state[OVERFLOWED])

    def scan(
        self, events: np.ndarray, msg_end: np.ndarray | None = None, stop_on_cross: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Returns (msg_end, top[n,4], crossed[n]); see scan_nb for stop_on_cross."""
        n = len(events)
        if msg_end is None:
            msg_end = message_ends(events)
        top = np.full((n, 4), -1, dtype=np.int64)
        crossed = np.zeros(n, dtype=np.bool_)
        self.applied = scan_nb(
            self.state,
            self.bid_px,
            self.bid_q,
            self.ask_px,
            self.ask_q,
            np.ascontiguousarray(events["kind"]),
            np.ascontiguousarray(events["side"]),
            np.ascontiguousarray(events["price"]),
            np.ascontiguousarray(events["qty"]),
            msg_end,
            top,
            crossed,
            stop_on_cross,
        )
        return msg_end, top, crossed

    def levels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        nb, na = int(self.state[N_BID]), int(self.state[N_ASK])
        return (
            self.bid_px[:nb].copy(),
            self.bid_q[:nb].copy(),
            self.ask_px[:na].copy(),
            self.ask_q[:na].copy(),
        )


def unknown_book_rows(kind: np.ndarray, known_before: bool = False) -> tuple[np.ndarray, bool]:
    """Book rows that describe a book nobody knows: before the first SNAPSHOT_BEGIN, or
    after a CLEAR and before the next SNAPSHOT_BEGIN.

    Why: a delta applied to an unknown book invents levels (issue 9: a Tardis
    incremental_book_L2 row before the first `is_snapshot` run became a phantom bid an IOC
    filled against). Only book-changing rows count (BOOK_DELTA, L3); trades are real
    whatever the book. `known_before` is the state carried from an earlier chunk; returns
    (bool mask over `kind`, whether the book is known after the last row)."""
    n = len(kind)
    if n == 0:
        return np.zeros(0, dtype=np.bool_), known_before
    marker = (kind == _SB) | (kind == _CLEAR)
    last = np.maximum.accumulate(np.where(marker, np.arange(n), -1))
    known = np.full(n, known_before, dtype=np.bool_)
    has = last >= 0
    known[has] = kind[last[has]] == _SB
    book = (kind == _DELTA) | ((kind >= EventKind.L3_ADD.value) & (kind <= EventKind.L3_FILL.value))
    return book & ~known, bool(known[-1])
