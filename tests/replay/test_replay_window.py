"""The time window, one implementation for every reader and writer (issue 9, points 1-2).

- a window with no row of an instrument is a one-line DataError giving the data's span per
  instrument (every store, the synthetic source, `data export`, `backtest`); a window the
  data covers in part is a warning naming the covered span;
- `data export --from A --to B` writes the book at A (as the replay of the store window
  starts), so a backtest on the exported file equals the backtest on the store window.
"""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from engine.errors import DataError
from engine.types import EVENT_DTYPE, EventKind
from modes.cli import main
from replay import open_source
from replay.schema import StoredInstrument, format_ns
from replay.stores import open_store

BTC, ETH = "binance:BTC/USDT", "binance:ETH/USDT"
S = 1_000_000_000


def _collect(src) -> np.ndarray:
    chunks = list(src)
    return np.concatenate(chunks) if chunks else np.zeros(0, EVENT_DTYPE)


def _fill(spec, events, instruments):
    ids = [BTC, ETH]
    with open_store(spec, create=True) as store:
        with store.begin_import({i: StoredInstrument.of(instruments[i]) for i in ids}) as tx:
            for index, inst_id in enumerate(ids):
                tx.append(inst_id, events[events["instrument"] == index])


@pytest.fixture(params=["duckdb", "parquet", "parquet-file", "chdb"])
def any_store(request, tmp_path, small_events, instruments):
    """The same 20 s of two instruments in each kind of store (and an exported file)."""
    kind = request.param
    if kind == "parquet-file":
        _fill(f"duckdb:{tmp_path / 'src.duckdb'}", small_events, instruments)
        out = tmp_path / "all.parquet"
        assert main(["data", "export", f"duckdb:{tmp_path / 'src.duckdb'}", "--out", str(out)]) == 0
        return f"parquet:{out}"
    spec = {
        "duckdb": f"duckdb:{tmp_path / 'ev.duckdb'}",
        "parquet": f"parquet:{tmp_path / 'ds'}",
        "chdb": f"chdb:{tmp_path / 'ch'}",
    }[kind]
    _fill(spec, small_events, instruments)
    return spec


def _span(events, index):
    lt = events["local_ts"][events["instrument"] == index]
    return int(lt.min()), int(lt.max())


def test_window_after_the_data_is_refused_with_each_span(any_store, small_events, instruments):
    run = {BTC: instruments[BTC], ETH: instruments[ETH]}
    (b0, b1), (e0, e1) = _span(small_events, 0), _span(small_events, 1)
    later = b1 + 3600 * S
    with pytest.raises(DataError) as err:
        open_source(any_store, run, start_ns=later)
    text = str(err.value)
    assert "\n" not in text
    assert f"{BTC} spans {format_ns(b0)} .. {format_ns(b1)}" in text
    assert f"{ETH} spans {format_ns(e0)} .. {format_ns(e1)}" in text
    assert format_ns(later) in text
    # a window that ends before the data starts: refused too
    with pytest.raises(DataError, match="no data in the window"):
        open_source(any_store, run, end_ns=min(b0, e0))
    # a window inside the data: no warning
    inside = open_source(any_store, run, start_ns=max(b0, e0) + S, end_ns=min(b1, e1) - S)
    assert inside.warnings == []


def test_partial_cover_warns_with_the_covered_span(any_store, small_events, instruments):
    b0, b1 = _span(small_events, 0)
    start = b0 + 5 * S
    src = open_source(any_store, {BTC: instruments[BTC]}, start_ns=start, end_ns=b1 + 60 * S)
    assert src.warnings == [
        f"{any_store}: {BTC} covers only {format_ns(start)} .. {format_ns(b1)} of the window "
        f"{format_ns(start)} .. {format_ns(b1 + 60 * S)}"
    ]
    got = _collect(src)
    assert got["kind"][0] == EventKind.SNAPSHOT_BEGIN and int(got["local_ts"][0]) == start


