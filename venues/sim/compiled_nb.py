"""The compiled-strategy fast path: the simulated venue and an @njit strategy in one loop.

`run_compiled_nb` advances the core (`core_nb.run_nb`) to each timer of the strategy,
calls its `timer_nb(ctx, params, state)`, checks each submit with `engine.risk_nb`, turns
the actions into venue requests exactly as `SimCore.submit/cancel` do (queued, then timed
by the venue's latency model when run_nb next runs: latency_nb.time_requests_nb), and records every decision and
every venue response into a log (`LG_*` rows, with the local top of book at that moment)
that the Python layer replays through the normal `TradingSession`. It returns to Python
at each equity-sample time, when the log is full, when the core needs a Python service
(another feed chunk, bigger buffers) and at the end.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.compiled import (
    A_INST,
    A_KIND,
    A_ORDER_NO,
    A_PRICE,
    A_QTY,
    A_SIDE,
    A_TIF,
    ACT_SUBMIT,
    BK_ASK,
    BK_ASK_QTY,
    BK_BID,
    BK_BID_QTY,
    CX_NACT,
    CX_NOPEN,
    CX_NOW,
    CX_TS,
    GTX,
    OO_CANCELLING,
    OO_INST,
    OO_LEAVES,
    OO_NF,
    OO_NO,
    OO_PRICE,
    OO_QTY,
    OO_SIDE,
    OO_TIF,
)
from engine.order_state_nb import (
    OR_FILLED,
    OR_QTY,
    REJECTED,
    SUBMITTED,
    is_terminal,
    leaves_of,
    open_row,
    report_row,
)
from engine.risk_nb import RISK_OK, pretrade_check, venue_minimums
from venues.sim.codes import (
    RQ_CANCEL,
    RQ_SUBMIT,
    S_NREQ,
    ST_BOUND,
    ST_END,
    ST_ORDER,
    VF_DORMANT,
)
from venues.sim.core_nb import data_exhausted_nb, run_nb
from venues.sim.dormant_nb import wake_exchange_nb
from venues.sim.requests_nb import enqueue_request_nb

# loop state X[...]
X_NEXT_TIMER = 0
X_EVERY = 1
X_NEXT_SAMPLE = 2
X_END = 3
X_NEXT_NO = 4  # the order number the OMS will give the next submit
X_NLOG = 5  # (the request sequence is the core's S[S_REQ_SEQ], requests_nb)
X_RESUME = 6  # 1: the bound at X_NOW was reached and sampled; fire the timer without re-running
X_NOW = 7
X_BAD = 8  # an invalid action (its index in the timer's buffer + 1)
X_RISK_STATE = 9  # engine.risk_nb ST_*: the risk state at the start
X_ORD_BASE = 10  # the order number of ORD's row 0 (the OMS's next number when the loop starts)
X_NF = 11

# returns (besides the core's ST_NEED_* services)
CS_END = 4  # feed exhausted, nothing in flight
CS_STOP = 100  # end time reached
CS_SAMPLE = 101  # an equity-sample time: replay the log, sample, drain, resume
CS_LOG_FULL = 102
CS_NEED_REQ = 103  # the request table needs room
CS_OPEN_FULL = 104  # more open orders than the context holds
CS_BAD_ACTION = 105
CS_NEED_ROWS = 106  # the order rows (ORD) need room

# log rows LG[k, LG_*]
LOG_TIMER = 1
LOG_SUBMIT = 2
LOG_CANCEL = 3
LOG_RESP = 4
LG_KIND = 0
LG_TS = 1
LG_ORDER_NO = 2
LG_INST = 3
LG_SIDE = 4  # submit
LG_QTY = 5
LG_PRICE = 6
LG_TIF = 7
LG_RISK = 8  # the numba risk verdict (RISK_*)
# response rows: the ORDER_EVENT_DTYPE fields
LG_R_EXCH_TS = 2
LG_R_LOCAL_TS = 3
LG_R_ORDER_NO = 4
LG_R_INST = 5
LG_R_KIND = 6
LG_R_LIQ = 7
LG_R_REASON = 8
LG_R_PRICE = 9
LG_R_QTY = 10
LG_R_FILLED = 11
LG_R_LEAVES = 12
LG_R_ORDER_PRICE = 13
LG_R_STATUS = 14  # the order's status after the report (engine.order_state_nb), -1: not the loop's order
LG_NF = 15

INT64_MAX = np.int64(np.iinfo(np.int64).max)


@njit(cache=True, _nrt=False)
def local_bbo_nb(kx, qt, cnt, book, LB, k):
    """The local top of book of every instrument into book[i] and log row k's snapshot."""
    for i in range(book.shape[0]):
        bb = 4 * i + 2
        ba = 4 * i + 3
        nb = cnt[bb]
        na = cnt[ba]
        bid = kx[bb, nb - 1] if nb > 0 else 0
        bq = qt[bb, nb - 1] if nb > 0 else 0
        ask = -kx[ba, na - 1] if na > 0 else 0
        aq = qt[ba, na - 1] if na > 0 else 0
        book[i, BK_BID] = bid
        book[i, BK_BID_QTY] = bq
        book[i, BK_ASK] = ask
        book[i, BK_ASK_QTY] = aq
        if k >= 0:
            LB[k, 4 * i] = bid
            LB[k, 4 * i + 1] = bq
            LB[k, 4 * i + 2] = ask
            LB[k, 4 * i + 3] = aq


