"""Integer codes shared by the numba kernels and the Python layer of the simulated venue.

Numba freezes module-level ints as compile-time constants, so kernels compare against
these names at no cost (vectorbt style: plain ints in hot code, IntEnums at the edges).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

# --- status codes returned by run_nb --------------------------------------------------
ST_BOUND = 0
ST_ORDER = 1
ST_BOOK = 2
ST_TRADE = 3
ST_END = 4
ST_NEED_DATA = 10  # pull the next feed chunk (or mark the feed exhausted)
ST_NEED_RESP_SPACE = 11
ST_NEED_BOOK_SPACE = 12
ST_NEED_BBO_SPACE = 13
ST_NEED_TRADE_SPACE = 14
ST_NEED_ORDER_SLOTS = 15
ST_NEED_LATENCY = 16  # empirical response-latency samples ran out
ST_NEED_L3_SPACE = 17
ST_STUCK = 99  # internal error: no item could be processed

# --- queue models ---------------------------------------------------------------------
QM_RISK_AVERSE = 0
QM_POWER = 1
QM_LOG = 2
QM_L3_FIFO = 3

# --- self-trade prevention ------------------------------------------------------------
STP_NONE = 0
STP_CANCEL_NEW = 1
STP_CANCEL_RESTING = 2
STP_CANCEL_BOTH = 3
STP_DECREMENT_BOTH = 4

STP_NAMES = {
    "none": STP_NONE,
    "cancel-new": STP_CANCEL_NEW,
    "cancel-resting": STP_CANCEL_RESTING,
    "cancel-both": STP_CANCEL_BOTH,
    "decrement-both": STP_DECREMENT_BOTH,
}

# --- request kinds --------------------------------------------------------------------
RQ_SUBMIT = 1
RQ_CANCEL = 2
RQ_AMEND = 3

# request record columns (int64 2-D array R[cap, RQ_NF])
RQ_KIND = 0
RQ_ORDER_NO = 1
RQ_INST = 2
RQ_SIDE = 3
RQ_TYPE = 4
RQ_TIF = 5
RQ_PRICE = 6
RQ_QTY = 7
RQ_POST = 8
RQ_GTD = 9
RQ_ARRIVAL = 10
RQ_SEQ = 11
RQ_VENUE = 12
RQ_KNOWN = 13  # 1 if the order number was submitted before (for CANCEL_REJECTED reasons)
RQ_STP = 14  # per-order STP mode, -1 = the venue's (account) default
RQ_NF = 15

# order table columns (int64 2-D array O[cap, OF_NF]); ahead/cum_trade live in Of (float64)
OF_NO = 0
OF_INST = 1
OF_SIDE = 2
OF_TYPE = 3
OF_TIF = 4
OF_PRICE = 5
OF_QTY = 6
OF_FILLED = 7
OF_GTD = 8
OF_POST = 9
OF_SEQ = 10  # queue seniority: arrival seq, renewed when an amend sends it to the back
OF_VENUE = 11
OF_STP = 12
OF_L3_AHEAD = 13  # l3_fifo: venue order-id sequence number our order joined behind
OF_NF = 14

OFF_AHEAD = 0
OFF_CUM = 1
OFF_NF = 2

# scalar state (int64 array S)
S_LI = 0  # next local row in the buffer
S_NBUF = 1
S_FEED_DONE = 2
S_NREQ = 3
S_NRESP = 4
S_SEQ = 5
S_NACT = 6
S_NFREE = 7
S_RUN_INST = 8
S_RUN_TS = 9
S_RUN_CHANGED = 10
S_NBBO = 11
S_NTR = 12
S_EVENTS = 13
S_NOW = 14
S_MAXCNT = 15
S_NEED_BOOK = 16
S_WAKE_TS = 17
S_WAKE_INST = 18
S_WAKE_IDX = 19
S_NGTD = 20
S_NL3 = 21
S_NEED_L3 = 22
S_NF = 24

# per-venue state (int64 array V[n_venues, VF_NF])
VF_XI = 0  # next exchange row of this venue in the buffer (a lower bound: it is scanned on)
VF_XCLOCK = 1  # exchange time reached
VF_LAST_RESP = 2  # local time of the last response (responses never overtake each other)
VF_RESP_LAT = 3  # constant response latency
VF_QMODEL = 4
VF_PARTIAL = 5
VF_STP = 6
VF_NORDERS = 7  # resting orders + queued requests of this venue
VF_LAT_POS = 8  # next empirical response-latency sample
VF_LAT_N = 9  # number of samples available (0 = constant model)
VF_EMIN = 10  # smallest possible entry latency: how far the exchange may run ahead
VF_NF = 11

VFF_QPARAM = 0
VFF_NF = 1

INF_TS = np.iinfo(np.int64).max

BBO_DTYPE = np.dtype(
    [
        ("ts", "i8"),
        ("exch_ts", "i8"),
        ("instrument", "u2"),
        ("bid", "i8"),
        ("bid_qty", "i8"),
        ("ask", "i8"),
        ("ask_qty", "i8"),
    ],
    align=True,
)

TRADE_DTYPE = np.dtype(
    [
        ("ts", "i8"),
        ("exch_ts", "i8"),
        ("instrument", "u2"),
        ("side", "i1"),
        ("price", "i8"),
        ("qty", "i8"),
    ],
    align=True,
)


class WakeKind(IntEnum):
    """Why `SimCore.run_until` returned."""

    BOUND = 0
    ORDER = 1
    BOOK = 2
    TRADE = 3
    END = 4
