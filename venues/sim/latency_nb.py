"""Order latency of the simulated venue (numba): the shipped models and the one place
the venue applies a model, for the replay kernel, the compiled-strategy loop and SimCore.

A latency model (venues.sim.models.LatencyModel, docs/models.md) has hftbacktest's two
legs of order latency: `entry(kind, ts, p, st)`, ns from sending a request of `kind`
(codes.RQ_SUBMIT / RQ_CANCEL / RQ_AMEND / RQ_QUERY) at local time ts to its arrival at the
venue, and `response(kind, ts, p, st)`, ns from the venue producing a response of `kind`
(engine.types.OrderEventKind: ACK, FILL, CANCELLED ...) at exchange time ts to its receipt
on the local side; plus `min_entry(p)`, a lower bound of every entry latency, which is
how far the venue may run its exchange side ahead of the local clock. `p` is the venue's
int64 parameter array (SimVenueConfig.latency_params), `st` its int64 state (`state`
slots), filled at the start with draws of numpy's `default_rng([seed, venue index])`,
so a random model is reproducible from the run seed (use `rand_below_nb`).

What the venue does with them (request_arrival_nb, response_time_nb; a request is timed
when the kernel next runs, time_requests_nb):
  arrival  = max(ts + max(entry, min_entry) + spikes at ts (send time),
                 the venue's previous arrival, the venue's exchange clock)
  received = max(t + max(response, 0) + spikes at t (exchange time),
                 the venue's previous response)
so requests of a venue never overtake each other, nor do its responses (one connection
each), except under the `recorded` model (V[v, VF_OVERTAKE]): there each request has the
entry its own round trip had in the session, whose requests of different orders went on
separate connections and overtook each other (a cancel sent after a submit of the same
decision reached the venue 6 ms before it; held behind the submit, the old quote filled in
the backtest: bench/README.md "Parity", session 9), so only one order's requests keep their
order (the session sends an order's next command after the previous one's reply); and an
entry below the model's own bound counts as the bound (the exchange side
may already have run that far; counting it the same in a lazy and an eager run keeps the
fills identical). Spikes are `[venues.X.latency] spikes` and the `latency_spike` faults
(rows venue, start, end, extra ns in `Spk`).

The shipped models:
- constant: p = [submit entry, cancel entry, amend entry, response] (a query enters as a
  submit), state 0.
- empirical: p = the samples file's rows [entry_0, response_0, entry_1, ...]; each latency
  is a sample drawn uniformly (entry from column 0, response from column 1) from the
  venue's one seeded stream (state 1: a splitmix64 state).
- recorded: p = [n, a session's latency.csv rows ts_0, entry_0, response_0, ts_1, ...
  (n of them, sorted by ts), then its in-turn rows ts, kind, entry sorted by (ts, kind,
  send order)] (venues/sim/latency.py recorded_params); state 4 (the last send time and
  how many requests of each kind were sent at it). The n-th request of a kind sent at a
  time the file records requests of that kind at gets the n-th such record
  (latency.recorded_requests_in_turn says why); any other entry is interpolated linearly
  at the send time between the two records around it, as hftbacktest's IntpOrderLatency
  (exact integers, rounded down); response by the exchange time, held at the mean of the
  two records around it; the nearest record's values before the first and after the
  last. So a backtest of a session's period sees the latency that session saw, spikes
  included. The requests a venue's rate-limit hold refused in the session (latency.csv
  `held`) are not in the in-turn rows: the Python adapter refuses them before they reach
  the kernel (venues/sim/latency.py held_requests, venues.sim.faults.SimFaults).

Whatever the model, a venue given `latency.report_file` (a session's report_latency.csv:
the user stream's report latencies, V[v, VF_RP_N] rows [ts, response, stamp] in LP from
V[v, VF_RP_OFF]) takes its response leg from it instead: the latency of the latest report
at or before the exchange time, the first report's before it (venues/sim/latency.py says
why). A report's venue time is a whole unit of the venue's clock, `stamp` ns (Binance's
`T` / `E`: 1 ms by default, 1 µs for a session that asked for microseconds), so a record at
ts stands for [ts, ts + stamp): a response produced within it reaches the local side when
the session received that report, ts + response (never before it is produced), not up to
a unit later.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.types import TimeInForce
from venues.sim.codes import (
    RQ_AMEND,
    RQ_ARR_HI,
    RQ_ARRIVAL,
    RQ_CANCEL,
    RQ_KIND,
    RQ_ORDER_NO,
    RQ_POST,
    RQ_QUERY,
    RQ_REPLY_AT,
    RQ_SENT,
    RQ_SEQ,
    RQ_SUBMIT,
    RQ_TIF,
    RQ_VENUE,
    S_NREQ,
    S_UNTIMED,
    VF_AW_K,
    VF_AW_N,
    VF_AW_OFF,
    VF_AW_TS,
    VF_EMIN,
    VF_LAST_ARR,
    VF_LAST_RESP,
    VF_LMODEL,
    VF_LP_N,
    VF_LP_OFF,
    VF_LS_N,
    VF_OVERTAKE,
    VF_REPLY_AT,
    VF_RP_N,
    VF_RP_OFF,
    VF_XCLOCK,
)
from venues.sim.models import LatencyModel, l_entry, l_response

TIF_GTX = np.int64(TimeInForce.GTX)

_U32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_ONE = np.uint64(1)
_I64_MAX = np.int64(np.iinfo(np.int64).max)


# --------------------------------------------------------------------------------------
# the venue side: one implementation for SimCore, run_nb and the compiled loop
# --------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def request_arrival_nb(lm, LP, V, Spk, v, kind, ts):
    """When a request of `kind` sent at local time ts reaches venue v (module doc);
    records it as the venue's last arrival."""
    off = V[v, VF_LP_OFF]
    end = off + V[v, VF_LP_N]
    lat = l_entry(lm, V[v, VF_LMODEL], kind, ts, LP[off:end], LP[end:end + V[v, VF_LS_N]])
    if lat < V[v, VF_EMIN]:
        lat = V[v, VF_EMIN]
    for j in range(Spk.shape[0]):
        if Spk[j, 0] == v and Spk[j, 1] <= ts and ts < Spk[j, 2]:
            lat += Spk[j, 3]
    arrival = ts + lat
    if V[v, VF_LAST_ARR] > arrival and V[v, VF_OVERTAKE] == 0:
        arrival = V[v, VF_LAST_ARR]
    if V[v, VF_XCLOCK] > arrival:
        arrival = V[v, VF_XCLOCK]
    if arrival > V[v, VF_LAST_ARR]:
        V[v, VF_LAST_ARR] = arrival
    return arrival


