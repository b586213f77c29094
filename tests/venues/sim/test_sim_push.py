"""SimCore push mode: rows handed over by the caller (the emulator's market clock, paper
mode) give exactly the responses of the same rows pulled from a feed."""

from __future__ import annotations

import numpy as np
import pytest
from sim_helpers import BUY, DELTA, SELL, TRADE, events, instrument, orders

from engine.errors import ConfigError, DataError
from engine.types import OrderType, TimeInForce
from venues.sim import SimCore, SimVenueConfig, WakeKind

ROWS = [
    (100, DELTA, BUY, 9_990, 5), (100, DELTA, SELL, 10_010, 5),
    (200, DELTA, SELL, 10_000, 3), (300, TRADE, SELL, 9_990, 2),
    (400, DELTA, BUY, 9_990, 1), (500, TRADE, BUY, 10_000, 3),
    (600, DELTA, SELL, 10_000, 0), (700, DELTA, BUY, 9_995, 4), (800, TRADE, SELL, 9_990, 6),
]
REQUESTS = {  # local time -> (order_no, side, type, tif, price, qty)
    150: (1, BUY, OrderType.LIMIT, TimeInForce.GTC, 9_990, 4),
    250: (2, BUY, OrderType.LIMIT, TimeInForce.IOC, 10_000, 2),
    450: (3, SELL, OrderType.MARKET, TimeInForce.GTC, 0, 2),
}


def _cfg():
    table = {"latency": {"entry_ns": 10, "response_ns": 5}}
    return {"sim": SimVenueConfig.from_table("sim", table)}


def _run(core: SimCore, push_rows: np.ndarray | None, piece: int) -> list:
    """Drive the core through every request time and the end; push `piece` rows on STARVED."""
    got = []
    pos = 0
    no = np.zeros(1, dtype=bool)
    bounds = sorted(REQUESTS) + [10_000]
    for t in bounds:
        while True:
            w = core.run_until(t, no, no)
            if w.kind == WakeKind.STARVED:
                assert push_rows is not None
                if pos < len(push_rows):
                    core.push(push_rows[pos:pos + piece])
                    pos += piece
                else:
                    core.end_feed()
                continue
            got.append(w)
            if w.kind in (WakeKind.BOUND, WakeKind.END):
                break
        if t in REQUESTS:
            no_, side, typ, tif, px, qty = REQUESTS[t]
            core.submit(no_, 0, side, typ, tif, px, qty, False, 0, t)
    return orders(got)


@pytest.mark.parametrize("piece", [1, 2, 4, 100])
def test_push_mode_gives_the_pull_feeds_responses(piece):
    feed = events(ROWS)
    pulled = _run(SimCore([instrument()], _cfg(), iter([feed]), 7), None, 0)
    pushed = _run(SimCore([instrument()], _cfg(), None, 7), feed, piece)
    assert pulled == pushed
    kinds = [o[0] for o in pulled]
    assert "FILL" in kinds and "ACK" in kinds  # the scenario really trades


def test_push_validates_rows_and_modes():
    core = SimCore([instrument()], _cfg(), None, 7)
    rows = events(ROWS)
    core.push(rows[3:5])
    assert core.pushed_until == 400
    with pytest.raises(DataError, match="goes backwards"):
        core.push(rows[0:1])
    core.end_feed()
    with pytest.raises(DataError, match="end_feed"):
        core.push(rows[5:6])
    pull = SimCore([instrument()], _cfg(), iter([rows]), 7)
    with pytest.raises(ConfigError, match="pull feed"):
        pull.push(rows)


def test_starved_core_waits_without_losing_requests():
    core = SimCore([instrument()], _cfg(), None, 7)
    no = np.zeros(1, dtype=bool)
    w = core.run_until(1_000, no, no)
    assert w.kind == WakeKind.STARVED  # nothing pushed yet: no END, no BOUND
    core.push(events(ROWS[:2]))
    core.submit(1, 0, SELL, OrderType.LIMIT, TimeInForce.GTC, 9_990, 1, False, 0, 150)
    seen = []
    while True:
        w = core.run_until(1_000, no, no)
        if w.kind == WakeKind.STARVED:
            core.end_feed()
            continue
        seen.append(w)
        if w.kind in (WakeKind.BOUND, WakeKind.END):
            break
    # the sell at 9990 hits the 5 lots bid at 9990 on arrival (150 + 10)
    assert orders(seen)[:2] == [("ACK", 1, 0, 0, 0, 1, 0, 0), ("FILL", 1, 9_990, 1, 1, 0, 2, 0)]
