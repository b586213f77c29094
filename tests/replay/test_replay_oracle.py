"""Correctness oracle on the real Binance captures (tests/data/binance-ws/).

The top of book rebuilt from the REST snapshot + depth diffs (aligned by update id the
way Binance documents) must equal the bookTicker stream wherever both carry the same
update id. The capture's receive stamps are ~1.27 s behind the venue's clock (the
recorder was not synchronised): the import measures that and `--correct-skew` fixes it.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.types import EventKind, load_instruments
from replay import open_source
from replay.importers import check_sources, parse_sources
from replay.importers.binance_ws import OracleResult
from replay.validate import Mode, Report

SPOT_LOTS = """
["binance:BTC/USDT"]
venue_symbol = "BTCUSDT"
base = "BTC"
quote = "USDT"
tick_size = "0.01"
lot_size = "0.00000001"
"""

CASES = [
    # file, instrument, expected diff-aligned tickers at least, trades
    ("spot_btcusdt_20240808.gz", "binance:BTC/USDT", 500, 9757),
    ("cm_btcusd_perp_20240808.gz", "binance:BTC/USD:BTC", 1000, 2286),
]


@pytest.fixture(scope="module")
def oracle_instruments(tmp_path_factory, perp_instruments_file):
    # the capture's level sizes have 8 decimals (Binance's older step size): a spot spec
    # with lot 0.00000001 keeps every level exact; the shipped 0.00001 lot leaves 3
    # off-grid levels (see test_shipped_lot_size_flags_off_grid_levels)
    path = tmp_path_factory.mktemp("oracle") / "instruments.toml"
    path.write_text(SPOT_LOTS + perp_instruments_file.read_text().split('["binance:BTC/USDT"]')[0])
    return load_instruments(path)


@pytest.mark.parametrize(("name", "inst_id", "min_compared", "trades"), CASES)
def test_rebuilt_top_of_book_equals_book_ticker(
    name, inst_id, min_compared, trades, oracle_instruments, ws_data
):
    data = ws_data
    report = Report()
    oracle: dict[str, OracleResult] = {}
    parts = parse_sources(
        "binance-ws", [str(data / name)], oracle_instruments, None, report, Mode.STRICT, oracle
    )
    result = oracle[inst_id]
    assert result.compared >= min_compared, report.lines()
    assert result.mismatches == 0, result.examples
    assert report.count("update_id_gap") == 0
    checked = check_sources(parts, report, Mode.STRICT, correct_skew=True)
    ev = checked[0].events
    assert report.count("crossed_book") == 0, report.lines()
    assert int((ev["kind"] == EventKind.TRADE).sum()) == trades
    # the recorder's clock is behind the venue by ~1.27 s: measured, then corrected
    skew = [n for n in report.notes if "receive - venue time" in n][0]
    median_ms = float(skew.split("median ")[1].split()[0])
    assert -1300 < median_ms < -1200
    assert (ev["local_ts"] - ev["exch_ts"]).min() == 0
    assert (np.diff(ev["local_ts"]) >= 0).all()


def test_real_capture_imports_and_replays(tmp_path, oracle_instruments, ws_data):
    data = ws_data
    from replay.importers import import_files

    spec = f"chdb:{tmp_path / 'ch'}"
    files = [str(data / c[0]) for c in CASES]
    _report, rows = import_files(
        "binance-ws", files, spec, oracle_instruments, correct_skew=True, say=lambda _t: None
    )
    run = {c[1]: oracle_instruments[c[1]] for c in CASES}
    src = open_source(spec, run, chunk_rows=50_000)
    got = np.concatenate(list(src))
    assert len(got) == rows == src.estimated_events
    assert (np.diff(got["local_ts"]) >= 0).all()
    assert set(np.unique(got["instrument"]).tolist()) == {0, 1}


def test_shipped_lot_size_flags_off_grid_levels(ws_data):
    data = ws_data
    report = Report()
    parse_sources("binance-ws", [str(data / CASES[0][0])], load_instruments(), None, report)
    assert report.count("off_grid") == 3
    assert "25.42618900" in report.problems["off_grid"].examples[0]
