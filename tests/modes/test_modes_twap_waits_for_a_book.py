"""The example TWAP waits for a book: with a feed latency the opening book reaches the local
side after the first timer, and that timer's slice goes out at the next one instead of
being lost (10 slices of 0.05 for 0.5 in 10, never 9 of 0.0555)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from engine.config import resolve
from modes.backtest import run_backtest

ROOT = Path(__file__).resolve().parents[2]


def test_ten_equal_slices_although_the_first_timer_sees_no_book(tmp_path):
    config = resolve({"run": {"strategy": "examples/twap.py:TWAP", "data": "synthetic:11:1m",
                              "instruments": ["binance:BTC/USDT"],
                              "params": {"side": "buy", "quantity": "0.5", "horizon_s": 20, "slices": 10}},
                      "venues": {"binance": {"profile": "zero-cost", "balances": {"USDT": "10000000"},
                                             "latency": {"entry_ns": 0, "response_ns": 0, "feed_ns": 5_000_000}}}},
                     {}, base_dir=str(ROOT))
    start = 1_704_067_200_000_000_000  # the series' first row is stamped here: it arrives 5.25 ms later
    config = replace(config, start_ns=start, end_ns=start + 60_000_000_000)
    run = run_backtest(config, tmp_path / "run", write_html=False)
    orders = [o for o in pq.read_table(run / "orders.parquet").to_pylist() if o["type"] != "parent"]
    orders.sort(key=lambda o: o["created_ts"])
    assert [Decimal(o["qty"]) for o in orders] == [Decimal("0.05")] * 10
    # the first slice went out at the second timer (2 s after the start), not at the start
    assert [o["created_ts"] - start for o in orders] == [2_000_000_000 * k for k in range(1, 11)]
