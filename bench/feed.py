"""The benchmark feed: one seeded L2 stream of exactly N events, for both engines.

Why a separate generator (not `replay.synthetic`): the race needs a feed with a fixed
row count, a known shape (20 contiguous levels a side, ~12% trades) and a book that is
consistent at every row, built in vectorised numpy so that 10 million rows take a few
seconds and ~1 GB at most. `replay.synthetic` is the realistic model for demos and
scenarios; this one is the controlled workload for timing.

The book: a 1-tick spread, 20 levels a side on consecutive ticks. Each venue message is
one of
  - quote (most messages): one level 0..19 of one side set to a new size (BOOK_DELTA);
  - trade at the touch: 1 TRADE (aggressor = the side that took) + the level's new size;
  - price move up/down one tick, either by a sweep (1-2 TRADEs at the touch that empties)
    or by a cancel, followed by 4 BOOK_DELTAs: the emptied touch -> 0, the new level at
    the back of that side, the new best on the other side, and that side's 21st level -> 0.
A message's rows share `exch_ts`; `local_ts = exch_ts + feed latency` (constant plus
jitter, kept non-decreasing). The feed starts with both sides' 20 levels as BOOK_DELTA rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from engine.types import EVENT_DTYPE, EventKind

LEVELS = 20
START_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z

# message kinds
_QUOTE, _TOUCH_TRADE, _UP_SWEEP, _UP_CANCEL, _DOWN_SWEEP, _DOWN_CANCEL = range(6)


@dataclass(frozen=True)
class FeedSpec:
    """What the generated feed looks like (see module docstring)."""

    events: int = 10_000_000
    seed: int = 7
    events_per_second: float = 2_000.0  # venue rows per second -> duration = events / rate
    start_price_ticks: int = 6_000_000  # 60000.00 at a 0.01 tick
    p_touch_trade: float = 0.13  # share of messages that are a trade at the touch
    p_move: float = 0.012  # share of messages that move the touch one tick (up or down)
    level_lots_median: float = 30_000.0  # 0.3 BTC at a 0.00001 lot
    trade_lots_median: float = 2_000.0  # 0.02 BTC
    feed_latency_ns: int = 200_000
    feed_jitter_ns: int = 50_000


def _lognormal_lots(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    q = np.rint(median * np.exp(sigma * rng.standard_normal(n)))
    return np.maximum(q, 1).astype(np.int64)


def generate_feed(spec: FeedSpec = FeedSpec()) -> np.ndarray:
    """Exactly `spec.events` rows of EVENT_DTYPE, sorted by exch_ts and by local_ts."""
    n_rows = int(spec.events)
    if n_rows < 2 * LEVELS + 1:
        raise ValueError(f"events={n_rows}: need at least {2 * LEVELS + 1} (the opening book + 1)")
    rng = np.random.default_rng(spec.seed)
    body = n_rows - 2 * LEVELS

    # 1. message kinds, and how many rows each one takes
    p_move_each = spec.p_move / 4.0
    probs = np.array([1.0 - spec.p_touch_trade - spec.p_move, spec.p_touch_trade,
                      p_move_each, p_move_each, p_move_each, p_move_each])
    n_msgs = body  # upper bound: every message has at least one row
    kind = rng.choice(6, size=n_msgs, p=probs).astype(np.int8)
    sweep = (kind == _UP_SWEEP) | (kind == _DOWN_SWEEP)
    n_trades = np.where(kind == _TOUCH_TRADE, 1, 0) + np.where(sweep, rng.integers(1, 3, n_msgs), 0)
    is_move = kind >= _UP_SWEEP
    rows = np.where(kind == _QUOTE, 1, 0) + np.where(kind == _TOUCH_TRADE, 2, 0) \
        + np.where(is_move, 4 + n_trades, 0)
    ends = np.cumsum(rows)
    k = int(np.searchsorted(ends, body, side="right"))  # messages 0..k-1 fit
    used = int(ends[k - 1]) if k else 0
    pad = body - used  # finish with single-row quote messages
    kind = np.concatenate([kind[:k], np.full(pad, _QUOTE, np.int8)])
    n_trades = np.concatenate([n_trades[:k], np.zeros(pad, np.int64)])
    rows = np.concatenate([rows[:k], np.ones(pad, np.int64)])
    is_move = kind >= _UP_SWEEP
    m = len(kind)
    starts = np.concatenate([[0], np.cumsum(rows)[:-1]])

    # 2. the touch before each message
    step = np.where((kind == _UP_SWEEP) | (kind == _UP_CANCEL), 1,
                    np.where((kind == _DOWN_SWEEP) | (kind == _DOWN_CANCEL), -1, 0)).astype(np.int64)
    bid = spec.start_price_ticks + np.concatenate([[0], np.cumsum(step)[:-1]])
    ask = bid + 1

    # 3. message times
    msg_rate = spec.events_per_second * m / body
    gaps = rng.exponential(1e9 / msg_rate, m).astype(np.int64) + 1
    msg_ts = START_NS + np.cumsum(gaps)

    # 4. rows: fill columns per row slot (row r of its message)
    out = np.zeros(n_rows, dtype=EVENT_DTYPE)
    ev = out[2 * LEVELS:]
    msg_of_row = np.repeat(np.arange(m), rows)
    slot = np.arange(body) - starts[msg_of_row]
    ev["exch_ts"] = msg_ts[msg_of_row]

    kinds = kind[msg_of_row]
    b = bid[msg_of_row]
    a = ask[msg_of_row]
    ntr = n_trades[msg_of_row]
    r_kind = np.full(body, EventKind.BOOK_DELTA, np.uint8)
    r_side = np.zeros(body, np.int8)
    r_price = np.zeros(body, np.int64)
    r_qty = _lognormal_lots(rng, spec.level_lots_median, 1.0, body)  # default: a new level size

    # quotes: side and level
    q = kinds == _QUOTE
    nq = int(q.sum())
    q_side = np.where(rng.random(nq) < 0.5, 1, -1).astype(np.int8)
    q_level = np.minimum(rng.geometric(0.2, nq) - 1, LEVELS - 1)
    r_side[q] = q_side
    r_price[q] = np.where(q_side > 0, b[q] - q_level, a[q] + q_level)

    # touch trades: slot 0 = TRADE, slot 1 = the level's new size
    t = kinds == _TOUCH_TRADE
    t_buy = rng.random(m) < 0.5  # aggressor per message
    aggr = np.where(t_buy, 1, -1).astype(np.int8)[msg_of_row]
    t0 = t & (slot == 0)
    t1 = t & (slot == 1)
    r_kind[t0] = EventKind.TRADE
    r_side[t0] = aggr[t0]
    r_price[t0] = np.where(aggr[t0] > 0, a[t0], b[t0])
    r_qty[t0] = _lognormal_lots(rng, spec.trade_lots_median, 1.2, int(t0.sum()))
    r_side[t1] = -aggr[t1]  # the book side that was hit
    r_price[t1] = np.where(aggr[t1] > 0, a[t1], b[t1])

    # moves: trades first (sweeps), then 4 deltas
    mv = is_move[msg_of_row]
    up = ((kinds == _UP_SWEEP) | (kinds == _UP_CANCEL))
    mtr = mv & (slot < ntr)
    r_kind[mtr] = EventKind.TRADE
    r_side[mtr] = np.where(up[mtr], 1, -1)
    r_price[mtr] = np.where(up[mtr], a[mtr], b[mtr])
    r_qty[mtr] = _lognormal_lots(rng, spec.trade_lots_median, 1.2, int(mtr.sum()))
    d = slot - ntr  # delta index 0..3 within a move
    # up move: ask a -> 0; ask a+20 new; bid b+1 new (new best); bid b-19 -> 0
    # down move: bid b -> 0; bid b-20 new; ask a-1 new (new best); ask a+19 -> 0
    for j, (up_side, up_px, dn_side, dn_px, zero) in enumerate((
        (-1, a, 1, b, True),
        (-1, a + LEVELS, 1, b - LEVELS, False),
        (1, b + 1, -1, a - 1, False),
        (1, b - (LEVELS - 1), -1, a + (LEVELS - 1), True),
    )):
        sel = mv & (d == j)
        r_side[sel] = np.where(up[sel], up_side, dn_side)
        r_price[sel] = np.where(up[sel], up_px[sel], dn_px[sel])
        if zero:
            r_qty[sel] = 0

    ev["kind"] = r_kind
    ev["side"] = r_side
    ev["price"] = r_price
    ev["qty"] = r_qty

    # 5. the opening book at the first message's time
    head = out[: 2 * LEVELS]
    t_open = int(msg_ts[0]) - 1
    head["exch_ts"] = t_open
    head["kind"] = EventKind.BOOK_DELTA
    head["side"][:LEVELS] = 1
    head["price"][:LEVELS] = spec.start_price_ticks - np.arange(LEVELS)
    head["side"][LEVELS:] = -1
    head["price"][LEVELS:] = spec.start_price_ticks + 1 + np.arange(LEVELS)
    head["qty"] = _lognormal_lots(rng, spec.level_lots_median, 1.0, 2 * LEVELS)

    # 6. local time: one arrival per message, never earlier than the previous one
    jitter = rng.exponential(max(spec.feed_jitter_ns, 1), m).astype(np.int64)
    arrive = np.maximum.accumulate(msg_ts + spec.feed_latency_ns + jitter)
    ev["local_ts"] = arrive[msg_of_row]
    head["local_ts"] = t_open + spec.feed_latency_ns
    return out


def to_hftbacktest(events: np.ndarray, tick_size: Decimal, lot_size: Decimal) -> np.ndarray:
    """The same rows in hftbacktest's `event_dtype` (prices and sizes as floats)."""
    from hftbacktest import (
        BUY_EVENT,
        DEPTH_EVENT,
        EXCH_EVENT,
        LOCAL_EVENT,
        SELL_EVENT,
        TRADE_EVENT,
        event_dtype,
    )

    out = np.zeros(len(events), dtype=event_dtype)
    is_trade = events["kind"] == EventKind.TRADE
    flags = np.where(is_trade, TRADE_EVENT, DEPTH_EVENT).astype(np.uint64)
    flags |= np.where(events["side"] > 0, BUY_EVENT, SELL_EVENT).astype(np.uint64)
    flags |= np.uint64(EXCH_EVENT | LOCAL_EVENT)
    out["ev"] = flags
    out["exch_ts"] = events["exch_ts"]
    out["local_ts"] = events["local_ts"]
    out["px"] = events["price"] * float(tick_size)
    out["qty"] = events["qty"] * float(lot_size)
    return out


def describe(events: np.ndarray) -> dict[str, float]:
    """Shape figures printed by the benchmark (trade share, duration, levels)."""
    kinds = events["kind"]
    span = int(events["exch_ts"][-1] - events["exch_ts"][0])
    return {
        "events": float(len(events)),
        "trade_share": float((kinds == EventKind.TRADE).mean()),
        "seconds": span / 1e9,
        "events_per_second": len(events) / (span / 1e9) if span else float("nan"),
    }
