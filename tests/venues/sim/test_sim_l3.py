"""L3 feeds: venue orders by id aggregated into L2, and exact FIFO queues (l3_fifo)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from sim_helpers import BUY, SELL, TRADE, drain, fills, make_core

from engine.types.market import EventKind
from engine.types.orders import OrderType, TimeInForce

ADD, MOD, CAN, FILL = (EventKind.L3_ADD, EventKind.L3_MODIFY, EventKind.L3_CANCEL,
                       EventKind.L3_FILL)
LIMIT, GTC = OrderType.LIMIT, TimeInForce.GTC


def l3(ts, kind, side, price, qty, oid):
    return (ts, kind, side, price, qty, 0, ts, oid)


def test_l3_rows_build_the_l2_book():
    rows = [
        l3(0, ADD, BUY, 99, 5, 1),
        l3(0, ADD, BUY, 99, 3, 2),
        l3(0, ADD, SELL, 101, 4, 3),
        l3(1, MOD, BUY, 98, 3, 2),  # moves to 98
        l3(2, FILL, SELL, 101, 1, 3),
        l3(3, CAN, BUY, 0, 0, 1),
        l3(4, FILL, SELL, 101, 3, 3),  # fully executed: gone
        l3(5, CAN, BUY, 0, 0, 42),  # unknown id: ignored
    ]
    core = make_core(rows)
    seen = []
    wb = np.ones(1, dtype=bool)
    while True:
        w = core.run_until(10, wb, np.zeros(1, dtype=bool))
        if w.kind not in (2,):
            break
        seen.append((w.ts, core.local_bbo(0)))
    assert seen == [
        (0, (99, 8, 101, 4)),
        (1, (99, 5, 101, 4)),
        (2, (99, 5, 101, 3)),
        (3, (98, 3, 101, 3)),
        (4, (98, 3, 0, 0)),
    ]
    assert core.exchange_bbo(0) == (98, 3, 0, 0)


def test_l3_fifo_queue_is_exact():
    rows = [
        l3(0, ADD, BUY, 99, 5, 1),
        l3(0, ADD, BUY, 99, 3, 2),
        l3(10, ADD, BUY, 99, 6, 3),  # joins behind us
        l3(20, CAN, BUY, 0, 0, 2),  # was ahead: ahead 8 -> 5
        l3(25, MOD, BUY, 99, 4, 1),  # decrease keeps priority: 5 -> 4
        l3(30, FILL, BUY, 99, 4, 1),  # the last order ahead executes: 0, nothing for us
        l3(40, FILL, BUY, 99, 2, 3),  # an order behind us executes: it would have hit us
        l3(50, FILL, BUY, 99, 4, 3),  # 4 more: we have 2 left
        (60, TRADE, SELL, 99, 50),  # a trade at our price moves nothing under l3_fifo
    ]
    core = make_core(rows, queue_model="l3_fifo")
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 4, False, 0, 5)
    core.submit(2, 0, BUY, LIMIT, GTC, 99, 10, False, 0, 5)
    drain(core, 5)
    assert core.order_state(1)["ahead"] == 8
    aheads = []
    got = []
    for t in (10, 20, 25, 30):
        got += drain(core, t)
        aheads.append(core.order_state(1)["ahead"])
    assert aheads == [8, 5, 4, 0]
    got += drain(core)
    assert fills(got) == [(1, 99, 2), (1, 99, 2), (2, 99, 2)]


def test_l3_modify_up_loses_priority():
    rows = [l3(0, ADD, BUY, 99, 5, 1), l3(10, MOD, BUY, 99, 7, 1), l3(20, FILL, BUY, 99, 3, 1)]
    core = make_core(rows, queue_model="l3_fifo")
    drain(core, 5)
    core.submit(1, 0, BUY, LIMIT, GTC, 99, 4, False, 0, 5)
    drain(core, 15)
    assert core.order_state(1)["ahead"] == 0  # it went behind us
    assert fills(drain(core)) == [(1, 99, 3)]  # its execution reaches us first


def test_l3_table_grows_and_matches_a_python_model():
    rng = np.random.default_rng(5)
    rows = []
    live = {}
    oid = 0
    for i in range(6000):
        r = rng.random()
        if r < 0.55 or not live:
            oid += 1
            side = int(rng.choice([-1, 1]))
            price = int(rng.integers(90, 100)) if side > 0 else int(rng.integers(101, 111))
            qty = int(rng.integers(1, 9))
            live[oid] = (side, price, qty)
            rows.append(l3(i, ADD, side, price, qty, oid))
        else:
            keys = sorted(live)
            k = keys[int(rng.integers(0, len(keys)))]
            side, price, qty = live[k]
            if r < 0.75:
                del live[k]
                rows.append(l3(i, CAN, 0, 0, 0, k))
            elif r < 0.9:
                x = int(rng.integers(1, qty + 1))
                rows.append(l3(i, FILL, side, price, x, k))
                if x == qty:
                    del live[k]
                else:
                    live[k] = (side, price, qty - x)
            else:
                newp = price + int(rng.choice([-1, 0, 1])) * side * -1
                newq = int(rng.integers(1, 9))
                live[k] = (side, newp, newq)
                rows.append(l3(i, MOD, side, newp, newq, k))
    core = make_core(rows, chunk=997)
    drain(core)
    assert core._l3_keys.shape[1] > 1024  # it grew
    want = defaultdict(int)
    for side, price, qty in live.values():
        want[(side, price)] += qty
    for side in (1, -1):
        for local in (core.local_levels, core.exchange_levels):
            prices, qtys = local(0, side, 1000)
            got = {(side, int(p)): int(q) for p, q in zip(prices, qtys, strict=True)}
            assert got == {k: v for k, v in want.items() if k[0] == side and v > 0}
