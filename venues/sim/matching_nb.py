"""Own-order matching on the exchange side (numba): entry, resting orders, fills, STP.

Own orders are invisible to the replayed feed. They fill (1) as takers on entry or on a
crossing amend, walking the visible exchange book level by level, or (2) as makers when
the queue model says the traded quantity reached them, when a trade prints strictly
through their price, or when the opposite visible best crosses their price.

Argument bundles (plain tuples of arrays, so signatures stay short):
  book = (kx, qt, cs, cnt, insnap)             see book_nb
  ords = (ot, otf, act, free, inst_nact, olim, xinst, bal, qm, Vq)   order table, active list in
                                               queue order, per instrument: live orders, [best own
                                               bid, ask]; the run's queue models (venues.sim.models:
                                               per-order state is otf) and per-venue floats (Vf)
  rsp  = (resp, resp_seq, LP, Spk, lm)         pending responses, latency-model parameters and
                                               state, spikes (venue, start, end, extra), the
                                               run's latency models (latency_nb.py)
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine.types.market import EventKind
from engine.types.orders import Liquidity, OrderEventKind, OrderType, RejectReason, TimeInForce
from venues.sim.book_nb import (
    best_visible_nb,
    book_row_nb,
    level_qty_nb,
    side_key_nb,
)
from venues.sim.codes import (
    BAL_FREE,
    BAL_LOCKED,
    I0,
    I1,
    IM1,
    INF_TS,
    OF_FILLED,
    OF_GTD,
    OF_INST,
    OF_L3_AHEAD,
    OF_NO,
    OF_OWNER,
    OF_POST,
    OF_PRICE,
    OF_QTY,
    OF_SEQ,
    OF_SIDE,
    OF_STP,
    OF_TIF,
    OF_TYPE,
    OF_VENUE,
    OFF_AHEAD,
    Q_BALANCES,
    Q_OPEN_ORDERS,
    RQ_GTD,
    RQ_INST,
    RQ_KNOWN,
    RQ_ORDER_NO,
    RQ_OWNER,
    RQ_POST,
    RQ_PRICE,
    RQ_QTY,
    RQ_SIDE,
    RQ_STP,
    RQ_TIF,
    RQ_TYPE,
    S_L3SEQ,
    S_NACT,
    S_NFREE,
    S_NGTD,
    S_NRESP,
    S_SEQ,
    STP_CANCEL_BOTH,
    STP_CANCEL_NEW,
    STP_CANCEL_RESTING,
    STP_DECREMENT_BOTH,
    STP_NONE,
    VF_BALANCES,
    VF_DRY_END,
    VF_DRY_PPM,
    VF_DRY_START,
    VF_NORDERS,
    VF_OWNERS,
    VF_PARTIAL,
    VF_QL3,
    VF_QMODEL,
    VF_STP,
    VFF_QPARAM,
    XI_BASE,
    XI_BFEE_M,
    XI_BFEE_T,
    XI_BMUL,
    XI_FEE_LOCK,
    XI_FEE_M,
    XI_FEE_RECV,
    XI_FEE_T,
    XI_QMUL,
    XI_QUOTE,
)
from venues.sim.latency_nb import response_time_nb
from venues.sim.models import q_depth, q_filled, q_new, q_trade

K_ACK = np.int64(OrderEventKind.ACK)
K_FILL = np.int64(OrderEventKind.FILL)
K_CANCELLED = np.int64(OrderEventKind.CANCELLED)
K_REJECTED = np.int64(OrderEventKind.REJECTED)
K_EXPIRED = np.int64(OrderEventKind.EXPIRED)
K_AMENDED = np.int64(OrderEventKind.AMENDED)
K_CANCEL_REJECTED = np.int64(OrderEventKind.CANCEL_REJECTED)
K_STATE = np.int64(OrderEventKind.STATE)

LQ_NONE = np.int64(Liquidity.NONE)
LQ_MAKER = np.int64(Liquidity.MAKER)
LQ_TAKER = np.int64(Liquidity.TAKER)

R_NONE = np.int64(RejectReason.NONE)
R_POST_ONLY = np.int64(RejectReason.POST_ONLY_WOULD_CROSS)
R_FOK = np.int64(RejectReason.FOK_NOT_FILLABLE)
R_NO_LIQ = np.int64(RejectReason.NO_LIQUIDITY)
R_UNKNOWN = np.int64(RejectReason.UNKNOWN_ORDER)
R_CLOSED = np.int64(RejectReason.ALREADY_CLOSED)
R_SELF_TRADE = np.int64(RejectReason.SELF_TRADE)
R_INVALID_QTY = np.int64(RejectReason.INVALID_QTY)
R_INVALID_PRICE = np.int64(RejectReason.INVALID_PRICE)
R_IOC = np.int64(RejectReason.IOC_REMAINDER)
R_USER = np.int64(RejectReason.USER_CANCEL)
R_DUPLICATE = np.int64(RejectReason.DUPLICATE_CLIENT_ID)
R_BALANCE = np.int64(RejectReason.INSUFFICIENT_BALANCE)

T_MARKET = np.int64(OrderType.MARKET)
EK_L3_FILL = np.int64(EventKind.L3_FILL)
TIF_GTC = np.int64(TimeInForce.GTC)
TIF_IOC = np.int64(TimeInForce.IOC)
TIF_FOK = np.int64(TimeInForce.FOK)
TIF_GTX = np.int64(TimeInForce.GTX)
TIF_GTD = np.int64(TimeInForce.GTD)


# --------------------------------------------------------------------------------------
# responses
# --------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def emit_nb(rsp, S, V, v, t, order_no, inst, kind, liq, reason, price, qty, filled, leaves,
            order_price):
    """Queue one response produced at exchange time t; it reaches the local side after
    the response latency, never before an earlier response of the same venue."""
    resp, resp_seq, LP, Spk, lm = rsp
    lt = response_time_nb(lm, LP, V, Spk, v, kind, t)
    k = S[S_NRESP]
    r = resp[k]
    r.exch_ts = t
    r.local_ts = lt
    r.order_no = order_no
    r.instrument = inst
    r.kind = kind
    r.liquidity = liq
    r.reason = reason
    r.price = price
    r.qty = qty
    r.filled = filled
    r.leaves = leaves
    r.order_price = order_price
    resp_seq[k] = S[S_SEQ]
    S[S_SEQ] += 1
    S[S_NRESP] = k + 1


# --------------------------------------------------------------------------------------
# balances (spot venues that enforce them: V[v, VF_BALANCES] = 1)
#
# As Binance spot does: an order accepted at the venue locks what it may spend -- a buy
# its quote notional at its limit price, a sell its base quantity -- and an order beyond
# the free balance is rejected (Binance -2010 "Account has insufficient balance for
# requested action."; here reason INSUFFICIENT_BALANCE). A market buy has no price to lock
# at: it is checked against the free quote at each fill and stops (the rest cancelled,
# INSUFFICIENT_BALANCE) when the next lot is unaffordable. Fills move the locked amount
# to the other asset, cancels and expiries unlock what is left.
#
# Fees are charged as the venue's profile says (`fee_asset`, engine/fees.py fill_fee):
# "quote" on both sides, so a buy also locks the fee it may pay: notional x max(maker,
# taker, 0) -- the unused part returns at the fill; or "received" (Binance spot without
# BNB): a buy pays qty x rate in the base it receives and locks no fee, a sell pays
# notional x rate in the quote it receives. Amounts are int64 in each asset's exact unit (10**-E of the
# asset, chosen by SimCore so that every lot, tick x lot and fee is a whole number).
# --------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False, inline="always")
def lock_amount_nb(xinst, inst, side, price, lots):
    """What `lots` of an order lock: a buy price x lots x (quote per tick-lot + lock fee),
    a sell lots x base units per lot."""
    if side > 0:
        return lots * price * (xinst[inst, XI_QMUL] + xinst[inst, XI_FEE_LOCK])
    return lots * xinst[inst, XI_BMUL]


@njit(cache=True, _nrt=False)
def lock_nb(ords, V, v, inst, side, price, lots):
    """Lock funds for `lots` of an order; False (nothing locked) when the free balance is
    short. Always True on a venue that does not enforce balances."""
    if V[v, VF_BALANCES] == 0 or lots <= 0:
        return True
    xinst = ords[6]
    bal = ords[7]
    a = xinst[inst, XI_QUOTE] if side > 0 else xinst[inst, XI_BASE]
    need = lock_amount_nb(xinst, inst, side, price, lots)
    if bal[a, BAL_FREE] < need:
        return False
    bal[a, BAL_FREE] -= need
    bal[a, BAL_LOCKED] += need
    return True


@njit(cache=True, _nrt=False)
def unlock_nb(ords, V, v, inst, side, price, lots):
    """Release the lock of `lots` of an order that will not fill (cancel, expiry, STP)."""
    if V[v, VF_BALANCES] == 0 or lots <= 0:
        return
    xinst = ords[6]
    bal = ords[7]
    a = xinst[inst, XI_QUOTE] if side > 0 else xinst[inst, XI_BASE]
    amount = lock_amount_nb(xinst, inst, side, price, lots)
    bal[a, BAL_FREE] += amount
    bal[a, BAL_LOCKED] -= amount


@njit(cache=True, _nrt=False)
def settle_fill_nb(ords, V, v, inst, side, locked, order_price, px, lots, liq):
    """A fill of `lots` at `px`: release its lock (`locked`: the order locked at
    order_price), pay the notional, receive the other asset, pay the fee in quote or (a buy
    on a venue with fee_asset "received") in the base asset received."""
    if V[v, VF_BALANCES] == 0:
        return
    xinst = ords[6]
    bal = ords[7]
    qa = xinst[inst, XI_QUOTE]
    ba = xinst[inst, XI_BASE]
    notional = px * lots * xinst[inst, XI_QMUL]
    fee = px * lots * (xinst[inst, XI_FEE_M] if liq == LQ_MAKER else xinst[inst, XI_FEE_T])
    if side > 0 and xinst[inst, XI_FEE_RECV] != 0:
        fee = 0
    if locked:
        unlock_nb(ords, V, v, inst, side, order_price, lots)
    if side > 0:
        # fee_asset "received": no quote fee; the fee comes out of the base received
        bfee = lots * (xinst[inst, XI_BFEE_M] if liq == LQ_MAKER else xinst[inst, XI_BFEE_T])
        bal[qa, BAL_FREE] -= notional + fee
        bal[ba, BAL_FREE] += lots * xinst[inst, XI_BMUL] - bfee
    else:
        bal[ba, BAL_FREE] -= lots * xinst[inst, XI_BMUL]
        bal[qa, BAL_FREE] += notional - fee


@njit(cache=True, _nrt=False)
def affordable_nb(ords, V, v, inst, px, lots):
    """How many of `lots` a market buy can pay for at `px` from the free quote."""
    if V[v, VF_BALANCES] == 0:
        return lots
    xinst = ords[6]
    fee = 0 if xinst[inst, XI_FEE_RECV] != 0 else xinst[inst, XI_FEE_T]  # "received": paid in base
    per_lot = px * (xinst[inst, XI_QMUL] + fee)
    if per_lot <= 0:
        return lots
    n = ords[7][xinst[inst, XI_QUOTE], BAL_FREE] // per_lot
    return n if n < lots else lots


# --------------------------------------------------------------------------------------
# order table
# --------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def add_order_nb(ords, S, V, v, order_no, inst, side, typ, tif, price, qty, filled, gtd, post,
                 stp, ahead, owner):
    ot, otf, act, free, inst_nact, olim, xinst, bal, qm, Vq = ords
    nf = S[S_NFREE] - 1
    s = free[nf]
    S[S_NFREE] = nf
    ot[s, OF_NO] = order_no
    ot[s, OF_INST] = inst
    ot[s, OF_SIDE] = side
    ot[s, OF_TYPE] = typ
    ot[s, OF_TIF] = tif
    ot[s, OF_PRICE] = price
    ot[s, OF_QTY] = qty
    ot[s, OF_FILLED] = filled
    ot[s, OF_GTD] = gtd
    ot[s, OF_POST] = post
    ot[s, OF_SEQ] = S[S_SEQ]
    S[S_SEQ] += 1
    ot[s, OF_VENUE] = v
    ot[s, OF_STP] = stp
    ot[s, OF_OWNER] = owner
    q_new(qm, V[v, VF_QMODEL], otf, s, float(ahead), Vq[v, VFF_QPARAM])
    ot[s, OF_L3_AHEAD] = S[S_L3SEQ]  # l3_fifo: every venue order already there is ahead
    act[S[S_NACT]] = s
    S[S_NACT] += 1
    inst_nact[inst] += 1
    V[v, VF_NORDERS] += 1
    if tif == TIF_GTD:
        S[S_NGTD] += 1
    limits_nb(ords, S, inst)
    return s


@njit(cache=True, _nrt=False)
def remove_order_nb(ords, S, V, s):
    """Drop slot s from the active list (keeps queue order of the others)."""
    ot, otf, act, free, inst_nact, olim, xinst, bal, qm, Vq = ords
    n = S[S_NACT]
    j = 0
    while j < n and act[j] != s:
        j += 1
    if j == n:
        return
    for k in range(j, n - 1):
        act[k] = act[k + 1]
    S[S_NACT] = n - 1
    free[S[S_NFREE]] = s
    S[S_NFREE] += 1
    inst_nact[ot[s, OF_INST]] -= 1
    V[ot[s, OF_VENUE], VF_NORDERS] -= 1
    if ot[s, OF_TIF] == TIF_GTD:
        S[S_NGTD] -= 1
    limits_nb(ords, S, ot[s, OF_INST])


@njit(cache=True, _nrt=False)
def to_back_nb(ords, S, s):
    """Send slot s to the back of every queue (new seniority, end of the active list)."""
    ot, otf, act, free, inst_nact, olim, xinst, bal, qm, Vq = ords
    n = S[S_NACT]
    j = 0
    while j < n and act[j] != s:
        j += 1
    for k in range(j, n - 1):
        act[k] = act[k + 1]
    act[n - 1] = s
    ot[s, OF_SEQ] = S[S_SEQ]
    S[S_SEQ] += 1
    ot[s, OF_L3_AHEAD] = S[S_L3SEQ]


@njit(cache=True, _nrt=False)
def compact_filled_nb(ords, S, V, inst):
    """Remove every order of `inst` with nothing left (filled == qty), in one pass."""
    ot, otf, act, free, inst_nact, olim, xinst, bal, qm, Vq = ords
    n = S[S_NACT]
    w = 0
    for j in range(n):
        s = act[j]
        if ot[s, OF_FILLED] >= ot[s, OF_QTY]:
            free[S[S_NFREE]] = s
            S[S_NFREE] += 1
            inst_nact[ot[s, OF_INST]] -= 1
            V[ot[s, OF_VENUE], VF_NORDERS] -= 1
            if ot[s, OF_TIF] == TIF_GTD:
                S[S_NGTD] -= 1
        else:
            act[w] = s
            w += 1
    S[S_NACT] = w
    limits_nb(ords, S, inst)


@njit(cache=True, _nrt=False)
def limits_nb(ords, S, inst):
    """Refresh olim[inst] = (highest buy, lowest sell, lowest buy, highest sell) price of
    our orders (-1 / INF when none): lets per-row code skip rows that cannot touch them."""
    ot, otf, act, free, inst_nact, olim, xinst, bal, qm, Vq = ords
    hb = -1
    lb = INF_TS
    la = INF_TS
    ha = -1
    for k in range(S[S_NACT]):
        s = act[k]
        if ot[s, OF_INST] == inst:
            p = ot[s, OF_PRICE]
            if ot[s, OF_SIDE] > 0:
                hb = max(hb, p)
                lb = min(lb, p)
            else:
                la = min(la, p)
                ha = max(ha, p)
    olim[inst, 0] = hb
    olim[inst, 1] = la
    olim[inst, 2] = lb
    olim[inst, 3] = ha


@njit(cache=True, _nrt=False)
def find_order_nb(ords, S, order_no):
    ot, otf, act, free, inst_nact, olim, xinst, bal, qm, Vq = ords
    for j in range(S[S_NACT]):
        s = act[j]
        if ot[s, OF_NO] == order_no:
            return s
    return -1


@njit(cache=True, _nrt=False, inline="always")
def drought_nb(V, v, t, x):
    """A passive fill of x lots driven by the feed, during a partial-fill drought of venue v
    (exchange time t in [VF_DRY_START, VF_DRY_END)): x * ppm / 1e6, rounded down, at least
    one lot (fills come in small pieces; the rest of the volume went to others). Fills
    between owners (cross_level_nb) are real quantity and are not cut."""
    if x > 0 and V[v, VF_DRY_START] <= t < V[v, VF_DRY_END]:
        y = x * V[v, VF_DRY_PPM] // 1_000_000
        return y if y > 0 else np.int64(1)
    return x


@njit(cache=True, _nrt=False)
def fill_resting_nb(ords, rsp, S, V, s, t, qty, liq):
    """A fill of `qty` lots of resting slot s at its own price."""
    ot = ords[0]
    filled = ot[s, OF_FILLED] + qty
    ot[s, OF_FILLED] = filled
    settle_fill_nb(ords, V, ot[s, OF_VENUE], ot[s, OF_INST], ot[s, OF_SIDE], True, ot[s, OF_PRICE],
                   ot[s, OF_PRICE], qty, liq)
    emit_nb(rsp, S, V, ot[s, OF_VENUE], t, ot[s, OF_NO], ot[s, OF_INST], K_FILL, liq, R_NONE,
            ot[s, OF_PRICE], qty, filled, ot[s, OF_QTY] - filled, ot[s, OF_PRICE])


@njit(cache=True, _nrt=False)
def end_resting_nb(ords, rsp, S, V, s, t, kind, reason):
    """Cancel or expire resting slot s (the record's qty is what was removed)."""
    ot = ords[0]
    leaves = ot[s, OF_QTY] - ot[s, OF_FILLED]
    unlock_nb(ords, V, ot[s, OF_VENUE], ot[s, OF_INST], ot[s, OF_SIDE], ot[s, OF_PRICE], leaves)
    emit_nb(rsp, S, V, ot[s, OF_VENUE], t, ot[s, OF_NO], ot[s, OF_INST], kind, LQ_NONE, reason,
            I0, leaves, ot[s, OF_FILLED], I0, ot[s, OF_PRICE])
    remove_order_nb(ords, S, V, s)


# --------------------------------------------------------------------------------------
# passive fills driven by the feed
# --------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def cross_check_nb(book, ords, rsp, S, V, t, inst, own_side):
    """Rule (c): the opposite visible best crossed a resting order -> it fills completely
    at its own price (maker)."""
    kx, qt, cs, cnt, insnap = book
    ot = ords[0]
    act = ords[2]
    b = book_row_nb(inst, -own_side, 0)
    j = best_visible_nb(kx, qt, cs, cnt, b)
    if j < 0:
        return
    best = kx[b, j] if own_side < 0 else -kx[b, j]
    any_fill = False
    for k in range(S[S_NACT]):
        s = act[k]
        if ot[s, OF_INST] != inst or ot[s, OF_SIDE] != own_side:
            continue
        p = ot[s, OF_PRICE]
        if (own_side > 0 and best <= p) or (own_side < 0 and best >= p):
            leaves = ot[s, OF_QTY] - ot[s, OF_FILLED]
            if leaves > 0:
                fill_resting_nb(ords, rsp, S, V, s, t, drought_nb(V, ot[s, OF_VENUE], t, leaves), LQ_MAKER)
                any_fill = True
    if any_fill:
        compact_filled_nb(ords, S, V, inst)


@njit(cache=True, _nrt=False, inline="always")
def queue_level_nb(qm, ot, otf, act, nact, model, param, inst, side, price, prev, new):
    """Our orders resting at (inst, side, price) see the level go from prev to new lots
    (queue model `model` of the run's set qm). (Inlined: the batch loop in core_nb calls
    it per touching row.)"""
    for k in range(nact):
        s = act[k]
        if ot[s, OF_INST] == inst and ot[s, OF_SIDE] == side and ot[s, OF_PRICE] == price:
            q_depth(qm, model, otf, s, prev, new, param)


@njit(cache=True, _nrt=False)
def level_change_nb(book, ords, rsp, S, V, Vf, t, v, inst, side, price, prev, new):
    """The feed set (side, price) from prev to new lots: queue update, then rule (c)."""
    ot, otf, act, free, inst_nact, olim, xinst, bal, qm, Vq = ords
    queue_level_nb(qm, ot, otf, act, S[S_NACT], V[v, VF_QMODEL], Vf[v, VFF_QPARAM], inst, side, price,
                   prev, new)
    cross_check_nb(book, ords, rsp, S, V, t, inst, -side)


@njit(cache=True, _nrt=False)
def snapshot_end_nb(book, ords, rsp, S, V, t, inst):
    """After a snapshot every own order's ahead is capped by its level's new quantity."""
    kx, qt, cs, cnt, insnap = book
    ot, otf, act, free, inst_nact, olim, xinst, bal, qm, Vq = ords
    for k in range(S[S_NACT]):
        s = act[k]
        if ot[s, OF_INST] != inst:
            continue
        side = ot[s, OF_SIDE]
        b = book_row_nb(inst, side, 0)
        vis = level_qty_nb(kx, qt, cs, cnt, b, side_key_nb(side, ot[s, OF_PRICE]))
        if otf[s, OFF_AHEAD] > vis:
            otf[s, OFF_AHEAD] = float(vis)
    cross_check_nb(book, ords, rsp, S, V, t, inst, I1)
    cross_check_nb(book, ords, rsp, S, V, t, inst, IM1)


@njit(cache=True, _nrt=False)
def trade_nb(ords, rsp, S, V, t, v, inst, aggressor, price, qty, done_k=-1):
    """A market trade printed at the exchange: rules (a) queue and (b) trade-through.

    The traded quantity beyond an order's `ahead` is one stream: our orders at the price
    take from it in queue order (seniority), so no lot of it fills two of our orders.
    The queue model's on_trade has already been applied to the orders at the price among
    act[0..done_k] (core_nb's batch loop, which applies it until an order is reached).
    """
    ot, otf, act, free, inst_nact, olim, xinst, bal, qm, Vq = ords
    own_side = -aggressor
    model = V[v, VF_QMODEL]
    param = Vq[v, VFF_QPARAM]
    partial = V[v, VF_PARTIAL] != 0
    used = 0
    any_fill = False
    for k in range(S[S_NACT]):
        s = act[k]
        if ot[s, OF_INST] != inst or ot[s, OF_SIDE] != own_side:
            continue
        p = ot[s, OF_PRICE]
        leaves = ot[s, OF_QTY] - ot[s, OF_FILLED]
        if (own_side < 0 and p < price) or (own_side > 0 and p > price):
            fill_resting_nb(ords, rsp, S, V, s, t, drought_nb(V, v, t, leaves), LQ_MAKER)
            any_fill = True
        elif p == price:
            if k > done_k:
                q_trade(qm, model, otf, s, qty, param)
            owed = q_filled(qm, model, otf, s, param)
            if owed > 0:
                x = min(owed - used, leaves)
                if x > 0:
                    if not partial:
                        x = leaves  # no partial fills: reaching the order fills all of it
                    used += x
                    fill_resting_nb(ords, rsp, S, V, s, t, drought_nb(V, v, t, x), LQ_MAKER)
                    any_fill = True
                otf[s, OFF_AHEAD] = 0.0  # reached: nothing is ahead of what is left
    if any_fill:
        compact_filled_nb(ords, S, V, inst)


@njit(cache=True, _nrt=False)
def l3_queue_nb(ords, rsp, S, V, t, v, inst, kind, side, price, q0, seq0, out):
    """l3_fifo: a venue order at (side, price) with q0 lots and sequence seq0 changed
    (out as from l3_row_nb). Orders ahead of ours shrink our `ahead` exactly; an execution
    of an order behind ours would have reached ours first, so it fills ours (in
    seniority order, never more than was executed)."""
    if V[v, VF_QL3] == 0:
        return
    ot, otf, act, free, inst_nact, olim, xinst, bal, qm, Vq = ords
    still = out[5] != 0 and out[6] == side and out[7] == price and out[9] == seq0
    remaining = out[8] if still else 0
    executed = out[10]
    partial = V[v, VF_PARTIAL] != 0
    used = 0
    any_fill = False
    for k in range(S[S_NACT]):
        s = act[k]
        if ot[s, OF_INST] != inst or ot[s, OF_SIDE] != side or ot[s, OF_PRICE] != price:
            continue
        if seq0 < ot[s, OF_L3_AHEAD]:
            a = otf[s, OFF_AHEAD] - float(q0 - remaining)
            otf[s, OFF_AHEAD] = a if a > 0.0 else 0.0
        elif kind == EK_L3_FILL and executed > used:
            leaves = ot[s, OF_QTY] - ot[s, OF_FILLED]
            x = min(executed - used, leaves)
            if not partial:
                x = leaves
            used += x
            otf[s, OFF_AHEAD] = 0.0
            fill_resting_nb(ords, rsp, S, V, s, t, drought_nb(V, v, t, x), LQ_MAKER)
            any_fill = True
    if any_fill:
        compact_filled_nb(ords, S, V, inst)


# --------------------------------------------------------------------------------------
# taker side: entry and crossing amends
# --------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def _level_price(kx, b, j, book_side):
    return kx[b, j] if book_side > 0 else -kx[b, j]


@njit(cache=True, _nrt=False)
def fillable_nb(book, ords, S, V, v, inst, side, is_mkt, limit, want, has_barrier, barrier, owner):
    """Visible quantity our order could take now, counted up to `want`, plus the resting
    orders of other owners it could take (cross-owner matching, VF_OWNERS).

    With `has_barrier`, the walk stops before the price of our own resting order that
    self-trade prevention would stop it at, so a FOK is judged on what it can really take.
    """
    kx, qt, cs, cnt, insnap = book
    b = book_row_nb(inst, -side, 0)
    total = 0
    j = cnt[b] - 1
    while j >= 0 and total < want:
        px = _level_price(kx, b, j, -side)
        if not is_mkt and ((side > 0 and px > limit) or (side < 0 and px < limit)):
            break
        if has_barrier and ((side > 0 and px >= barrier) or (side < 0 and px <= barrier)):
            break
        total += qt[b, j] - cs[b, j]
        j -= 1
    if V[v, VF_OWNERS] != 0:
        ot = ords[0]
        act = ords[2]
        for k in range(S[S_NACT]):
            s = act[k]
            if ot[s, OF_INST] != inst or ot[s, OF_SIDE] != -side or ot[s, OF_OWNER] == owner:
                continue
            px = ot[s, OF_PRICE]
            if not is_mkt and ((side > 0 and px > limit) or (side < 0 and px < limit)):
                continue
            if has_barrier and ((side > 0 and px >= barrier) or (side < 0 and px <= barrier)):
                continue
            total += ot[s, OF_QTY] - ot[s, OF_FILLED]
    return total


@njit(cache=True, _nrt=False)
def own_best_opposite_nb(ords, S, inst, side, skip, owner, same):
    """Best price of our resting orders opposite to `side` (excluding slot skip) whose
    owner is `owner` (same=True: the ones STP applies to) or is not (same=False: the ones
    a taker of `owner` trades with); (found, price)."""
    ot = ords[0]
    act = ords[2]
    found = False
    best = 0
    for k in range(S[S_NACT]):
        s = act[k]
        if s == skip or ot[s, OF_INST] != inst or ot[s, OF_SIDE] != -side:
            continue
        if (ot[s, OF_OWNER] == owner) != same:
            continue
        p = ot[s, OF_PRICE]
        if not found or (side > 0 and p < best) or (side < 0 and p > best):
            best = p
            found = True
    return found, best


@njit(cache=True, _nrt=False)
def stp_at_nb(ords, rsp, S, V, t, inst, side, price, rem, mode, skip, owner):
    """Self-trade prevention against our resting orders of `owner` at `price`; returns
    (remaining qty of the taker, stop walking)."""
    ot = ords[0]
    act = ords[2]
    if mode == STP_CANCEL_NEW:
        return rem, True
    k = 0
    while k < S[S_NACT] and rem > 0:
        s = act[k]
        if s == skip or ot[s, OF_INST] != inst or ot[s, OF_SIDE] != -side or ot[s, OF_PRICE] != price \
                or ot[s, OF_OWNER] != owner:
            k += 1
            continue
        if mode == STP_DECREMENT_BOTH:
            leaves = ot[s, OF_QTY] - ot[s, OF_FILLED]
            x = min(leaves, rem)
            rem -= x
            if x == leaves:
                end_resting_nb(ords, rsp, S, V, s, t, K_CANCELLED, R_SELF_TRADE)
                continue  # slot removed, act[k] is the next order
            ot[s, OF_QTY] -= x
            unlock_nb(ords, V, ot[s, OF_VENUE], inst, ot[s, OF_SIDE], ot[s, OF_PRICE], x)
            emit_nb(rsp, S, V, ot[s, OF_VENUE], t, ot[s, OF_NO], inst, K_AMENDED, LQ_NONE,
                    R_SELF_TRADE, ot[s, OF_PRICE], ot[s, OF_QTY], ot[s, OF_FILLED],
                    ot[s, OF_QTY] - ot[s, OF_FILLED], ot[s, OF_PRICE])
            k += 1
        else:  # cancel-resting / cancel-both
            end_resting_nb(ords, rsp, S, V, s, t, K_CANCELLED, R_SELF_TRADE)
    if mode == STP_CANCEL_BOTH:
        return rem, True
    return rem, False


TAKE_DONE = np.int64(0)
TAKE_STP = np.int64(1)
TAKE_BALANCE = np.int64(2)


@njit(cache=True, _nrt=False, inline="always")
def book_take_nb(book, ords, rsp, S, V, t, v, order_no, inst, side, b, j, px, room, filled, qty,
                 order_price, locked, partial):
    """The taker takes up to `room` lots of visible level j (price px) of book row b: all
    of its remainder on a venue without partial fills; a market buy on a venue enforcing
    balances only what it can pay. The lots taken are marked consumed (liquidity
    consumption). Returns (filled, lots taken, out_of_funds)."""
    kx, qt, cs, cnt, insnap = book
    avail = qt[b, j] - cs[b, j]
    x = min(room, qty - filled)
    if not partial:
        x = qty - filled  # no partial fills: the whole remainder fills at this level
    if not locked:
        x = affordable_nb(ords, V, v, inst, px, x)
        if x == 0:
            return filled, x, True
    cs[b, j] += min(x, avail)
    filled += x
    settle_fill_nb(ords, V, v, inst, side, locked, order_price, px, x, LQ_TAKER)
    emit_nb(rsp, S, V, v, t, order_no, inst, K_FILL, LQ_TAKER, R_NONE, px, x, filled,
            qty - filled, order_price)
    return filled, x, False


@njit(cache=True, _nrt=False)
def cross_level_nb(book, ords, rsp, S, V, t, v, order_no, inst, side, price, j, filled, qty,
                   order_price, locked, owner, skip):
    """A taker of `owner` reached `price`, where resting orders of other owners wait:
    they fill at `price` in price-time priority with the book's visible quantity there
    (level j of the opposite side, or j < 0: none).

    Each resting order of another owner is behind its `ahead` visible lots (the queue
    model's estimate, as for a trade print): the taker first takes those lots from the
    book (taker fills at `price`, consumed as in take_nb), which moves every order at
    the level up by as much, then fills the resting order (maker fill for it, taker fill
    for the incoming order, both at `price`). A resting order is real quantity, so it fills
    partially even on a venue without partial fills of the feed's liquidity. What the book
    holds behind the last of them is left to take_nb's walk. Returns (filled, out_of_funds).
    """
    kx, qt, cs, cnt, insnap = book
    ot = ords[0]
    otf = ords[1]
    act = ords[2]
    b = book_row_nb(inst, -side, 0)
    partial = V[v, VF_PARTIAL] != 0
    any_fill = False
    short = False
    for k in range(S[S_NACT]):
        if filled >= qty:
            break
        s = act[k]
        if s == skip or ot[s, OF_INST] != inst or ot[s, OF_SIDE] != -side \
                or ot[s, OF_PRICE] != price or ot[s, OF_OWNER] == owner:
            continue
        leaves = ot[s, OF_QTY] - ot[s, OF_FILLED]
        if leaves <= 0:
            continue
        if j >= 0:
            avail = qt[b, j] - cs[b, j]
            front = int(math.ceil(otf[s, OFF_AHEAD] - 1e-9))
            if front > avail:
                front = avail
            if front > 0:
                filled, x, short = book_take_nb(book, ords, rsp, S, V, t, v, order_no, inst, side,
                                                b, j, price, front, filled, qty, order_price,
                                                locked, partial)
                if short:
                    break
                for k2 in range(S[S_NACT]):  # the book lots taken were ahead of these orders
                    s2 = act[k2]
                    if ot[s2, OF_INST] == inst and ot[s2, OF_SIDE] == -side \
                            and ot[s2, OF_PRICE] == price:
                        a = otf[s2, OFF_AHEAD] - float(min(x, avail))
                        otf[s2, OFF_AHEAD] = a if a > 0.0 else 0.0
                if filled >= qty:
                    break
        x = min(leaves, qty - filled)
        if not locked:
            x = affordable_nb(ords, V, v, inst, price, x)
            if x == 0:
                short = True
                break
        fill_resting_nb(ords, rsp, S, V, s, t, x, LQ_MAKER)
        any_fill = True
        filled += x
        settle_fill_nb(ords, V, v, inst, side, locked, order_price, price, x, LQ_TAKER)
        emit_nb(rsp, S, V, v, t, order_no, inst, K_FILL, LQ_TAKER, R_NONE, price, x, filled,
                qty - filled, order_price)
    if any_fill:
        compact_filled_nb(ords, S, V, inst)
    return filled, short


@njit(cache=True, _nrt=False)
def take_nb(book, ords, rsp, S, V, t, v, order_no, inst, side, is_mkt, limit, qty, filled,
            order_price, stp, skip, owner):
    """Walk the visible exchange book as a taker from `filled` towards `qty`.

    Each level fills at its own price; what we take is marked consumed so our later
    orders cannot take it again until the feed updates the level. With STP active, a
    resting order of the same owner reached by the walk triggers the mode; resting
    orders of other owners are counterparties, met in price priority with the book's
    levels (cross_level_nb; at one price STP comes first). A market buy on a venue
    that enforces balances stops at the first lot it cannot pay for. Returns
    (filled, qty, stop): qty shrinks under decrement-both; stop is TAKE_DONE, TAKE_STP
    (self-trade prevention ended the taker) or TAKE_BALANCE.
    """
    kx, qt, cs, cnt, insnap = book
    b = book_row_nb(inst, -side, 0)
    partial = V[v, VF_PARTIAL] != 0
    locked = not (is_mkt and side > 0)  # what the taker locked on entry (market buys: nothing)
    j = cnt[b] - 1
    while filled < qty:
        # next visible level
        while j >= 0 and qt[b, j] - cs[b, j] <= 0:
            j -= 1
        have_level = j >= 0
        px = 0
        if have_level:
            px = _level_price(kx, b, j, -side)
            if not is_mkt and ((side > 0 and px > limit) or (side < 0 and px < limit)):
                have_level = False
        ofound = False
        opx = 0
        if V[v, VF_OWNERS] != 0:
            ofound, opx = own_best_opposite_nb(ords, S, inst, side, skip, owner, False)
            if ofound and not is_mkt and ((side > 0 and opx > limit) or (side < 0 and opx < limit)):
                ofound = False
        if stp != STP_NONE:
            found, own = own_best_opposite_nb(ords, S, inst, side, skip, owner, True)
            if found:
                reachable = is_mkt or (side > 0 and own <= limit) or (side < 0 and own >= limit)
                at_or_before = (not have_level) or (side > 0 and own <= px) or (
                    side < 0 and own >= px)
                if ofound and ((side > 0 and own > opx) or (side < 0 and own < opx)):
                    at_or_before = False  # another owner's better-priced order comes first
                if reachable and at_or_before:
                    rem0 = qty - filled
                    rem, stop = stp_at_nb(ords, rsp, S, V, t, inst, side, own, rem0, stp, skip,
                                          owner)
                    qty -= rem0 - rem
                    if locked:
                        unlock_nb(ords, V, v, inst, side, order_price, rem0 - rem)
                    if stop or qty == filled:  # STP ended the taker
                        return filled, qty, TAKE_STP
                    if rem != rem0:  # decrement-both shrank the taker: say so
                        emit_nb(rsp, S, V, v, t, order_no, inst, K_AMENDED, LQ_NONE,
                                R_SELF_TRADE, order_price, qty, filled, qty - filled,
                                order_price)
                    continue
        if ofound and ((not have_level) or (side > 0 and opx <= px) or (side < 0 and opx >= px)):
            jj = j if have_level and opx == px else IM1
            filled, short = cross_level_nb(book, ords, rsp, S, V, t, v, order_no, inst, side, opx,
                                           jj, filled, qty, order_price, locked, owner, skip)
            if short:
                return filled, qty, TAKE_BALANCE
            continue
        if not have_level:
            break
        filled, x, short = book_take_nb(book, ords, rsp, S, V, t, v, order_no, inst, side, b, j, px,
                                        qt[b, j] - cs[b, j], filled, qty, order_price, locked,
                                        partial)
        if short:
            return filled, qty, TAKE_BALANCE
    return filled, qty, TAKE_DONE


@njit(cache=True, _nrt=False)
def crossing_nb(book, ords, S, V, v, inst, side, is_mkt, price, stp, owner):
    """What a new order of `side` at `price` (ticks; any price when `is_mkt`) meets now:
    (j, the visible best opposite level's index or -1; crosses, that level is at or
    through the price; own_cross, an order of the same owner on the opposite side is, when
    STP is on (`stp` not STP_NONE); own, that order's price; other_cross, another owner's
    order is). The one rule submit_nb and the refusal windows (post_only_refused_nb) read."""
    kx, qt, cs, cnt, insnap = book
    b = book_row_nb(inst, -side, 0)
    j = best_visible_nb(kx, qt, cs, cnt, b)
    crosses = False
    if j >= 0:
        px = _level_price(kx, b, j, -side)
        crosses = is_mkt or (side > 0 and px <= price) or (side < 0 and px >= price)
    own_cross = False
    own = 0
    if stp != STP_NONE:
        found, own = own_best_opposite_nb(ords, S, inst, side, IM1, owner, True)
        if found:
            own_cross = is_mkt or (side > 0 and own <= price) or (side < 0 and own >= price)
    other_cross = False
    if V[v, VF_OWNERS] != 0:
        ofound, opx = own_best_opposite_nb(ords, S, inst, side, IM1, owner, False)
        if ofound:
            other_cross = is_mkt or (side > 0 and opx <= price) or (side < 0 and opx >= price)
    return j, crosses, own_cross, own, other_cross


@njit(cache=True, _nrt=False)
def post_only_refused_nb(book, ords, S, V, R, r, v):
    """True if the post-only submit in request row r would be refused (post_only_would_cross)
    if it reached venue v now: submit_nb's rule (crossing_nb) without its effects."""
    stp = R[r, RQ_STP]
    if stp < 0:
        stp = V[v, VF_STP]
    if R[r, RQ_OWNER] != 0:  # as submit_nb: an order of another owner turns cross-owner matching on
        V[v, VF_OWNERS] = 1
    is_mkt = R[r, RQ_TYPE] == T_MARKET
    j, crosses, own_cross, own, other_cross = crossing_nb(book, ords, S, V, v, R[r, RQ_INST], R[r, RQ_SIDE], is_mkt,
                                                          R[r, RQ_PRICE], stp, R[r, RQ_OWNER])
    return crosses or is_mkt or own_cross or other_cross


@njit(cache=True, _nrt=False)
def submit_nb(book, ords, rsp, S, V, R, r, t, v):
    """A new order reached the venue at exchange time t."""
    kx, qt, cs, cnt, insnap = book
    order_no = R[r, RQ_ORDER_NO]
    inst = R[r, RQ_INST]
    side = R[r, RQ_SIDE]
    typ = R[r, RQ_TYPE]
    tif = R[r, RQ_TIF]
    price = R[r, RQ_PRICE]
    qty = R[r, RQ_QTY]
    gtd = R[r, RQ_GTD]
    is_mkt = typ == T_MARKET
    post = R[r, RQ_POST] != 0 or tif == TIF_GTX
    stp = R[r, RQ_STP]
    if stp < 0:
        stp = V[v, VF_STP]
    owner = R[r, RQ_OWNER]
    if owner != 0:
        V[v, VF_OWNERS] = 1
    order_price = 0 if is_mkt else price
    if R[r, RQ_KNOWN] == 2:
        emit_nb(rsp, S, V, v, t, order_no, inst, K_REJECTED, LQ_NONE, R_DUPLICATE, I0, qty, I0, I0,
                order_price)
        return
    if qty <= 0:
        emit_nb(rsp, S, V, v, t, order_no, inst, K_REJECTED, LQ_NONE, R_INVALID_QTY, I0, qty, I0,
                I0, order_price)
        return
    if not is_mkt and price <= 0:
        emit_nb(rsp, S, V, v, t, order_no, inst, K_REJECTED, LQ_NONE, R_INVALID_PRICE, I0, qty,
                I0, I0, order_price)
        return
    j, crosses, own_cross, own, other_cross = crossing_nb(book, ords, S, V, v, inst, side, is_mkt, price,
                                                          stp, owner)
    b = book_row_nb(inst, -side, 0)
    if post and (crosses or is_mkt or own_cross or other_cross):
        emit_nb(rsp, S, V, v, t, order_no, inst, K_REJECTED, LQ_NONE, R_POST_ONLY, I0, qty, I0, I0,
                order_price)
        return
    if is_mkt and j < 0 and not own_cross and not other_cross:
        emit_nb(rsp, S, V, v, t, order_no, inst, K_REJECTED, LQ_NONE, R_NO_LIQ, I0, qty, I0, I0,
                order_price)
        return
    # every STP mode but cancel-resting ends or shrinks the taker at our own order
    barrier = own_cross and stp != STP_CANCEL_RESTING
    if tif == TIF_FOK and fillable_nb(book, ords, S, V, v, inst, side, is_mkt, price, qty, barrier,
                                      own, owner) < qty:
        emit_nb(rsp, S, V, v, t, order_no, inst, K_REJECTED, LQ_NONE, R_FOK, I0, qty, I0, I0,
                order_price)
        return
    # balances: a limit order (or a market sell) locks what it may spend; a market buy
    # must afford at least one lot at the best visible price, then pays fill by fill
    if is_mkt and side > 0:
        funded = j < 0 or other_cross or affordable_nb(ords, V, v, inst, _level_price(kx, b, j, -side),
                                                       I1) > 0
    else:
        funded = lock_nb(ords, V, v, inst, side, price, qty)
    if not funded:
        emit_nb(rsp, S, V, v, t, order_no, inst, K_REJECTED, LQ_NONE, R_BALANCE, I0, qty, I0, I0,
                order_price)
        return
    emit_nb(rsp, S, V, v, t, order_no, inst, K_ACK, LQ_NONE, R_NONE, I0, I0, I0, qty, order_price)
    filled = 0
    stop = TAKE_DONE
    if crosses or own_cross or other_cross:
        filled, qty, stop = take_nb(book, ords, rsp, S, V, t, v, order_no, inst, side, is_mkt,
                                    price, qty, I0, order_price, stp, IM1, owner)
    rem = qty - filled
    if rem > 0 and not (is_mkt and side > 0):
        if stop != TAKE_DONE or is_mkt or tif == TIF_IOC or tif == TIF_FOK or (
                tif == TIF_GTD and gtd <= t):
            unlock_nb(ords, V, v, inst, side, price, rem)  # the rest will not rest
    if stop == TAKE_STP:  # self-trade prevention ended the order (rem may be 0 after decrement-both)
        emit_nb(rsp, S, V, v, t, order_no, inst, K_CANCELLED, LQ_NONE, R_SELF_TRADE, I0, rem,
                filled, I0, order_price)
        return
    if rem <= 0:
        return
    if stop == TAKE_BALANCE:
        emit_nb(rsp, S, V, v, t, order_no, inst, K_CANCELLED, LQ_NONE, R_BALANCE, I0, rem, filled,
                I0, order_price)
        return
    if is_mkt or tif == TIF_IOC or tif == TIF_FOK:
        reason = R_IOC if (filled > 0 or not is_mkt) else R_NO_LIQ
        emit_nb(rsp, S, V, v, t, order_no, inst, K_CANCELLED, LQ_NONE, reason, I0, rem, filled, I0,
                order_price)
        return
    if tif == TIF_GTD and gtd <= t:
        emit_nb(rsp, S, V, v, t, order_no, inst, K_EXPIRED, LQ_NONE, R_NONE, I0, rem, filled, I0,
                order_price)
        return
    ob = book_row_nb(inst, side, 0)
    ahead = level_qty_nb(kx, qt, cs, cnt, ob, side_key_nb(side, price))
    add_order_nb(ords, S, V, v, order_no, inst, side, typ, tif, price, qty, filled, gtd,
                 1 if post else 0, stp, float(ahead), owner)


@njit(cache=True, _nrt=False)
def reject_not_open_nb(rsp, S, V, R, r, t, v, order_no):
    """A cancel or amend of an order the venue does not hold: closed if we ever sent it."""
    reason = R_CLOSED if R[r, RQ_KNOWN] != 0 else R_UNKNOWN
    emit_nb(rsp, S, V, v, t, order_no, R[r, RQ_INST], K_CANCEL_REJECTED, LQ_NONE, reason, I0, I0,
            I0, I0, I0)


@njit(cache=True, _nrt=False)
def cancel_nb(ords, rsp, S, V, R, r, t, v):
    order_no = R[r, RQ_ORDER_NO]
    s = find_order_nb(ords, S, order_no)
    if s < 0:
        reject_not_open_nb(rsp, S, V, R, r, t, v, order_no)
        return
    end_resting_nb(ords, rsp, S, V, s, t, K_CANCELLED, R_USER)


@njit(cache=True, _nrt=False)
def query_nb(ords, rsp, S, V, R, r, t, v):
    """A lookup arriving at exchange time t, answered with STATE responses (the venue's
    GET /api/v3/order, openOrders, account): for one order its price, qty and cumulative
    filled (reason NONE) or reason UNKNOWN_ORDER when it is not open here (Python adds
    what the venue's history says: SimCore.order_history); for Q_OPEN_ORDERS one STATE
    per open order of the owner at venue v; for Q_BALANCES one marker (order_no -2)."""
    ot = ords[0]
    act = ords[2]
    order_no = R[r, RQ_ORDER_NO]
    if order_no == Q_BALANCES:
        emit_nb(rsp, S, V, v, t, order_no, R[r, RQ_INST], K_STATE, LQ_NONE, R_NONE, I0, I0, I0, I0, I0)
        return
    if order_no == Q_OPEN_ORDERS:
        for j in range(S[S_NACT]):
            s = act[j]
            if ot[s, OF_VENUE] == v and ot[s, OF_OWNER] == R[r, RQ_OWNER]:
                _emit_state(rsp, S, V, v, t, ot, s)
        return
    s = find_order_nb(ords, S, order_no)
    if s < 0:
        emit_nb(rsp, S, V, v, t, order_no, R[r, RQ_INST], K_STATE, LQ_NONE, R_UNKNOWN, I0, I0, I0, I0, I0)
        return
    _emit_state(rsp, S, V, v, t, ot, s)


@njit(cache=True, _nrt=False, inline="always")
def _emit_state(rsp, S, V, v, t, ot, s):
    qty = ot[s, OF_QTY]
    filled = ot[s, OF_FILLED]
    emit_nb(rsp, S, V, v, t, ot[s, OF_NO], ot[s, OF_INST], K_STATE, LQ_NONE, R_NONE, ot[s, OF_PRICE], qty,
            filled, qty - filled, ot[s, OF_PRICE])


@njit(cache=True, _nrt=False)
def amend_nb(book, ords, rsp, S, V, R, r, t, v):
    """Amend: qty = new total. Price change or qty increase -> back of the queue; a
    decrease keeps the place; new qty <= filled cancels the order."""
    kx, qt, cs, cnt, insnap = book
    ot, otf, act, free, inst_nact, olim, xinst, bal, qm, Vq = ords
    order_no = R[r, RQ_ORDER_NO]
    s = find_order_nb(ords, S, order_no)
    if s < 0:
        reject_not_open_nb(rsp, S, V, R, r, t, v, order_no)
        return
    inst = ot[s, OF_INST]
    side = ot[s, OF_SIDE]
    new_price = R[r, RQ_PRICE]
    new_qty = R[r, RQ_QTY]
    old_price = ot[s, OF_PRICE]
    filled = ot[s, OF_FILLED]
    if new_qty <= filled:
        end_resting_nb(ords, rsp, S, V, s, t, K_CANCELLED, R_USER)
        return
    if new_price <= 0:
        emit_nb(rsp, S, V, v, t, order_no, inst, K_CANCEL_REJECTED, LQ_NONE, R_INVALID_PRICE, I0,
                I0, filled, ot[s, OF_QTY] - filled, old_price)
        return
    price_changed = new_price != old_price
    crosses = False
    own_cross = False
    if price_changed:
        b = book_row_nb(inst, -side, 0)
        j = best_visible_nb(kx, qt, cs, cnt, b)
        if j >= 0:
            px = _level_price(kx, b, j, -side)
            crosses = (side > 0 and px <= new_price) or (side < 0 and px >= new_price)
        stp = ot[s, OF_STP]
        owner = ot[s, OF_OWNER]
        if stp != STP_NONE:
            found, own = own_best_opposite_nb(ords, S, inst, side, s, owner, True)
            own_cross = found and ((side > 0 and own <= new_price) or (side < 0 and own >= new_price))
        if V[v, VF_OWNERS] != 0:
            ofound, opx = own_best_opposite_nb(ords, S, inst, side, s, owner, False)
            if ofound and ((side > 0 and opx <= new_price) or (side < 0 and opx >= new_price)):
                crosses = True  # another owner's resting order is a counterparty
        if ot[s, OF_POST] != 0 and (crosses or own_cross):
            emit_nb(rsp, S, V, v, t, order_no, inst, K_CANCEL_REJECTED, LQ_NONE, R_POST_ONLY, I0, I0,
                    filled, ot[s, OF_QTY] - filled, old_price)
            return
    # balances: the order's lock moves to its new price and quantity, or the amend is refused
    unlock_nb(ords, V, v, inst, side, old_price, ot[s, OF_QTY] - filled)
    if not lock_nb(ords, V, v, inst, side, new_price, new_qty - filled):
        lock_nb(ords, V, v, inst, side, old_price, ot[s, OF_QTY] - filled)  # what it held
        emit_nb(rsp, S, V, v, t, order_no, inst, K_CANCEL_REJECTED, LQ_NONE, R_BALANCE, I0, I0,
                filled, ot[s, OF_QTY] - filled, old_price)
        return
    to_back = price_changed or new_qty > ot[s, OF_QTY]
    ot[s, OF_PRICE] = new_price
    ot[s, OF_QTY] = new_qty
    limits_nb(ords, S, inst)
    emit_nb(rsp, S, V, v, t, order_no, inst, K_AMENDED, LQ_NONE, R_NONE, new_price, new_qty,
            filled, new_qty - filled, new_price)
    if to_back:
        to_back_nb(ords, S, s)
        ob = book_row_nb(inst, side, 0)
        q_new(qm, V[v, VF_QMODEL], otf, s, float(level_qty_nb(kx, qt, cs, cnt, ob, side_key_nb(side, new_price))),
              Vq[v, VFF_QPARAM])
    if crosses or own_cross:
        f2, q2, stop = take_nb(book, ords, rsp, S, V, t, v, order_no, inst, side, np.False_,
                               new_price, new_qty, filled, new_price, ot[s, OF_STP], s,
                               ot[s, OF_OWNER])
        ot[s, OF_FILLED] = f2
        ot[s, OF_QTY] = q2
        if stop == TAKE_STP:
            end_resting_nb(ords, rsp, S, V, s, t, K_CANCELLED, R_SELF_TRADE)
        elif q2 - f2 <= 0:
            remove_order_nb(ords, S, V, s)  # filled: its last FILL said leaves 0


@njit(cache=True, _nrt=False)
def gtd_due_nb(ords, S, V):
    """(slot, time) of the next GTD expiry (earliest deadline, then queue order)."""
    ot = ords[0]
    act = ords[2]
    best_s = -1
    best_t = 0
    for k in range(S[S_NACT]):
        s = act[k]
        if ot[s, OF_TIF] != TIF_GTD:
            continue
        g = ot[s, OF_GTD]
        if best_s < 0 or g < best_t:
            best_s = s
            best_t = g
    return best_s, best_t
