"""Issue 9's fill-price case through the backtest runner, in the compiled-strategy loop and
through the Python adapter: a fill never depends on the other instruments of the run."""

from __future__ import annotations

import sys
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from numba import njit

from engine import compiled as cc
from engine.compiled import CompiledAdapter, CompiledStrategy
from engine.config import resolve
from engine.risk import RiskConfig, RiskEngine
from engine.types.instrument import Instrument
from engine.types.market import EventKind
from modes.backtest import _Prepared, _run_into
from venues.sim import SimVenueConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "venues" / "sim"))
from sim_helpers import events  # noqa: E402

S = 1_000_000_000
MS = 1_000_000
DELTA = EventKind.BOOK_DELTA


def _inst(symbol: str) -> Instrument:
    base, quote = symbol.split("/")
    return Instrument(id=f"sim:{symbol}", venue="sim", symbol=symbol, venue_symbol=base + quote,
                      base=base, quote=quote, tick_size=Decimal("0.01"), lot_size=Decimal("1"),
                      min_qty=Decimal("0"), min_notional=Decimal("0"))


@njit(cache=True)
def buy_once_nb(ctx, params, state):
    """At the first timer (local 1.999 s): an IOC buy of 1 TST at 110.00 (it takes the ask)."""
    if state[0] == 0.0:
        state[0] = 1.0
        cc.submit(ctx, 0, cc.BUY, 1, 11000, cc.IOC, False)


class BuyOnce(CompiledStrategy):
    timer_nb = buy_once_nb
    every_ns = 999 * MS  # the run starts at 1.000 s: the first timer fires at 1.999 s
    state_size = 1


def _feed(with_aaa: bool) -> np.ndarray:
    """TST: bid 99 / ask 100; at venue 2.000 s (received 2.001 s) the ask moves to 105.
    AAA: one update at venue 2.0005 s, received 2.0006 s (before TST's row)."""
    rows = [(1 * S, DELTA, 1, 9900, 10, 0, 1 * S), (1 * S, DELTA, -1, 10000, 10, 0, 1 * S)]
    if with_aaa:
        rows += [(1 * S, DELTA, 1, 500, 10, 1, 1 * S), (1 * S, DELTA, -1, 510, 10, 1, 1 * S),
                 (2 * S + 500_000, DELTA, 1, 501, 3, 1, 2 * S + 600_000)]
    rows += [(2 * S, DELTA, -1, 10000, 0, 0, 2 * S + MS), (2 * S, DELTA, -1, 10500, 10, 0, 2 * S + MS),
             (3 * S, DELTA, 1, 9900, 11, 0, 3 * S)]
    rows.sort(key=lambda r: r[6])
    return events(rows)


@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize("with_aaa", [False, True])
def test_the_fill_is_105_with_or_without_another_instrument(tmp_path, monkeypatch, fast_path, with_aaa):
    monkeypatch.setattr(CompiledStrategy, "fast_path", fast_path)
    insts = [_inst("TST/USD")] + ([_inst("AAA/USD")] if with_aaa else [])
    instruments = {i.id: i for i in insts}
    config = resolve({"run": {"strategy": "x.py:BuyOnce", "data": "hand", "seed": 1}}, {})
    venue = SimVenueConfig.from_table("sim", {"latency": {"entry_ns": MS, "response_ns": MS}})
    feed = _feed(with_aaa)
    run = _Prepared(config, instruments, CompiledAdapter(BuyOnce()), {"sim": venue}, {"sim": {}}, [],
                    RiskEngine(RiskConfig.from_table({})), iter([feed]), 1 * S,
                    np.iinfo(np.int64).max, len(feed))
    out = tmp_path / "run"
    out.mkdir()
    _run_into(out, run, time.perf_counter(), False, "hand")
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    assert [(f["instrument"], f["price"], f["qty"]) for f in fills] == [("sim:TST/USD", "105.00", "1")]