@njit(cache=True, _nrt=False)
def push_request_nb(R, S, V, inst_venue, kind, number, inst, side, tif, price, qty, now):
    """A limit order or a cancel of the compiled strategy into the venue (the caller made
    room in R): the one request entry, requests_nb.enqueue_request_nb, as SimCore._push's."""
    enqueue_request_nb(R, S, V, inst_venue[inst], kind, number, inst, side, 0, tif, price, qty,
                       1 if tif == GTX else 0, 0, now, 1 if kind == RQ_CANCEL else 0, -1, 0)


@njit(cache=True, _nrt=False)
def on_response_nb(ctx, rec, LG, k, ts, ORD, X):
    """Log one venue response and apply it to the order's row by the OMS's own rules
    (engine.order_state_nb.report_row: status, filled lots, the instrument's position in
    ctx[2]); the strategy's open-order view (ctx[3]) follows the row: its leaves, and the
    order leaves the view when the row's status is final."""
    scalars = ctx[0]
    pos = ctx[2]
    oo = ctx[3]
    LG[k, 0] = 4  # LOG_RESP
    LG[k, 1] = ts
    LG[k, LG_R_EXCH_TS] = rec.exch_ts
    LG[k, LG_R_LOCAL_TS] = rec.local_ts
    LG[k, LG_R_ORDER_NO] = rec.order_no
    LG[k, LG_R_INST] = rec.instrument
    LG[k, LG_R_KIND] = rec.kind
    LG[k, LG_R_LIQ] = rec.liquidity
    LG[k, LG_R_REASON] = rec.reason
    LG[k, LG_R_PRICE] = rec.price
    LG[k, LG_R_QTY] = rec.qty
    LG[k, LG_R_FILLED] = rec.filled
    LG[k, LG_R_LEAVES] = rec.leaves
    LG[k, LG_R_ORDER_PRICE] = rec.order_price
    LG[k, LG_R_STATUS] = -1
    number = np.int64(rec.order_no)
    row = number - X[X_ORD_BASE]
    if row < 0 or number >= X[X_NEXT_NO]:
        return  # not an order of this loop
    status = report_row(ORD, pos, row, np.int64(rec.kind), np.int64(rec.qty), np.int64(rec.leaves))
    LG[k, LG_R_STATUS] = status
    n = scalars[CX_NOPEN]
    j = -1
    for q in range(n):
        if oo[q, OO_NO] == number:
            j = q
            break
    if j < 0:
        return
    if is_terminal(status):
        for q in range(j, n - 1):
            for c in range(OO_NF):
                oo[q, c] = oo[q + 1, c]
        scalars[CX_NOPEN] = n - 1
    else:
        oo[j, OO_LEAVES] = leaves_of(status, ORD[row, OR_QTY], ORD[row, OR_FILLED])


