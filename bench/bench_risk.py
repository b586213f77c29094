"""Benchmark: one pre-trade risk check with every limit on (issue 13: p99 < 5 us).

    .venv/bin/python bench/bench_risk.py [--checks 200000] [--open 50] [--quick]

Builds a `TradingSession` on two instruments (BTC/USDT, ETH/USDT) with every `[risk]` key
that applies before a submit set (the six original limits, per-instrument and total
position and open exposure, the venue share, the approval threshold, the loss and
auto-disable triggers), `--open` resting orders held as exposure, and times
`session.guard.pre_submit` — exactly what `ctx.submit` calls after the venue minimums —
on orders that pass every check (the longest path), one `perf_counter_ns` pair per check.
Also times the amend check and the cancel-rate check. Prints p50 / p99 / p99.9 / max in
microseconds and writes them to a results file (bench/results.py: rows `risk check p50`,
`risk check p99`, `amend check ...`, `cancel-rate check ...`; `--json PATH`, `--no-json`).
Nothing is asserted: a slow machine prints slow numbers.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.results import RunRecord, add_arguments  # noqa: E402
from engine.audit import AuditLog  # noqa: E402
from engine.clock import SimClock  # noqa: E402
from engine.ledger import Ledger  # noqa: E402
from engine.risk import RiskConfig, RiskEngine  # noqa: E402
from engine.session import TradingSession  # noqa: E402
from engine.strategy import Strategy  # noqa: E402
from engine.types import OrderStatus, OrderType, TimeInForce, load_instruments  # noqa: E402

EVERY_LIMIT = {
    "max_order_notional": 1_000_000, "max_position": 1000, "max_open_orders": 100_000, "price_band_bps": 500,
    "max_orders_per_second": 10_000_000, "reduce_only": False,
    "max_position_notional": 10**9, "max_total_position_notional": 10**9, "max_open_notional": 10**9,
    "max_total_open_notional": 10**9, "max_venue_exposure_pct": 100,
    "max_daily_loss": 10**6, "max_drawdown": 10**6, "max_cancels_per_second": 10_000_000,
    "disable_after_rejects": 1000, "disable_slippage_bps": 100, "disable_after_ambiguous": 10,
    "approval_notional": 10**8,
}


class _Venue:
    maker_fee_bps = Decimal(0)
    taker_fee_bps = Decimal(0)

    def __init__(self, name: str) -> None:
        self.name = name

    def submit(self, order, ts):
        pass

    def cancel(self, order, ts):
        pass

    def amend(self, order, price, qty, ts):
        pass

    def top_of_book(self, i):
        return ((5_000_000, 10, 5_000_100, 10), (300_000, 10, 300_010, 10))[i]

    def levels(self, i, side, n):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)


def _pct(values: np.ndarray) -> str:
    us = values / 1000
    return (f"n={len(us)}  p50 {np.percentile(us, 50):.2f} us  p99 {np.percentile(us, 99):.2f} us  "
            f"p99.9 {np.percentile(us, 99.9):.2f} us  max {us.max():.1f} us")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=200_000)
    parser.add_argument("--open", type=int, default=50, help="resting orders held as exposure")
    parser.add_argument("--quick", action="store_true", help="20,000 checks")
    add_arguments(parser)
    args = parser.parse_args(argv)
    record = RunRecord("bench_risk", sys.argv[1:] if argv is None else argv, vars(args))
    n = 20_000 if args.quick else args.checks
    specs = load_instruments()
    insts = {i: specs[i] for i in ("binance:BTC/USDT", "binance:ETH/USDT")}
    venue = _Venue("binance")
    with tempfile.TemporaryDirectory() as tmp:
        session = TradingSession(
            strategy=Strategy(), instruments=insts, venues={"binance": venue}, clock=SimClock(10**18),
            ledger=Ledger(insts, {"binance": {"USDT": Decimal(10**9), "BTC": Decimal(100), "ETH": Decimal(1000)}}),
            risk=RiskEngine(RiskConfig.from_table(EVERY_LIMIT)), audit=AuditLog(Path(tmp) / "audit.jsonl"))
        ctx = session.ctx
        rng = random.Random(7)
        for k in range(args.open):
            inst = "binance:BTC/USDT" if k % 2 else "binance:ETH/USDT"
            price = "49000" if inst.endswith("BTC/USDT") else "2900"
            ctx.submit(inst, "buy" if k % 3 else "sell", "0.01", price if k % 3 else str(int(price) * 11 // 10))
        guard, oms = session.guard, session.oms
        btc = insts["binance:BTC/USDT"]
        orders = []
        for _ in range(n):
            side = 1 if rng.random() < 0.5 else -1
            ticks = 5_000_000 + rng.randint(-50_000, 50_000)
            lots = rng.randint(1, 1000)
            orders.append((side, lots, ticks, btc.lots_to_qty(lots), btc.ticks_to_price(ticks)))
        template = oms.create(client_id="bench", instrument=btc, instrument_index=0, side=1, type=OrderType.LIMIT,
                              tif=TimeInForce.GTC, price=5_000_000, qty=1, created_ts=0)
        times = np.empty(n, dtype=np.int64)
        clock = session.clock
        for k, (side, lots, ticks, _, _) in enumerate(orders):
            template.side, template.qty, template.price = side, lots, ticks
            clock.advance_to(clock.now() + 1000)
            t0 = time.perf_counter_ns()
            reason = guard.pre_submit(template, now=clock.now(), side=side, reduce_only=False)
            times[k] = time.perf_counter_ns() - t0
            if reason is not None:
                raise SystemExit(f"bench setup: a check refused ({reason}); every check must pass")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"machine: {os.cpu_count()} cores, load average {load} (a busy machine inflates the tail)")
        print(f"risk check, every limit on, {args.open} resting orders held: {_pct(times)}")
        record.add_latencies("risk check", times, open_orders=args.open)

        resting = oms.by_client[session.oms.open_orders("binance:BTC/USDT")[0].client_id]
        assert resting.status != OrderStatus.PENDING
        amend = np.empty(n // 4, dtype=np.int64)
        for k in range(len(amend)):
            side, lots, ticks, _, _ = orders[k]
            t0 = time.perf_counter_ns()
            guard.pre_amend(resting, ticks, resting.filled + lots, clock.now())
            amend[k] = time.perf_counter_ns() - t0
        print(f"amend check: {_pct(amend)}")
        record.add_latencies("amend check", amend)
        cancel = np.empty(n // 4, dtype=np.int64)
        for k in range(len(cancel)):
            clock.advance_to(clock.now() + 1000)
            t0 = time.perf_counter_ns()
            guard.pre_cancel(clock.now())
            cancel[k] = time.perf_counter_ns() - t0
        print(f"cancel-rate check: {_pct(cancel)}")
        record.add_latencies("cancel-rate check", cancel)
    record.finish(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
