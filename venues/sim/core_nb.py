"""The event loop of the simulated venue (numba): two processors over one feed.

The exchange side applies each feed row at its `exch_ts` to the exchange book and matches
our orders; the local side applies the same row at its `local_ts` to the local book that
strategies read. Requests reach the exchange after the entry latency, responses reach
the local side after the response latency. `run_nb` merges all of these on one time axis
and stops at the first wake-up, at the time bound, or when it needs something from the
Python layer (another feed chunk, bigger buffers) -- it never raises.

Order at equal time (exchange and local are independent processors, so only the order
within each side matters): exchange feed row < GTD expiry < request arrival < local
feed row < published (conflated) book row < response delivery. Each (venue, instrument) book keeps its own exchange
clock: a row's exchange time is max(exch_ts, its instrument's clock), so each book's
clock is monotone even when the feed (sorted by local_ts) carries unsorted exch_ts, and
rows of other instruments never move it. A venue's rows are applied in feed order, but
before a request or a GTD expiry the rows of its instrument (and of the venue's
instruments with live orders) up to its time are applied first (pull_rows_nb), so an
order sees every row of its own instrument stamped at or before its arrival.

Depth conflation (`[venues.X] depth_conflation_ms`, V[v, VF_CONFL] > 0): the venue publishes
its depth as one diff per window, as Binance's `@depth@100ms` stream does, so the local side
must not see a book row before the venue sends it. A book row of such a venue (delta,
snapshot, clear; trades are never held) is taken off the buffer when the local side reaches
it and put in the venue's ring `pq` (stamped with its publication time,
`publish_ts_nb`); the ring's rows are applied to the local book, in order, when the local
clock reaches that time, as one run per (time, instrument) -- one `on_book` per published
diff. The exchange side never sees the ring: matching is unchanged. Without `pq` (None)
numba prunes all of it.

The venue kernels (here, matching_nb, book_nb, l3_nb, queue_nb, dormant_nb, compiled_nb) allocate
nothing and are compiled with `_nrt=False`: without numba's runtime, passing an array
to a call or unpacking one from a tuple costs no atomic reference-count pair (which,
per feed row that touches our orders, used to cost more than the row's own work). A
kernel that needs to allocate must not carry the flag.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.contingent.watch import book_touch_nb, trade_touch_nb
from engine.types.market import EventKind
from venues.sim.book_nb import book_row_nb, find_nb, level_feed_qty_nb, level_set_nb, side_key_nb
from venues.sim.codes import (
    I0,
    I1,
    IM1,
    INF_TS,
    OF_INST,
    OF_PRICE,
    OF_SIDE,
    OF_VENUE,
    RQ_ARR_HI,
    RQ_ARRIVAL,
    RQ_CANCEL,
    RQ_INST,
    RQ_KIND,
    RQ_ORDER_NO,
    RQ_QUERY,
    RQ_REPLY_AT,
    RQ_SEQ,
    RQ_SUBMIT,
    RQ_VENUE,
    S_EVENTS,
    S_FEED_DONE,
    S_L3SEQ,
    S_LAZY_OFF,
    S_LI,
    S_MAXCNT,
    S_NACT,
    S_NBBO,
    S_NBUF,
    S_NEED_BOOK,
    S_NEED_L3,
    S_NEED_PEND,
    S_NFREE,
    S_NGTD,
    S_NOW,
    S_NPEND,
    S_NREQ,
    S_NRESP,
    S_NTR,
    S_RUN_CHANGED,
    S_RUN_INST,
    S_RUN_PEND,
    S_RUN_PV,
    S_RUN_TS,
    S_UNTIMED,
    S_WAKE_IDX,
    S_WAKE_INST,
    S_WAKE_TS,
    ST_BOOK,
    ST_BOUND,
    ST_END,
    ST_NEED_BBO_SPACE,
    ST_NEED_BOOK_SPACE,
    ST_NEED_DATA,
    ST_NEED_L3_SPACE,
    ST_NEED_ORDER_SLOTS,
    ST_NEED_PEND_SPACE,
    ST_NEED_RESP_SPACE,
    ST_NEED_TRADE_SPACE,
    ST_ORDER,
    ST_STUCK,
    ST_TRADE,
    VF_AW_N,
    VF_CONFL,
    VF_CONFL_OFF,
    VF_DORMANT,
    VF_EMIN,
    VF_NOLAZY,
    VF_NORDERS,
    VF_PHEAD,
    VF_PTAIL,
    VF_PULL_HI,
    VF_QL3,
    VF_QMODEL,
    VF_REPLY_AT,
    VF_XCLOCK,
    VF_XI,
    VFF_QPARAM,
    XI_CLOCK,
    XI_PULLED,
)
from venues.sim.dormant_nb import sleep_idle_nb, wake_exchange_nb
from venues.sim.l3_nb import M_COUNT, M_SEQ, l3_row_nb
from venues.sim.latency_nb import time_requests_nb
from venues.sim.matching_nb import (
    K_EXPIRED,
    R_NONE,
    amend_nb,
    cancel_nb,
    cross_check_nb,
    end_resting_nb,
    gtd_due_nb,
    l3_queue_nb,
    level_change_nb,
    post_only_refused_nb,
    query_nb,
    queue_level_nb,
    snapshot_end_nb,
    submit_nb,
    trade_nb,
)
from venues.sim.models import q_filled, q_trade

#: how far a submit in a refusal window (latency_nb.time_requests_nb) moves when the venue
#: would still take it: the book is looked at on a 10 us grid of exchange time in the window
#: (a state of the book shorter than that can be missed); the kernel goes straight to the
#: first look after something could have changed the book (window_next_look_nb), so a
#: window costs a few looks per book change, not one per 10 us
WINDOW_STEP_NS = np.int64(10_000)

EK_DELTA = np.int64(EventKind.BOOK_DELTA)
EK_SNAP_BEGIN = np.int64(EventKind.SNAPSHOT_BEGIN)
EK_SNAP_END = np.int64(EventKind.SNAPSHOT_END)
EK_TRADE = np.int64(EventKind.TRADE)
EK_CLEAR = np.int64(EventKind.CLEAR)
EK_L3_FIRST = np.int64(EventKind.L3_ADD)
EK_L3_LAST = np.int64(EventKind.L3_FILL)

P_EXCH_ROW = np.int64(0)
P_EXPIRY = np.int64(1)
P_REQUEST = np.int64(2)
P_LOCAL_ROW = np.int64(3)
P_PENDING = np.int64(4)  # a published (conflated) book row: after the local rows of its time, so
#                         a row stamped exactly on a window's end is published with that window
P_RESPONSE = np.int64(5)


@njit(cache=True, inline="always")
def before_nb(t, p, bt, bp):
    """(t, p) sorts before (bt, bp)."""
    return t < bt or (t == bt and p < bp)


@njit(cache=True, inline="always")
def sat_add_nb(a, b):
    """a + b without overflowing past the largest timestamp."""
    if a >= INF_TS - b:
        return INF_TS
    return a + b


@njit(cache=True, inline="always")
def data_exhausted_nb(S):
    """True once every market row has reached the local side: the feed is done, the buffer
    read and no published (conflated) row is held. Why: the backtest drivers stop firing
    timers then (modes/backtest.py `_drive`, compiled_nb.run_compiled_nb), so a run ends
    with its data even when a strategy keeps a request in flight (a round trip longer than
    its timer period); at a bound at t it is known whether a row later than t exists, the
    kernel having pulled the feed to find out."""
    return S[S_FEED_DONE] != 0 and S[S_LI] >= S[S_NBUF] and S[S_NPEND] == 0


@njit(cache=True, inline="always")
def is_book_kind_nb(kind):
    return kind != EK_TRADE


# --------------------------------------------------------------------------------------
# exchange side
# --------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def exch_row_nb(kx, qt, cs, cnt, insnap, inst_nact, olim, book, ords, rsp, l3, S, V, Vf, row,
                t, v):
    """Apply one feed row on the exchange side; our orders are visited only when the
    row can touch them (olim: each instrument's own buy and sell price ranges).

    The batch loop (batch_nb) handles most rows itself; this is the full path for
    snapshot ends, L3 rows and SimCore.exchange_bbo's catch-up of a dormant venue.
    """
    inst = np.int64(row.instrument)
    kind = np.int64(row.kind)
    side = np.int64(row.side)
    if kind == EK_DELTA:
        if side == 0:
            return
        b = book_row_nb(inst, side, 0)
        price = np.int64(row.price)
        qty = np.int64(row.qty)
        prev, changed = level_set_nb(kx, qt, cs, cnt, b, side_key_nb(side, price), qty)
        n = cnt[b]
        if n > S[S_MAXCNT]:
            S[S_MAXCNT] = n
            if n >= kx.shape[1]:
                S[S_NEED_BOOK] = 1
        if inst_nact[inst] > 0 and insnap[2 * inst] == 0:
            # our orders at this level (queue), or across it (rule c)
            if side > 0:
                touch = (olim[inst, 2] <= price <= olim[inst, 0]) or price >= olim[inst, 1]
            else:
                touch = (olim[inst, 1] <= price <= olim[inst, 3]) or price <= olim[inst, 0]
            if touch:
                level_change_nb(book, ords, rsp, S, V, Vf, t, v, inst, side, price, prev,
                                max(qty, 0))
    elif kind == EK_TRADE:
        if inst_nact[inst] > 0 and side != 0:
            price = np.int64(row.price)
            if (side > 0 and price >= olim[inst, 1]) or (side < 0 and price <= olim[inst, 0]):
                trade_nb(ords, rsp, S, V, t, v, inst, side, price, np.int64(row.qty))
    elif kind == EK_SNAP_BEGIN:
        if side >= 0:
            cnt[book_row_nb(inst, 1, 0)] = 0
        if side <= 0:
            cnt[book_row_nb(inst, -1, 0)] = 0
        insnap[2 * inst] = 1
    elif kind == EK_SNAP_END:
        insnap[2 * inst] = 0
        if inst_nact[inst] > 0:
            snapshot_end_nb(book, ords, rsp, S, V, t, inst)
    elif kind == EK_CLEAR:
        cnt[book_row_nb(inst, 1, 0)] = 0
        cnt[book_row_nb(inst, -1, 0)] = 0
    elif EK_L3_FIRST <= kind <= EK_L3_LAST:
        l3_exch_row_nb(book, ords, rsp, l3, S, V, Vf, row, t, v)


@njit(cache=True, _nrt=False)
def l3_level_nb(kx, qt, cs, cnt, S, inst, side, price, delta, local):
    """Add delta lots to the L2 level an L3 row changed. Returns (prev, new)."""
    b = book_row_nb(inst, side, local)
    key = side_key_nb(side, price)
    prev = level_feed_qty_nb(kx, qt, cnt, b, key)
    new = prev + delta
    if new < 0:
        new = 0
    level_set_nb(kx, qt, cs, cnt, b, key, new)
    n = cnt[b]
    if n > S[S_MAXCNT]:
        S[S_MAXCNT] = n
        if n >= kx.shape[1]:
            S[S_NEED_BOOK] = 1
    return prev, new


@njit(cache=True, _nrt=False)
def l3_exch_row_nb(book, ords, rsp, l3, S, V, Vf, row, t, v):
    """An L3 row on the exchange side: venue-order table, L2 levels, our queues."""
    kx, qt, cs, cnt, insnap = book
    inst_nact = ords[4]
    keys, tab, meta, out = l3
    inst = np.int64(row.instrument)
    kind = np.int64(row.kind)
    V[v, VF_NOLAZY] = 1  # L3 venues keep their exchange side (dormant_nb.py)
    ok = l3_row_nb(keys, tab, meta, I0, inst, kind, np.int64(row.side), np.int64(row.price),
                   np.int64(row.qty), row.order_id, out)
    S[S_L3SEQ] = meta[0, M_SEQ]
    if meta[0, M_COUNT] * 2 >= keys.shape[1] or meta[1, M_COUNT] * 2 >= keys.shape[1]:
        S[S_NEED_L3] = 1
    if not ok:
        return
    had, s0, p0, q0, seq0 = out[0], out[1], out[2], out[3], out[4]
    has, s1, p1, q1 = out[5], out[6], out[7], out[8]
    executed = out[10]
    same = had != 0 and has != 0 and s0 == s1 and p0 == p1
    live = inst_nact[inst] > 0 and insnap[2 * inst] == 0
    if live and had != 0:
        l3_queue_nb(ords, rsp, S, V, t, v, inst, kind, s0, p0, q0, seq0, out)
    if had != 0:
        prev, new = l3_level_nb(kx, qt, cs, cnt, S, inst, s0, p0, (q1 if same else 0) - q0, I0)
        if live:
            level_change_nb(book, ords, rsp, S, V, Vf, t, v, inst, s0, p0, prev, new)
    if has != 0 and not same:
        prev, new = l3_level_nb(kx, qt, cs, cnt, S, inst, s1, p1, q1, I0)
        if live:
            level_change_nb(book, ords, rsp, S, V, Vf, t, v, inst, s1, p1, prev, new)
    if live and executed > 0 and V[v, VF_QL3] != 0:
        # an execution is a trade print for rule (b), aggressor opposite the maker
        trade_nb(ords, rsp, S, V, t, v, inst, -s0, p0, executed)


@njit(cache=True, _nrt=False)
def l3_local_row_nb(book, l3, S, row):
    """An L3 row on the local side: venue-order table and local L2 levels."""
    kx, qt, cs, cnt, insnap = book
    keys, tab, meta, out = l3
    inst = np.int64(row.instrument)
    ok = l3_row_nb(keys, tab, meta, I1, inst, np.int64(row.kind), np.int64(row.side), np.int64(row.price),
                   np.int64(row.qty), row.order_id, out)
    if meta[0, M_COUNT] * 2 >= keys.shape[1] or meta[1, M_COUNT] * 2 >= keys.shape[1]:
        S[S_NEED_L3] = 1
    if not ok:
        return False
    same = out[0] != 0 and out[5] != 0 and out[1] == out[6] and out[2] == out[7]
    changed = False
    if out[0] != 0:
        delta = (out[8] if same else 0) - out[3]
        if delta != 0:
            l3_level_nb(kx, qt, cs, cnt, S, inst, out[1], out[2], delta, I1)
            changed = True
    if out[5] != 0 and not same:
        l3_level_nb(kx, qt, cs, cnt, S, inst, out[6], out[7], out[8], I1)
        changed = True
    return changed


# --------------------------------------------------------------------------------------
# local side
# --------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False, inline="always")
def finish_run_nb(kx, qt, cnt, bbo, lastbbo, nbbo, inst, ts, exch_ts):
    """End of a run of local book rows with one (local_ts, instrument): record the top of
    book in bbo[nbbo] if it changed. Returns the new tape length. (Inlined: the batch loop
    keeps the tape length in a register.)"""
    bb = book_row_nb(inst, 1, 1)
    ba = book_row_nb(inst, -1, 1)
    bid = 0
    bq = 0
    ask = 0
    aq = 0
    if cnt[bb] > 0:
        bid = kx[bb, cnt[bb] - 1]
        bq = qt[bb, cnt[bb] - 1]
    if cnt[ba] > 0:
        ask = -kx[ba, cnt[ba] - 1]
        aq = qt[ba, cnt[ba] - 1]
    if (bid == lastbbo[inst, 0] and bq == lastbbo[inst, 1] and ask == lastbbo[inst, 2]
            and aq == lastbbo[inst, 3]):
        return nbbo
    lastbbo[inst, 0] = bid
    lastbbo[inst, 1] = bq
    lastbbo[inst, 2] = ask
    lastbbo[inst, 3] = aq
    rec = bbo[nbbo]
    rec.ts = ts
    rec.exch_ts = exch_ts
    rec.instrument = inst
    rec.bid = bid
    rec.bid_qty = bq
    rec.ask = ask
    rec.ask_qty = aq
    return nbbo + 1


@njit(cache=True, _nrt=False)
def copy_resp_nb(dst, i, src, j):
    d = dst[i]
    s = src[j]
    d.exch_ts = s.exch_ts
    d.local_ts = s.local_ts
    d.order_no = s.order_no
    d.instrument = s.instrument
    d.kind = s.kind
    d.liquidity = s.liquidity
    d.reason = s.reason
    d.price = s.price
    d.qty = s.qty
    d.filled = s.filled
    d.leaves = s.leaves
    d.order_price = s.order_price


# --------------------------------------------------------------------------------------
# depth conflation: book rows held until their venue publishes them (module doc)
# --------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False, inline="always")
def publish_ts_nb(local_ts, interval, offset):
    """When a book row of a conflated venue reaches the local side: the end of its window.

    Windows are cut on the venue's clock, `local_ts - offset` (offset = the run's feed
    latency of the venue, so the data's own receive times are the grid): a row at time t is
    published at ceil(t / interval) * interval (a row exactly on a boundary goes out at
    once, with the window it closes) and arrives `offset` later. Example, interval 100 ms,
    offset 0: rows at 0.030 s and 0.100 s are seen at 0.100 s, a row at 0.101 s at 0.200 s.
    """
    t = local_ts - offset
    q = t // interval  # floor, also for negative times
    if q * interval != t:
        q += 1
    return q * interval + offset


@njit(cache=True, _nrt=False, inline="always")
def pend_put_nb(pq, V, v, row):
    """Hold `row` in venue v's ring, stamped with its publication time; returns that time,
    or -1 when the ring is full (the caller asks for room: ST_NEED_PEND_SPACE)."""
    cap = pq.shape[0] // V.shape[0]
    tail = V[v, VF_PTAIL]
    if tail - V[v, VF_PHEAD] >= cap:
        return np.int64(-1)
    d = pq[v * cap + tail % cap]
    d.exch_ts = row.exch_ts
    off = V[v, VF_CONFL_OFF]
    if off >= 0:
        d.local_ts = publish_ts_nb(row.local_ts, V[v, VF_CONFL], off)
    else:  # a recorded feed latency (venues/sim/latency.py RecordedFeed): the row carries it
        d.local_ts = max(np.int64(row.order_id), row.local_ts)
    d.instrument = row.instrument
    d.kind = row.kind
    d.side = row.side
    d.price = row.price
    d.qty = row.qty
    d.order_id = row.order_id
    V[v, VF_PTAIL] = tail + 1
    return d.local_ts


@njit(cache=True, _nrt=False)
def pend_next_nb(pq, V):
    """(time, venue) of the earliest held row (INF_TS, -1: none); ties go to the lower venue."""
    nv = V.shape[0]
    cap = pq.shape[0] // nv
    bt = INF_TS
    bv = np.int64(-1)
    for v in range(nv):
        h = V[v, VF_PHEAD]
        if V[v, VF_PTAIL] > h:
            t = pq[v * cap + h % cap].local_ts
            if t < bt:
                bt = t
                bv = np.int64(v)
    return bt, bv


@njit(cache=True, _nrt=False, inline="always")
def local_book_row_nb(kx, qt, cnt, insnap, row):
    """One L2 book row (delta, snapshot begin/end, clear) on the local book; returns
    (whether the book changed, the side's level count after an insert, else 0: the caller
    keeps the largest count, S_MAXCNT). Inlined: no call passes the arrays."""
    changed = False
    grown = np.int64(0)
    kind = np.int64(row.kind)
    side = np.int64(row.side)
    inst = np.int64(row.instrument)
    if kind == EK_DELTA:
        if side != 0:
            b = book_row_nb(inst, side, 1)
            key = side_key_nb(side, np.int64(row.price))
            qty = np.int64(row.qty)
            n = cnt[b]
            pos = find_nb(kx, b, n, key)
            if pos < n and kx[b, pos] == key:
                if qty > 0:
                    changed = qt[b, pos] != qty
                    qt[b, pos] = qty
                else:
                    for k in range(pos, n - 1):
                        kx[b, k] = kx[b, k + 1]
                        qt[b, k] = qt[b, k + 1]
                    cnt[b] = n - 1
                    changed = True
            elif qty > 0:
                for k in range(n, pos, -1):
                    kx[b, k] = kx[b, k - 1]
                    qt[b, k] = qt[b, k - 1]
                kx[b, pos] = key
                qt[b, pos] = qty
                cnt[b] = n + 1
                changed = True
                grown = n + 1
    elif kind == EK_SNAP_BEGIN:
        if side >= 0:
            b = book_row_nb(inst, 1, 1)
            changed = changed or cnt[b] > 0
            cnt[b] = 0
        if side <= 0:
            b = book_row_nb(inst, -1, 1)
            changed = changed or cnt[b] > 0
            cnt[b] = 0
        insnap[2 * inst + 1] = 1
    elif kind == EK_SNAP_END:
        insnap[2 * inst + 1] = 0
        changed = True
    elif kind == EK_CLEAR:
        b = book_row_nb(inst, 1, 1)
        b2 = book_row_nb(inst, -1, 1)
        changed = cnt[b] > 0 or cnt[b2] > 0
        cnt[b] = 0
        cnt[b2] = 0
    return changed, grown


# --------------------------------------------------------------------------------------
# batches: the per-row hot paths, with the book updates written out rather than called
# (a call passes every array as its ~8 machine words)
# --------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def batch_nb(buf, nbuf, done, force, v, ostop_t, ostop_p, rstop_t, t_bound, emin, inst_venue, xinst, S,
             V, kx, qt, cs, cnt, insnap, inst_nact, olim, bbo, lastbbo, trd, wake_book, wake_trade,
             run_exch, book, ords, rsp, l3, Vf, trig, pq=None, pstop=INF_TS):
    """The hot path: feed rows on both sides, in time order.

    Exchange rows of venue v (v < 0: none) run while they stay within `emin` of the next
    possible wake-up and before (ostop_t, ostop_p), the earliest other exchange item;
    local rows run while they stay before the next exchange item, the next response
    (rstop_t) and t_bound. With `force` the first exchange row goes unconditionally (the
    caller picked it). Returns ST_BOOK / ST_TRADE on a wake-up, else -1; the caller
    handles everything else. An exchange row that can touch our orders updates their
    queues here; matching_nb runs only when one of them may fill (or for snapshot ends
    and L3 rows), and the batch ends after any response. `trig` (None: no contingent
    orders) also wakes on a local trade or top of book that touches an armed trigger.
    `pq` (None: no venue conflates its depth) holds the book rows of conflating venues
    (module doc); local rows run only before `pstop`, the earliest held row's time.
    """
    ot = ords[0]
    otf = ords[1]
    act = ords[2]
    qm = ords[8]
    li = S[S_LI]
    x = nbuf
    xclock = 0
    pull_hi = 0
    if v >= 0:
        x = V[v, VF_XI]
        xclock = V[v, VF_XCLOCK]
        pull_hi = V[v, VF_PULL_HI]
    # the clock of the instrument of the last exchange row, in a register (written back
    # when another instrument's row comes and at the end)
    ci_inst = -1
    ci_val = 0
    if S[S_NEED_BOOK] != 0:
        return -1
    maxcnt = S[S_MAXCNT]
    cap = kx.shape[1]
    events = S[S_EVENTS]
    ntr = S[S_NTR]
    ntr_cap = trd.shape[0]
    nbbo = S[S_NBBO]
    nbbo_cap = bbo.shape[0]
    # the pending run of local book rows, in registers (S is memory numba must reload after
    # every store to another array)
    run_inst = S[S_RUN_INST]
    run_ts = S[S_RUN_TS]
    run_changed = S[S_RUN_CHANGED]
    run_x = run_exch[0]
    status = -1
    while True:
        if maxcnt >= cap:
            break
        have_l = li < nbuf
        if have_l:
            tl = buf[li].local_ts
        elif done:
            tl = INF_TS
        else:
            tl = buf[nbuf - 1].local_ts  # the next local row comes no earlier
        # ---- the next exchange row of venue v, if it may go now -------------------
        have_x = False
        te = INF_TS
        if v >= 0:
            # (rows pulled ahead of the cursor for a request are skipped: pull_rows_nb)
            while x < nbuf and (inst_venue[buf[x].instrument] != v
                                or (x < pull_hi and x < xinst[buf[x].instrument, XI_PULLED])):
                x += 1
            if x >= nbuf:
                if V[v, VF_NORDERS] > 0 and not done:
                    break  # its next row is not loaded: the caller fetches it
            else:
                have_x = True
                nx = buf[x]
                xi_row = np.int64(nx.instrument)
                if xi_row != ci_inst:  # each instrument's own clock
                    if ci_inst >= 0:
                        xinst[ci_inst, XI_CLOCK] = ci_val
                    ci_inst = xi_row
                    ci_val = xinst[xi_row, XI_CLOCK]
                te = nx.exch_ts
                if te < ci_val:
                    te = ci_val
        if have_x:
            wake_t = tl
            if rstop_t < wake_t:
                wake_t = rstop_t
            if t_bound < wake_t:
                wake_t = t_bound
            go = force or (te <= sat_add_nb(wake_t, emin)
                           and before_nb(te, P_EXCH_ROW, ostop_t, ostop_p))
            force = False
            if go:
                # can this row touch our orders? (L3 rows always take the full path: they
                # maintain the venue-order table); the batch goes on unless a touching row
                # produced a response or needs more room
                ii = np.int64(nx.instrument)
                touch = EK_L3_FIRST <= np.int64(nx.kind) <= EK_L3_LAST
                tdelta = False
                if not touch and inst_nact[ii] > 0:
                    kk = np.int64(nx.kind)
                    sd = np.int64(nx.side)
                    pr = np.int64(nx.price)
                    # both sides' tests with & and |: which side a row is on is a coin toss,
                    # a branch on it would be mispredicted half the time
                    lo_buy = olim[ii, 2]
                    hi_buy = olim[ii, 0]
                    lo_sell = olim[ii, 1]
                    hi_sell = olim[ii, 3]
                    if kk == EK_DELTA:
                        bid_t = ((lo_buy <= pr) & (pr <= hi_buy)) | (pr >= lo_sell)
                        ask_t = ((lo_sell <= pr) & (pr <= hi_sell)) | (pr <= hi_buy)
                        touch = (insnap[2 * ii] == 0) & (((sd > 0) & bid_t) | ((sd < 0) & ask_t))
                    elif kk == EK_TRADE:
                        touch = ((sd > 0) & (pr >= lo_sell)) | ((sd < 0) & (pr <= hi_buy))
                    elif kk == EK_SNAP_END:
                        touch = True
                if touch:
                    nresp0 = S[S_NRESP]
                    ci_val = te
                    if te > xclock:
                        xclock = te
                    V[v, VF_XCLOCK] = xclock
                    kk = np.int64(nx.kind)
                    if kk == EK_DELTA:
                        tdelta = True  # applied below with the other book rows, then matched
                    elif kk == EK_TRADE:
                        # trade_nb, written out for the rows that fill nothing (queue updates
                        # only); matching_nb is called, on the state it would have seen, when
                        # the trade prints through one of our orders or reaches one
                        sd = np.int64(nx.side)
                        pr = np.int64(nx.price)
                        q = np.int64(nx.qty)
                        model = V[v, VF_QMODEL]
                        param = Vf[v, VFF_QPARAM]
                        nact = S[S_NACT]
                        own = -sd
                        fast = not ((own < 0 and olim[ii, 1] < pr) or (own > 0 and olim[ii, 0] > pr))
                        done_k = -1
                        if fast:  # no trade through an order: the queue model, in queue order,
                            # until the trade reaches an order (then matching_nb fills it)
                            for k in range(nact):
                                s = act[k]
                                if ot[s, OF_INST] == ii and ot[s, OF_SIDE] == own and ot[s, OF_PRICE] == pr:
                                    q_trade(qm, model, otf, s, q, param)
                                    done_k = k
                                    if q_filled(qm, model, otf, s, param) > 0:
                                        fast = False
                                        break
                        if not fast:
                            trade_nb(ords, rsp, S, V, te, v, ii, sd, pr, q, done_k)
                        x += 1
                        if S[S_NRESP] != nresp0:
                            break
                        continue
                    else:
                        S[S_MAXCNT] = maxcnt
                        exch_row_nb(kx, qt, cs, cnt, insnap, inst_nact, olim, book, ords, rsp, l3, S,
                                    V, Vf, nx, te, v)
                        maxcnt = S[S_MAXCNT]
                        x += 1
                        if S[S_NRESP] != nresp0 or S[S_NEED_L3] != 0 or S[S_NEED_BOOK] != 0:
                            break
                        continue
            if go:
                row = nx
                inst = np.int64(row.instrument)
                ci_val = te
                if te > xclock:
                    xclock = te
                kind = np.int64(row.kind)
                side = np.int64(row.side)
                if kind == EK_DELTA:
                    if side != 0:
                        b = book_row_nb(inst, side, 0)
                        # level_set_nb, written out (the hot path keeps its loop state in
                        # registers across the update)
                        key = side_key_nb(side, np.int64(row.price))
                        qty = np.int64(row.qty)
                        n = cnt[b]
                        pos = find_nb(kx, b, n, key)
                        prev = 0
                        if pos < n and kx[b, pos] == key:
                            prev = qt[b, pos]
                            if qty > 0:
                                qt[b, pos] = qty
                                cs[b, pos] = 0
                            else:
                                for k in range(pos, n - 1):
                                    kx[b, k] = kx[b, k + 1]
                                    qt[b, k] = qt[b, k + 1]
                                    cs[b, k] = cs[b, k + 1]
                                cnt[b] = n - 1
                        elif qty > 0:
                            for k in range(n, pos, -1):
                                kx[b, k] = kx[b, k - 1]
                                qt[b, k] = qt[b, k - 1]
                                cs[b, k] = cs[b, k - 1]
                            kx[b, pos] = key
                            qt[b, pos] = qty
                            cs[b, pos] = 0
                            cnt[b] = n + 1
                            if n + 1 > maxcnt:
                                maxcnt = n + 1
                elif kind == EK_SNAP_BEGIN:
                    if side >= 0:
                        cnt[book_row_nb(inst, 1, 0)] = 0
                    if side <= 0:
                        cnt[book_row_nb(inst, -1, 0)] = 0
                    insnap[2 * inst] = 1
                elif kind == EK_SNAP_END:
                    insnap[2 * inst] = 0
                elif kind == EK_CLEAR:
                    cnt[book_row_nb(inst, 1, 0)] = 0
                    cnt[book_row_nb(inst, -1, 0)] = 0
                x += 1
                if tdelta:
                    # the level at or across our orders changed from prev to qty lots:
                    # level_change_nb, written out (the queue update here, matching_nb
                    # only if the visible best of this side now crosses one of our orders)
                    pr = np.int64(row.price)
                    queue_level_nb(qm, ot, otf, act, S[S_NACT], V[v, VF_QMODEL], Vf[v, VFF_QPARAM], inst,
                                   side, pr, prev, max(qty, 0))
                    j = cnt[b] - 1
                    while j >= 0 and qt[b, j] - cs[b, j] <= 0:
                        j -= 1
                    if j >= 0 and ((side > 0 and kx[b, j] >= olim[inst, 1])
                                   or (side < 0 and -kx[b, j] <= olim[inst, 0])):
                        cross_check_nb(book, ords, rsp, S, V, te, inst, -side)
                    if S[S_NRESP] != nresp0 or maxcnt >= cap:
                        break
                continue
        # ---- else the next local row, if it may go now ------------------------------
        if not have_l or tl > t_bound or not before_nb(tl, P_LOCAL_ROW, ostop_t, ostop_p):
            break
        if not before_nb(tl, P_LOCAL_ROW, rstop_t, P_RESPONSE):
            break
        if have_x and not before_nb(tl, P_LOCAL_ROW, te, P_EXCH_ROW):
            break
        if pq is not None and not before_nb(tl, P_LOCAL_ROW, pstop, P_PENDING):
            break
        t = tl
        row = buf[li]
        if EK_L3_FIRST <= np.int64(row.kind) <= EK_L3_LAST:
            break  # the caller applies L3 rows
        kind = np.int64(row.kind)
        inst = np.int64(row.instrument)
        if pq is not None and kind != EK_TRADE and V[inst_venue[inst], VF_CONFL] > 0:
            # a conflating venue's book row: held until its window is published
            pts = pend_put_nb(pq, V, inst_venue[inst], row)
            if pts < 0:
                S[S_NEED_PEND] = 1
                break
            S[S_NPEND] += 1
            if pts < pstop:
                pstop = pts
            li += 1
            events += 1
        elif kind == EK_TRADE:
            li += 1
            events += 1
            tr = trd[ntr]
            tr.ts = row.local_ts
            tr.exch_ts = row.exch_ts
            tr.instrument = row.instrument
            tr.side = row.side
            tr.price = row.price
            tr.qty = row.qty
            ntr += 1
            wake = wake_trade[inst]
            if trig is not None and row.side != 0:  # a live session's heartbeat (side 0) is no trade
                if trade_touch_nb(trig, inst, row.price):
                    wake = True
            if wake:
                S[S_WAKE_TS] = t
                S[S_WAKE_INST] = inst
                S[S_WAKE_IDX] = li - 1
                status = ST_TRADE
                break
        else:
            li += 1
            events += 1
            changed, grown = local_book_row_nb(kx, qt, cnt, insnap, row)
            if grown > maxcnt:
                maxcnt = grown
            if run_inst < 0:
                run_inst = inst
                run_ts = t
                run_changed = 1 if changed else 0
            elif changed:
                run_changed = 1
            run_x = row.exch_ts
        if li >= nbuf or ntr >= ntr_cap or nbbo >= nbbo_cap:
            break
        nx = buf[li]
        if run_inst >= 0 and not (
                nx.local_ts == run_ts and np.int64(nx.instrument) == run_inst
                and is_book_kind_nb(np.int64(nx.kind))):
            rinst = run_inst
            run_inst = -1
            nbbo0 = nbbo
            nbbo = finish_run_nb(kx, qt, cnt, bbo, lastbbo, nbbo, rinst, run_ts, run_x)
            wake = run_changed != 0 and wake_book[rinst]
            if trig is not None:
                # only a new top of book can touch a trigger (one the top already touches has
                # fired when it was armed)
                if nbbo != nbbo0 and book_touch_nb(trig, rinst, lastbbo[rinst, 0], lastbbo[rinst, 1],
                                                   lastbbo[rinst, 2], lastbbo[rinst, 3]):
                    wake = True
            if wake:
                S[S_WAKE_TS] = run_ts
                S[S_WAKE_INST] = rinst
                status = ST_BOOK
                break
            if nbbo >= nbbo_cap:
                break
    S[S_EVENTS] = events
    S[S_NTR] = ntr
    S[S_NBBO] = nbbo
    S[S_RUN_INST] = run_inst
    S[S_RUN_TS] = run_ts
    S[S_RUN_CHANGED] = run_changed
    run_exch[0] = run_x
    if ci_inst >= 0:
        xinst[ci_inst, XI_CLOCK] = ci_val
    if v >= 0:
        V[v, VF_XI] = x
        V[v, VF_XCLOCK] = xclock
    S[S_MAXCNT] = maxcnt
    if maxcnt >= cap:
        S[S_NEED_BOOK] = 1
    if li > S[S_LI] and buf[li - 1].local_ts > S[S_NOW]:
        S[S_NOW] = buf[li - 1].local_ts
    S[S_LI] = li
    return status


PULL_DONE = np.int64(0)
PULL_AGAIN = np.int64(1)
PULL_NEED_DATA = np.int64(2)


@njit(cache=True, _nrt=False)
def pull_rows_nb(buf, nbuf, done, S, V, Vf, inst_venue, xinst, book, ords, rsp, l3, v, inst, t):
    """Before venue v handles a request or an expiry at exchange time t: apply every row of
    instrument `inst`, and of each instrument of v with live orders, whose exchange time
    (max(exch_ts, that instrument's clock)) is <= t, although rows of other instruments with
    later times may come first in the feed.

    Why: the feed is sorted by local_ts, so a row of instrument A stamped 2.0005 s can come
    before a row of B stamped 2.000 s; the venue's cursor stops at A's row, but an order
    on B arriving at 2.000 s must see B's row (issue 9: a fill price must not depend on
    the other instruments in the run). Each (venue, instrument) book keeps its own clock
    (xinst[:, XI_CLOCK]); rows applied here are skipped when the cursor reaches them
    (xinst[:, XI_PULLED]). An instrument's next row must be known, so a scan that reaches
    the end of the loaded feed asks for the next chunk.

    Returns PULL_DONE (nothing left to apply), PULL_AGAIN (a row produced a response or
    needs room: the caller re-evaluates) or PULL_NEED_DATA.
    """
    kx, qt, cs, cnt, insnap = book
    inst_nact = ords[4]
    olim = ords[5]
    x0 = V[v, VF_XI]
    for i in range(inst_venue.shape[0]):
        if inst_venue[i] != v or (i != inst and inst_nact[i] == 0):
            continue
        p = xinst[i, XI_PULLED]
        if p < x0:
            p = x0
        while p < nbuf:
            row = buf[p]
            if np.int64(row.instrument) == i:
                te = row.exch_ts
                if te < xinst[i, XI_CLOCK]:
                    te = xinst[i, XI_CLOCK]
                if te > t:
                    break
                xinst[i, XI_CLOCK] = te
                if te > V[v, VF_XCLOCK]:
                    V[v, VF_XCLOCK] = te
                nresp0 = S[S_NRESP]
                exch_row_nb(kx, qt, cs, cnt, insnap, inst_nact, olim, book, ords, rsp, l3, S, V, Vf,
                            row, te, v)
                p += 1
                xinst[i, XI_PULLED] = p
                if p > V[v, VF_PULL_HI]:
                    V[v, VF_PULL_HI] = p
                if S[S_NRESP] != nresp0 or S[S_NEED_BOOK] != 0 or S[S_NEED_L3] != 0:
                    return PULL_AGAIN
            else:
                p += 1
        xinst[i, XI_PULLED] = p
        if p > V[v, VF_PULL_HI]:
            V[v, VF_PULL_HI] = p
        if p >= nbuf and not done:
            return PULL_NEED_DATA
    return PULL_DONE


@njit(cache=True, inline="always")
def grid_after_nb(et, c, strict):
    """The first look of the grid et + k * WINDOW_STEP_NS (k >= 1) at or after c (after c
    when `strict`)."""
    if c <= et:
        return et + WINDOW_STEP_NS
    d = c - et
    k = d // WINDOW_STEP_NS
    if strict or d % WINDOW_STEP_NS != 0:
        k += 1
    return et + k * WINDOW_STEP_NS


@njit(cache=True, _nrt=False)
def window_next_look_nb(buf, nbuf, done, R, S, V, xinst, inst_venue, inst_nact, r, v, et, limit, e2t, e2p):
    """The next look of a post-only submit (request row r) in its refusal window after the
    look at et found the book not crossing: the first point of the 10 us grid (et + k *
    WINDOW_STEP_NS, the window's end at the latest) at which something could have changed
    what the look sees. Every look before it sees the book of et, so it is refused no more
    than at et; stepping through them cost ~1 us of kernel time each (a 10 s window, a
    million looks). What can change the book first, with the order a look keeps against it:
    - the next row of the order's instrument, or of an instrument of venue v with live
      orders (pull_rows_nb applies them at a look), at its exchange time: a look at that
      time sees it (rows go before requests of their time);
    - the runner-up exchange item (e2t, e2p: a venue's next row, a GTD expiry);
    - another request to venue v (a cancel closing the window, a taker order), in (time,
      seq) order;
    - a request not sent yet: none can arrive by `limit` (the next local wake-up plus the
      venue's least entry), so a look past it waits for the local side, as before.
    A row whose time is not known yet (the loaded feed ends before the instrument's next
    row) falls back to the next grid point. Same looks, same results as stepping by 10 us
    (tests/venues/sim/test_sim_refusal_windows.py)."""
    hi = R[r, RQ_ARR_HI]
    nxt = hi
    g = grid_after_nb(et, limit, True)
    if g < nxt:
        nxt = g
    if e2t < nxt:
        g = grid_after_nb(et, e2t, e2p > P_REQUEST)
        if g < nxt:
            nxt = g
    seq = R[r, RQ_SEQ]
    for q in range(S[S_NREQ]):
        if q != r and R[q, RQ_VENUE] == v and R[q, RQ_ARRIVAL] < nxt:
            g = grid_after_nb(et, R[q, RQ_ARRIVAL], R[q, RQ_SEQ] > seq)
            if g < nxt:
                nxt = g
    inst = R[r, RQ_INST]
    x0 = V[v, VF_XI]
    for i in range(inst_venue.shape[0]):
        if inst_venue[i] != v or (i != inst and inst_nact[i] == 0):
            continue
        p = xinst[i, XI_PULLED]
        if p < x0:
            p = x0
        while p < nbuf and np.int64(buf[p].instrument) != i:
            p += 1
        if p >= nbuf:
            if not done:
                return min(et + WINDOW_STEP_NS, hi)  # its next row is not loaded yet
            continue
        te = buf[p].exch_ts
        if te < xinst[i, XI_CLOCK]:
            te = xinst[i, XI_CLOCK]
        if te < nxt:
            g = grid_after_nb(et, te, False)
            if g < nxt:
                nxt = g
    return nxt if nxt < hi else hi


# --------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def close_window_nb(R, S, r, et):
    """A cancel, amend or query (request row r) reached the venue at et while an earlier
    submit of the same order still waits in its refusal window (core_nb's deferral): one
    order's requests never overtake each other (the session sent this one after that
    submit), so the submit's window ends here: it is taken at its next look, no later than
    et, and row r 1 ns after it; the submit's answer takes the model's response leg, not
    the session's reply time (which would put it after r's). Returns True when it moved row
    r (the caller comes back to it). Without it the cancel was refused (unknown order) and the submit then rested at
    its window's end: an order the strategy had cancelled stayed live (a user's trial)."""
    for q in range(S[S_NREQ]):
        if (q != r and R[q, RQ_KIND] == RQ_SUBMIT and R[q, RQ_VENUE] == R[r, RQ_VENUE]
                and R[q, RQ_ORDER_NO] == R[r, RQ_ORDER_NO] and R[q, RQ_SEQ] < R[r, RQ_SEQ]
                and R[q, RQ_ARR_HI] > R[q, RQ_ARRIVAL]):
            at = min(R[q, RQ_ARRIVAL], et)
            R[q, RQ_ARRIVAL] = at
            R[q, RQ_ARR_HI] = at
            R[q, RQ_REPLY_AT] = 0  # answered by the model's response leg, so before r's answer
            R[r, RQ_ARRIVAL] = at + 1
            return True
    return False


@njit(cache=True, _nrt=False)
def run_nb(buf, S, V, Vf, inst_venue, xinst, bal, kx, qt, cs, cnt, insnap, ot, otf, act, free,
           inst_nact, olim, resp, resp_seq, LP, Spk, l3_keys, l3_tab, l3_meta, l3_out, R, bbo, lastbbo,
           trd, qm, lm, wake_book, wake_trade, t_bound, out_rec, run_exch, col_n=None, col_out=None, col_bbo=None,
           trig=None, pq=None):
    """Advance both processors up to t_bound; return a status code (codes.ST_*).

    Optional (the compiled-strategy loop, venues/sim/compiled_nb.py): with `col_n` given,
    responses are collected into col_out[col_n[0]] (with every instrument's local top of
    book at that moment in col_bbo, 4 ints each) instead of returning ST_ORDER for each,
    until col_out is full; nothing else changes. Omitted, numba prunes the branch.

    On ST_ORDER the response is copied to out_rec[0]; on ST_TRADE / ST_BOOK the wake's
    time and instrument are in S[S_WAKE_TS], S[S_WAKE_INST] (and the trade's buffer row
    in S[S_WAKE_IDX]). run_exch[0] holds the exch_ts of the pending local run.

    Optional `trig` (engine/contingent/watch.py): armed contingent-order thresholds per
    instrument; a local trade or top of book that touches one wakes as ST_TRADE / ST_BOOK
    even when the strategy did not subscribe (the session routes it to the contingent
    manager). Omitted, numba prunes the checks.

    Optional `pq` (EVENT_DTYPE, n_venues x ring capacity): the held book rows of venues that
    conflate their depth (module doc "Depth conflation"). Omitted, numba prunes it.
    """
    # flat arguments keep numba's dispatch cheap (typing a tuple of arrays is slow);
    # the bundles are built here once per call
    book = (kx, qt, cs, cnt, insnap)
    ords = (ot, otf, act, free, inst_nact, olim, xinst, bal, qm, Vf)
    rsp = (resp, resp_seq, LP, Spk, lm)
    l3 = (l3_keys, l3_tab, l3_meta, l3_out)
    nv = V.shape[0]
    if S[S_UNTIMED] != 0:
        time_requests_nb(lm, LP, V, Spk, R, S)
    while True:
        # ---- room for whatever the next item may produce ----------------------------
        if S[S_NRESP] + S[S_MAXCNT] + 2 * S[S_NACT] + 16 > resp.shape[0]:
            return ST_NEED_RESP_SPACE
        if S[S_NEED_BOOK] != 0:
            return ST_NEED_BOOK_SPACE
        if S[S_NEED_L3] != 0:
            return ST_NEED_L3_SPACE
        if S[S_NBBO] >= bbo.shape[0]:
            return ST_NEED_BBO_SPACE
        if S[S_NTR] >= trd.shape[0]:
            return ST_NEED_TRADE_SPACE
        if S[S_NFREE] == 0:
            return ST_NEED_ORDER_SLOTS
        if pq is not None and S[S_NEED_PEND] != 0:
            return ST_NEED_PEND_SPACE
        if S[S_LAZY_OFF] == 0:
            for v in range(nv):
                if V[v, VF_DORMANT] == 0 and V[v, VF_NOLAZY] == 0 and V[v, VF_NORDERS] == 0:
                    sleep_idle_nb(S, V, inst_venue, cs, cnt)  # dormant_nb.py
                    break
        nbuf = S[S_NBUF]
        done = S[S_FEED_DONE] != 0
        li = S[S_LI]

        # ---- a pending run of local book rows ends when the next row is not part of it
        if S[S_RUN_INST] >= 0:
            cont = False
            if pq is not None and S[S_RUN_PEND] != 0:
                # a run of published rows goes on while its venue's next held row has its
                # (time, instrument)
                pt, pv = pend_next_nb(pq, V)
                if pv == S[S_RUN_PV] and pt == S[S_RUN_TS]:
                    pcap = pq.shape[0] // nv
                    cont = np.int64(pq[pv * pcap + V[pv, VF_PHEAD] % pcap].instrument) == S[S_RUN_INST]
            elif li < nbuf:
                nx = buf[li]
                cont = (nx.local_ts == S[S_RUN_TS] and np.int64(nx.instrument) == S[S_RUN_INST]
                        and is_book_kind_nb(np.int64(nx.kind)))
            elif not done:
                return ST_NEED_DATA
            if not cont:
                inst = S[S_RUN_INST]
                S[S_RUN_INST] = -1
                S[S_RUN_PEND] = 0
                nbbo0 = S[S_NBBO]
                S[S_NBBO] = finish_run_nb(kx, qt, cnt, bbo, lastbbo, S[S_NBBO], inst, S[S_RUN_TS],
                                          run_exch[0])
                wake = S[S_RUN_CHANGED] != 0 and wake_book[inst]
                if trig is not None:
                    if S[S_NBBO] != nbbo0 and book_touch_nb(trig, inst, lastbbo[inst, 0], lastbbo[inst, 1],
                                                            lastbbo[inst, 2], lastbbo[inst, 3]):
                        wake = True
                if wake:
                    S[S_WAKE_TS] = S[S_RUN_TS]
                    S[S_WAKE_INST] = inst
                    return ST_BOOK

        # ---- the local side: its earliest item, and the earliest time it could wake ----
        lt = INF_TS
        lp = 99
        if li < nbuf:
            lt = buf[li].local_ts
            lp = P_LOCAL_ROW
        pstop = INF_TS
        pv_best = np.int64(-1)
        if pq is not None and S[S_NPEND] > 0:
            pstop, pv_best = pend_next_nb(pq, V)
            if before_nb(pstop, P_PENDING, lt, lp):
                lt = pstop
                lp = P_PENDING
        nresp = S[S_NRESP]
        k_best = -1
        if nresp > 0:
            k_best = 0
            for k in range(1, nresp):
                if resp[k].local_ts < resp[k_best].local_ts or (
                        resp[k].local_ts == resp[k_best].local_ts
                        and resp_seq[k] < resp_seq[k_best]):
                    k_best = k
            t = resp[k_best].local_ts
            if before_nb(t, P_RESPONSE, lt, lp):
                lt = t
                lp = P_RESPONSE
        rstop_t = INF_TS if k_best < 0 else resp[k_best].local_ts
        local_unknown = li >= nbuf and not done
        lower = INF_TS
        if local_unknown:
            lower = buf[nbuf - 1].local_ts if nbuf > 0 else -INF_TS
        wake_t = min(lt, t_bound, lower)  # no strategy call (so no new request) before this

        # ---- the exchange side: its earliest item and the runner-up ------------------
        et = INF_TS
        ep = 99
        ei = -1
        ev = -1
        e2t = INF_TS
        e2p = 99
        for v in range(nv):
            if V[v, VF_DORMANT] != 0:
                continue  # no orders: its exchange side skips the feed (dormant_nb.py)
            x = V[v, VF_XI]
            while x < nbuf and (inst_venue[buf[x].instrument] != v
                                or x < xinst[buf[x].instrument, XI_PULLED]):
                x += 1
            V[v, VF_XI] = x
            if x < nbuf:
                t = buf[x].exch_ts
                if t < xinst[buf[x].instrument, XI_CLOCK]:
                    t = xinst[buf[x].instrument, XI_CLOCK]
                if before_nb(t, P_EXCH_ROW, et, ep):
                    e2t, e2p = et, ep
                    et, ep, ei, ev = t, P_EXCH_ROW, v, v
                elif before_nb(t, P_EXCH_ROW, e2t, e2p):
                    e2t, e2p = t, P_EXCH_ROW
            elif not done and V[v, VF_NORDERS] > 0:
                return ST_NEED_DATA  # this venue's next row decides what happens first
        nr_t = INF_TS  # the earliest exchange item that is not a feed row
        nr_p = 99
        if S[S_NGTD] > 0:
            s, g = gtd_due_nb(ords, S, V)
            if s >= 0:
                gv = ot[s, OF_VENUE]
                t = max(g, V[gv, VF_XCLOCK])
                nr_t, nr_p = t, P_EXPIRY
                if before_nb(t, P_EXPIRY, et, ep):
                    e2t, e2p = et, ep
                    et, ep, ei, ev = t, P_EXPIRY, s, gv
                elif before_nb(t, P_EXPIRY, e2t, e2p):
                    e2t, e2p = t, P_EXPIRY
        nreq = S[S_NREQ]
        if nreq > 0:
            r_best = 0
            for r in range(1, nreq):
                if R[r, RQ_ARRIVAL] < R[r_best, RQ_ARRIVAL] or (
                        R[r, RQ_ARRIVAL] == R[r_best, RQ_ARRIVAL] and R[r, RQ_SEQ] < R[r_best, RQ_SEQ]):
                    r_best = r
            t = R[r_best, RQ_ARRIVAL]
            if before_nb(t, P_REQUEST, nr_t, nr_p):
                nr_t, nr_p = t, P_REQUEST
            if before_nb(t, P_REQUEST, et, ep):
                e2t, e2p = et, ep
                et, ep, ei, ev = t, P_REQUEST, r_best, R[r_best, RQ_VENUE]
            elif before_nb(t, P_REQUEST, e2t, e2p):
                e2t, e2p = t, P_REQUEST

        # ---- exchange first, as far as no request we have not seen yet could precede it:
        # a request sent at the next possible wake-up reaches venue v at wake_t + emin(v)
        if ei >= 0:
            limit = sat_add_nb(wake_t, V[ev, VF_EMIN])
            # a request reaches the venue at its arrival; but a submit's look inside its refusal
            # window waits, as a feed row does, until no request not yet sent could precede it
            # (its own order's cancel would close the window: close_window_nb)
            if (ep == P_REQUEST and not (R[ei, RQ_ARR_HI] > et > limit)) or et <= limit:
                if ep == P_EXCH_ROW:
                    # the batch applies this row first (force), whether it touches our
                    # orders or not, and goes on as far as nothing else can come first
                    v = ev
                    st = batch_nb(buf, nbuf, done, np.True_, v, e2t, e2p, rstop_t, t_bound, V[v, VF_EMIN],
                                  inst_venue, xinst, S, V, kx, qt, cs, cnt, insnap, inst_nact, olim,
                                  bbo, lastbbo, trd, wake_book, wake_trade, run_exch, book, ords, rsp, l3, Vf, trig,
                                  pq, pstop)
                    if st >= 0:
                        return st
                    continue
                # a request or an expiry: every row of its instrument (and of the venue's
                # instruments with orders) up to its time goes first, wherever it is in the feed
                pinst = ot[ei, OF_INST] if ep == P_EXPIRY else R[ei, RQ_INST]
                pulled = pull_rows_nb(buf, nbuf, done, S, V, Vf, inst_venue, xinst, book, ords,
                                      rsp, l3, ev, pinst, et)
                if pulled == PULL_NEED_DATA:
                    return ST_NEED_DATA
                if pulled == PULL_AGAIN:
                    continue
                if inst_venue[pinst] == ev and et > xinst[pinst, XI_CLOCK]:
                    xinst[pinst, XI_CLOCK] = et
                if ep == P_EXPIRY:
                    V[ev, VF_XCLOCK] = et
                    end_resting_nb(ords, rsp, S, V, ei, et, K_EXPIRED, R_NONE)
                else:
                    r = ei
                    v = ev
                    if et > V[v, VF_XCLOCK]:
                        V[v, VF_XCLOCK] = et
                    kind = R[r, RQ_KIND]
                    if kind == RQ_SUBMIT and R[r, RQ_ARR_HI] > et and not post_only_refused_nb(
                            book, ords, S, V, R, r, v):
                        # a refusal window (latency_nb.time_requests_nb): the venue refused this
                        # order live at some moment of [arrival, RQ_ARR_HI]; look again on the
                        # 10 us grid, at the first look something could have changed the book
                        R[r, RQ_ARRIVAL] = window_next_look_nb(buf, nbuf, done, R, S, V, xinst, inst_venue,
                                                               inst_nact, r, v, et, limit, e2t, e2p)
                        continue
                    if kind != RQ_SUBMIT and V[v, VF_AW_N] > 0 and close_window_nb(R, S, r, et):
                        continue  # its order's submit, still in its window, goes first
                    V[v, VF_NORDERS] -= 1
                    if kind == RQ_SUBMIT:
                        V[v, VF_REPLY_AT] = R[r, RQ_REPLY_AT]  # a windowed submit's reply time (0: none)
                        submit_nb(book, ords, rsp, S, V, R, r, et, v)
                        V[v, VF_REPLY_AT] = 0
                    elif kind == RQ_CANCEL:
                        cancel_nb(ords, rsp, S, V, R, r, et, v)
                    elif kind == RQ_QUERY:
                        query_nb(ords, rsp, S, V, R, r, et, v)
                    else:
                        amend_nb(book, ords, rsp, S, V, R, r, et, v)
                    last = S[S_NREQ] - 1
                    if r != last:
                        for c in range(R.shape[1]):
                            R[r, c] = R[last, c]
                    S[S_NREQ] = last
                continue

        # ---- then the local side --------------------------------------------------------
        if local_unknown and lower <= t_bound and before_nb(lower, P_LOCAL_ROW, lt, lp):
            return ST_NEED_DATA
        if lt > t_bound or lt == INF_TS:  # nothing left locally: an unbounded run ends here
            if done and li >= nbuf and S[S_NREQ] == 0 and S[S_NRESP] == 0 and (pq is None or S[S_NPEND] == 0):
                all_done = True
                for v in range(nv):
                    if V[v, VF_XI] < nbuf and V[v, VF_DORMANT] == 0:
                        all_done = False
                if all_done:
                    return ST_END
        if lt > t_bound:
            if t_bound > S[S_NOW]:
                S[S_NOW] = t_bound
            return ST_BOUND
        if lp == P_RESPONSE:
            k = k_best
            if col_n is not None:
                c = col_n[0]
                if c < col_out.shape[0]:
                    copy_resp_nb(col_out, c, resp, k)
                    for i in range(col_bbo.shape[1] // 4):
                        bb = book_row_nb(i, 1, 1)
                        ba = book_row_nb(i, -1, 1)
                        col_bbo[c, 4 * i] = kx[bb, cnt[bb] - 1] if cnt[bb] > 0 else 0
                        col_bbo[c, 4 * i + 1] = qt[bb, cnt[bb] - 1] if cnt[bb] > 0 else 0
                        col_bbo[c, 4 * i + 2] = -kx[ba, cnt[ba] - 1] if cnt[ba] > 0 else 0
                        col_bbo[c, 4 * i + 3] = qt[ba, cnt[ba] - 1] if cnt[ba] > 0 else 0
                    col_n[0] = c + 1
                    last = S[S_NRESP] - 1
                    if k != last:
                        copy_resp_nb(resp, k, resp, last)
                        resp_seq[k] = resp_seq[last]
                    S[S_NRESP] = last
                    if lt > S[S_NOW]:
                        S[S_NOW] = lt
                    continue
            copy_resp_nb(out_rec, I0, resp, k)
            last = S[S_NRESP] - 1
            if k != last:
                copy_resp_nb(resp, k, resp, last)
                resp_seq[k] = resp_seq[last]
            S[S_NRESP] = last
            if lt > S[S_NOW]:
                S[S_NOW] = lt
            S[S_WAKE_TS] = lt
            S[S_WAKE_INST] = np.int64(out_rec[0].instrument)
            return ST_ORDER
        if pq is not None and lp == P_PENDING:
            # published book rows: the venue's held rows of this (time, instrument), applied
            # to the local book as one run (one on_book per published diff)
            pcap = pq.shape[0] // nv
            base = pv_best * pcap
            h0 = V[pv_best, VF_PHEAD]
            h = h0
            tail = V[pv_best, VF_PTAIL]
            pinst = np.int64(pq[base + h % pcap].instrument)
            changed = False
            while h < tail:
                prow = pq[base + h % pcap]
                if prow.local_ts != lt or np.int64(prow.instrument) != pinst:
                    break
                if S[S_MAXCNT] >= kx.shape[1]:
                    S[S_NEED_BOOK] = 1  # the top of the loop asks for room; the rest stays held
                    break
                ch, grown = local_book_row_nb(kx, qt, cnt, insnap, prow)
                if ch:
                    changed = True
                if grown > S[S_MAXCNT]:
                    S[S_MAXCNT] = grown
                run_exch[0] = prow.exch_ts
                h += 1
            if h == h0:
                continue
            V[pv_best, VF_PHEAD] = h
            S[S_NPEND] -= h - h0
            if lt > S[S_NOW]:
                S[S_NOW] = lt
            if S[S_RUN_INST] < 0:
                S[S_RUN_INST] = pinst
                S[S_RUN_TS] = lt
                S[S_RUN_CHANGED] = 1 if changed else 0
                S[S_RUN_PEND] = 1
                S[S_RUN_PV] = pv_best
            elif changed:
                S[S_RUN_CHANGED] = 1
            continue
        row = buf[li]
        if EK_L3_FIRST <= np.int64(row.kind) <= EK_L3_LAST:
            inst = np.int64(row.instrument)
            lv = inst_venue[inst]
            if V[lv, VF_NOLAZY] == 0:
                V[lv, VF_NOLAZY] = 1  # L3 venues keep their exchange side (dormant_nb.py)
                if V[lv, VF_DORMANT] != 0:
                    wake_exchange_nb(lv, S, V, inst_venue, xinst, kx, qt, cs, cnt, insnap)
                    continue  # the exchange side applies this row first
            changed = l3_local_row_nb(book, l3, S, row)
            S[S_LI] = li + 1
            S[S_EVENTS] += 1
            if lt > S[S_NOW]:
                S[S_NOW] = lt
            if S[S_RUN_INST] < 0:
                S[S_RUN_INST] = inst
                S[S_RUN_TS] = lt
                S[S_RUN_CHANGED] = 1 if changed else 0
            elif changed:
                S[S_RUN_CHANGED] = 1
            run_exch[0] = row.exch_ts
            continue
        # a batch of local rows (and, with one venue, its exchange rows alongside)
        if nv == 1:
            bv = I0
            if V[0, VF_DORMANT] != 0:
                bv = IM1  # dormant: local rows only
            st = batch_nb(buf, nbuf, done, np.False_, bv, nr_t, nr_p, rstop_t, t_bound, V[0, VF_EMIN], inst_venue,
                          xinst, S, V, kx, qt, cs, cnt, insnap, inst_nact, olim, bbo, lastbbo, trd,
                          wake_book, wake_trade, run_exch, book, ords, rsp, l3, Vf, trig, pq, pstop)
        else:
            st = batch_nb(buf, nbuf, done, np.False_, IM1, et, ep, rstop_t, t_bound, I0, inst_venue, xinst, S, V,
                          kx, qt,
                          cs, cnt, insnap, inst_nact, olim, bbo, lastbbo, trd, wake_book,
                          wake_trade, run_exch, book, ords, rsp, l3, Vf, trig, pq, pstop)
        if st >= 0:
            return st
        if S[S_LI] == li and S[S_NEED_BOOK] == 0 and S[S_NEED_PEND] == 0 and S[S_NBBO] < bbo.shape[0] and (
                S[S_NTR] < trd.shape[0]):
            return ST_STUCK  # cannot happen; never spin silently if it does


@njit(cache=True, _nrt=False)
def exch_catch_up_nb(buf, S, V, Vf, inst_venue, xinst, bal, kx, qt, cs, cnt, insnap, ot, otf, act,
                     free, inst_nact, olim, resp, resp_seq, LP, Spk, l3_keys, l3_tab, l3_meta,
                     l3_out, qm, lm, v, t):
    """Wake venue v and apply its exchange rows up to exchange time t: what an eager
    exchange side would have shown at this point (SimCore.exchange_bbo on a dormant venue).
    The venue has no orders, so this changes nothing but its exchange book."""
    wake_exchange_nb(v, S, V, inst_venue, xinst, kx, qt, cs, cnt, insnap)
    book = (kx, qt, cs, cnt, insnap)
    ords = (ot, otf, act, free, inst_nact, olim, xinst, bal, qm, Vf)
    rsp = (resp, resp_seq, LP, Spk, lm)
    l3 = (l3_keys, l3_tab, l3_meta, l3_out)
    nbuf = S[S_NBUF]
    x = V[v, VF_XI]
    while x < nbuf:
        row = buf[x]
        if inst_venue[row.instrument] == v:
            te = max(row.exch_ts, xinst[row.instrument, XI_CLOCK])
            if te > t:
                break
            xinst[row.instrument, XI_CLOCK] = te
            if te > V[v, VF_XCLOCK]:
                V[v, VF_XCLOCK] = te
            exch_row_nb(kx, qt, cs, cnt, insnap, inst_nact, olim, book, ords, rsp, l3, S, V, Vf,
                        row, te, v)
        x += 1
    V[v, VF_XI] = x