@njit(cache=True, _nrt=False)
def run_compiled_nb(buf, S, V, Vf, inst_venue, xinst, bal, kx, qt, cs, cnt, insnap, ot, otf, act, free, inst_nact,
                    olim, resp, resp_seq, LP, Spk, l3_keys, l3_tab, l3_meta, l3_out, R, bbo, lastbbo,
                    trd, qm, lm, wake_book, wake_trade, out_rec, run_exch,
                    fn, ctx, params, state, X, limits, ring, LG, LB, col_n, col_out,
                    col_bbo, ORD):
    """Run the venue and the strategy until Python is needed; returns a CS_* / ST_NEED_* code.

    Responses between two wake-ups are collected by run_nb (col_*) and logged here in
    delivery order: the strategy only acts at timers, so they need no wake-up of their own.
    `ORD` holds one row per order the loop numbers (engine.order_state_nb: row = order
    number - X[X_ORD_BASE]), moved by the rules the OMS runs.
    """
    scalars = ctx[0]
    book = ctx[1]
    pos = ctx[2]
    oo = ctx[3]
    acts = ctx[4]
    room = acts.shape[0] + 2 + col_out.shape[0]
    while True:
        if X[X_RESUME] != 0:
            X[X_RESUME] = 0
            now = X[X_NOW]
            st = ST_BOUND
        else:
            bound = X[X_NEXT_TIMER]
            if X[X_NEXT_SAMPLE] < bound:
                bound = X[X_NEXT_SAMPLE]
            if X[X_END] < bound:
                bound = X[X_END]
            if X[X_NLOG] + room > LG.shape[0]:
                return CS_LOG_FULL
            st = run_nb(buf, S, V, Vf, inst_venue, xinst, bal, kx, qt, cs, cnt, insnap, ot, otf, act, free,
                        inst_nact, olim, resp, resp_seq, LP, Spk, l3_keys, l3_tab, l3_meta, l3_out,
                        R, bbo, lastbbo, trd, qm, lm, wake_book, wake_trade, bound, out_rec, run_exch, col_n,
                        col_out, col_bbo)
            k = X[X_NLOG]
            for c in range(col_n[0]):
                ts = col_out[c].local_ts
                if ts < X[X_NOW]:
                    ts = X[X_NOW]
                X[X_NOW] = ts
                on_response_nb(ctx, col_out[c], LG, k, ts, ORD, X)
                for j in range(LB.shape[1]):
                    LB[k, j] = col_bbo[c, j]
                k += 1
            X[X_NLOG] = k
            col_n[0] = 0
            if st == ST_ORDER:
                k = X[X_NLOG]
                ts = S[17]  # S_WAKE_TS
                if ts < X[X_NOW]:
                    ts = X[X_NOW]
                X[X_NOW] = ts
                on_response_nb(ctx, out_rec[0], LG, k, ts, ORD, X)
                local_bbo_nb(kx, qt, cnt, book, LB, k)
                X[X_NLOG] = k + 1
                continue
            if st == ST_END:
                return CS_END
            if st != ST_BOUND:
                return st  # a Python service (feed chunk, buffers); call again after it
            now = bound
            if now < X[X_NOW]:
                now = X[X_NOW]
            X[X_NOW] = now
            if now >= X[X_END]:
                return CS_STOP
            if now >= X[X_NEXT_SAMPLE]:
                return CS_SAMPLE  # Python samples, then sets X_RESUME
        if now < X[X_NEXT_TIMER]:
            continue
        if data_exhausted_nb(S):
            # no market row is left: timers stop, the run drains what is in flight and ends
            # (modes/backtest.py `_drive` stops at the same bound; docs/backtest.md)
            X[X_NEXT_TIMER] = INT64_MAX
            continue
        # ---- the timer: the strategy decides, risk checks, requests go out -------------
        if S[S_NREQ] + acts.shape[0] > R.shape[0]:
            X[X_RESUME] = 1
            return CS_NEED_REQ
        if X[X_NEXT_NO] - X[X_ORD_BASE] + acts.shape[0] > ORD.shape[0]:
            X[X_RESUME] = 1
            return CS_NEED_ROWS
        if X[X_NLOG] + room > LG.shape[0]:
            X[X_RESUME] = 1
            return CS_LOG_FULL
        due = X[X_NEXT_TIMER]
        X[X_NEXT_TIMER] = due + X[X_EVERY]
        k = X[X_NLOG]
        LG[k, LG_KIND] = LOG_TIMER
        LG[k, LG_TS] = due
        LG[k, LG_ORDER_NO] = now  # timer rows: the local time of the wake
        local_bbo_nb(kx, qt, cnt, book, LB, k)
        k += 1
        scalars[CX_NOW] = now
        scalars[CX_TS] = due
        scalars[CX_NACT] = 0
        fn(ctx, params, state)
        for a in range(scalars[CX_NACT]):
            if acts[a, A_KIND] == ACT_SUBMIT:
                inst = acts[a, A_INST]
                side = acts[a, A_SIDE]
                qty = acts[a, A_QTY]
                price = acts[a, A_PRICE]
                tif = acts[a, A_TIF]
                if (inst < 0 or inst >= book.shape[0] or (side != 1 and side != -1) or qty <= 0
                        or price <= 0 or tif < 0 or tif > 3):
                    X[X_BAD] = a + 1
                    X[X_NLOG] = k
                    return CS_BAD_ACTION
                number = X[X_NEXT_NO]
                X[X_NEXT_NO] = number + 1
                # the one implementation of the pre-trade checks (engine.risk_nb), as the
                # session runs them: the venue minimums, then the state and per-order limits
                lim = limits[inst]
                code = venue_minimums(lim, qty, price)
                if code == RISK_OK:
                    mid2 = 0
                    if book[inst, BK_BID_QTY] > 0 and book[inst, BK_ASK_QTY] > 0:
                        mid2 = book[inst, BK_BID] + book[inst, BK_ASK]
                    code = pretrade_check(lim, ring, X[X_RISK_STATE], False, now, side, qty, price, mid2,
                                          pos[inst], scalars[CX_NOPEN], False, True)
                LG[k, LG_KIND] = LOG_SUBMIT
                LG[k, LG_TS] = now
                LG[k, LG_ORDER_NO] = number
                LG[k, LG_INST] = inst
                LG[k, LG_SIDE] = side
                LG[k, LG_QTY] = qty
                LG[k, LG_PRICE] = price
                LG[k, LG_TIF] = tif
                LG[k, LG_RISK] = code
                k += 1
                open_row(ORD, number - X[X_ORD_BASE], SUBMITTED if code == RISK_OK else REJECTED, inst, side,
                         price, qty, tif)
                if code == RISK_OK:
                    n = scalars[CX_NOPEN]
                    if n >= oo.shape[0]:
                        X[X_NLOG] = k
                        return CS_OPEN_FULL
                    oo[n, OO_NO] = number
                    oo[n, OO_INST] = inst
                    oo[n, OO_SIDE] = side
                    oo[n, OO_PRICE] = price
                    oo[n, OO_QTY] = qty
                    oo[n, OO_LEAVES] = qty
                    oo[n, OO_CANCELLING] = 0
                    oo[n, OO_TIF] = tif
                    scalars[CX_NOPEN] = n + 1
                    if V[inst_venue[inst], VF_DORMANT] != 0:
                        wake_exchange_nb(inst_venue[inst], S, V, inst_venue, xinst, kx, qt, cs, cnt,
                                         insnap)
                    push_request_nb(R, S, V, inst_venue, RQ_SUBMIT, number,
                                    inst, side, tif, price, qty, now)
            else:
                number = acts[a, A_ORDER_NO]
                j = -1
                for q in range(scalars[CX_NOPEN]):
                    if oo[q, OO_NO] == number:
                        j = q
                        break
                if j < 0:
                    continue  # ctx.cancel of an order that is not open: nothing is sent
                oo[j, OO_CANCELLING] = 1
                LG[k, LG_KIND] = LOG_CANCEL
                LG[k, LG_TS] = now
                LG[k, LG_ORDER_NO] = number
                LG[k, LG_INST] = oo[j, OO_INST]
                k += 1
                push_request_nb(R, S, V, inst_venue, RQ_CANCEL, number,
                                oo[j, OO_INST], 0, 0, 0, 0, now)
        scalars[CX_NACT] = 0
        X[X_NLOG] = k