@njit(cache=True, _nrt=False)
def time_requests_nb(lm, LP, V, Spk, R, S):
    """Give the requests queued since the kernel last ran (the last S[S_UNTIMED] rows of R,
    in the order they were sent) their arrival times. SimCore._push and the compiled
    loop only queue a request; timing it here, when the kernel runs, keeps the latency
    model out of Python (no numba call per request) and its draws in sending order. The
    venue of a queued request is awake (not dormant), so its exchange clock has not moved
    since the request was sent."""
    n = S[S_NREQ]
    for r in range(n - S[S_UNTIMED], n):
        v = R[r, RQ_VENUE]
        kind = R[r, RQ_KIND]
        sent = R[r, RQ_SENT]
        arrival = request_arrival_nb(lm, LP, V, Spk, v, kind, sent)
        if V[v, VF_OVERTAKE] != 0:  # one order's requests still never overtake each other
            for q in range(n):
                # (a submit still in its refusal window is not waited for: it is taken when this
                # request arrives, core_nb.close_window_nb)
                if (q != r and R[q, RQ_VENUE] == v and R[q, RQ_ORDER_NO] == R[r, RQ_ORDER_NO]
                        and R[q, RQ_SEQ] < R[r, RQ_SEQ] and R[q, RQ_ARRIVAL] > arrival
                        and R[q, RQ_ARR_HI] <= R[q, RQ_ARRIVAL]):
                    arrival = R[q, RQ_ARRIVAL]
        if V[v, VF_AW_N] > 0 and kind == RQ_SUBMIT:
            # every submit takes its turn (the file counts them all); only a post-only one a window
            lo, hi, rtt = arrival_window_nb(LP, V, v, sent)
            if hi >= 0 and (R[r, RQ_POST] != 0 or R[r, RQ_TIF] == TIF_GTX):
                # a submit the session saw refused: its window (core_nb defers it in it)
                lo = sent + max(lo, V[v, VF_EMIN])
                hi = sent + max(hi, V[v, VF_EMIN])
                arrival = max(lo, V[v, VF_XCLOCK])
                R[r, RQ_ARR_HI] = max(hi, arrival)
                R[r, RQ_REPLY_AT] = sent + rtt
        R[r, RQ_ARRIVAL] = arrival
    S[S_UNTIMED] = 0


