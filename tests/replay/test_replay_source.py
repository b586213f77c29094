"""open_source over DuckDB, Parquet and synthetic: order, bounds, remapping, errors."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import ConfigError, DataError
from engine.types import EVENT_DTYPE, EventKind, load_instruments
from modes.cli import main
from replay import merge_streams, open_source
from replay.schema import StoredInstrument
from replay.stores import open_store

BTC, ETH = "binance:BTC/USDT", "binance:ETH/USDT"


def _fill(spec, small_events, instruments):
    ids = [BTC, ETH]
    with open_store(spec, create=True) as store:
        with store.begin_import({i: StoredInstrument.of(instruments[i]) for i in ids}) as tx:
            for index, inst_id in enumerate(ids):
                part = small_events[small_events["instrument"] == index]
                # two appends: exercises seq continuation inside one transaction
                half = len(part) // 2
                tx.append(inst_id, part[:half])
                tx.append(inst_id, part[half:])


def _collect(src):
    chunks = list(src)
    return np.concatenate(chunks) if chunks else np.zeros(0, EVENT_DTYPE), chunks


@pytest.fixture(params=["duckdb", "parquet", "chdb"])
def store_spec(request, tmp_path, small_events, instruments):
    spec = {
        "duckdb": f"duckdb:{tmp_path / 'ev.duckdb'}",
        "parquet": f"parquet:{tmp_path / 'ds'}",
        "chdb": f"chdb:{tmp_path / 'ch'}",
    }[request.param]
    _fill(spec, small_events, instruments)
    return spec


def test_store_roundtrip_in_run_order(store_spec, small_events, instruments):
    # run order ETH first: indexes are remapped, ties broken by run order
    run = {ETH: instruments[ETH], BTC: instruments[BTC]}
    src = open_source(store_spec, run, chunk_rows=3000)
    assert src.instrument_ids == [ETH, BTC]
    assert src.estimated_events == len(small_events)
    got, chunks = _collect(src)
    assert all(len(c) <= 3000 for c in chunks)
    assert len(got) == len(small_events)
    expected = small_events.copy()
    expected["instrument"] = 1 - expected["instrument"]
    # (local_ts, run index, source order)
    key = np.lexsort((np.arange(len(expected)), expected["instrument"], expected["local_ts"]))
    assert np.array_equal(got, expected[key])
    for inst in (0, 1):
        assert np.array_equal(
            got[got["instrument"] == inst], expected[expected["instrument"] == inst]
        )
    lt = got["local_ts"]
    assert (np.diff(lt) >= 0).all()
    ties = (np.diff(lt) == 0) & (np.diff(got["instrument"].astype(int)) < 0)
    assert not ties.any(), "equal local_ts must keep run order"


def test_window_and_single_instrument(store_spec, small_events, instruments):
    lt = small_events["local_ts"]
    start, end = int(lt[len(lt) // 3]), int(lt[2 * len(lt) // 3])
    src = open_source(
        store_spec, {BTC: instruments[BTC]}, start_ns=start, end_ns=end, chunk_rows=1000
    )
    got, _ = _collect(src)
    want = small_events[(small_events["instrument"] == 0) & (lt >= start) & (lt < end)]
    assert src.estimated_events == len(want)
    # the window starts with the book as it stood at `start`, then the rows themselves
    assert got["kind"][0] == EventKind.SNAPSHOT_BEGIN
    warm_end = int(np.flatnonzero(got["kind"] == EventKind.SNAPSHOT_END)[0])
    assert np.array_equal(got[warm_end + 1 :], want)


def test_absent_instrument_and_spec_mismatch(store_spec, instruments):
    with pytest.raises(DataError, match="binance:SOL/USDT.*not in the data"):
        open_source(store_spec, {"binance:SOL/USDT": instruments["binance:SOL/USDT"]})
    from dataclasses import replace
    from decimal import Decimal

    other = replace(instruments[BTC], tick_size=Decimal("0.1"))
    with pytest.raises(DataError, match="tick_size 0.01.*0.1"):
        open_source(store_spec, {BTC: other})


def test_missing_store_names_path(tmp_path, instruments):
    for spec in (
        f"duckdb:{tmp_path / 'nope.duckdb'}",
        f"parquet:{tmp_path / 'nope'}",
        f"parquet:{tmp_path / 'x.parquet'}",
        f"chdb:{tmp_path / 'nope-ch'}",
    ):
        with pytest.raises(DataError, match="nope|x.parquet"):
            open_source(spec, {BTC: instruments[BTC]})
    with pytest.raises(ConfigError):
        open_source("bogus:thing", {BTC: instruments[BTC]})


def test_synthetic_deterministic_and_chunk_independent(instruments):
    run = {BTC: instruments[BTC], ETH: instruments[ETH]}
    a, chunks_a = _collect(open_source("synthetic:5:5s", run, chunk_rows=777))
    b, _ = _collect(open_source("synthetic:5:5s", run, chunk_rows=100_000))
    assert all(len(c) <= 777 for c in chunks_a)
    assert np.array_equal(a, b)
    c, _ = _collect(open_source("synthetic:6:5s", run))
    assert not np.array_equal(a[:1000], c[:1000])
    # an instrument's stream does not depend on the others in the run
    solo, _ = _collect(open_source("synthetic:5:5s", {ETH: instruments[ETH]}))
    assert np.array_equal(
        solo[["exch_ts", "local_ts", "kind", "side", "price", "qty"]],
        a[a["instrument"] == 1][["exch_ts", "local_ts", "kind", "side", "price", "qty"]],
    )
    assert (a["local_ts"] >= a["exch_ts"]).all()
    assert a["local_ts"].max() < a["local_ts"].min() + 5 * 10**9


def test_synthetic_window_and_bad_specs(instruments):
    run = {BTC: instruments[BTC]}
    start = 1_700_000_000 * 10**9
    got, _ = _collect(open_source("synthetic:1:1h", run, start_ns=start, end_ns=start + 2 * 10**9))
    assert got["local_ts"].min() >= start and got["local_ts"].max() < start + 2 * 10**9
    assert got["kind"][0] == EventKind.SNAPSHOT_BEGIN
    for bad in ("synthetic:x", "synthetic:1:10q", "synthetic:-1"):
        with pytest.raises(ConfigError):
            open_source(bad, run)


def test_merge_streams_ties_and_bounds():
    def stream(ts_list, sizes):
        arr = np.zeros(len(ts_list), EVENT_DTYPE)
        arr["local_ts"] = ts_list
        arr["order_id"] = np.arange(len(ts_list))
        pos = 0
        for s in sizes:
            yield arr[pos : pos + s]
            pos += s

    a = [1, 1, 2, 2, 2, 5, 9]
    b = [0, 2, 2, 3, 9, 9]
    out = np.concatenate(list(merge_streams([stream(a, [2, 1, 4]), stream(b, [1, 1, 1, 3])], 4)))
    pairs = list(
        zip(
            out["local_ts"].tolist(),
            out["instrument"].tolist(),
            out["order_id"].tolist(),
            strict=True,
        )
    )
    assert pairs == sorted(pairs)
    assert len(out) == len(a) + len(b)


def test_generate_cli_into_duckdb(tmp_path):
    path = tmp_path / "demo.duckdb"
    rc = main(
        [
            "data",
            "generate",
            "--to",
            f"duckdb:{path}",
            "--instrument",
            BTC,
            "--seed",
            "7",
            "--duration",
            "30s",
        ]
    )
    assert rc == 0
    inst = load_instruments()
    src = open_source(f"duckdb:{path}", {BTC: inst[BTC]})
    got, _ = _collect(src)
    ref, _ = _collect(open_source("synthetic:7:30s", {BTC: inst[BTC]}))
    assert np.array_equal(got, ref)
    trades = (got["kind"] == EventKind.TRADE).mean()
    assert 0.05 < trades < 0.25
    # a second generate into the same store refuses
    assert (
        main(
            [
                "data",
                "generate",
                "--to",
                f"duckdb:{path}",
                "--instrument",
                BTC,
                "--seed",
                "7",
                "--duration",
                "30s",
            ]
        )
        != 0
    )


def test_early_break_releases_store(store_spec, instruments):
    run = {BTC: instruments[BTC]}
    src = open_source(store_spec, run, chunk_rows=100)
    for _chunk in src:
        break
    # a second full pass works (and for chDB: the engine was released in between)
    again, _ = _collect(src)
    assert len(again) == src.estimated_events


def test_window_start_mid_stream_begins_with_the_book(store_spec, small_events, instruments):
    from replay.book import BookScanner

    btc = small_events[small_events["instrument"] == 0]
    start = int(btc["local_ts"][len(btc) // 2])
    got, _ = _collect(open_source(store_spec, {BTC: instruments[BTC]}, start_ns=start))
    assert got["kind"][0] == EventKind.SNAPSHOT_BEGIN and got["local_ts"][0] == start
    # the book after the warm snapshot + the window equals the book after everything
    full = BookScanner()
    full.scan(btc)
    windowed = BookScanner()
    windowed.scan(got)
    for a, b in zip(full.levels(), windowed.levels(), strict=True):
        assert np.array_equal(a, b)
    assert (got["local_ts"] >= start).all()
