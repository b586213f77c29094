"""`[venues.X] depth_conflation_ms` through `run_backtest`: the book a strategy sees at each
instant, hand-computed, from a stored dataset (DuckDB), for a whole run and for a window
that starts mid-stream.

Rows (ms after T, a multiple of 100 ms; BTC/USDT, prices in USDT):
    0  snapshot: bid 60000.00, ask 60002.00
  130  bid 60001.00 added                 -> published at 200
  200  ask 60001.50 added (on a boundary) -> published at 200
  240  bid 60001.00 removed               -> published at 300
 500  a trade (the data, and so the run, goes on to here)
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.config import resolve
from engine.types import EVENT_DTYPE, EventKind, load_instruments
from modes.backtest import run_backtest
from replay.schema import StoredInstrument
from replay.stores import open_store

BTC = "binance:BTC/USDT"
T = 10**18
MS = 1_000_000
STRATEGY = '''
import json
from engine import Strategy


class Watch(Strategy):
    """Writes (ms after T, best bid, best ask) at every timer (every 50 ms from the start)."""

    def __init__(self, out: str = "", t0: int = 0):
        self.out, self.t0, self.seen = out, int(t0), []

    def on_start(self, ctx):
        ctx.schedule(every_ns=50_000_000, at_ns=ctx.now)

    def on_timer(self, ctx, ts):
        book = ctx.book(ctx.instruments[0])
        self.seen.append([(ts - self.t0) // 1_000_000, str(book.best_bid), str(book.best_ask)])

    def on_stop(self, ctx):
        with open(self.out, "w") as f:
            json.dump(self.seen, f)
'''


def _store(tmp_path: Path) -> str:
    return write_store(tmp_path, [
        (0, EventKind.SNAPSHOT_BEGIN, 0, 0, 0), (0, EventKind.BOOK_DELTA, 1, 6_000_000, 100_000),
        (0, EventKind.BOOK_DELTA, -1, 6_000_200, 100_000), (0, EventKind.SNAPSHOT_END, 0, 0, 0),
        (130, EventKind.BOOK_DELTA, 1, 6_000_100, 50_000),
        (200, EventKind.BOOK_DELTA, -1, 6_000_150, 10_000),
        (240, EventKind.BOOK_DELTA, 1, 6_000_100, 0),
        (500, EventKind.TRADE, 1, 6_000_200, 1_000)])


def write_store(tmp_path: Path, rows: list[tuple[int, int, int, int, int]]) -> str:
    """A DuckDB store of BTC/USDT rows (ms after T, kind, side, price ticks, lots), exch_ts =
    local_ts; returns its data spec."""
    ev = np.zeros(len(rows), EVENT_DTYPE)
    for k, (ms, kind, side, price, qty) in enumerate(rows):
        ev[k] = (T + ms * MS, T + ms * MS, 0, int(kind), side, price, qty, 0)
    spec = f"duckdb:{tmp_path / 'd.duckdb'}"
    with open_store(spec, create=True) as st, st.begin_import({BTC: StoredInstrument.of(load_instruments()[BTC])}) as tx:
        tx.append(BTC, ev)
    return spec


def _seen(tmp_path: Path, conflation_ms: int, start_ms: int, end_ms: int = 600) -> list:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "watch.py").write_text(STRATEGY)
    out = tmp_path / f"seen-{conflation_ms}-{start_ms}.json"
    config = resolve({"run": {"strategy": f"{tmp_path / 'watch.py'}:Watch", "data": _store(tmp_path),
                              "instruments": [BTC], "params": {"out": str(out), "t0": T}},
                      "venues": {"binance": {"profile": "zero-cost", "depth_conflation_ms": conflation_ms}}},
                     {}, base_dir=str(tmp_path))
    config = replace(config, start_ns=T + start_ms * MS, end_ns=T + end_ms * MS)
    run_backtest(config, tmp_path / f"run-{conflation_ms}-{start_ms}", write_html=False)
    return [tuple(x) for x in json.loads(out.read_text())]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.mktemp("conflation")


def test_the_strategy_sees_the_book_at_the_window_ends(base):
    seen = dict((t, (bid, ask)) for t, bid, ask in _seen(base / "a", 100, 0))
    assert seen[0] == seen[50] == seen[100] == seen[150] == ("60000.00", "60002.00")
    assert seen[200] == seen[250] == ("60001.00", "60001.50")
    assert seen[300] == seen[350] == ("60000.00", "60001.50")


def test_without_conflation_every_row_at_its_time(base):
    seen = dict((t, (bid, ask)) for t, bid, ask in _seen(base / "b", 0, 0))
    assert seen[100] == ("60000.00", "60002.00")
    assert seen[150] == ("60001.00", "60002.00")
    assert seen[200] == ("60001.00", "60001.50")
    assert seen[250] == ("60000.00", "60001.50")


def test_a_window_starting_mid_stream_opens_at_the_last_window_end(base):
    """Start at 250 ms: a client connected before it holds the window published at 200 ms
    (bid 60001.00, ask 60001.50), not the book at 250 ms (the bid removed at 240 ms goes out
    at 300 ms)."""
    conflated = dict((t, (bid, ask)) for t, bid, ask in _seen(base / "c", 100, 250))
    assert conflated[250] == ("60001.00", "60001.50")
    assert conflated[300] == ("60000.00", "60001.50")
    plain = dict((t, (bid, ask)) for t, bid, ask in _seen(base / "d", 0, 250))
    assert plain[250] == ("60000.00", "60001.50")


def test_the_same_run_twice_gives_the_same_fills_log(base):
    """Determinism: the run directory's orders/fills/equity are byte-identical."""
    _seen(base / "e", 100, 0)
    _seen(base / "f", 100, 0)
    for name in ("orders.parquet", "fills.parquet", "equity.parquet"):
        assert (base / "e" / "run-100-0" / name).read_bytes() == (base / "f" / "run-100-0" / name).read_bytes()