@njit(cache=True, _nrt=False)
def arrival_window_nb(LP, V, v, sent):
    """The entry window (entry_min, entry_max ns) and round trip (ns) of venue v's submit
    sent at local time `sent`, or (-1, -1, -1): the `recorded` latency's refusal windows
    (V[v, VF_AW_N] rows [ts, turn, entry_min, entry_max, round trip] in LP from
    V[v, VF_AW_OFF]; venues/sim/latency.py
    refusal_windows says why). The k-th submit the venue times at one send time takes the
    row of turn k, as the recorded model hands out the entries of one time in turn; counted
    here (VF_AW_TS, VF_AW_K) for every submit of the venue, post-only or not, in the order
    they were sent (time_requests_nb calls it for each), as refusal_windows counts the
    file's submits."""
    if V[v, VF_AW_TS] == sent:
        V[v, VF_AW_K] += 1
    else:
        V[v, VF_AW_TS] = sent
        V[v, VF_AW_K] = 0
    off = V[v, VF_AW_OFF]
    n = V[v, VF_AW_N]
    lo_i, hi_i = 0, n  # the first row at or after (sent, turn)
    while lo_i < hi_i:
        mid = (lo_i + hi_i) // 2
        ts = LP[off + 5 * mid]
        if ts < sent or (ts == sent and LP[off + 5 * mid + 1] < V[v, VF_AW_K]):
            lo_i = mid + 1
        else:
            hi_i = mid
    if lo_i < n and LP[off + 5 * lo_i] == sent and LP[off + 5 * lo_i + 1] == V[v, VF_AW_K]:
        k = off + 5 * lo_i
        return LP[k + 2], LP[k + 3], LP[k + 4]
    return np.int64(-1), np.int64(-1), np.int64(-1)


@njit(cache=True, _nrt=False)
def response_time_nb(lm, LP, V, Spk, v, kind, t):
    """When a response of `kind` venue v produced at exchange time t reaches the local
    side (module doc); records it as the venue's last response. While a submit of a refusal
    window is handled (V[v, VF_REPLY_AT] set by core_nb), its answer reaches the local side
    when the session's reply did (no sooner than t), outside the venue's response order: the
    session got it on the request's own connection."""
    if V[v, VF_REPLY_AT] > 0:
        return max(V[v, VF_REPLY_AT], t)
    rn = V[v, VF_RP_N]
    if rn > 0:  # latency.report_file: the latest report at or before t, the first one's before it
        roff = V[v, VF_RP_OFF]
        k = records_at_or_before_nb(LP[roff:roff + 3 * rn], 3, t)
        lat = LP[roff + 1] if k == 0 else LP[roff + 3 * k - 2]
        if k > 0 and t - LP[roff + 3 * k - 3] < LP[roff + 3 * k - 1]:  # within the record's stamp
            lat = LP[roff + 3 * k - 3] + lat - t  # its receipt (module doc); < 0 -> 0 below
    else:
        off = V[v, VF_LP_OFF]
        end = off + V[v, VF_LP_N]
        lat = l_response(lm, V[v, VF_LMODEL], kind, t, LP[off:end], LP[end:end + V[v, VF_LS_N]])
    if lat < 0:
        lat = 0
    for k in range(Spk.shape[0]):
        if Spk[k, 0] == v and Spk[k, 1] <= t and t < Spk[k, 2]:
            lat += Spk[k, 3]
    lt = t + lat
    if lt < V[v, VF_LAST_RESP]:
        lt = V[v, VF_LAST_RESP]
    V[v, VF_LAST_RESP] = lt
    return lt


