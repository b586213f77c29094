"""Compile (or load from numba's cache) every kernel once, on a tiny feed."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from engine.contingent.watch import new_watch
from engine.types.instrument import Instrument
from engine.types.market import EVENT_DTYPE, EventKind
from engine.types.orders import OrderType, TimeInForce

_DONE = False
_DONE_PLAIN = False  # warmup(triggers=False) ran


def warmup(triggers: bool = True) -> None:
    """Run a tiny feed through every code path so later runs start replaying at once.

    Idempotent; the kernel calls it once per process. With numba's on-disk cache a new
    process loads the compiled kernels instead of compiling them. `triggers=False` compiles
    only the kernel without contingent-order triggers (SimCore.run_until without
    `triggers`: the emulator, which never passes them), not the backtest's second
    specialization of run_nb (a later backtest compiles and caches that one itself).
    """
    global _DONE, _DONE_PLAIN
    if _DONE or (not triggers and _DONE_PLAIN):
        return
    from venues.sim.config import SimVenueConfig
    from venues.sim.core import SimCore

    inst = Instrument(
        id="warm:A/B", venue="warm", symbol="A/B", venue_symbol="AB", base="A", quote="B",
        tick_size=Decimal("1"), lot_size=Decimal("1"), min_qty=Decimal("0"),
        min_notional=Decimal("0"),
    )
    rows = [
        (0, EventKind.SNAPSHOT_BEGIN, 0, 0, 0),
        (0, EventKind.BOOK_DELTA, 1, 99, 5),
        (0, EventKind.BOOK_DELTA, -1, 101, 5),
        (0, EventKind.SNAPSHOT_END, 0, 0, 0),
        (5, EventKind.TRADE, -1, 99, 7),
        (6, EventKind.BOOK_DELTA, -1, 100, 3),
        (7, EventKind.L3_ADD, 1, 98, 4),
        (7, EventKind.L3_MODIFY, 1, 98, 3),
        (7, EventKind.L3_FILL, 1, 98, 1),
        (7, EventKind.L3_CANCEL, 1, 98, 0),
        (8, EventKind.CLEAR, 0, 0, 0),
    ]
    feed = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, (ts, kind, side, price, qty) in enumerate(rows):
        feed[i] = (ts, ts, 0, int(kind), side, price, qty, 1 if kind >= 5 else 0)
    for model in ("risk_averse", "power:2", "log", "l3_fifo"):
        cfg = SimVenueConfig.from_table("warm", {"queue_model": model,
                                                 "latency": {"entry_ns": 1, "response_ns": 1}})
        core = SimCore([inst], {"warm": cfg}, iter([feed[:3], feed[3:]]), seed=0)
        wake = np.ones(1, dtype=np.bool_)
        # both kernels: with contingent-order triggers (backtests) and without (compiled loop)
        watch = new_watch(1) if triggers and model in ("risk_averse", "log") else None
        core.run_until(1, wake, wake, watch)
        core.submit(1, 0, 1, OrderType.LIMIT, TimeInForce.GTC, 99, 2, False, 0, 1)
        core.submit(2, 0, -1, OrderType.MARKET, TimeInForce.IOC, 0, 1, False, 0, 1)
        core.submit(3, 0, -1, OrderType.LIMIT, TimeInForce.GTD, 102, 1, True, 4, 1)
        core.amend(1, 98, 3, 1)
        core.cancel(3, 2)
        for _ in range(100):
            if core.run_until(100, wake, wake, watch).kind == 4:
                break
        core.drain_bbo()
        core.drain_trades()
    if triggers:
        _DONE = True
    else:
        _DONE_PLAIN = True
