"""Contract market data: MARK_PRICE and FUNDING_RATE rows from every importer that has
them, hand-made inputs with hand-computed rows; synthetic perpetuals; stores keep them."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pytest

from engine.types import EventKind, load_instruments
from replay import open_source
from replay.importers import import_files
from replay.importers.contracts import funding_rate
from replay.validate import Mode

INSTRUMENTS = load_instruments()
PERP = "binanceusdm:BTC/USDT:USDT"
T0 = 1_723_161_255_000  # ms
MARK, FUNDING = EventKind.MARK_PRICE.value, EventKind.FUNDING_RATE.value


def _import(spec, fmt, *paths, skew=False):
    report, _rows = import_files(fmt, [str(p) for p in paths], spec, INSTRUMENTS, mode=Mode.STRICT,
                                 correct_skew=skew, say=lambda _t: None)
    assert report.errors == {}, report.lines()
    return np.concatenate(list(open_source(spec, {PERP: INSTRUMENTS[PERP]})))


def _mark_msg(local_ms, E, p, r, T):
    data = {"e": "markPriceUpdate", "E": E, "s": "BTCUSDT", "p": p, "i": p, "P": p, "r": r, "T": T}
    return f"{local_ms * 1_000_000} {json.dumps({'stream': 'btcusdt@markPrice@1s', 'data': data})}"


@pytest.mark.parametrize("store", ["duckdb", "parquet"])
def test_binance_ws_mark_price_update_gives_marks_and_funding(tmp_path, store):
    funding_at = T0 + 1000
    cap = tmp_path / "marks.txt"
    cap.write_text("\n".join([
        _mark_msg(T0 + 5, T0, "50000.12345678", "0.00010000", funding_at),
        _mark_msg(T0 + 505, T0 + 500, "50000.16000000", "0.00012000", funding_at),
        # past the funding time: the funding settled at the last rate and mark before it
        _mark_msg(T0 + 1505, T0 + 1500, "50001.05000000", "0.00005000", funding_at + 8 * 3600 * 1000),
    ]) + "\n")
    spec = f"duckdb:{tmp_path / 's.duckdb'}" if store == "duckdb" else f"parquet:{tmp_path / 'p'}"
    ev = _import(spec, "binance-ws", cap)
    got = [(int(r["kind"]), int(r["exch_ts"]), int(r["local_ts"]), int(r["side"]), int(r["price"]), int(r["qty"]))
           for r in ev]
    ms = 1_000_000
    assert got == [
        (MARK, T0 * ms, (T0 + 5) * ms, 0, 500001, 0),  # 50000.12345678 -> 50000.1 (half-even at the tick)
        (MARK, (T0 + 500) * ms, (T0 + 505) * ms, 0, 500002, 0),  # 50000.16 -> 50000.2
        (FUNDING, funding_at * ms, (T0 + 1505) * ms, 1, 120_000_000, 500002),  # 0.00012 in 1e-12 units
        (MARK, (T0 + 1500) * ms, (T0 + 1505) * ms, 0, 500010, 0),  # 50001.05 -> 50001.0 (to even)
    ]
    assert funding_rate(1, 120_000_000) == Decimal("0.00012")


def test_binance_public_funding_rate_and_mark_price_klines(tmp_path):
    funding = tmp_path / "BTCUSDT-fundingRate-2024-08.csv"
    funding.write_text("calc_time,funding_interval_hours,last_funding_rate\n"
                       "1722470400000,8,0.00010000\n1722499200000,8,-0.00002500\n")
    klines = tmp_path / "BTCUSDT-1m-2024-08-01.csv"
    klines.write_text("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                      "taker_buy_volume,taker_buy_quote_volume,ignore\n"
                      "1722470400000,61000.1,61010,60990,61005.12,0,1722470459999,0,0,0,0,0\n"
                      "1722470460000,61005.1,61011,61001,61007.35,0,1722470519999,0,0,0,0,0\n")
    ev = _import(f"duckdb:{tmp_path / 's.duckdb'}", "binance-public", funding, klines)
    got = [(int(r["kind"]), int(r["exch_ts"]), int(r["side"]), int(r["price"])) for r in ev]
    ms = 1_000_000
    assert got == [
        (FUNDING, 1722470400000 * ms, 1, 100_000_000),
        # each kline's close stamped at its close time, never at its open: no look-ahead
        (MARK, 1722470459999 * ms, 0, 610051),  # 61005.12 -> 61005.1
        (MARK, 1722470519999 * ms, 0, 610074),  # 61007.35 -> 61007.4 (half-even: 3.5 -> 4)
        (FUNDING, 1722499200000 * ms, -1, 25_000_000),  # -0.000025
    ]
    assert (ev["local_ts"] == ev["exch_ts"]).all()


def test_tardis_derivative_ticker(tmp_path):
    f_us = 1722499200000000  # a funding time, in microseconds
    csv = tmp_path / "binance-futures_derivative_ticker_2024-08-01_BTCUSDT.csv"
    head = ("exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,"
            "predicted_funding_rate,open_interest,last_price,index_price,mark_price\n")
    csv.write_text(head
                   + f"binance-futures,BTCUSDT,{f_us - 2_000_000},{f_us - 1_990_000},{f_us},0.0001,,1,50000,50000,50000.1\n"
                   + f"binance-futures,BTCUSDT,{f_us + 1_000_000},{f_us + 1_010_000},{f_us + 28_800_000_000},0.0002,,1,"
                   + "50010,50010,50010.0\n")
    ev = _import(f"duckdb:{tmp_path / 's.duckdb'}", "tardis", csv)
    got = [(int(r["kind"]), int(r["exch_ts"]), int(r["local_ts"]), int(r["side"]), int(r["price"]), int(r["qty"]))
           for r in ev]
    assert got == [
        (MARK, (f_us - 2_000_000) * 1000, (f_us - 1_990_000) * 1000, 0, 500001, 0),
        # funding_timestamp moved on: the 0.0001 settled at f_us, at the last mark before it
        (FUNDING, f_us * 1000, (f_us + 1_010_000) * 1000, 1, 100_000_000, 500001),
        (MARK, (f_us + 1_000_000) * 1000, (f_us + 1_010_000) * 1000, 0, 500100, 0),
    ]


def test_synthetic_perpetual_has_marks_basis_and_funding():
    from replay.synthetic import BASIS_MEAN_BPS, generate

    inst = INSTRUMENTS[PERP]
    eight_h = 8 * 3600 * 10**9
    start = (1_704_067_200_000_000_000 // eight_h + 1) * eight_h - 5 * 10**9  # 5 s before a funding time
    rows = np.concatenate(list(generate([inst], 7, start, 10 * 10**9)))
    marks = rows[rows["kind"] == MARK]
    funding = rows[rows["kind"] == FUNDING]
    assert len(marks) == 9 and (np.diff(marks["exch_ts"]) == 10**9).all()  # one a second
    assert len(funding) == 1 and int(funding["exch_ts"][0]) == start + 5 * 10**9
    assert (np.diff(rows["local_ts"]) >= 0).all()
    trades = rows[rows["kind"] == EventKind.TRADE.value]
    basis = (marks["price"].astype(float) / float(trades["price"][-1]) - 1) * 1e4
    assert 0 < abs(np.median(basis)) < 10 * BASIS_MEAN_BPS  # a premium of a few bps
    # Binance's rule: mean premium + clamp(0.01 % - premium, +-0.05 %): a premium near 2 bps
    # gives the 0.01 % interest rate
    assert funding_rate(int(funding["side"][0]), int(funding["price"][0])) * 10000 == 1
    again = np.concatenate(list(generate([inst], 7, start, 10 * 10**9, chunk_rows=700)))
    assert np.array_equal(again, rows)  # chunking does not change the stream


KLINE_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                "taker_buy_volume,taker_buy_quote_volume,ignore\n")


@pytest.mark.parametrize(("folder", "row", "message"), [
    # a trade kline has the same file name; its close is a last trade, not a mark
    ("", "1722470400000,61000.1,61010,60990,61005.12,12.5,1722470459999,762563.9,100,6,381281.9,0\n",
     "BTCUSDT-1m-2024-08-01.csv:2: volume 12.5: a trade kline, not markPriceKlines (whose volume is 0)"),
    # the premium index (close ~0.0001) and the index price: volume 0 too, told by their folder
    ("premiumIndexKlines/BTCUSDT/1m", "1722470400000,0.0001,0.0001,0.0001,0.0001,0,1722470459999,0,60,0,0,0\n",
     "BTCUSDT-1m-2024-08-01.csv: in a premiumIndexKlines folder, not markPriceKlines"),
    ("indexPriceKlines/BTCUSDT/1m", "1722470400000,61000.1,61010,60990,61005.12,0,1722470459999,0,60,0,0,0\n",
     "BTCUSDT-1m-2024-08-01.csv: in a indexPriceKlines folder, not markPriceKlines"),
])
def test_binance_public_klines_that_are_not_marks_are_refused(tmp_path, folder, row, message):
    """Only markPriceKlines become MARK_PRICE rows: other klines with the same file name
    used to be imported as marks without a word (a trade close, or a premium of 0.0001 as
    the mark, would drive margin, funding and liquidations)."""
    from engine.errors import DataError

    where = tmp_path / folder
    where.mkdir(parents=True, exist_ok=True)
    klines = where / "BTCUSDT-1m-2024-08-01.csv"
    klines.write_text(KLINE_HEADER + row)
    with pytest.raises(DataError) as err:
        import_files("binance-public", [str(klines)], f"duckdb:{tmp_path / 's.duckdb'}", INSTRUMENTS,
                     mode=Mode.STRICT, correct_skew=False, say=lambda _t: None)
    assert str(err.value).startswith(str(klines))
    assert message in str(err.value)


def test_binance_public_mark_price_klines_in_their_dump_folder_import(tmp_path):
    """The dumps' own layout (.../markPriceKlines/BTCUSDT/1m/FILE) imports as marks."""
    where = tmp_path / "futures" / "um" / "daily" / "markPriceKlines" / "BTCUSDT" / "1m"
    where.mkdir(parents=True)
    klines = where / "BTCUSDT-1m-2024-08-01.csv"
    klines.write_text(KLINE_HEADER + "1722470400000,61000.1,61010,60990,61005.12,0,1722470459999,0,60,0,0,0\n")
    ev = _import(f"duckdb:{tmp_path / 's.duckdb'}", "binance-public", klines)
    assert [(int(r["kind"]), int(r["price"])) for r in ev] == [(MARK, 610051)]