_FN_ARG = 36  # position of `fn` in run_compiled_nb's arguments
_compiled_sigs: set = set()


def _remember_function_addresses() -> None:
    """Make numba look up a first-class function argument's addresses once, not per call.

    Why: each call of `run_compiled_nb` unboxes `fn` (the strategy's `timer_nb`, a
    `FunctionType` argument) by calling `numba.experimental.function_type`'s
    `_get_wrapper_address` and `_get_jit_address`, which fetch the compile result and ask
    LLVM for the symbol's address: ~10-40 us per call, ~500 calls per 1M events (one per
    equity sample; bench/PROFILE.md section 2d). For a `Dispatcher` and a precise signature
    both addresses are fixed once compiled (numba never replaces an overload of a
    signature), so they are remembered per dispatcher (weakly: a strategy module loaded
    again gives a new dispatcher, and the old one's entry goes with it) and signature.
    Remembering also keeps each dispatcher on its own code: LLVM resolves a symbol by name,
    and a strategy module loaded twice in one process compiles two functions of the same
    name, so numba's own lookup for the older dispatcher returns the newer one's code.
    numba reads the two functions from the module at every unboxing
    (`pyapi.object_getattr_string`), which is what lets this wrap them; any other argument
    kind goes to numba's own function unchanged. A numba without these functions is left
    alone (only the speed differs)."""
    import weakref

    from numba.core.dispatcher import Dispatcher
    from numba.experimental import function_type as F

    for name in ("_get_wrapper_address", "_get_jit_address"):
        original = getattr(F, name, None)
        if original is None or getattr(original, "_tickparity_memo", False):
            continue
        found: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # dispatcher -> {signature: address}

        def remembered(func, sig, _original=original, _found=found):
            if not isinstance(func, Dispatcher) or not sig.is_precise():
                return _original(func, sig)
            known = _found.get(func)
            if known is None:
                known = _found[func] = {}
            addr = known.get(sig)
            if addr is None:
                addr = known[sig] = _original(func, sig)
            return addr

        remembered._tickparity_memo = True
        setattr(F, name, remembered)


def call_compiled(*args):
    """Call run_compiled_nb with `fn` typed as a first-class function (FunctionType).

    Passed as a plain dispatcher, `fn` would make numba compile (and cache) one copy of
    the whole loop per strategy and per process; as a FunctionType of the fixed signature
    `none(ctx, params, state)` there is one cached loop for every strategy, and the
    strategy's own function is compiled (and cached) on its own.
    """
    if not _compiled_sigs:
        _remember_function_addresses()
    if _compiled_sigs:
        try:
            return run_compiled_nb(*args)
        except TypeError as exc:  # new argument types (a replaced buffer of another layout)
            if "No matching definition" not in str(exc):
                raise
    from numba import typeof, types

    argtypes = [typeof(a) for a in args]
    ftype = types.FunctionType(types.none(argtypes[_FN_ARG + 1], argtypes[_FN_ARG + 2], argtypes[_FN_ARG + 3]))
    argtypes[_FN_ARG] = ftype
    sig = tuple(argtypes)
    if sig not in _compiled_sigs:
        run_compiled_nb._can_compile = True
        try:
            run_compiled_nb.compile(sig)
        finally:
            run_compiled_nb._can_compile = False
        _compiled_sigs.add(sig)
    return run_compiled_nb(*args)
