"""A price beyond the int64 tick range (issue 9, point 7): the error names the largest
representable price at that tick and a coarser tick, in the importers and in the engine's
conversions; values with more than 18 digits that do fit are parsed exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.errors import InstrumentError
from engine.types import load_instruments
from modes.cli import main
from replay.numparse import NEGATIVE, OFF_GRID, OK, OVERFLOW, parse_units

BTC = "binance:BTC/USDT"
# (2^63 - 1) ticks of 0.01 = 92233720368547758.07
LARGEST = "92233720368547758.07"


def test_engine_conversion_names_the_largest_price_and_a_coarser_tick():
    inst = load_instruments()[BTC]
    assert inst.ticks_to_price(2**63 - 1) == Decimal(LARGEST)
    assert inst.price_to_ticks(LARGEST) == 2**63 - 1
    with pytest.raises(InstrumentError) as err:
        inst.price_to_ticks("100000000000000000.00")
    assert str(err.value) == (
        f"{BTC}: price 100000000000000000.00 is beyond the largest price representable at "
        f"tick_size 0.01: {LARGEST} (2^63-1 ticks); use a coarser tick_size (e.g. 0.1)"
    )
    with pytest.raises(InstrumentError, match=r"largest qty .* lot_size 0.00001: 92233720368547.75807 "
                                              r"\(2\^63-1 lots\); use a coarser lot_size \(e.g. 100\)"):
        inst.qty_to_lots("1e20")


def test_parser_settles_long_values_exactly():
    units, status = parse_units(
        ["12345678901234567.89", LARGEST, "92233720368547758.08", "1234567890123456789.001",
         "-12345678901234567890", "0.0000000000000000000001"],
        Decimal("0.01"),
    )
    assert status.tolist() == [OK, OK, OVERFLOW, OFF_GRID, NEGATIVE, OFF_GRID]
    assert units[:2].tolist() == [1234567890123456789, 2**63 - 1]


def test_import_names_the_limit(tmp_path, capsys):
    csv = tmp_path / "book.csv"
    csv.write_text(
        "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
        "binance,BTCUSDT,1723161250000000,1723161250001000,true,bid,60000.00,1.0\n"
        "binance,BTCUSDT,1723161250000000,1723161250001000,true,ask,100000000000000000.00,1.0\n"
    )
    assert main(["data", "import", "--format", "tardis", str(csv), "--to", f"duckdb:{tmp_path / 'x.duckdb'}"]) == 2
    captured = capsys.readouterr()
    assert f"bad_value 1 (first at {csv}:3)" in captured.err
    assert (f"{csv}:3: {BTC}: price 100000000000000000.00 is beyond the largest price representable "
            f"at tick_size 0.01: {LARGEST} (2^63-1 ticks); use a coarser tick_size (e.g. 0.1)") in captured.out