# --------------------------------------------------------------------------------------
# helpers for models
# --------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def rand_u64_nb(st, i):
    """The next uint64 of the splitmix64 stream whose state is st[i] (Steele, Lea and
    Flood 2014, "Fast splittable pseudorandom number generators"; the seeding generator of
    xoshiro). Deterministic: the same state gives the same draws on every machine."""
    z = np.uint64(st[i]) + np.uint64(0x9E3779B97F4A7C15)
    st[i] = np.int64(z)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, _nrt=False)
def rand_below_nb(st, i, n):
    """A draw in [0, n) (int, n >= 1) from the stream of st[i] (rand_u64_nb; the modulo
    bias is below n / 2**64)."""
    return np.int64(rand_u64_nb(st, i) % np.uint64(n))


@njit(cache=True, _nrt=False)
def muldiv_floor_nb(a, b, c):
    """floor(a * b / c) exactly, for int64 a, b >= 0, c > 0 whose result fits in int64
    (a 128-bit product: a latency difference times a time offset overflows int64)."""
    if a == 0 or b == 0:
        return np.int64(0)
    ua = np.uint64(-a) if a < 0 else np.uint64(a)
    ub = np.uint64(b)
    uc = np.uint64(c)
    if ua <= np.uint64(_I64_MAX) // ub:  # the product fits: plain floor division
        return (a * b) // c
    a0 = ua & _U32
    a1 = ua >> _S32
    b0 = ub & _U32
    b1 = ub >> _S32
    p00 = a0 * b0
    p01 = a0 * b1
    p10 = a1 * b0
    mid = (p00 >> _S32) + (p01 & _U32) + (p10 & _U32)
    lo = (p00 & _U32) | (mid << _S32)
    hi = a1 * b1 + (p01 >> _S32) + (p10 >> _S32) + (mid >> _S32)
    r = hi % uc
    q = np.uint64(0)
    for i in range(63, -1, -1):
        top = r >> np.uint64(63)
        r = (r << _ONE) | ((lo >> np.uint64(i)) & _ONE)
        q = q << _ONE
        if top != np.uint64(0) or r >= uc:
            r = r - uc
            q = q | _ONE
    if a < 0:
        return -np.int64(q) - (np.int64(1) if r != np.uint64(0) else np.int64(0))
    return np.int64(q)


@njit(cache=True, _nrt=False)
def records_at_or_before_nb(p, width, ts):
    """How many rows of p (rows of `width` ints, sorted by column 0) have column 0 <= ts."""
    lo = 0
    hi = p.shape[0] // width
    while lo < hi:
        mid = (lo + hi) // 2
        if p[width * mid] <= ts:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, _nrt=False)
def column_min_nb(p, width, col):
    """The smallest value of column `col` of p's rows of `width` ints (at least one row)."""
    low = p[col]
    for k in range(col + width, p.shape[0], width):
        if p[k] < low:
            low = p[k]
    return low


# --------------------------------------------------------------------------------------
# constant
# --------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def constant_entry_nb(kind, ts, p, st):
    if kind == RQ_CANCEL:
        return p[1]
    if kind == RQ_AMEND:
        return p[2]
    return p[0]


@njit(cache=True, _nrt=False)
def constant_response_nb(kind, ts, p, st):
    return p[3]


