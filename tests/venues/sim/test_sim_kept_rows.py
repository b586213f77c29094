"""Rows handed out by `SimCore.run_until` stay as they were handed out.

The core keeps its ORDER records and TRADE rows in append-only blocks instead of copying
each (venues/sim/core.py `_Kept`: `np.void.copy()` of a padded row cost ~4 us per order
event); a record a caller or the venue's order history still holds must never change when
later wakes reuse the kernel's buffers, across block boundaries too."""

import numpy as np
from sim_helpers import BUY, DELTA, FAR, SELL, TRADE, make_core

from engine.types import OrderEventKind, OrderType, TimeInForce
from venues.sim import WakeKind

LIMIT, GTC = int(OrderType.LIMIT), int(TimeInForce.GTC)


def test_order_records_and_trade_rows_keep_their_values_across_blocks():
    rows = [(0, DELTA, BUY, 100_00, 5_000), (0, DELTA, SELL, 100_10, 5_000)]
    rows += [(10 + k, TRADE, SELL if k % 2 else BUY, 100_00 + k % 7, 1 + k % 5) for k in range(1_500)]
    core = make_core(rows)
    n = 1_300  # > one block (1,024 rows) of acks, and again of cancels
    for no in range(1, n + 1):
        core.submit(no, 0, 1, LIMIT, GTC, 90_00 - no, 1 + no % 3, False, 0, 1)
    for no in range(1, n + 1):
        core.cancel(no, 2)
    wb = np.zeros(1, dtype=bool)
    wt = np.ones(1, dtype=bool)
    held, snapshots = [], []
    while True:
        wake = core.run_until(FAR, wb, wt)
        if wake.kind == WakeKind.END:
            break
        if wake.record is not None:
            held.append(wake.record)
            snapshots.append(wake.record.tobytes())  # its bytes as handed out
    kinds = [int(r["kind"]) for r in held if r.dtype.names[0] == "exch_ts" and "order_no" in r.dtype.names]
    assert kinds.count(int(OrderEventKind.ACK)) == n and kinds.count(int(OrderEventKind.CANCELLED)) == n
    assert sum(1 for r in held if "order_no" not in r.dtype.names) == 1_500  # every trade woke us
    assert [r.tobytes() for r in held] == snapshots  # nothing handed out changed afterwards
    # the venue's order history holds the same records (a cancelled order's end row)
    fills, end = core.order_history(7)
    assert fills == [] and int(end["kind"]) == int(OrderEventKind.CANCELLED) and int(end["order_no"]) == 7
    assert int(end["order_price"]) == 90_00 - 7 and int(end["leaves"]) == 0
