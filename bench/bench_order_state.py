"""The OMS's own per-order cost, alone: create, two status changes, two booked fills.

    python -m bench.bench_order_state [--orders N] [--repeat R]

Why: the session's per-order figure (bench/profile_session.py) moves by several us with the
machine's load, which hides a change of ~0.1-0.3 us in the order state machine
(engine/oms.py, engine/order_state_nb.py); this times only `OrderManager.create`,
`set_status` (SUBMITTED, ACKNOWLEDGED) and two `book_fill`s (a partial fill without the
venue's leaves, then the rest with leaves 0) per order, best of R runs of N orders, CPU
time. bench/PROFILE.md 2f has the figures.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    best = min(per_order_us(args.orders) for _ in range(args.repeat))
    print(f"{best:.3f} us per order (create, 2 status changes, 2 fills), best of {args.repeat} x {args.orders:,}; "
          f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
