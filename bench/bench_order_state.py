"""The OMS's own per-order cost, alone: create, two status changes, two booked fills.

    python -m bench.bench_order_state [--orders N] [--repeat R]
    python -m bench.bench_order_state --stalls [--orders N]

Why: the session's per-order figure (bench/profile_session.py) moves by several us with the
machine's load, which hides a change of ~0.1-0.3 us in the order state machine
(engine/oms.py, engine/order_state_nb.py); this times only `OrderManager.create`,
`set_status` (SUBMITTED, ACKNOWLEDGED) and two `book_fill`s (a partial fill without the
venue's leaves, then the rest with leaves 0) per order, best of R runs of N orders, CPU
time. bench/PROFILE.md 2f has the figures.

`--stalls` times each `OrderManager.create` alone (thread CPU time) over one session of N
orders, three ways: every order left open (as bench/bench_live.py's engine run, whose
orders never end), every order ended (submitted, then cancelled) before the next one, and
every order ended under a strategy-named id (`g<k>.tp`, as contingent legs are): the
slowest creates and their order numbers show when the OMS's id tables grow
(bench/PROFILE.md 1i, "The live tail"; 1k).
"""

from __future__ import annotations

import argparse
import os
import time
from decimal import Decimal

from engine.oms import OrderManager
from engine.types import OrderStatus, OrderType, TimeInForce, load_instruments
from engine.types.venue_reports import BookedFill


def per_order_us(orders: int) -> float:
    """CPU us per order of one run of `orders` orders."""
    btc = load_instruments()["binance:BTC/USDT"]
    fills = [BookedFill("x", None, f"t{lots}", 100, lots, Decimal(1), Decimal(lots), Decimal(0), "USDT",
                        Decimal("0.01"), "maker", 3, 3, "sim") for lots in (3, 7)]
    oms = OrderManager()
    start = time.process_time()
    for _ in range(orders):
        order = oms.create(instrument=btc, instrument_index=0, side=1, type=OrderType.LIMIT, tif=TimeInForce.GTC,
                           price=100, qty=10)
        oms.set_status(order, OrderStatus.SUBMITTED, 1)
        oms.set_status(order, OrderStatus.ACKNOWLEDGED, 2)
        oms.book_fill(order, fills[0], None)
        oms.book_fill(order, fills[1], 0)
    return (time.process_time() - start) / orders * 1e6


def create_times(orders: int, mode: str) -> list[int]:
    """Thread CPU ns of each `oms.create` of one session of `orders` orders; `mode` "open"
    (none ends), "closed" (each submitted and cancelled before the next) or "named" (as
    "closed", under a strategy-named id)."""
    import gc

    btc = load_instruments()["binance:BTC/USDT"]
    oms = OrderManager(id_prefix="tpmx3lo400")
    clock = time.thread_time_ns
    create, set_status = oms.create, oms.set_status
    submitted, cancelled = OrderStatus.SUBMITTED, OrderStatus.CANCELLED
    limit, gtc = OrderType.LIMIT, TimeInForce.GTC
    out = [0] * orders
    gc.collect()
    gc.disable()  # the collector's pauses are not the tables' (bench_live's --tail counts those)
    try:
        for k in range(orders):
            cid = f"g{k}.tp" if mode == "named" else None
            t0 = clock()
            order = create(btc, 0, 1, limit, gtc, 100, 10, cid)
            out[k] = clock() - t0
            if mode != "open":
                set_status(order, submitted, k)
                set_status(order, cancelled, k)
    finally:
        gc.enable()
    return out


def stalls(orders: int) -> None:
    import numpy as np

    for mode in ("open", "closed", "named"):
        times = create_times(orders, mode)
        us = np.asarray(times, dtype=np.float64) / 1000
        p50, p99, p999 = np.percentile(us, [50, 99, 99.9])
        worst = sorted(range(orders), key=lambda k: -times[k])[:8]
        print(f"{mode:>6}: create p50 {p50:.2f} / p99 {p99:.2f} / p99.9 {p999:.2f} / max {us.max():.0f} us; "
              f"slowest (order no: us) " + ", ".join(f"{k + 1}: {us[k]:.0f}" for k in sorted(worst)))
    print(f"load average {os.getloadavg()[0]:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--stalls", action="store_true", help="time each create alone: the slowest and their numbers")
    args = parser.parse_args(argv)
    if args.stalls:
        stalls(args.orders)
        return 0
    best = min(per_order_us(args.orders) for _ in range(args.repeat))
    print(f"{best:.3f} us per order (create, 2 status changes, 2 fills), best of {args.repeat} x {args.orders:,}; "
          f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
