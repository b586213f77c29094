"""Stores: appends continue seq, out-of-order imports still replay in order, `data check`
finds problems in a store, export/ls, ClickHouse visibility-based atomicity."""

from __future__ import annotations

import numpy as np
import pytest

from engine.types import EVENT_DTYPE, EventKind
from modes.cli import main
from replay import open_source
from replay.schema import StoredInstrument
from replay.stores import open_store

BTC = "binance:BTC/USDT"


def _trades(ts, first_id=1):
    ev = np.zeros(len(ts), EVENT_DTYPE)
    ev["local_ts"] = ts
    ev["exch_ts"] = np.asarray(ts) - 10
    ev["kind"] = EventKind.TRADE
    ev["side"] = 1
    ev["price"] = 6_000_000
    ev["qty"] = 100
    ev["order_id"] = np.arange(first_id, first_id + len(ts))
    return ev


def _specs(instruments):
    return {BTC: StoredInstrument.of(instruments[BTC])}


DAY = 86_400 * 10**9
T = 1_723_000_000 * 10**9


@pytest.mark.parametrize("kind", ["duckdb", "parquet", "chdb"])
def test_later_import_of_earlier_data_replays_in_time_order(kind, tmp_path, instruments):
    spec = {
        "duckdb": f"duckdb:{tmp_path / 'a.duckdb'}",
        "parquet": f"parquet:{tmp_path / 'a'}",
        "chdb": f"chdb:{tmp_path / 'c'}",
    }[kind]
    day2 = _trades(T + DAY + np.arange(5) * 1000, first_id=100)
    day1 = _trades(T + np.arange(5) * 1000 + 500, first_id=1)
    same_day = _trades(T + np.arange(3) * 1000 + 250, first_id=50)  # interleaves with day1
    for ev in (day2, day1, same_day):
        with open_store(spec, create=True) as store, store.begin_import(_specs(instruments)) as tx:
            tx.append(BTC, ev)
    got = np.concatenate(list(open_source(spec, {BTC: instruments[BTC]}, chunk_rows=4)))
    assert (np.diff(got["local_ts"]) >= 0).all()
    assert len(got) == 13
    with open_store(spec) as store:
        assert store.max_seq(BTC) == 12
        (stats,) = store.stats()
        assert (
            stats.events == 13
            and stats.first_local_ts == T + 250
            and stats.last_local_ts == T + DAY + 4000
        )


def test_data_check_reports_store_problems(tmp_path, instruments, capsys):
    spec = f"duckdb:{tmp_path / 'bad.duckdb'}"
    ev = _trades(np.array([T, T + 10, T + 5, T + 20]))
    ev["order_id"][3] = ev["order_id"][0]  # duplicate trade id, verbatim
    ev["exch_ts"][3] = ev["exch_ts"][0]
    ev["exch_ts"][1] = T + 50  # received before the venue sent it
    book = np.zeros(4, EVENT_DTYPE)
    book["local_ts"] = book["exch_ts"] = T + 30
    book["kind"] = [
        EventKind.SNAPSHOT_BEGIN,
        EventKind.BOOK_DELTA,
        EventKind.BOOK_DELTA,
        EventKind.SNAPSHOT_END,
    ]
    book["side"][1:3] = [1, -1]
    book["price"][1:3] = [6_000_010, 6_000_000]  # bid above ask: crossed after the snapshot
    book["qty"][1:3] = 5
    with open_store(spec, create=True) as store, store.begin_import(_specs(instruments)) as tx:
        tx.append(BTC, np.concatenate([ev, book]))
    assert main(["data", "check", spec]) == 1
    out = capsys.readouterr().out
    # a store always serves rows by (local_ts, seq): receive order is checked at import,
    # where the source order is known; the rest is checked here, rows named by seq
    for check in ("duplicate_trade_id", "local_before_exch", "crossed_book"):
        assert f"ERROR   {check}: 1" in out, out
    assert "unsorted_ts" not in out
    assert "seq 3: trade id 1 seen before, verbatim" in out


def test_export_window_and_reimport(tmp_path, instruments, capsys):
    spec = f"parquet:{tmp_path / 'ds'}"
    assert (
        main(
            [
                "data",
                "generate",
                "--to",
                spec,
                "--instrument",
                BTC,
                "--instrument",
                "binance:ETH/USDT",
                "--seed",
                "2",
                "--duration",
                "10s",
            ]
        )
        == 0
    )
    out = tmp_path / "btc.parquet"
    start = "2024-01-01T00:00:02Z"
    assert (
        main(
            [
                "data",
                "export",
                spec,
                "--out",
                str(out),
                "--instrument",
                BTC,
                "--from",
                start,
                "--to",
                "2024-01-01T00:00:05",
            ]
        )
        == 0
    )
    got = np.concatenate(list(open_source(f"parquet:{out}", {BTC: instruments[BTC]})))
    assert (
        got["local_ts"].min() >= 1_704_067_202 * 10**9
        and got["local_ts"].max() < 1_704_067_205 * 10**9
    )
    capsys.readouterr()
    assert main(["data", "ls", f"parquet:{out}"]) == 0
    listing = capsys.readouterr().out
    assert BTC in listing and "ETH" not in listing
    assert main(["data", "export", spec, "--out", str(tmp_path / "x.csv")]) != 0


def test_clickhouse_failed_import_is_invisible(tmp_path, instruments):
    from engine.errors import DataError

    spec = f"chdb:{tmp_path / 'ch'}"
    with open_store(spec, create=True) as store, store.begin_import(_specs(instruments)) as tx:
        tx.append(BTC, _trades(T + np.arange(3)))
    with pytest.raises(DataError, match="boom"), open_store(spec, create=True) as store:
        with store.begin_import(_specs(instruments)) as tx:
            tx.append(BTC, _trades(T + 10 + np.arange(3), first_id=10))
            raise DataError("boom")
    got = np.concatenate(list(open_source(spec, {BTC: instruments[BTC]})))
    assert got["order_id"].tolist() == [1, 2, 3]


def test_spec_mismatch_on_import(tmp_path, instruments):
    from dataclasses import replace
    from decimal import Decimal

    from engine.errors import DataError

    spec = f"duckdb:{tmp_path / 'm.duckdb'}"
    with open_store(spec, create=True) as store, store.begin_import(_specs(instruments)) as tx:
        tx.append(BTC, _trades(T + np.arange(3)))
    other = StoredInstrument.of(replace(instruments[BTC], lot_size=Decimal("0.001")))
    with open_store(spec, create=True) as store, pytest.raises(DataError, match="lot_size 0.00001"):
        store.begin_import({BTC: other})
