"""The one entry of a request into the simulated venue: a row of R, queued untimed.

Why one function: the plain session (`SimCore._push`, called from Python) and the compiled
strategy's loop (`compiled_nb.push_request_nb`, inside numba) both queue requests, and two
copies of the row layout had to be kept equal by a replay check (issue 16, "one engine").
Both now call `enqueue_request_nb`; the send order of requests (RQ_SEQ) is one counter in
the core's state (S[S_REQ_SEQ]), whichever path sent them.

The caller has made room in R and woken a dormant exchange side; the kernel times the row
when it next runs (latency_nb.time_requests_nb gives it its arrival from RQ_SENT).
"""

from __future__ import annotations

from numba import njit

from venues.sim.codes import (
    RQ_GTD,
    RQ_INST,
    RQ_KIND,
    RQ_KNOWN,
    RQ_ORDER_NO,
    RQ_OWNER,
    RQ_POST,
    RQ_PRICE,
    RQ_QTY,
    RQ_SENT,
    RQ_SEQ,
    RQ_SIDE,
    RQ_STP,
    RQ_TIF,
    RQ_TYPE,
    RQ_VENUE,
    S_NREQ,
    S_REQ_SEQ,
    S_UNTIMED,
    VF_NORDERS,
)


@njit(cache=True, _nrt=False)
def enqueue_request_nb(R, S, V, venue, kind, order_no, inst, side, typ, tif, price, qty, post, gtd,
                       sent, known, stp, owner):
    """Write request row S[S_NREQ] of R (int64 (n, RQ_NF); prices in ticks, quantities in
    lots, `sent` the local send time in ns) and count it: queued requests, untimed ones,
    the venue's order count (VF_NORDERS) and the send sequence. `stp` -1 = the venue's
    default mode; `owner` 0 = the strategy's account. Returns the row index."""
    n = S[S_NREQ]
    for c in range(R.shape[1]):
        R[n, c] = 0
    R[n, RQ_KIND] = kind
    R[n, RQ_ORDER_NO] = order_no
    R[n, RQ_INST] = inst
    R[n, RQ_SIDE] = side
    R[n, RQ_TYPE] = typ
    R[n, RQ_TIF] = tif
    R[n, RQ_PRICE] = price
    R[n, RQ_QTY] = qty
    R[n, RQ_POST] = post
    R[n, RQ_GTD] = gtd
    R[n, RQ_SENT] = sent
    R[n, RQ_SEQ] = S[S_REQ_SEQ]
    R[n, RQ_VENUE] = venue
    R[n, RQ_KNOWN] = known
    R[n, RQ_STP] = stp
    R[n, RQ_OWNER] = owner
    S[S_REQ_SEQ] += 1
    S[S_NREQ] = n + 1
    S[S_UNTIMED] += 1
    V[venue, VF_NORDERS] += 1
    return n
