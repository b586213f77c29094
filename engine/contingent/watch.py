"""The armed-trigger watch array: what the numba replay loop checks to wake Python.

Why an array of thresholds and not a list of orders: the replay loop (venues/sim,
`core_nb.batch_nb`) must stay O(1) per feed row however many contingent orders are armed.
Per instrument it keeps, for each reference price, the nearest threshold above and below
at which *some* armed order needs Python (to trigger, or to move a trailing stop); the
contingent manager recomputes an instrument's row after every change. A row of "never"
values costs two compares per local trade row and six per changed book.

Layout: ``watch[i, col]`` int64, i = the session's instrument index. Prices in ticks;
the mid is watched as bid + ask (two ticks per tick of mid) so it stays an integer.
A `*_HI` column wakes when the reference is >= it, a `*_LO` column when it is <= it;
`NEVER_HI` / `NEVER_LO` disable a column. `TW_LAST` is written by the loop: the last
trade price seen on the local side (-1 before the first), so an order armed later knows
where the market last printed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

TW_TRADE_HI = np.int64(0)  # last trade price >= this
TW_TRADE_LO = np.int64(1)  # last trade price <= this
TW_BID_HI = np.int64(2)
TW_BID_LO = np.int64(3)
TW_ASK_HI = np.int64(4)
TW_ASK_LO = np.int64(5)
TW_SUM_HI = np.int64(6)  # bid + ask (= 2 x mid) >= this
TW_SUM_LO = np.int64(7)
TW_LAST = np.int64(8)  # written by the replay loop: last local trade price (ticks), -1 = none yet
TW_NF = 9

NEVER_HI = np.iinfo(np.int64).max
NEVER_LO = np.int64(-1)  # prices are >= 0

_HI_COLS = (TW_TRADE_HI, TW_BID_HI, TW_ASK_HI, TW_SUM_HI)
_LO_COLS = (TW_TRADE_LO, TW_BID_LO, TW_ASK_LO, TW_SUM_LO)


def new_watch(n_instruments: int) -> np.ndarray:
    """A watch array for n instruments with every column disabled (and no last trade)."""
    watch = np.empty((n_instruments, TW_NF), dtype=np.int64)
    clear_row(watch, slice(None))
    watch[:, TW_LAST] = -1
    return watch


def clear_row(watch: np.ndarray, i: int | slice) -> None:
    """Disable every threshold of instrument row(s) i (TW_LAST is kept)."""
    for col in _HI_COLS:
        watch[i, col] = NEVER_HI
    for col in _LO_COLS:
        watch[i, col] = NEVER_LO


@njit(cache=True, _nrt=False, inline="always")
def trade_touch_nb(watch, inst, price):
    """A local trade at `price` (ticks) touches an armed threshold of instrument `inst`;
    records it as the instrument's last trade. The replay loop and the manager share it."""
    watch[inst, TW_LAST] = price
    return price >= watch[inst, TW_TRADE_HI] or price <= watch[inst, TW_TRADE_LO]


@njit(cache=True, _nrt=False, inline="always")
def book_touch_nb(watch, inst, bid, bid_qty, ask, ask_qty):
    """The local top of book touches an armed threshold of instrument `inst` (an empty side,
    qty 0, gives no reference)."""
    has_bid = bid_qty > 0
    has_ask = ask_qty > 0
    if has_bid and (bid >= watch[inst, TW_BID_HI] or bid <= watch[inst, TW_BID_LO]):
        return True
    if has_ask and (ask >= watch[inst, TW_ASK_HI] or ask <= watch[inst, TW_ASK_LO]):
        return True
    return has_bid and has_ask and (bid + ask >= watch[inst, TW_SUM_HI] or bid + ask <= watch[inst, TW_SUM_LO])
