"""Seeded synthetic L2 market: realistic enough to exercise queues, spreads and regimes.

The model, per instrument (all in one numba kernel, `_generate_nb`):

- a latent fair price follows a random walk whose volatility switches between three
  regimes (calm / normal / stressed, a Markov chain in continuous time);
- order flow arrives as a self-exciting (Hawkes) point process: every event raises the
  intensity, market orders raise it more, and the excitation decays exponentially, so
  flow clusters; the stressed regime also has a higher base rate;
- each event is a limit add, a cancel or a market order. Flow leans towards the fair
  price: when fair > mid, market buys, bid improvements and ask cancels are likelier;
- market orders walk the book: a print per level (sometimes split in two prints) and a
  level update per level touched; a level that is emptied moves the best price, so
  price moves come from depletion, not from a price process imposed on the book;
- the spread mean-reverts: the wider it is, the likelier the next add lands inside it;
- about 20 levels a side are kept: depleted depth is refilled behind the last level and
  levels pushed beyond ~25 are dropped (a delta with qty 0, as a depth-limited feed does).

Output rows use the one event schema: a snapshot (SNAPSHOT_BEGIN, the levels,
SNAPSHOT_END) at the start, then BOOK_DELTA and TRADE rows. TRADE rows carry a sequential
trade id in `order_id`. `local_ts = exch_ts + feed latency` (a few hundred microseconds
with lognormal jitter), forced non-decreasing. Everything is driven by a xoshiro256**
generator seeded from (seed, instrument id), so the stream of an instrument is the same
whatever the chunk size and whichever other instruments run beside it.

Multi-venue (a documented change of that rule, docs/execution.md "Multi-venue data"): the
same asset (same base and quote) on two or more venues of one run is generated from one
latent price, a regime-switching walk on a 10 ms grid seeded from (seed, symbol). Each venue
keeps its own order flow (its own seed), and differs by a `VenueProfile`: depth, feed
latency and lead-lag (its fair price is the latent's at t - lag). Instruments of different
assets, and an asset that runs on one venue only, are still generated independently and
byte for byte as before.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from numba import njit

from engine.errors import ConfigError
from engine.types import EVENT_DTYPE, EventKind, Instrument

DEFAULT_START_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
DEFAULT_DURATION_NS = 3_600_000_000_000  # 1 h
START_PRICES = {"BTC": Decimal("60000"), "ETH": Decimal("3000")}
OTHER_START_PRICE = Decimal("100")

# kernel constants
MAXL = 64  # level capacity per side
TARGET_LEVELS = 20
DROP_LEVELS = 25
MSG_MAX = 160  # most rows one kernel step can emit (a market order walking the book)

# scalar state slots: float64 `state` and int64 `istate` (ns clocks need all 64 bits)
S_FAIR, S_REGIME, S_EXCITE, S_STARTED = range(4)
N_STATE = 4
I_T, I_LAST_LOCAL, I_TRADE_ID = range(3)
N_ISTATE = 3

# params slots (float64 array)
(
    P_RATE,
    P_GAP,
    P_UNIT,
    P_SPREAD,
    P_SIG0,
    P_SIG1,
    P_SIG2,
    P_LAT_NS,
    P_JIT_NS,
    P_MKT,
    P_CXL,
    P_LINKED,
    P_LAG_NS,
    P_INV_TICK,
) = range(14)
N_PARAMS = 14

# latent (shared) price of linked venues: float64 lstate [fair price, regime], int64 listate [t]
L_FAIR, L_REGIME = range(2)
LATENT_STEP_NS = 10_000_000  # the latent walk advances on a 10 ms grid

_BOOK = EventKind.BOOK_DELTA.value
_TRADE = EventKind.TRADE.value
_SNAP_B = EventKind.SNAPSHOT_BEGIN.value
_SNAP_E = EventKind.SNAPSHOT_END.value


# -- xoshiro256** -------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True)
def _next_u64(s):
    result = _rotl(s[1] * np.uint64(5), 7) * np.uint64(9)
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


@njit(cache=True)
def _uniform(s):
    """(0, 1): never exactly 0, so log() is safe."""
    return ((_next_u64(s) >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def _normal(s):
    u1 = _uniform(s)
    u2 = _uniform(s)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@njit(cache=True)
def _geometric(s, mean):
    """1, 2, 3, ... with the given mean (>= 1)."""
    if mean <= 1.0:
        return 1
    p = 1.0 / mean
    return 1 + int(math.log(_uniform(s)) / math.log(1.0 - p))


@njit(cache=True)
def _lognormal_qty(s, unit, sigma):
    v = unit * math.exp(sigma * _normal(s) - 0.5 * sigma * sigma)
    q = int(v + 0.5)
    return q if q > 0 else 1


@njit(cache=True)
def _switch_regime(rng, regime, dt):
    """Regime switch over dt seconds: up or down one step, or rarely calm -> stressed.
    Exit rates per second: calm 1/900, normal 1/600, stressed 1/120."""
    switch = (1.0 / 900.0, 1.0 / 600.0, 1.0 / 120.0)
    if _uniform(rng) < switch[regime] * dt:
        u = _uniform(rng)
        if regime == 0:
            return 2 if u < 0.1 else 1
        if regime == 1:
            return 0 if u < 0.6 else 2
        return 1
    return regime


@njit(cache=True)
def _latent_to(lrng, lstate, listate, lparams, target):
    """Advance the shared latent price to `target` (ns) on its grid; the same seed words give
    the same path in every venue's generator, so venues share one price without sharing state."""
    step = np.int64(lparams[0])
    dt = step * 1e-9
    while listate[0] + step <= target:
        listate[0] += step
        regime = _switch_regime(lrng, int(lstate[L_REGIME]), dt)
        lstate[L_REGIME] = regime
        lstate[L_FAIR] += lparams[1 + regime] * math.sqrt(dt) * _normal(lrng)
    return lstate[L_FAIR]


