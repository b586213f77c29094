"""A backtest refuses market data whose venue time runs ahead of its receipt time beyond a
clock skew (a negative feed latency): a paper session recorded against the exchange emulator
at `--speed 5` stamps venue time five times faster than the wall clock, so its
market.duckdb replayed as a backtest let the strategy see the market before the venue had
it, silently. The error names the data file and the row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.config import RunConfig
from engine.errors import DataError
from engine.types import EVENT_DTYPE, EventKind, load_instruments
from modes.backtest import run_backtest

ROOT = Path(__file__).resolve().parents[2]
STRATEGY = f"{ROOT / 'examples' / 'market_maker.py'}:MarketMaker"
INST = "binance:BTC/USDT"
T0 = 1_704_067_200_000_000_000
S = 1_000_000_000


def _store(path: Path, speed: float, skew_ns: int = 0) -> str:
    """20 steps 100 ms apart in receipt time, each a bid and an ask; venue time = T0 +
    speed x elapsed receipt time + skew_ns (speed 5: the emulator's --speed 5)."""
    from replay.schema import StoredInstrument
    from replay.stores import open_store

    inst = load_instruments()[INST]
    local = T0 + np.repeat(np.arange(20, dtype=np.int64), 2) * (S // 10)
    rows = np.zeros(len(local), dtype=EVENT_DTYPE)
    rows["local_ts"] = local
    rows["exch_ts"] = T0 + ((local - T0) * speed).astype(np.int64) + skew_ns
    rows["kind"] = EventKind.BOOK_DELTA
    rows["side"][0::2], rows["side"][1::2] = 1, -1
    rows["price"][0::2], rows["price"][1::2] = 6_000_000, 6_000_100
    rows["qty"] = 100_000
    spec = f"duckdb:{path}"
    with open_store(spec, create=True) as store, store.begin_import(
            {INST: StoredInstrument.of(inst)}, expected_rows=len(rows)) as tx:
        tx.append(INST, rows)
    return spec


def test_a_recording_at_emulator_speed_5_is_refused_naming_the_file_and_row(tmp_path):
    spec = _store(tmp_path / "paper-speed5.duckdb", speed=5)
    with pytest.raises(DataError) as err:
        run_backtest(RunConfig(strategy=STRATEGY, data=spec, instruments=(INST,)), tmp_path / "run", write_html=False)
    # step k: venue time 4 x k x 100 ms ahead of receipt; first beyond 1 s at k = 3 (1.2 s),
    # whose bid is the 7th row of the replay
    text = str(err.value)
    assert text.startswith(f"{spec}: row 7 (binance:BTC/USDT): venue time 2024-01-01T00:00:01.500000Z is "
                           "1.200 s after its local receipt 2024-01-01T00:00:00.300000Z (a negative feed "
                           "latency beyond the 1 s a clock skew explains)"), text
    assert "--speed" in text and "\n" not in text


def test_a_clock_skew_within_a_second_still_runs(tmp_path):
    spec = _store(tmp_path / "skewed.duckdb", speed=1, skew_ns=S // 2)  # venue clock 0.5 s ahead
    out = run_backtest(RunConfig(strategy=STRATEGY, data=spec, instruments=(INST,)), tmp_path / "run",
                       write_html=False)
    assert (Path(out) / "summary.json").is_file()