def test_a_session_window_is_checked_against_what_the_session_received(any_store, small_events, instruments):
    """`backtest --session-window RUN`: the session's rows end before its last step (and may
    start after its start step); the data must cover what the session received in the
    window, not the whole window. Data that ends before the rows the session received
    still warns."""
    b0, b1 = _span(small_events, 0)
    run = {BTC: instruments[BTC]}
    window = (b0 + 2 * S, b1 + 60 * S)  # the last step long after the last row
    assert open_source(any_store, run, start_ns=window[0], end_ns=window[1], received=(b0 - S, b1)).warnings == []
    late = open_source(any_store, run, start_ns=window[0], end_ns=window[1], received=(b0, b1 + 30 * S))
    assert len(late.warnings) == 1 and f"covers only {format_ns(window[0])} .. {format_ns(b1)}" in late.warnings[0]


def test_synthetic_window_beyond_its_duration(instruments):
    from replay.synthetic import DEFAULT_START_NS

    run = {BTC: instruments[BTC]}
    src = open_source("synthetic:3:10s", run, end_ns=DEFAULT_START_NS + 60 * S)
    assert len(src.warnings) == 1
    assert f"covers only {format_ns(DEFAULT_START_NS)} .. {format_ns(DEFAULT_START_NS + 10 * S - 1)}" in src.warnings[0]
    with pytest.raises(DataError, match=f"{BTC} spans {format_ns(DEFAULT_START_NS)}"):
        open_source("synthetic:3:10s", run, end_ns=DEFAULT_START_NS - S)


