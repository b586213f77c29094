"""Integer codes shared by the numba kernels and the Python layer of the simulated venue.

Numba freezes module-level globals as compile-time constants, so kernels compare against
these names at no cost (vectorbt style: plain ints in hot code, IntEnums at the edges).
They are np.int64, not Python ints: numba types a Python int constant passed to another
jitted function as a Literal and compiles one copy of the callee per distinct value.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

# --- status codes returned by run_nb --------------------------------------------------
ST_BOUND = np.int64(0)
ST_ORDER = np.int64(1)
ST_BOOK = np.int64(2)
ST_TRADE = np.int64(3)
ST_END = np.int64(4)
ST_NEED_DATA = np.int64(10)  # pull the next feed chunk (or mark the feed exhausted)
ST_NEED_RESP_SPACE = np.int64(11)
ST_NEED_BOOK_SPACE = np.int64(12)
ST_NEED_BBO_SPACE = np.int64(13)
ST_NEED_TRADE_SPACE = np.int64(14)
ST_NEED_ORDER_SLOTS = np.int64(15)
ST_NEED_L3_SPACE = np.int64(17)
ST_NEED_PEND_SPACE = np.int64(18)  # a venue's ring of conflated book rows is full (depth conflation)
ST_STUCK = np.int64(99)  # internal error: no item could be processed

# --- queue models ---------------------------------------------------------------------
QM_RISK_AVERSE = np.int64(0)
QM_POWER = np.int64(1)
QM_LOG = np.int64(2)
QM_L3_FIFO = np.int64(3)

# --- self-trade prevention ------------------------------------------------------------
STP_NONE = np.int64(0)
STP_CANCEL_NEW = np.int64(1)
STP_CANCEL_RESTING = np.int64(2)
STP_CANCEL_BOTH = np.int64(3)
STP_DECREMENT_BOTH = np.int64(4)

STP_NAMES = {
    "none": STP_NONE,
    "cancel-new": STP_CANCEL_NEW,
    "cancel-resting": STP_CANCEL_RESTING,
    "cancel-both": STP_CANCEL_BOTH,
    "decrement-both": STP_DECREMENT_BOTH,
}

# --- request kinds --------------------------------------------------------------------
RQ_SUBMIT = np.int64(1)
RQ_CANCEL = np.int64(2)
RQ_AMEND = np.int64(3)
RQ_QUERY = np.int64(4)  # a lookup (engine.venue.QueryableVenue): answered with STATE responses
# RQ_ORDER_NO of a query: an order number, or one of these
Q_OPEN_ORDERS = np.int64(-1)  # every open order of the owner at the venue, one STATE each
Q_BALANCES = np.int64(-2)  # one STATE marker: the venue's balances are read when it arrives

# request record columns (int64 2-D array R[cap, RQ_NF])
RQ_KIND = np.int64(0)
RQ_ORDER_NO = np.int64(1)
RQ_INST = np.int64(2)
RQ_SIDE = np.int64(3)
RQ_TYPE = np.int64(4)
RQ_TIF = np.int64(5)
RQ_PRICE = np.int64(6)
RQ_QTY = np.int64(7)
RQ_POST = np.int64(8)
RQ_GTD = np.int64(9)
RQ_ARRIVAL = np.int64(10)
RQ_SEQ = np.int64(11)
RQ_VENUE = np.int64(12)
RQ_KNOWN = np.int64(13)  # 1 if the order number was submitted before (for CANCEL_REJECTED reasons)
RQ_STP = np.int64(14)  # per-order STP mode, -1 = the venue's (account) default
RQ_OWNER = np.int64(15)  # the account the order belongs to (0 = the strategy; see OF_OWNER)
RQ_SENT = np.int64(16)  # local send time; the arrival is computed from it when the kernel next runs
# the latest arrival of a submit whose arrival is a window (0: none): a post-only order the
# session saw refused is placed at the first moment in [RQ_ARRIVAL, RQ_ARR_HI] at which the
# venue refuses it (latency_nb.time_requests_nb, core_nb: "refusal windows")
RQ_ARR_HI = np.int64(17)
RQ_REPLY_AT = np.int64(18)  # such a submit's reply reaches the local side when the session's did (0: the model's)
RQ_NF = np.int64(19)

# order table columns (int64 2-D array O[cap, OF_NF]); ahead/cum_trade live in Of (float64)
OF_NO = np.int64(0)
OF_INST = np.int64(1)
OF_SIDE = np.int64(2)
OF_TYPE = np.int64(3)
OF_TIF = np.int64(4)
OF_PRICE = np.int64(5)
OF_QTY = np.int64(6)
OF_FILLED = np.int64(7)
OF_GTD = np.int64(8)
OF_POST = np.int64(9)
OF_SEQ = np.int64(10)  # queue seniority: arrival seq, renewed when an amend sends it to the back
OF_VENUE = np.int64(11)
OF_STP = np.int64(12)
OF_L3_AHEAD = np.int64(13)  # l3_fifo: venue order-id sequence number our order joined behind
# owner: the account an order belongs to. Orders of different owners trade with each other
# (a taker fills against a resting order of another owner as against the book, in
# price-time priority); self-trade prevention applies only between orders of one owner.
# A backtest has one owner (0), so its matching is unchanged.
OF_OWNER = np.int64(14)
OF_NF = np.int64(15)

# per-order float state (otf[n_orders, width]): the queue model's columns (venues.sim.models);
# column 0 is always `ahead` (lots), which the venue itself also reads and writes
OFF_AHEAD = np.int64(0)
OFF_CUM = np.int64(1)  # cum_trade of the shipped power/log models
OFF_NF = np.int64(2)  # the shipped models' widest state

# scalar state (int64 array S)
S_LI = np.int64(0)  # next local row in the buffer
S_NBUF = np.int64(1)
S_FEED_DONE = np.int64(2)
S_NREQ = np.int64(3)
S_NRESP = np.int64(4)
S_SEQ = np.int64(5)
S_NACT = np.int64(6)
S_NFREE = np.int64(7)
S_RUN_INST = np.int64(8)
S_RUN_TS = np.int64(9)
S_RUN_CHANGED = np.int64(10)
S_NBBO = np.int64(11)
S_NTR = np.int64(12)
S_EVENTS = np.int64(13)
S_NOW = np.int64(14)
S_MAXCNT = np.int64(15)
S_NEED_BOOK = np.int64(16)
S_WAKE_TS = np.int64(17)
S_WAKE_INST = np.int64(18)
S_WAKE_IDX = np.int64(19)
S_NGTD = np.int64(20)
S_NL3 = np.int64(21)
S_NEED_L3 = np.int64(22)
S_L3SEQ = np.int64(23)  # next venue-order sequence number of the exchange-side L3 table
S_LAZY_OFF = np.int64(24)  # 1: exchange sides never go dormant (a row had exch_ts > local_ts)
# depth conflation (core_nb "Depth conflation"): book rows held until their venue publishes them
S_NPEND = np.int64(25)  # rows held, all venues
S_NEED_PEND = np.int64(26)  # 1: a venue's ring is full (ST_NEED_PEND_SPACE)
S_RUN_PEND = np.int64(27)  # 1: the open run of local book rows is published rows of venue S_RUN_PV
S_RUN_PV = np.int64(28)
S_UNTIMED = np.int64(29)  # the last this many requests of R have no arrival time yet (latency_nb.time_requests_nb)
S_REQ_SEQ = np.int64(30)  # the next request's send sequence number (RQ_SEQ), both paths (requests_nb)
S_NF = np.int64(31)

# per-venue state (int64 array V[n_venues, VF_NF])
VF_XI = np.int64(0)  # next exchange row of this venue in the buffer (a lower bound: it is scanned on)
VF_XCLOCK = np.int64(1)  # exchange time reached (the latest item handled; floors request arrivals)
VF_LAST_RESP = np.int64(2)  # local time of the last response (responses never overtake each other)
VF_LMODEL = np.int64(3)  # the venue's latency model: its index in the run's latency ModelSet (latency_nb.py)
VF_QMODEL = np.int64(4)  # the venue's queue model: its index in the run's queue ModelSet (venues.sim.models)
VF_PARTIAL = np.int64(5)
VF_STP = np.int64(6)
VF_NORDERS = np.int64(7)  # resting orders + queued requests of this venue
VF_LP_OFF = np.int64(8)  # the latency model's parameters: LP[off : off + n], its state right after
VF_LP_N = np.int64(9)  # (latency_nb.py)
VF_EMIN = np.int64(10)  # smallest possible entry latency: how far the exchange may run ahead
VF_DORMANT = np.int64(11)  # 1: no orders, the exchange book is not maintained (dormant_nb.py)
VF_NOLAZY = np.int64(12)  # 1: this venue's feed has L3 rows, its exchange side never sleeps
VF_BALANCES = np.int64(13)  # 1: the venue enforces balances (locks funds, rejects insufficient_balance)
VF_PULL_HI = np.int64(14)  # no instrument of the venue has xinst[:, XI_PULLED] above this (the
#                            cursor checks pulled marks only below it)
VF_OWNERS = np.int64(15)  # 1: an order of an owner other than 0 reached the venue (cross-owner matching on)
# a partial-fill drought (venues.sim.faults `partial_fill_drought`): during [start, end) of
# exchange time every passive fill driven by the feed is cut to ppm / 1e6 of its size
VF_DRY_START = np.int64(16)
VF_DRY_END = np.int64(17)
VF_DRY_PPM = np.int64(18)
VF_CONFL = np.int64(19)  # depth conflation interval (ns; 0 = off): book rows reach the local side per window
VF_CONFL_OFF = np.int64(20)  # the venue's feed latency: windows are cut on local_ts - feed_ns (the venue's clock)
VF_PHEAD = np.int64(21)  # held (published later) rows of this venue taken so far (a counter; ring slot = % cap)
VF_PTAIL = np.int64(22)  # held rows of this venue put so far
VF_QL3 = np.int64(23)  # 1: the venue's queue model is exact FIFO from L3 rows (QueueModel.l3)
VF_LS_N = np.int64(24)  # int64 slots of latency-model state (LatencyModel.state)
VF_LAST_ARR = np.int64(25)  # arrival time of the venue's last request (requests never overtake each other)
VF_RP_OFF = np.int64(26)  # the venue's user-stream report latencies (latency.report_file): LP[off : off + 2n],
VF_RP_N = np.int64(27)  # n rows [ts, response, stamp]; n = 0: the latency model's response (latency_nb.py)
VF_OVERTAKE = np.int64(28)  # 1: requests of different orders may overtake each other (the `recorded` latency)
VF_AW_OFF = np.int64(29)  # the venue's refusal windows (the `recorded` latency's refused submits): LP[off:off + 4n],
VF_AW_N = np.int64(30)  # n rows [ts, turn, entry_min, entry_max, round trip] sorted by (ts, turn) (time_requests_nb)
VF_AW_TS = np.int64(31)  # the send time of the venue's last timed submit, and how many submits before it
VF_AW_K = np.int64(32)  # were sent at that time (its turn)
VF_REPLY_AT = np.int64(33)  # set while a windowed submit is handled: its reply's local time (response_time_nb)
VF_NF = np.int64(34)

# per-instrument exchange-side state (int64 array xinst[n_instruments, XI_NF])
XI_CLOCK = np.int64(0)  # this (venue, instrument) book's exchange clock: a row's time is max(exch_ts, clock)
XI_PULLED = np.int64(1)  # rows of this instrument before this buffer index (and at or after its
#                          venue's cursor) were applied ahead of the cursor (core_nb.pull_rows_nb)
XI_BASE = np.int64(2)  # balance row (in bal) of the base asset on this venue
XI_QUOTE = np.int64(3)  # balance row of the quote asset
XI_BMUL = np.int64(4)  # base-asset units per lot
XI_QMUL = np.int64(5)  # quote-asset units per (tick x lot)
XI_FEE_M = np.int64(6)  # maker fee in quote units per (tick x lot) of notional (negative: rebate)
XI_FEE_T = np.int64(7)  # taker fee, same unit
XI_FEE_LOCK = np.int64(8)  # fee a buy locks on top of its notional: max(maker, taker, 0)
# fee_asset = "received" (Binance spot): a buy pays its fee in base, taken from what it
# receives (so it locks no fee); these hold that fee in base units per lot (0 otherwise)
XI_BFEE_M = np.int64(9)
XI_BFEE_T = np.int64(10)
XI_FEE_RECV = np.int64(11)  # 1: fee_asset "received" (a buy pays no quote fee), 0: "quote"
XI_NF = np.int64(12)

# balances (int64 array bal[n_venue_assets, BAL_NF]), in each asset's exact unit
BAL_FREE = np.int64(0)
BAL_LOCKED = np.int64(1)
BAL_NF = np.int64(2)

VFF_QPARAM = np.int64(0)
VFF_NF = np.int64(1)

INF_TS = np.int64(np.iinfo(np.int64).max)
I0 = np.int64(0)
I1 = np.int64(1)
IM1 = np.int64(-1)

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
    STARVED = 5  # push mode: the next step needs a row not pushed yet (SimCore.push)
