"""Importers on small hand-made files: binance-ws book rebuild and gaps, tardis,
binance-public, refusal / --repair / --skip, atomic imports, the CLI."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.errors import DataError
from engine.types import EventKind, load_instruments
from modes.cli import main
from replay import open_source
from replay.importers import import_files
from replay.validate import Mode

BTC = "binance:BTC/USDT"
T0 = 1_723_161_255_000  # ms


def _diff(local_ns, E, U, u, bids, asks):
    data = {"e": "depthUpdate", "E": E, "s": "BTCUSDT", "U": U, "u": u, "b": bids, "a": asks}
    return f"{local_ns} {json.dumps({'stream': 'btcusdt@depth@100ms', 'data': data})}"


def _trade(local_ns, T, tid, p, q, maker):
    data = {
        "e": "trade",
        "E": T + 1,
        "s": "BTCUSDT",
        "t": tid,
        "p": p,
        "q": q,
        "T": T,
        "m": maker,
        "M": True,
    }
    return f"{local_ns} {json.dumps({'stream': 'btcusdt@trade', 'data': data})}"


def _ticker(local_ns, u, b, B, a, A):
    data = {"u": u, "s": "BTCUSDT", "b": b, "B": B, "a": a, "A": A}
    return f"{local_ns} {json.dumps({'stream': 'btcusdt@bookTicker', 'data': data})}"


def _snapshot(local_ns, last_id, bids, asks):
    return f"{local_ns} {json.dumps({'lastUpdateId': last_id, 'bids': bids, 'asks': asks})}"


def _ms(ms_offset):
    return (T0 + ms_offset) * 1_000_000 + 5_000_000  # receive 5 ms after the venue


def ws_capture(path: Path, gap: bool = False, resnapshot: bool = False) -> Path:
    lines = [
        _diff(_ms(0), T0, 90, 99, [["100.00", "1.0"]], []),  # older than the snapshot: dropped
        _diff(
            _ms(100), T0 + 100, 100, 105, [["100.00", "2.0"]], [["101.00", "1.5"]]
        ),  # bridges 101
        _snapshot(
            _ms(150),
            100,
            [["100.00", "1.0"], ["99.00", "3.0"]],
            [["101.00", "1.0"], ["102.00", "2.0"]],
        ),
        _diff(
            _ms(200), T0 + 200, 106 if not gap else 108, 110, [["100.50", "0.5"]], [["101.00", "0"]]
        ),
        _trade(_ms(210), T0 + 210, 7001, "102.00", "0.25", False),
        _ticker(_ms(220), 110, "100.50", "0.5", "102.00", "2.0"),
        _diff(_ms(300), T0 + 300, 111, 112, [], [["101.50", "0.7"]]),
        _ticker(_ms(310), 112, "100.50", "0.5", "101.50", "0.7"),
        _trade(_ms(320), T0 + 320, 7002, "100.50", "0.1", True),
    ]
    if resnapshot:
        lines.append(_snapshot(_ms(400), 120, [["100.00", "1.0"]], [["101.00", "1.0"]]))
        lines.append(_diff(_ms(500), T0 + 500, 121, 121, [["100.00", "0.4"]], []))
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


def _run(
    spec, *paths, fmt="binance-ws", mode=Mode.STRICT, skew=True, instruments=None, force=False
):
    return import_files(
        fmt,
        [str(p) for p in paths],
        spec,
        instruments or load_instruments(),
        mode=mode,
        correct_skew=skew,
        say=lambda _t: None,
        force=force,
    )


def _events(spec, inst_id=BTC, instruments=None):
    insts = instruments or load_instruments()
    chunks = list(open_source(spec, {inst_id: insts[inst_id]}))
    return np.concatenate(chunks)


def test_binance_ws_rebuild(tmp_path):
    cap = ws_capture(tmp_path / "cap.gz")
    spec = f"duckdb:{tmp_path / 's.duckdb'}"
    report, rows = _run(spec, cap, skew=False)
    assert report.errors == {}
    ev = _events(spec)
    kinds = ev["kind"].tolist()
    assert kinds[0] == EventKind.SNAPSHOT_BEGIN and EventKind.SNAPSHOT_END in kinds
    # the bridging diff (U=100 <= 101 <= u=105) is applied right after the snapshot,
    # at the snapshot's receive time; the older diff is dropped
    end = kinds.index(EventKind.SNAPSHOT_END)
    assert (
        ev["local_ts"][end + 1] == _ms(150)
        and ev["price"][end + 1] == 10000
        and ev["qty"][end + 1] == 200000
    )
    trades = ev[ev["kind"] == EventKind.TRADE]
    assert trades["order_id"].tolist() == [7001, 7002]
    assert trades["side"].tolist() == [1, -1]  # m=true: buyer was maker -> seller aggressed
    assert (ev["local_ts"] - ev["exch_ts"]).min() >= 0
    assert rows == len(ev)
    assert report.count("bbo_mismatch") == 0
    assert any("2 of 2 tickers" in n and "0 mismatches" in n for n in report.notes)


def test_binance_ws_gap_refused_then_skip_or_repair(tmp_path):
    cap = ws_capture(tmp_path / "gap.gz", gap=True)
    spec = f"duckdb:{tmp_path / 'g.duckdb'}"
    with pytest.raises(DataError, match="update_id_gap 1"):
        _run(spec, cap)
    assert not (tmp_path / "g.duckdb").exists() or open_source_fails(spec)
    _report, _n = _run(spec, cap, mode=Mode.SKIP)
    ev = _events(spec)
    assert EventKind.CLEAR in ev["kind"].tolist()
    assert (ev["kind"] == EventKind.BOOK_DELTA).sum() == 4 + 2  # snapshot + bridging diff only
    spec2 = f"parquet:{tmp_path / 'g2'}"
    report, _n = _run(spec2, cap, mode=Mode.REPAIR)
    assert report.count("update_id_gap") == 1
    assert EventKind.CLEAR not in _events(spec2)["kind"].tolist()


def open_source_fails(spec) -> bool:
    try:
        _events(spec)
    except DataError:
        return True
    return False


def test_binance_ws_gap_resync_at_next_snapshot(tmp_path):
    cap = ws_capture(tmp_path / "gap2.gz", gap=True, resnapshot=True)
    spec = f"duckdb:{tmp_path / 'r.duckdb'}"
    report, _n = _run(spec, cap)  # a warning: resynchronised, nothing refused
    assert report.problems["update_id_gap"].severity == "warning"
    ev = _events(spec)
    kinds = ev["kind"].tolist()
    assert kinds.count(EventKind.SNAPSHOT_BEGIN) == 2 and EventKind.CLEAR in kinds
    assert kinds.index(EventKind.CLEAR) < len(kinds) - 1 - kinds[::-1].index(
        EventKind.SNAPSHOT_BEGIN
    )


def test_skew_refused_unless_corrected(tmp_path):
    cap = ws_capture(tmp_path / "c.gz")
    # receive stamps 2 s behind the venue, as on the real recording machine
    text = gzip.decompress(cap.read_bytes()).decode().splitlines()
    shifted = [f"{int(t.split(' ', 1)[0]) - 2_000_000_000} {t.split(' ', 1)[1]}" for t in text]
    cap.write_bytes(gzip.compress("\n".join(shifted).encode()))
    spec = f"duckdb:{tmp_path / 'k.duckdb'}"
    with pytest.raises(DataError, match="local_before_exch"):
        _run(spec, cap, skew=False)
    report, _n = _run(spec, cap, skew=True)
    assert any("shifted by +1995.000 ms" in a for a in report.actions)
    ev = _events(spec)
    assert (ev["local_ts"] - ev["exch_ts"]).min() == 0


def test_unknown_symbol_and_off_grid_reported_with_line(tmp_path):
    cap = tmp_path / "bad.gz"
    lines = gzip.decompress(ws_capture(tmp_path / "x.gz").read_bytes()).decode().splitlines()
    lines[4] = _trade(_ms(210), T0 + 210, 7001, "102.005", "0.25", False)  # off the 0.01 grid
    lines.append(lines[4].replace("BTCUSDT", "DOGEBTC").replace("btcusdt", "dogebtc"))
    cap.write_bytes(gzip.compress("\n".join(lines).encode()))
    with pytest.raises(DataError) as err:
        _run(f"duckdb:{tmp_path / 'b.duckdb'}", cap)
    assert "off_grid 1" in str(err.value) and "unknown_symbol 1" in str(err.value)
    report, _n = _run(f"duckdb:{tmp_path / 'b.duckdb'}", cap, mode=Mode.SKIP)
    ex = report.problems["off_grid"].examples[0]
    assert ex.startswith(f"{cap}:5:") and "102.005" in ex


TARDIS_BOOK = """exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
binance,BTCUSDT,1723161250000000,1723161250001000,true,bid,61000.00,1.5
binance,BTCUSDT,1723161250000000,1723161250001000,true,ask,61000.01,0.3
binance,BTCUSDT,1723161250100000,1723161250101000,false,ask,61000.01,0
binance,BTCUSDT,1723161250100000,1723161250101000,false,ask,61000.05,0.7
binance,BTCUSDT,1723161250300000,1723161250301000,true,bid,60990.00,1
binance,BTCUSDT,1723161250300000,1723161250301000,true,ask,60990.50,1
"""
TARDIS_TRADES = """exchange,symbol,timestamp,local_timestamp,id,side,price,amount
binance,BTCUSDT,1723161250150000,1723161250151000,100,buy,61000.05,0.1
binance,BTCUSDT,1723161250160000,1723161250161000,101,sell,61000.00,0.05
binance,BTCUSDT,1723161250160000,1723161250171000,101,sell,61000.00,0.05
"""


def test_tardis_book_and_trades(tmp_path):
    book = tmp_path / "book.csv.gz"
    book.write_bytes(gzip.compress(TARDIS_BOOK.encode()))
    trades = tmp_path / "trades.csv"
    trades.write_text(TARDIS_TRADES)
    spec = f"parquet:{tmp_path / 'ds'}"
    with pytest.raises(DataError, match="duplicate_trade_id 1"):
        _run(spec, book, trades, fmt="tardis")
    report, _n = _run(spec, book, trades, fmt="tardis", mode=Mode.REPAIR)
    assert report.problems["duplicate_trade_id"].examples[0].startswith(f"{trades}:4:")
    ev = _events(spec)
    kinds = ev["kind"].tolist()
    # two snapshot runs -> two SNAPSHOT_BEGIN/END pairs; trades merged by local_ts
    assert kinds.count(EventKind.SNAPSHOT_BEGIN) == 2 and kinds.count(EventKind.SNAPSHOT_END) == 2
    assert (np.diff(ev["local_ts"]) >= 0).all()
    assert ev[ev["kind"] == EventKind.TRADE]["side"].tolist() == [1, -1]
    assert ev["local_ts"][0] == 1723161250001000 * 1000


def test_tardis_unknown_symbol_and_bad_values(tmp_path):
    bad = TARDIS_BOOK.replace("61000.05,0.7", "61000.05,-0.7").replace(
        "ask,61000.01,0.3", "ask,61000.01,NaN"
    )
    bad += "kraken,FOOBAR,1723161250400000,1723161250401000,false,bid,1,1\n"
    path = tmp_path / "b.csv"
    path.write_text(bad)
    with pytest.raises(DataError) as err:
        _run(f"duckdb:{tmp_path / 'x.duckdb'}", path, fmt="tardis")
    assert "bad_value 2" in str(err.value) and "unknown_symbol 1" in str(err.value)


def test_binance_public_formats(tmp_path, perp_instruments_file):
    insts = load_instruments(perp_instruments_file)
    csv = tmp_path / "BTCUSDT-trades-2024-08-08.csv"
    csv.write_text(
        "3735683259,61837.63000000,0.02000000,1236.7526,1723161255342,True,True\n"
        "3735683260,61837.64000000,0.00100000,61.83764,1723161255350,False,True\n"
    )
    zipped = tmp_path / "BTCUSDT-trades-2024-08-08.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.write(csv, csv.name)
    agg = tmp_path / "BTCUSD_PERP-aggTrades-2024-08-08.csv"
    agg.write_text(
        "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
        "1,61804.8,4,10,11,1723161257679000,false\n2,61804.7,2,12,12,1723161257680000,true\n"
    )
    bt = tmp_path / "BTCUSD_PERP-bookTicker-2024-08-08.csv"
    bt.write_text(
        "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time\n"
        "1,61804.7,35,61804.8,1645,1723161257465,1723161257476\n"
        "2,61804.7,30,61804.8,1645,1723161257466,1723161257477\n"
        "3,61804.8,3,61804.9,10,1723161257467,1723161257478\n"
    )
    spec = f"duckdb:{tmp_path / 'p.duckdb'}"
    _run(spec, zipped, fmt="binance-public", instruments=insts)
    ev = _events(spec, BTC, insts)
    assert ev["order_id"].tolist() == [3735683259, 3735683260] and ev["side"].tolist() == [-1, 1]
    assert (ev["local_ts"] == ev["exch_ts"]).all() and ev["exch_ts"][0] == 1723161255342 * 10**6
    _run(spec, agg, bt, fmt="binance-public", instruments=insts)
    perp = _events(spec, "binance:BTC/USD:BTC", insts)
    trades = perp[perp["kind"] == EventKind.TRADE]
    assert trades["exch_ts"][0] == 1723161257679 * 10**6  # microseconds recognised
    assert trades["side"].tolist() == [1, -1]
    from replay.book import BookScanner

    scanner = BookScanner()
    scanner.scan(perp[perp["kind"] != EventKind.TRADE])
    bids, bq, asks, aq = scanner.levels()
    assert (
        bids.tolist() == [618048]
        and bq.tolist() == [3]
        and asks.tolist() == [618049]
        and aq.tolist() == [10]
    )


def test_import_is_atomic(tmp_path, monkeypatch):
    from replay.stores.base import ImportTransaction

    cap = ws_capture(tmp_path / "cap.gz")
    for spec in (
        f"duckdb:{tmp_path / 'a.duckdb'}",
        f"parquet:{tmp_path / 'a'}",
        f"chdb:{tmp_path / 'a-ch'}",
    ):
        _run(spec, cap)
        before = _events(spec)
        original = ImportTransaction.append
        calls = {"n": 0}

        def failing(self, inst_id, events, _orig=original, _calls=calls):
            _calls["n"] += 1
            if _calls["n"] == 2:
                raise DataError("disk full (injected)")
            return _orig(self, inst_id, events)

        monkeypatch.setattr(ImportTransaction, "append", failing)
        big = ws_capture(tmp_path / "big.gz")
        with pytest.raises(DataError, match="injected"):
            import_files(
                "binance-ws",
                [str(big)],
                spec,
                load_instruments(),
                mode=Mode.SKIP,  # its trades are already stored: skip them, write the rest
                correct_skew=True,
                say=lambda _t: None,
                chunk_rows=8,
                force=True,  # the same bytes as cap.gz: past the sha256 refusal
            )
        monkeypatch.setattr(ImportTransaction, "append", original)
        after = _events(spec)
        assert np.array_equal(before, after), spec
        if spec.startswith("parquet:"):
            assert not list((tmp_path / "a").glob(".staging/*"))


def test_cli_import_ls_check_export(tmp_path, capsys):
    cap = ws_capture(tmp_path / "cap.gz")
    store = f"duckdb:{tmp_path / 'c.duckdb'}"
    assert (
        main(
            ["data", "import", "--format", "binance-ws", str(cap), "--to", store, "--correct-skew"]
        )
        == 0
    )
    assert main(["data", "ls", store]) == 0
    out = capsys.readouterr().out
    assert BTC in out and "imported" in out
    assert main(["data", "check", store]) == 0
    assert main(["data", "check", "--format", "binance-ws", str(cap)]) == 0
    out_file = tmp_path / "x.parquet"
    assert main(["data", "export", store, "--out", str(out_file)]) == 0
    a = _events(store)
    b = _events(f"parquet:{out_file}")
    assert np.array_equal(a, b)
    # a user error is one line on stderr and a non-zero exit
    capsys.readouterr()
    assert (
        main(["data", "import", "--format", "tardis", str(tmp_path / "missing.csv"), "--to", store])
        != 0
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.csv" in err[0]
    assert main(["data", "ls", f"duckdb:{tmp_path / 'none.duckdb'}"]) != 0


def test_a_file_another_process_imported_meanwhile_is_already_imported(tmp_path, monkeypatch):
    """Two imports of one file started together: the early digest check found the store busy
    (or empty), so the second learns of the first only after parsing. It must say "already
    imported", never count the first one's trade ids as duplicate_trade_id."""
    import replay.stores.base

    cap = ws_capture(tmp_path / "cap.gz")
    spec = f"duckdb:{tmp_path / 'race.duckdb'}"
    _run(spec, cap)
    before = _events(spec)
    monkeypatch.setattr(replay.stores.base, "refuse_reimports_early", lambda *_: None)
    for mode in (Mode.STRICT, Mode.SKIP, Mode.REPAIR):
        with pytest.raises(DataError, match="already imported") as err:
            _run(spec, cap, mode=mode)
        assert "duplicate_trade_id" not in str(err.value)
    assert np.array_equal(_events(spec), before)


def test_reimport_of_the_same_file_is_refused(tmp_path):
    cap = ws_capture(tmp_path / "cap.gz")
    spec = f"duckdb:{tmp_path / 'twice.duckdb'}"
    _run(spec, cap)
    before = _events(spec)
    # the same bytes (sha256) are refused whatever the mode: --skip used to add the book
    # rows again (issue 17)
    for mode in (Mode.STRICT, Mode.SKIP, Mode.REPAIR):
        with pytest.raises(DataError, match="already imported"):
            _run(spec, cap, mode=mode)
    assert np.array_equal(_events(spec), before)
    # past the digest (--force), known trade ids are still refused in strict mode
    with pytest.raises(DataError, match="duplicate_trade_id 2"):
        _run(spec, cap, force=True)
    assert np.array_equal(_events(spec), before)
    # --force --skip drops the known trades, keeps the rest
    report, _n = _run(spec, cap, mode=Mode.SKIP, force=True)
    assert report.problems["overlaps_store"].severity == "warning"
    assert (_events(spec)["kind"] == EventKind.TRADE).sum() == 2