# -- book helpers (best level first) ---------------------------------------------------------
@njit(cache=True)
def _insert(px, q, n, idx, price, qty):
    for j in range(n, idx, -1):
        px[j] = px[j - 1]
        q[j] = q[j - 1]
    px[idx] = price
    q[idx] = qty
    return n + 1


@njit(cache=True)
def _remove(px, q, n, idx):
    for j in range(idx, n - 1):
        px[j] = px[j + 1]
        q[j] = q[j + 1]
    return n - 1


@njit(cache=True)
def _emit(o_ex, o_kind, o_side, o_px, o_qty, o_oid, k, ts, kind, side, price, qty, oid):
    o_ex[k] = ts
    o_kind[k] = kind
    o_side[k] = side
    o_px[k] = price
    o_qty[k] = qty
    o_oid[k] = oid
    return k + 1


@njit(cache=True)
def _generate_nb(
    rng,
    state,
    istate,
    params,
    bpx,
    bq,
    apx,
    aq,
    nlev,
    end_ns,
    o_ex,
    o_loc,
    o_kind,
    o_side,
    o_px,
    o_qty,
    o_oid,
    lrng,
    lstate,
    listate,
    lparams,
):
    """Advance one instrument until end_ns or until the output is nearly full.

    Linked (params[P_LINKED] = 1): the fair price and the volatility regime are the shared
    latent's at t - lag (lead-lag), converted to this venue's ticks; otherwise the instrument
    runs its own walk (the original model, unchanged draw for draw).

    Returns the number of rows written. All state lives in the arrays passed in.
    """
    cap = o_ex.shape[0]
    k = 0
    t = istate[I_T]
    fair = state[S_FAIR]
    regime = int(state[S_REGIME])
    excite = state[S_EXCITE]
    last_local = istate[I_LAST_LOCAL]
    trade_id = istate[I_TRADE_ID]
    nb = nlev[0]
    na = nlev[1]
    rate = params[P_RATE]
    gap = params[P_GAP]
    unit = params[P_UNIT]
    tspread = params[P_SPREAD]
    lat = params[P_LAT_NS]
    jit = params[P_JIT_NS]
    p_mkt = params[P_MKT]
    p_cxl = params[P_CXL]
    linked = params[P_LINKED] != 0.0
    lag = np.int64(params[P_LAG_NS])
    inv_tick = params[P_INV_TICK]
    beta = 8.0  # excitation decay per second
    rate_mult = (0.6, 1.0, 2.2)

    if state[S_STARTED] == 0.0:
        # opening snapshot
        mid = int(fair)
        half = max(1, int(tspread) // 2)
        nb = 0
        na = 0
        p = mid - half
        for _ in range(TARGET_LEVELS):
            bpx[nb] = p
            bq[nb] = _lognormal_qty(rng, unit * 3.0, 0.8)
            nb += 1
            p -= _geometric(rng, gap)
        p = mid - half + max(1, int(tspread))
        for _ in range(TARGET_LEVELS):
            apx[na] = p
            aq[na] = _lognormal_qty(rng, unit * 3.0, 0.8)
            na += 1
            p += _geometric(rng, gap)
        k = _emit(o_ex, o_kind, o_side, o_px, o_qty, o_oid, k, t, _SNAP_B, 0, 0, 0, 0)
        for i in range(nb):
            k = _emit(o_ex, o_kind, o_side, o_px, o_qty, o_oid, k, t, _BOOK, 1, bpx[i], bq[i], 0)
        for i in range(na):
            k = _emit(o_ex, o_kind, o_side, o_px, o_qty, o_oid, k, t, _BOOK, -1, apx[i], aq[i], 0)
        k = _emit(o_ex, o_kind, o_side, o_px, o_qty, o_oid, k, t, _SNAP_E, 0, 0, 0, 0)
        for i in range(k):
            o_loc[i] = t
        last_local = t
        state[S_STARTED] = 1.0

    while k + MSG_MAX < cap:
        base = rate * rate_mult[regime]
        lam = base + excite
        dt = -math.log(_uniform(rng)) / lam
        dt_ns = np.int64(dt * 1e9) + 1
        if t + dt_ns >= end_ns:
            # no event before the end: park the clock at the end
            excite *= math.exp(-beta * (end_ns - t) * 1e-9)
            t = end_ns
            break
        t += dt_ns
        dt = dt_ns * 1e-9
        excite *= math.exp(-beta * dt)
        if linked:
            fair = _latent_to(lrng, lstate, listate, lparams, t - lag) * inv_tick
            regime = int(lstate[L_REGIME])
        else:
            regime = _switch_regime(rng, regime, dt)
            sig = params[P_SIG0 + regime]
            fair += sig * math.sqrt(dt) * _normal(rng)
        # Ogata thinning: accept the candidate with prob lambda(t)/lambda_upper
        if _uniform(rng) * lam > base + excite:
            continue
        msg_start = k
        best_bid = bpx[0]
        best_ask = apx[0]
        mid = 0.5 * (best_bid + best_ask)
        spread = best_ask - best_bid
        lean = (fair - mid) / (2.0 * gap + 1.0)
        p_up = 1.0 / (1.0 + math.exp(-lean))  # probability the flow pushes the price up
        u = _uniform(rng)
        pm = p_mkt * (1.0 + 0.5 * regime)
        if u < pm:
            # market order walks the book
            excite += beta * 1.5  # branching ratio 1.5 for market orders
            buy = _uniform(rng) < p_up
            want = _lognormal_qty(rng, unit * 1.2, 1.3)
            if buy:
                top = aq[0]
                if _uniform(rng) < 0.25 + 0.5 * abs(p_up - 0.5):
                    want = max(want, top + _lognormal_qty(rng, unit * 0.5, 1.0))
                i = 0
                while want > 0 and na > 2 and i < 6:
                    take = min(want, aq[0])
                    if take > 1 and _uniform(rng) < 0.3:
                        first = 1 + int(_uniform(rng) * (take - 1))
                        trade_id += 1
                        k = _emit(
                            o_ex,
                            o_kind,
                            o_side,
                            o_px,
                            o_qty,
                            o_oid,
                            k,
                            t,
                            _TRADE,
                            1,
                            apx[0],
                            first,
                            trade_id,
                        )
                        trade_id += 1
                        k = _emit(
                            o_ex,
                            o_kind,
                            o_side,
                            o_px,
                            o_qty,
                            o_oid,
                            k,
                            t,
                            _TRADE,
                            1,
                            apx[0],
                            take - first,
                            trade_id,
                        )
                    else:
                        trade_id += 1
                        k = _emit(
                            o_ex,
                            o_kind,
                            o_side,
                            o_px,
                            o_qty,
                            o_oid,
                            k,
                            t,
                            _TRADE,
                            1,
                            apx[0],
                            take,
                            trade_id,
                        )
                    aq[0] -= take
                    want -= take
                    k = _emit(
                        o_ex, o_kind, o_side, o_px, o_qty, o_oid, k, t, _BOOK, -1, apx[0], aq[0], 0
                    )
                    if aq[0] == 0:
                        na = _remove(apx, aq, na, 0)
                    i += 1
            else:
                top = bq[0]
                if _uniform(rng) < 0.25 + 0.5 * abs(p_up - 0.5):
                    want = max(want, top + _lognormal_qty(rng, unit * 0.5, 1.0))
                i = 0
                while want > 0 and nb > 2 and i < 6:
                    take = min(want, bq[0])
                    if take > 1 and _uniform(rng) < 0.3:
                        first = 1 + int(_uniform(rng) * (take - 1))
                        trade_id += 1
                        k = _emit(
                            o_ex,
                            o_kind,
                            o_side,
                            o_px,
                            o_qty,
                            o_oid,
                            k,
                            t,
                            _TRADE,
                            -1,
                            bpx[0],
                            first,
                            trade_id,
                        )
                        trade_id += 1
                        k = _emit(
                            o_ex,
                            o_kind,
                            o_side,
                            o_px,
                            o_qty,
                            o_oid,
                            k,
                            t,
                            _TRADE,
                            -1,
                            bpx[0],
                            take - first,
                            trade_id,
                        )
                    else:
                        trade_id += 1
                        k = _emit(
                            o_ex,
                            o_kind,
                            o_side,
                            o_px,
                            o_qty,
                            o_oid,
                            k,
                            t,
                            _TRADE,
                            -1,
                            bpx[0],
                            take,
                            trade_id,
                        )
                    bq[0] -= take
                    want -= take
                    k = _emit(
                        o_ex, o_kind, o_side, o_px, o_qty, o_oid, k, t, _BOOK, 1, bpx[0], bq[0], 0
                    )
                    if bq[0] == 0:
                        nb = _remove(bpx, bq, nb, 0)
                    i += 1
        elif u < pm + p_cxl:
            # cancel: on the side the fair price moves away from, mostly near the top
            excite += beta * 0.5
            bid_side = _uniform(rng) < p_up  # price going up -> asks... cancel bids less
            bid_side = not bid_side
            lvl = min(_geometric(rng, 3.0) - 1, TARGET_LEVELS - 1)
            if bid_side and nb > 3:
                lvl = min(lvl, nb - 1)
                if _uniform(rng) < 0.35:
                    cut = bq[lvl]
                else:
                    cut = 1 + int(_uniform(rng) * bq[lvl])
                bq[lvl] -= min(cut, bq[lvl])
                k = _emit(
                    o_ex, o_kind, o_side, o_px, o_qty, o_oid, k, t, _BOOK, 1, bpx[lvl], bq[lvl], 0
                )
                if bq[lvl] == 0:
                    nb = _remove(bpx, bq, nb, lvl)
            elif (not bid_side) and na > 3:
                lvl = min(lvl, na - 1)
                if _uniform(rng) < 0.35:
                    cut = aq[lvl]
                else:
                    cut = 1 + int(_uniform(rng) * aq[lvl])
                aq[lvl] -= min(cut, aq[lvl])
                k = _emit(
                    o_ex, o_kind, o_side, o_px, o_qty, o_oid, k, t, _BOOK, -1, apx[lvl], aq[lvl], 0
                )
                if aq[lvl] == 0:
                    na = _remove(apx, aq, na, lvl)
        else:
            # limit add: inside the spread (likelier the wider it is) or at/behind a level
            excite += beta * 0.5  # mean branching ratio ~0.55 < 1: stationary
            bid_side = _uniform(rng) < p_up
            qty = _lognormal_qty(rng, unit, 1.0)
            p_inside = min(0.9, 0.03 + 0.35 * (spread - 1.0) / tspread) if spread > 1 else 0.0
            if _uniform(rng) < p_inside:
                off = 1 + int(_uniform(rng) * min(spread - 1.0, 2.0 * gap))
                if bid_side:
                    price = best_bid + off
                    nb = _insert(bpx, bq, nb, 0, price, qty)
                    k = _emit(
                        o_ex, o_kind, o_side, o_px, o_qty, o_oid, k, t, _BOOK, 1, price, qty, 0
                    )
                else:
                    price = best_ask - off
                    na = _insert(apx, aq, na, 0, price, qty)
                    k = _emit(
                        o_ex, o_kind, o_side, o_px, o_qty, o_oid, k, t, _BOOK, -1, price, qty, 0
                    )
            else:
                lvl = min(_geometric(rng, 4.0) - 1, TARGET_LEVELS - 1)
                if bid_side:
                    lvl = min(lvl, nb - 1)
                    if _uniform(rng) < 0.25 and lvl + 1 < nb and bpx[lvl] - bpx[lvl + 1] > 1:
                        price = bpx[lvl] - 1 - int(_uniform(rng) * (bpx[lvl] - bpx[lvl + 1] - 1))
                        nb = _insert(bpx, bq, nb, lvl + 1, price, qty)
                        k = _emit(
                            o_ex, o_kind, o_side, o_px, o_qty, o_oid, k, t, _BOOK, 1, price, qty, 0
                        )
                    else:
                        bq[lvl] += qty
                        k = _emit(
                            o_ex,
                            o_kind,
                            o_side,
                            o_px,
                            o_qty,
                            o_oid,
                            k,
                            t,
                            _BOOK,
                            1,
                            bpx[lvl],
                            bq[lvl],
                            0,
                        )
                else:
                    lvl = min(lvl, na - 1)
                    if _uniform(rng) < 0.25 and lvl + 1 < na and apx[lvl + 1] - apx[lvl] > 1:
                        price = apx[lvl] + 1 + int(_uniform(rng) * (apx[lvl + 1] - apx[lvl] - 1))
                        na = _insert(apx, aq, na, lvl + 1, price, qty)
                        k = _emit(
                            o_ex, o_kind, o_side, o_px, o_qty, o_oid, k, t, _BOOK, -1, price, qty, 0
                        )
                    else:
                        aq[lvl] += qty
                        k = _emit(
                            o_ex,
                            o_kind,
                            o_side,
                            o_px,
                            o_qty,
                            o_oid,
                            k,
                            t,
                            _BOOK,
                            -1,
                            apx[lvl],
                            aq[lvl],
                            0,
                        )
        # keep ~20 levels a side: refill behind the last level, drop levels pushed too deep
        while nb < TARGET_LEVELS:
            price = bpx[nb - 1] - _geometric(rng, gap)
            q = _lognormal_qty(rng, unit * 3.0, 0.8)
            nb = _insert(bpx, bq, nb, nb, price, q)
            k = _emit(o_ex, o_kind, o_side, o_px, o_qty, o_oid, k, t, _BOOK, 1, price, q, 0)
        while na < TARGET_LEVELS:
            price = apx[na - 1] + _geometric(rng, gap)
            q = _lognormal_qty(rng, unit * 3.0, 0.8)
            na = _insert(apx, aq, na, na, price, q)
            k = _emit(o_ex, o_kind, o_side, o_px, o_qty, o_oid, k, t, _BOOK, -1, price, q, 0)
        while nb > DROP_LEVELS:
            nb -= 1
            k = _emit(o_ex, o_kind, o_side, o_px, o_qty, o_oid, k, t, _BOOK, 1, bpx[nb], 0, 0)
        while na > DROP_LEVELS:
            na -= 1
            k = _emit(o_ex, o_kind, o_side, o_px, o_qty, o_oid, k, t, _BOOK, -1, apx[na], 0, 0)
        # feed latency: one arrival time per message, never before the previous one
        if k > msg_start:
            arrive = t + np.int64(lat + jit * math.exp(0.6 * _normal(rng)))
            if arrive < last_local:
                arrive = last_local
            last_local = arrive
            for i in range(msg_start, k):
                o_loc[i] = arrive
    istate[I_T] = t
    state[S_FAIR] = fair
    state[S_REGIME] = regime
    state[S_EXCITE] = excite
    istate[I_LAST_LOCAL] = last_local
    istate[I_TRADE_ID] = trade_id
    nlev[0] = nb
    nlev[1] = na
    return k


def _seed_words(seed: int, inst_id: str) -> np.ndarray:
    digest = hashlib.blake2b(
        f"tickparity-synthetic:{int(seed)}:{inst_id}".encode(), digest_size=32
    ).digest()
    words = np.frombuffer(digest, dtype="<u8").copy()
    if not words.any():
        words[0] = 1
    return words


def start_price(inst: Instrument) -> Decimal:
    return START_PRICES.get(inst.base.upper(), OTHER_START_PRICE)


@dataclass(frozen=True)
class VenueProfile:
    """How one venue's copy of a linked instrument differs (docs/execution.md, "Multi-venue data").

    `depth`: multiplier of the typical order size (book depth); `latency_us`/`jitter_us`: feed
    latency (exch_ts -> local_ts); `lag_ms`: how far this venue's fair price trails the shared
    latent price (0 = the price leader). Fees are not data: set them per venue in the run
    config's [venues.X] table (the example configs use each venue's published spot tier).
    """

    depth: float = 1.0
    latency_us: float = 250.0
    jitter_us: float = 60.0
    lag_ms: float = 0.0


#: built-in profiles of linked venues; a venue not listed gets DEFAULT_PROFILE
VENUE_PROFILES = {
    "binance": VenueProfile(depth=1.0, latency_us=250.0, lag_ms=0.0),
    "okx": VenueProfile(depth=0.7, latency_us=400.0, jitter_us=80.0, lag_ms=20.0),
    "bybit": VenueProfile(depth=0.6, latency_us=350.0, jitter_us=80.0, lag_ms=35.0),
    "coinbase": VenueProfile(depth=0.5, latency_us=600.0, jitter_us=120.0, lag_ms=50.0),
    "kraken": VenueProfile(depth=0.4, latency_us=700.0, jitter_us=150.0, lag_ms=80.0),
}
DEFAULT_PROFILE = VenueProfile(depth=0.5, latency_us=500.0, jitter_us=100.0, lag_ms=50.0)


def linked_groups(instruments: Sequence[Instrument]) -> dict[str, list[int]]:
    """Positions of instruments that share one latent price: same base and quote (ccxt symbol)
    on two or more venues. USD, USDT and USDC are different quotes, so never linked."""
    groups: dict[str, list[int]] = {}
    for index, inst in enumerate(instruments):
        groups.setdefault(f"{inst.base}/{inst.quote}", []).append(index)
    return {symbol: members for symbol, members in groups.items() if len(members) > 1}


def make_generators(instruments: Sequence[Instrument], seed: int, start_ns: int, end_ns: int, *,
                    events_per_second: float = 1000.0,
                    profiles: dict[str, VenueProfile] | None = None) -> list[InstrumentGenerator]:
    """One generator per instrument; the same asset on several venues is linked (one latent
    price, venue profiles); an instrument alone on its asset is generated exactly as before."""
    table = {**VENUE_PROFILES, **(profiles or {})}
    linked = {i: symbol for symbol, members in linked_groups(instruments).items() for i in members}
    out = []
    for index, inst in enumerate(instruments):
        symbol = linked.get(index)
        if symbol is None:
            out.append(InstrumentGenerator(inst, seed, start_ns, end_ns, events_per_second=events_per_second))
        else:
            profile = table.get(inst.venue, DEFAULT_PROFILE)
            out.append(InstrumentGenerator(inst, seed, start_ns, end_ns, events_per_second=events_per_second,
                                           latency_us=profile.latency_us, jitter_us=profile.jitter_us,
                                           link=(symbol, profile)))
    return out


class InstrumentGenerator:
    """The synthetic stream of one instrument, produced in bounded chunks."""

    def __init__(
        self,
        inst: Instrument,
        seed: int,
        start_ns: int,
        end_ns: int,
        *,
        events_per_second: float = 1000.0,
        price: Decimal | None = None,
        latency_us: float = 250.0,
        jitter_us: float = 60.0,
        link: tuple[str, VenueProfile] | None = None,
    ) -> None:
        if end_ns <= start_ns:
            raise ConfigError(f"synthetic data: end {end_ns} must be after start {start_ns}")
        self.inst = inst
        self.end_ns = int(end_ns)
        p0 = inst.round_price(price if price is not None else start_price(inst))
        ticks = inst.price_to_ticks(p0)
        if ticks <= 10:
            raise ConfigError(f"{inst.id}: start price {p0} is too few ticks for a synthetic book")
        gap = max(1.0, ticks * 2e-6)
        unit = max(1.0, float(Decimal(1000) / p0 / inst.lot_size))  # ~1000 quote units
        if link is not None:
            unit = max(1.0, unit * link[1].depth)
        per_sqrt_s = ticks / math.sqrt(365.25 * 86400)
        self.params = np.array(
            [
                events_per_second / 2.9,  # base rate: excitation x2.25, ~1.3 rows per message
                gap,
                unit,
                max(1.0, gap),  # target spread
                per_sqrt_s * 0.25,
                per_sqrt_s * 0.5,
                per_sqrt_s * 1.1,
                latency_us * 1e3,
                jitter_us * 1e3,
                0.045,  # market-order share of messages (~12% of rows are trades)
                0.40,  # cancel share
                0.0 if link is None else 1.0,
                0.0 if link is None else link[1].lag_ms * 1e6,
                float(1 / inst.tick_size),
            ],
            dtype=np.float64,
        )
        self.rng = _seed_words(seed, inst.id)
        self.state = np.zeros(N_STATE, dtype=np.float64)
        self.istate = np.zeros(N_ISTATE, dtype=np.int64)
        self.istate[I_T] = int(start_ns)
        self.state[S_FAIR] = float(ticks)
        self.state[S_REGIME] = 1.0
        self.books = np.zeros((4, MAXL), dtype=np.int64)
        self.nlev = np.zeros(2, dtype=np.int64)
        # the shared latent of a linked instrument: seeded from (seed, symbol) only, so every
        # venue's generator walks the same path; price units, so tick sizes may differ
        symbol = link[0] if link is not None else ""
        self.lrng = _seed_words(seed, f"latent:{symbol}")
        self.lstate = np.array([float(p0), 1.0], dtype=np.float64)
        self.listate = np.array([int(start_ns)], dtype=np.int64)
        per_sqrt_s_price = float(p0) / math.sqrt(365.25 * 86400)
        self.lparams = np.array([LATENT_STEP_NS, per_sqrt_s_price * 0.25, per_sqrt_s_price * 0.5,
                                 per_sqrt_s_price * 1.1], dtype=np.float64)
        self.contract = ContractRows(inst, seed, int(start_ns)) if inst.contract else None

    @property
    def done(self) -> bool:
        return int(self.istate[I_T]) >= self.end_ns

    def chunks(self, chunk_rows: int = 1 << 16) -> Iterator[np.ndarray]:
        cap = max(int(chunk_rows), 4 * MSG_MAX)
        cols = {
            "exch_ts": np.empty(cap, np.int64),
            "local_ts": np.empty(cap, np.int64),
            "kind": np.empty(cap, np.uint8),
            "side": np.empty(cap, np.int8),
            "price": np.empty(cap, np.int64),
            "qty": np.empty(cap, np.int64),
            "order_id": np.empty(cap, np.uint64),
        }
        while not self.done:
            n = _generate_nb(
                self.rng,
                self.state,
                self.istate,
                self.params,
                self.books[0],
                self.books[1],
                self.books[2],
                self.books[3],
                self.nlev,
                self.end_ns,
                cols["exch_ts"],
                cols["local_ts"],
                cols["kind"],
                cols["side"],
                cols["price"],
                cols["qty"],
                cols["order_id"],
                self.lrng,
                self.lstate,
                self.listate,
                self.lparams,
            )
            if n == 0:
                continue
            out = np.empty(n, dtype=EVENT_DTYPE)
            for name, col in cols.items():
                out[name] = col[:n]
            out["instrument"] = 0
            yield out if self.contract is None else self.contract.add(out)


def generate(
    instruments: Sequence[Instrument],
    seed: int,
    start_ns: int = DEFAULT_START_NS,
    duration_ns: int = DEFAULT_DURATION_NS,
    *,
    chunk_rows: int = 1_000_000,
    events_per_second: float = 1000.0,
) -> Iterator[np.ndarray]:
    """Chunks of synthetic events for `instruments` (index = position), merged by
    (local_ts, instrument position, source order)."""
    from replay.source import _until, merge_streams

    gens = make_generators(instruments, seed, start_ns, start_ns + duration_ns,
                           events_per_second=events_per_second)
    per = max(4 * MSG_MAX, min(int(chunk_rows), 1 << 16))
    end_ns = start_ns + duration_ns
    yield from merge_streams([_until(g.chunks(per), end_ns) for g in gens], chunk_rows)


def write_store(
    spec: str,
    instruments: Sequence[Instrument],
    seed: int,
    start_ns: int = DEFAULT_START_NS,
    duration_ns: int = DEFAULT_DURATION_NS,
    *,
    events_per_second: float = 1000.0,
    on_chunk=None,
) -> int:
    """Generate into a store (one all-or-nothing import); returns the rows written.

    Refuses a store that already holds rows of one of the instruments. With the default
    rate the rows equal what `synthetic:SEED` streams for the same start and duration.
    """
    from engine.errors import DataError
    from replay.schema import StoredInstrument
    from replay.stores import open_store

    insts = list(instruments)
    if len({i.id for i in insts}) != len(insts):
        raise ConfigError("synthetic data: the same instrument is given twice")
    rows = 0
    with open_store(spec, create=True) as store:
        busy = [i.id for i in insts if store.count(i.id, None, None)]
        if busy:
            raise DataError(
                f"{spec}: already holds data for {', '.join(busy)}; generate into a new store"
            )
        specs = {i.id: StoredInstrument.of(i) for i in insts}
        # expected rows: ~1.3 rows per event at the rate (sizes a full-disk message only)
        expected = int(duration_ns / 1e9 * events_per_second * 1.3 * len(insts))
        with store.begin_import(specs, expected_rows=expected) as tx:
            for chunk in generate(
                insts,
                seed,
                start_ns,
                duration_ns,
                chunk_rows=1 << 18,
                events_per_second=events_per_second,
            ):
                for index, inst in enumerate(insts):
                    part = chunk[chunk["instrument"] == index] if len(insts) > 1 else chunk
                    if len(part):
                        part = part.copy()
                        part["instrument"] = 0
                        tx.append(inst.id, part)
                rows += len(chunk)
                if on_chunk is not None:
                    on_chunk(len(chunk))
    return rows


#: the synthetic basis (mark vs last trade) walks around this many bps, mean-reverting
BASIS_MEAN_BPS = 2.0
BASIS_SIGMA_BPS = 0.5  # per second
BASIS_REVERSION = 0.01  # per second
#: Binance's interest-rate component of funding (0.03 % a day = 0.01 % per 8 h) and the
#: clamp of (interest - premium), https://www.binance.com/en/support/faq/360033525031
INTEREST_PER_8H = Decimal("0.0001")
FUNDING_CLAMP = Decimal("0.0005")


class ContractRows:
    """MARK_PRICE and FUNDING_RATE rows for a synthetic perpetual or future.

    Each whole second of venue time gets a mark: the last trade price times (1 + basis),
    the basis a seeded mean-reverting walk (BASIS_* above; seeded from (seed, "basis:" +
    instrument id), so the stream stays reproducible and independent of chunking). A
    perpetual settles funding at every multiple of its funding interval since the epoch
    (00:00, 08:00, 16:00 UTC for 8 h), at Binance's rule: the mean premium over the
    interval (here the basis) + clamp(interest - premium, +-0.05 %), rounded to 1e-8.
    """

    def __init__(self, inst: Instrument, seed: int, start_ns: int) -> None:
        self.inst = inst
        self.rng = np.random.default_rng(np.frombuffer(_seed_words(seed, f"basis:{inst.id}").tobytes(), dtype=np.uint32))
        self.next_mark = (start_ns // 1_000_000_000 + 1) * 1_000_000_000
        self.interval = inst.funding_interval_ns
        self.next_funding = None if self.interval is None else (start_ns // self.interval + 1) * self.interval
        self.basis = BASIS_MEAN_BPS
        self.premium_sum = 0.0
        self.premium_n = 0
        self.last_trade: int | None = None
        self.interval_scale = Decimal(self.interval or 1) / Decimal(8 * 3_600_000_000_000)

    def add(self, chunk: np.ndarray) -> np.ndarray:
        if not len(chunk):
            return chunk
        end = int(chunk["exch_ts"][-1])
        trades = np.flatnonzero(chunk["kind"] == EventKind.TRADE.value)
        extra: list[tuple[int, int, int, int, int]] = []  # exch, kind, side, price, qty
        k = 0
        while self.next_mark <= end:
            t = self.next_mark
            while k < len(trades) and int(chunk["exch_ts"][trades[k]]) <= t:
                self.last_trade = int(chunk["price"][trades[k]])
                k += 1
            self.basis += BASIS_REVERSION * (BASIS_MEAN_BPS - self.basis) + BASIS_SIGMA_BPS * float(self.rng.standard_normal())
            if self.last_trade is not None:
                mark = int(round(self.last_trade * (1 + self.basis / 10000)))
                extra.append((t, EventKind.MARK_PRICE.value, 0, mark, 0))
                self.premium_sum += self.basis
                self.premium_n += 1
                if self.next_funding is not None and t >= self.next_funding:
                    premium = Decimal(repr(self.premium_sum / self.premium_n)) / 10000
                    interest = INTEREST_PER_8H * self.interval_scale
                    rate = premium + min(max(interest - premium, -FUNDING_CLAMP), FUNDING_CLAMP)
                    units = int((abs(rate) / Decimal("1e-8")).to_integral_value()) * 10_000  # 1e-8 in 1e-12 units
                    extra.append((self.next_funding, EventKind.FUNDING_RATE.value, 1 if rate > 0 else -1 if rate < 0 else 0,
                                  units, mark))
                    self.next_funding += self.interval
                    self.premium_sum, self.premium_n = 0.0, 0
            self.next_mark += 1_000_000_000
        while k < len(trades):
            self.last_trade = int(chunk["price"][trades[k]])
            k += 1
        if not extra:
            return chunk
        rows = np.zeros(len(extra), dtype=EVENT_DTYPE)
        for j, (exch, kind, side, price, qty) in enumerate(extra):
            rows[j]["exch_ts"], rows[j]["kind"], rows[j]["side"] = exch, kind, side
            rows[j]["price"], rows[j]["qty"] = price, qty
        # seen when the venue's feed would carry it: at the local time of the next row
        at = np.searchsorted(chunk["exch_ts"], rows["exch_ts"], side="right")
        local = chunk["local_ts"]
        rows["local_ts"] = np.where(at < len(chunk), local[np.minimum(at, len(chunk) - 1)], local[-1])
        rows["local_ts"] = np.maximum(rows["local_ts"], rows["exch_ts"])
        merged = np.concatenate([chunk, rows])
        order = np.argsort(merged["local_ts"], kind="stable")
        return merged[order]
