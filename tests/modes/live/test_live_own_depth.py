"""The strategy's book in testnet/live is the market without our resting orders, as the
venue published them (modes/live/own_depth.py): the venue's depth diffs hold our quote
from the venue time of its acknowledgement, what is left of it after a fill, until its
cancel; the strategy sees what a backtest's book (the dataset's) shows. Hand-computed
levels, through the session's own book view (a testnet session's replay venue)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from engine.config import resolve
from engine.types import EVENT_DTYPE, EventKind, OrderStatus
from engine.types.venue_reports import VenueFill, VenueOrderState
from modes.backtest import resolve_run
from modes.live.build import build_session
from modes.live.driver import run_step
from modes.live.replay import ReplayVenue

MS = 1_000_000
T0 = 1_700_000_000_000 * MS
BID, ASK, OURS = 6_000_000, 6_000_010, 6_000_005  # ticks of 0.01: 60000.00, 60000.10, 60000.05

STRATEGY = '''
from decimal import Decimal
from engine import Strategy

class Quote(Strategy):
    seen = []

    def on_start(self, ctx):
        ctx.submit(ctx.instruments[0], "buy", Decimal("0.01"), Decimal("60000.05"), post_only=True)
        ctx.schedule(every_ns=50_000_000)

    def on_timer(self, ctx, ts):
        book = ctx.book(ctx.instruments[0])
        Quote.seen.append((ts, book.best_bid, book.best_bid_qty, book.bids(2)))
'''


def _rows(exch_ms: int, local_ms: float, levels: list[tuple[int, int]], snapshot: bool = False) -> np.ndarray:
    items = [(EventKind.BOOK_DELTA, 1 if p < ASK else -1, p, q) for p, q in levels]
    if snapshot:
        items = [(EventKind.SNAPSHOT_BEGIN, 0, 0, 0), *items, (EventKind.SNAPSHOT_END, 0, 0, 0)]
    rows = np.zeros(len(items), dtype=EVENT_DTYPE)
    for r, (kind, side, price, qty) in zip(rows, items, strict=True):
        r["kind"], r["side"], r["price"], r["qty"] = kind, side, price, qty
    rows["exch_ts"] = T0 + exch_ms * MS
    rows["local_ts"] = T0 + int(local_ms * MS)
    return rows


def _state(status: OrderStatus, filled: int, exch_ms: int, local_ms: int) -> VenueOrderState:
    return VenueOrderState("tp-1", "1", status, OURS, 1000, filled, T0 + exch_ms * MS, T0 + local_ms * MS,
                           source="stream")


def test_the_strategy_sees_the_book_without_its_own_resting_order(tmp_path):
    """Our buy 0.01 (1000 lots) at 60000.05, inside the market's 60000.00 / 60000.10; the
    session starts at 2 ms, its timers fire at 52, 102, ... ms:
    - 52 ms: acknowledged at venue time 20 ms (received 25), but the book shows the
      snapshot (venue time 0): nothing of ours in it -> best bid 60000.00 x 0.05;
    - 152 ms: the diff of the window ending at 100 ms (received 103) adds 1000 lots at
      60000.05, all ours (acked at 20 <= 100) -> taken out: best bid 60000.00 x 0.05
      (the venue's book would say 60000.05 x 0.01);
    - 252 ms: 400 lots filled at 160 (received 170), another 300 lots joined the level;
      the diff of 200 (received 205) says 900 lots, 600 of them ours -> 60000.05 x 0.003;
    - 302 ms: cancelled at 260 (received 262), but the depth shown is still the 200 ms
      window's, which holds our 600 -> still 60000.05 x 0.003;
    - 352 ms: the diff of 300 (received 304) took our 600 out (300 lots) and the order left
      at 260 <= 300: nothing of ours -> 60000.05 x 0.003."""
    (tmp_path / "quote.py").write_text(STRATEGY)
    config = resolve({"run": {"strategy": "quote.py:Quote", "data": "synthetic:0", "instruments": ["binance:BTC/USDT"]},
                      "venues": {"binance": {"profile": "zero-cost"}}}, {}, base_dir=str(tmp_path))
    resolved = resolve_run(config)
    built = build_session(resolved, tmp_path / "run", T0, "tp",
                          lambda book: {n: ReplayVenue(n, book, c) for n, c in resolved.venue_configs.items()})
    stepper = built.stepper
    stepper.push(_rows(0, 1, [(BID, 5000), (ASK, 5000)], snapshot=True))
    run_step(built, {"now": T0 + 2 * MS, "start": 1}, [])
    run_step(built, {"now": T0 + 60 * MS}, [_state(OrderStatus.ACKNOWLEDGED, 0, 20, 25)])
    stepper.push(_rows(100, 103, [(OURS, 1000)]))
    run_step(built, {"now": T0 + 160 * MS}, [])
    fill = VenueFill("tp-1", "1", "t1", OURS, 400, Decimal(0), "BTC", 1, T0 + 160 * MS, T0 + 170 * MS)
    stepper.push(_rows(200, 205, [(OURS, 900)]))
    run_step(built, {"now": T0 + 260 * MS}, [_state(OrderStatus.PARTIALLY_FILLED, 400, 160, 170), fill])
    run_step(built, {"now": T0 + 303 * MS}, [_state(OrderStatus.CANCELLED, 400, 260, 262)])
    stepper.push(_rows(300, 304, [(OURS, 300)]))
    run_step(built, {"now": T0 + 360 * MS}, [])
    seen = {(ts - T0) // MS: (str(bid), str(qty), [(str(p), str(q)) for p, q in bids])
            for ts, bid, qty, bids in built.session.strategy.seen}
    assert seen[52] == ("60000.00", "0.05000", [("60000.00", "0.05000")])
    assert seen[152] == ("60000.00", "0.05000", [("60000.00", "0.05000")])
    assert seen[252] == ("60000.05", "0.00300", [("60000.05", "0.00300"), ("60000.00", "0.05000")])
    assert seen[302] == ("60000.05", "0.00300", [("60000.05", "0.00300"), ("60000.00", "0.05000")])
    assert seen[352] == ("60000.05", "0.00300", [("60000.05", "0.00300"), ("60000.00", "0.05000")])
    # the raw local book (the venue's depth as received) holds our order at 150-300 ms
    assert built.core.local_bbo(0)[:2] == (OURS, 300)
    assert built.own_depth.ours(0, 1) == {}