AGG_HEADER = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"


@pytest.mark.parametrize(("folder", "name", "qty", "instrument"), [
    # BTCUSDT is a spot pair and a USDⓈ-M perpetual: the dump's folder tells (it used to be spot)
    ("data/futures/um/daily/aggTrades/BTCUSDT", "BTCUSDT", "0.010", "binanceusdm:BTC/USDT:USDT"),
    ("data/spot/daily/aggTrades/BTCUSDT", "BTCUSDT", "0.01000000", "binance:BTC/USDT"),
    ("data/futures/cm/daily/aggTrades/BTCUSD_PERP", "BTCUSD_PERP", "3", "binancecoinm:BTC/USD:BTC"),
    # outside the dumps' layout: spot first, then the derivatives venues (BTCUSD_PERP used to be
    # "binance symbol BTCUSD_PERP has no instrument")
    ("", "BTCUSDT", "0.01000000", "binance:BTC/USDT"),
    ("", "BTCUSD_PERP", "3", "binancecoinm:BTC/USD:BTC"),
])
def test_binance_public_trades_dumps_go_to_their_market(tmp_path, folder, name, qty, instrument):
    from replay.stores import open_store

    where = tmp_path / folder
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{name}-aggTrades-2024-01-01.csv"
    path.write_text(AGG_HEADER + f"1,42000.1,{qty},1,1,1704067200000,true\n")
    spec = f"duckdb:{tmp_path / 's.duckdb'}"
    report, _rows = import_files("binance-public", [str(path)], spec, INSTRUMENTS, mode=Mode.STRICT,
                                 correct_skew=False, say=lambda _t: None)
    assert report.errors == {}, report.lines()
    with open_store(spec) as store:
        assert [s.id for s in store.stats()] == [instrument]
