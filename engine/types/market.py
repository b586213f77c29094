"""The one columnar market-event schema every source, store and venue speaks.

A row is one venue event with two clocks: `exch_ts` (venue time, drives matching) and
`local_ts` (when our process sees it, drives strategies). Prices are int64 ticks and
quantities int64 lots of the row's instrument; `instrument` is an index into the
dataset's instrument table (ids such as ``binance:BTC/USDT``), which every source
carries beside the events.
"""

from __future__ import annotations

from decimal import Decimal
from enum import IntEnum

import numpy as np

EVENT_DTYPE = np.dtype(
    [
        ("exch_ts", "i8"),
        ("local_ts", "i8"),
        ("instrument", "u2"),
        ("kind", "u1"),
        ("side", "i1"),
        ("price", "i8"),
        ("qty", "i8"),
        ("order_id", "u8"),
    ],
    align=True,
)


class EventKind(IntEnum):
    """Event kinds; plain ints so numba kernels can compare them directly.

    BOOK_DELTA sets the L2 level (side, price) to qty (0 removes it).
    SNAPSHOT_BEGIN clears the side(s) named by `side` (0 = both) and starts a snapshot whose
    levels follow as BOOK_DELTA rows until SNAPSHOT_END. TRADE: side is the aggressor.
    L3_* carry the venue order id in `order_id`. CLEAR empties the book.

    Contracts (docs/derivatives.md): MARK_PRICE sets the instrument's mark price to `price`
    ticks (a venue's mark is finer than its tick: importers round it half-even to the
    tick). FUNDING_RATE is a funding settlement at `exch_ts`: the rate is `side` x `price`
    x FUNDING_RATE_UNIT (`side` +1, -1 or 0, as prices are never negative) and `qty` is the
    mark price in ticks the venue settled at (0 = unknown: the mark in force is used).
    Neither touches the book; the matching core never sees them (venues/sim/derivatives.py).
    """

    BOOK_DELTA = 1
    SNAPSHOT_BEGIN = 2
    SNAPSHOT_END = 3
    TRADE = 4
    L3_ADD = 5
    L3_MODIFY = 6
    L3_CANCEL = 7
    L3_FILL = 8
    CLEAR = 9
    MARK_PRICE = 10
    FUNDING_RATE = 11


#: FUNDING_RATE rows carry the rate in units of 1e-12 (Binance publishes 8 decimals)
FUNDING_RATE_UNIT = Decimal("1e-12")
#: the kinds that carry contract data rather than book or trade events
DERIVATIVE_KINDS = (10, 11)


class Side(IntEnum):
    """Book side of a delta (BUY = bid), aggressor of a trade, or side of an order."""

    BUY = 1
    SELL = -1


def empty_events(n: int = 0) -> np.ndarray:
    """A zeroed event array of length n in the canonical dtype."""
    return np.zeros(n, dtype=EVENT_DTYPE)