def test_cli_backtest_and_export_refuse_a_window_outside(tmp_path, small_events, instruments, capsys,
                                                         request):
    spec = f"duckdb:{tmp_path / 'ev.duckdb'}"
    _fill(spec, small_events, instruments)
    root = request.config.rootpath
    out = tmp_path / "run"
    code = main(["backtest", "--strategy", str(root / "examples/market_maker.py:MarketMaker"),
                 "--data", spec, "--instrument", BTC, "--from", "2025-01-01T00:00:00Z",
                 "--out", str(out), "--no-report"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert err.count("\n") == 1 and "no data in the window 2025-01-01T00:00:00.000000Z" in err
    assert f"{BTC} spans {format_ns(_span(small_events, 0)[0])}" in err
    target = tmp_path / "x.parquet"
    code = main(["data", "export", spec, "--out", str(target), "--from", "2025-01-01T00:00:00Z"])
    assert code == 2 and not target.exists()
    assert "no data in the window" in capsys.readouterr().err


def test_export_window_replays_like_the_store_window(any_store, small_events, instruments, tmp_path):
    """Every reader and the export share `window_stream`: the exported window is the
    store window, row for row, beginning with the book at A."""
    b0, b1 = _span(small_events, 0)
    a, b = b0 + 7 * S, b0 + 12 * S
    out = tmp_path / "win.parquet"
    assert main(["data", "export", any_store, "--out", str(out), "--instrument", BTC,
                 "--from", str(a), "--to", str(b)]) == 0
    run = {BTC: instruments[BTC]}
    from_store = _collect(open_source(any_store, run, start_ns=a, end_ns=b))
    from_file = _collect(open_source(f"parquet:{out}", run))
    assert from_file["kind"][0] == EventKind.SNAPSHOT_BEGIN and int(from_file["local_ts"][0]) == a
    assert np.array_equal(from_store, from_file)
    # the same window of the exported file is the same again
    assert np.array_equal(_collect(open_source(f"parquet:{out}", run, start_ns=a, end_ns=b)), from_file)
    # seq numbers stay increasing across the snapshot rows and the window
    seq = pq.read_table(out, columns=["seq"]).column("seq").to_numpy()
    assert (np.diff(seq) > 0).all()


@pytest.fixture(scope="module")
def capture_store(tmp_path_factory):
    """The real spot capture imported with its own spec (tests/data/binance-ws)."""
    from tests.replay.conftest import WS_DATA

    path = tmp_path_factory.mktemp("cap") / "binance.duckdb"
    assert main(["data", "import", "--format", "binance-ws", str(WS_DATA / "spot_btcusdt_20240808.gz"),
                 "--to", f"duckdb:{path}", "--instruments", str(WS_DATA / "instruments.toml"),
                 "--correct-skew"]) == 0
    return f"duckdb:{path}"


def test_real_capture_export_starts_on_the_whole_book(capture_store, tmp_path):
    a, b = "2024-08-08T23:57:00Z", "2024-08-08T23:58:30Z"
    out = tmp_path / "win.parquet"
    assert main(["data", "export", capture_store, "--out", str(out), "--from", a, "--to", b]) == 0
    with open_store(capture_store) as store:
        inst = store.instruments()[BTC].to_instrument()
    from replay.schema import parse_time

    window = _collect(open_source(capture_store, {BTC: inst}, start_ns=parse_time(a), end_ns=parse_time(b)))
    exported = _collect(open_source(f"parquet:{out}", {BTC: inst}))
    assert np.array_equal(window, exported)
    end = int(np.flatnonzero(exported["kind"] == EventKind.SNAPSHOT_END)[0])
    body = exported[1:end]
    # the exported file starts on the whole book at A: the REST snapshot (1000 levels a
    # side) and every diff before A, the same levels a scan of all earlier rows gives
    from replay.book import BookScanner

    every = _collect(open_source(capture_store, {BTC: inst}, end_ns=parse_time(a)))
    full = BookScanner()
    full.scan(every[every["kind"] != EventKind.TRADE])
    bids, bq, asks, aq = full.levels()
    assert np.array_equal(body["price"][body["side"] == 1], bids[::-1])
    assert np.array_equal(body["qty"][body["side"] == 1], bq[::-1])
    assert np.array_equal(body["price"][body["side"] == -1], asks)
    assert np.array_equal(body["qty"][body["side"] == -1], aq)
    assert (len(bids), len(asks)) == (1218, 1380)
    # the backtests on both give the same fills: tests/replay/test_readme_market_data.py


def test_store_specs_unless_told_otherwise(capture_store, tmp_path, capsys, request):
    """A store-backed run takes tick/lot from the store; --instruments FILE that disagrees
    with the store on them is one line naming both (issue 9, point 6)."""
    root = request.config.rootpath
    args = ["backtest", "--strategy", str(root / "examples/market_maker.py:MarketMaker"), "--data", capture_store,
            "--from", "2024-08-08T23:59:00Z", "--to", "2024-08-08T23:59:10Z", "--no-report"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert (f"tickparity: warning: {BTC}: tick_size 0.01 / lot_size 0.00000001 from {capture_store} (the shipped "
            "instruments file says 0.01 / 0.00001; --instruments FILE overrides)") in err
    shipped = root / "engine" / "instruments.toml"
    assert main([*args, "--out", str(tmp_path / "b"), "--instruments", str(shipped)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"tickparity: error: {capture_store}: instrument {BTC} was stored with lot_size 0.00000001 but "
                   "the run's instrument spec says 0.00001; re-import the data or fix the instruments file"]


def test_store_instrument_unknown_to_the_shipped_file(tmp_path, small_events, instruments):
    from dataclasses import replace

    from engine.config import resolve
    from modes.backtest import select_instruments

    foo = replace(instruments[BTC], id="binance:FOO/USDC", symbol="FOO/USDC", venue_symbol="FOOUSDC",
                  base="FOO", quote="USDC")
    spec = f"duckdb:{tmp_path / 'foo.duckdb'}"
    with open_store(spec, create=True) as store, store.begin_import({foo.id: StoredInstrument.of(foo)}) as tx:
        tx.append(foo.id, small_events[small_events["instrument"] == 0])
    got = select_instruments(resolve(None, {"strategy": "x.py:X", "data": spec}))
    inst = got["binance:FOO/USDC"]
    assert (inst.base, inst.quote, inst.venue_symbol) == ("FOO", "USDC", "FOOUSDC")
    assert (inst.tick_size, inst.lot_size, inst.min_qty, inst.min_notional) == (
        instruments[BTC].tick_size, instruments[BTC].lot_size, instruments[BTC].lot_size, 0)