@njit(cache=True, _nrt=False)
def constant_min_entry_nb(p):
    return min(p[0], p[1], p[2])


# --------------------------------------------------------------------------------------
# empirical
# --------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def empirical_entry_nb(kind, ts, p, st):
    return p[2 * rand_below_nb(st, 0, p.shape[0] // 2)]


@njit(cache=True, _nrt=False)
def empirical_response_nb(kind, ts, p, st):
    return p[2 * rand_below_nb(st, 0, p.shape[0] // 2) + 1]


@njit(cache=True, _nrt=False)
def empirical_min_entry_nb(p):
    return column_min_nb(p, 2, 0)


# --------------------------------------------------------------------------------------
# recorded
# --------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def recorded_in_turn_nb(kind, ts, p, st):
    """The next in-turn entry of a `kind` request sent at ts (module doc), -1 if none is
    left. st: [last send time, requests of kinds 1..3 sent at it]."""
    turn = p[1 + 3 * p[0]:]
    if kind == RQ_QUERY or turn.shape[0] == 0:  # lookups are not recorded
        return -1
    if st[0] != ts:
        st[0] = ts
        st[1] = 0
        st[2] = 0
        st[3] = 0
    hi = records_at_or_before_nb(turn, 3, ts)
    lo = hi
    while lo > 0 and turn[3 * lo - 3] == ts and turn[3 * lo - 2] >= kind:
        lo -= 1
    first = lo  # the rows of (ts, kind) are [first, end)
    while first < hi and turn[3 * first + 1] < kind:
        first += 1
    end = first
    while end < hi and turn[3 * end + 1] == kind:
        end += 1
    used = st[kind]
    if used < 0 or first + used >= end:
        return -1
    st[kind] = used + 1
    return turn[3 * (first + used) + 2]


@njit(cache=True, _nrt=False)
def recorded_around_nb(p, ts):
    """(rows, k): the recorded rows ts,entry,response of p and how many are at or before
    ts (0: before the first; their count: at or after the last)."""
    q = p[1:1 + 3 * p[0]]
    return q, records_at_or_before_nb(q, 3, ts)


@njit(cache=True, _nrt=False)
def recorded_entry_nb(kind, ts, p, st):
    lat = recorded_in_turn_nb(kind, ts, p, st)
    if lat >= 0:
        return lat
    q, k = recorded_around_nb(p, ts)
    if k == 0 or 3 * k >= q.shape[0]:  # the nearest record's
        return q[1] if k == 0 else q[q.shape[0] - 2]
    t0 = q[3 * k - 3]
    t1 = q[3 * k]
    e0 = q[3 * k - 2]
    e1 = q[3 * k + 1]
    return e0 + muldiv_floor_nb(e1 - e0, ts - t0, t1 - t0)  # t0 <= ts < t1


@njit(cache=True, _nrt=False)
def recorded_response_nb(kind, ts, p, st):
    q, k = recorded_around_nb(p, ts)
    if k == 0 or 3 * k >= q.shape[0]:  # the nearest record's
        return q[2] if k == 0 else q[q.shape[0] - 1]
    return (q[3 * k - 1] + q[3 * k + 2]) // 2


@njit(cache=True, _nrt=False)
def recorded_min_entry_nb(p):
    return column_min_nb(p[1:1 + 3 * p[0]], 3, 1)


constant = LatencyModel(entry=constant_entry_nb, response=constant_response_nb, min_entry=constant_min_entry_nb)
empirical = LatencyModel(entry=empirical_entry_nb, response=empirical_response_nb,
                         min_entry=empirical_min_entry_nb, state=1)
recorded = LatencyModel(entry=recorded_entry_nb, response=recorded_response_nb, min_entry=recorded_min_entry_nb,
                        state=4)

# the shipped names of `[venues.X.latency] model`, in kernel-index order
SHIPPED = {"constant": "venues.sim.latency_nb:constant", "empirical": "venues.sim.latency_nb:empirical",
           "recorded": "venues.sim.latency_nb:recorded"}