BUY_AT_150 = '''
from engine import Strategy


class BuyAt150(Strategy):
    """A market buy of 0.001 BTC at 150 ms: between the bid added at 130 ms and its
    publication at 200 ms."""

    def __init__(self, t0: int = 0):
        self.t0 = int(t0)

    def on_start(self, ctx):
        ctx.schedule(at_ns=self.t0 + 150_000_000)

    def on_timer(self, ctx, ts):
        ctx.submit(ctx.instruments[0], "buy", "0.001", type="market")
'''


@pytest.mark.parametrize(("conflation_ms", "mid", "effective_bps"), [
    # the strategy's book at 150 ms: bid 60001.00 (added at 130 ms) / ask 60002.00
    (0, 60001.5, 2 * (60002.0 - 60001.5) / 60001.5 * 1e4),  # 0.16666 bps
    # the conflated book still shows the 0 ms window: bid 60000.00 / ask 60002.00
    (100, 60001.0, 2 * (60002.0 - 60001.0) / 60001.0 * 1e4),  # 0.33332 bps
])
def test_the_report_measures_the_effective_spread_against_the_strategys_book(base, conflation_ms, mid,
                                                                              effective_bps):
    """docs/report.md "Mid": the report's mid is the book the strategy saw (bbo.parquet),
    so with depth_conflation_ms the same fill (a market buy at 60002.00, the venue's ask
    either way) has a different effective spread: the conflated mid lags the venue's."""
    from reports.metrics import compute
    from reports.rundir import load_run

    work = base / f"spread-{conflation_ms}"
    work.mkdir()
    (work / "buy.py").write_text(BUY_AT_150)
    config = resolve({"run": {"strategy": f"{work / 'buy.py'}:BuyAt150", "data": _store(work),
                              "instruments": [BTC], "params": {"t0": T}},
                      "venues": {"binance": {"profile": "zero-cost", "depth_conflation_ms": conflation_ms}}},
                     {}, base_dir=str(work))
    config = replace(config, start_ns=T, end_ns=T + 600 * MS)
    run_backtest(config, work / "run", write_html=False)
    run = load_run(work / "run")
    assert list(run.fills.price) == [60002.0]
    metrics = compute(run)
    assert metrics.sections["headline"]["effective_spread_bps"] == pytest.approx(effective_bps, abs=1e-9)
    assert effective_bps == pytest.approx({0: 0.166662, 100: 0.333328}[conflation_ms], abs=1e-6)
