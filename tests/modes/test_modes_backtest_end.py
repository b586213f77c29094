"""When a backtest without `--to` ends: with its market data, even when the strategy always
has a request in flight (issue #11: a 300 ms round trip and a 100 ms timer never reported
END). docs/backtest.md "When a backtest ends".

Data (BTC/USDT, ms after T): a book at 0 (bid 60000.00, ask 60002.00), a trade at 1000 ms,
the last row. Latency: entry 150 ms, response 150 ms, so a round trip of 300 ms. The
strategy submits a resting buy (59000.00, far below the touch) at every timer, every 100 ms
from the start: timers at 100, 200, ..., 900 ms fire; the one due at 1000 ms, the last
row's time, finds the data exhausted (rows go before timers of the same time) and does
not, nor does any later one. The 9 submits are acknowledged 300 ms after they were sent,
the last at 1200 ms, where the run ends.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine.compiled import CompiledStrategy
from engine.config import resolve
from engine.types import EventKind
from modes.backtest import run_backtest
from tests.modes.test_modes_backtest_conflation import BTC, MS, T, write_store

PINGER = '''
from decimal import Decimal

import numpy as np
from numba import njit

from engine import Strategy
from engine import compiled as cc


class Pinger(Strategy):
    """A resting buy of 0.001 at 59000.00 at every timer (every 100 ms)."""

    def on_start(self, ctx):
        ctx.schedule(every_ns=100_000_000)

    def on_timer(self, ctx, ts):
        ctx.submit(ctx.instruments[0], "buy", Decimal("0.001"), Decimal("59000.00"))


@njit(cache=True)
def ping_nb(ctx, params, state):
    cc.submit(ctx, 0, cc.BUY, params[0], params[1], cc.GTC, False)


class CompiledPinger(cc.CompiledStrategy):
    """The same decisions as Pinger, in the numba loop (every_ns = 100 ms)."""

    timer_nb = ping_nb

    def setup(self, instruments):
        return np.array([instruments[0].qty_to_lots(Decimal("0.001")),
                         instruments[0].price_to_ticks(Decimal("59000.00"))], dtype=np.int64)
'''

LATENCY = {"entry_ns": 150 * MS, "response_ns": 150 * MS, "feed_ns": 0}
TIMERS_MS = [100 * k for k in range(1, 10)]  # 100 ... 900: the timer due at 1000 ms finds no data left


def _run(tmp_path: Path, name: str, strategy: str, end_ms: int | None = None) -> Path:
    data = write_store(tmp_path, [
        (0, EventKind.SNAPSHOT_BEGIN, 0, 0, 0), (0, EventKind.BOOK_DELTA, 1, 6_000_000, 100_000),
        (0, EventKind.BOOK_DELTA, -1, 6_000_200, 100_000), (0, EventKind.SNAPSHOT_END, 0, 0, 0),
        (1000, EventKind.TRADE, 1, 6_000_200, 1_000)])
    (tmp_path / "pinger.py").write_text(PINGER)
    config = resolve({"run": {"strategy": f"pinger.py:{strategy}", "data": data, "instruments": [BTC]},
                      "venues": {"binance": {"profile": "zero-cost", "latency": LATENCY,
                                             "balances": {"USDT": "1000000", "BTC": "0"}}}},
                     {}, base_dir=str(tmp_path))
    if end_ms is not None:
        config = replace(config, end_ns=T + end_ms * MS)
    return run_backtest(config, tmp_path / name, write_html=False)


def _orders(run: Path) -> list[tuple[int, int, str]]:
    """(created ms after T, acknowledged ms after T, status) of each order."""
    rows = pq.read_table(run / "orders.parquet").to_pylist()
    return [((o["created_ts"] - T) // MS, (o["ack_ts"] - T) // MS, o["status"]) for o in rows]


def _end_ms(run: Path) -> int:
    import json

    return (json.loads((run / "summary.json").read_text())["run"]["end_ts"] - T) // MS


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("end")
    out = {"python": _run(base, "python", "Pinger"), "fast": _run(base, "fast", "CompiledPinger")}
    mp = pytest.MonkeyPatch()
    mp.setattr(CompiledStrategy, "fast_path", False)  # the same compiled function through ctx
    try:
        out["adapter"] = _run(base, "adapter", "CompiledPinger")
    finally:
        mp.undo()
    # --to past the data's end: the same run (the data ends it, not the bound)
    out["to"] = _run(base, "to", "Pinger", end_ms=5000)
    return out


def test_a_round_trip_longer_than_the_timer_ends_with_the_data(runs):
    expected = [(t, t + 300, "acknowledged") for t in TIMERS_MS]
    assert _orders(runs["python"]) == expected
    assert _end_ms(runs["python"]) == 1200  # the last ack: 900 + 300


def test_the_compiled_loop_ends_at_the_same_point(runs):
    expected = [(t, t + 300, "acknowledged") for t in TIMERS_MS]
    assert _orders(runs["fast"]) == expected
    assert _end_ms(runs["fast"]) == 1200
    for name in ("orders.parquet", "fills.parquet", "audit.jsonl"):
        assert (runs["fast"] / name).read_bytes() == (runs["adapter"] / name).read_bytes()


def test_a_bound_past_the_data_changes_nothing(runs):
    assert _orders(runs["to"]) == _orders(runs["python"])
    assert _end_ms(runs["to"]) == 1200
