from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import ConfigError, InstrumentError, OffGridError
from engine.types import load_instruments, parse_instrument_id

CATALOG = load_instruments()
BTC = CATALOG["binance:BTC/USDT"]


def test_shipped_file_covers_five_venues():
    venues = {inst.venue for inst in CATALOG.values()}
    assert {"binance", "okx", "bybit", "coinbase", "kraken"} <= venues
    assert BTC.tick_size == Decimal("0.01") and BTC.lot_size == Decimal("0.00001")
    assert BTC.venue_symbol == "BTCUSDT" and BTC.base == "BTC" and BTC.quote == "USDT"


def test_exact_conversion_both_ways():
    assert BTC.price_to_ticks("61837.63") == 6183763
    assert BTC.price_to_ticks(Decimal("61837.630000")) == 6183763
    assert BTC.ticks_to_price(6183763) == Decimal("61837.63")
    assert BTC.qty_to_lots("0.00123") == 123
    assert str(BTC.lots_to_qty(100)) == "0.00100"


@pytest.mark.parametrize("value", ["61837.631", "0.005"])
def test_off_grid_price_raises_with_field_and_step(value):
    with pytest.raises(OffGridError, match="tick_size 0.01"):
        BTC.price_to_ticks(value)


def test_off_grid_qty_raises():
    with pytest.raises(OffGridError, match="lot_size"):
        BTC.qty_to_lots("0.000001")


def test_float_is_refused():
    with pytest.raises(InstrumentError, match="not exact"):
        BTC.price_to_ticks(1.5)


def test_rounding_helpers_are_explicit():
    assert BTC.round_price("100.005", "down") == Decimal("100.00")
    assert BTC.round_price("100.005", "up") == Decimal("100.01")
    assert BTC.round_price("100.015", "nearest") == Decimal("100.02")
    assert BTC.round_qty("0.123456") == Decimal("0.12345")
    with pytest.raises(InstrumentError, match="rounding mode"):
        BTC.round_price("1", "sideways")


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_ticks_round_trip(ticks):
    assert BTC.price_to_ticks(BTC.ticks_to_price(ticks)) == ticks
    assert BTC.qty_to_lots(BTC.lots_to_qty(ticks)) == ticks


@given(st.decimals(min_value=Decimal("-1e6"), max_value=Decimal("1e6"), places=4, allow_nan=False))
def test_rounded_values_are_on_grid(value):
    snapped = BTC.round_price(value, "down")
    assert snapped <= value
    BTC.price_to_ticks(snapped)  # does not raise


def test_instrument_id_format():
    assert parse_instrument_id("binance:BTC/USDT") == ("binance", "BTC/USDT")
    with pytest.raises(InstrumentError, match="venue:BASE/QUOTE"):
        parse_instrument_id("BTCUSDT")


def test_custom_file_and_errors(tmp_path):
    good = tmp_path / "i.toml"
    good.write_text('["x:AAA/BBB"]\nbase = "AAA"\nquote = "BBB"\ntick_size = "0.5"\nlot_size = "1"\n')
    inst = load_instruments(good)["x:AAA/BBB"]
    assert inst.venue_symbol == "AAABBB" and inst.price_to_ticks("2.5") == 5
    bad = tmp_path / "bad.toml"
    bad.write_text('["x:AAA/BBB"]\nbase = "AAA"\nquote = "BBB"\ntick_size = "0.5"\nlot_size = "1"\ncolour = "red"\n')
    with pytest.raises(ConfigError, match="unknown field"):
        load_instruments(bad)
    floaty = tmp_path / "float.toml"
    floaty.write_text('["x:AAA/BBB"]\nbase = "AAA"\nquote = "BBB"\ntick_size = 0.1\nlot_size = "1"\n')
    assert str(load_instruments(floaty)["x:AAA/BBB"].tick_size) == "0.1"  # Decimal from its text, never a float
    with pytest.raises(ConfigError, match="not found"):
        load_instruments(tmp_path / "missing.toml")


# -- decimal_str's fast path (str() when it is positional) against format(value, "f") ------
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from engine.types.instrument import decimal_str  # noqa: E402


@given(st.decimals(allow_nan=True, allow_infinity=True).filter(lambda d: not d.is_snan()) | st.builds(
    lambda digits, exp: Decimal(digits).scaleb(exp), st.integers(-(10**30), 10**30), st.integers(-40, 40)))
def test_decimal_str_is_positional_text_exactly_as_format_f(value):
    want = "0" if value == 0 else format(value, "f")
    assert decimal_str(value) == want


def test_decimal_str_hand_checked():
    assert decimal_str(Decimal("1E-7")) == "0.0000001"
    assert decimal_str(Decimal("1E+3")) == "1000"
    assert decimal_str(Decimal("0.00100")) == "0.00100"
    assert decimal_str(Decimal("-0.000")) == "0"
    assert decimal_str(Decimal("60000.01")) == "60000.01"


def test_shipped_contracts_state_their_source_and_ccxt_form():
    """#15: the shipped instruments file covers Binance USDⓈ-M and COIN-M perpetuals and
    quarterlies and the main perps of OKX and Bybit, each with the source of its figures,
    ccxt's symbol form (`BASE/QUOTE:SETTLE`, `-YYMMDD` for a dated future), margin brackets,
    and a funding interval (perpetuals) or an expiry (dated futures)."""
    import tomllib
    from datetime import UTC, datetime
    from pathlib import Path

    import engine

    tables = tomllib.loads((Path(engine.__file__).parent / "instruments.toml").read_text())
    contracts = {k: v for k, v in tables.items() if v.get("type") in ("swap", "future")}
    assert {"binanceusdm:BTC/USDT:USDT", "binanceusdm:BTC/USDT:USDT-251226", "binancecoinm:BTC/USD:BTC",
            "binancecoinm:BTC/USD:BTC-251226", "okx:BTC/USDT:USDT", "bybit:BTC/USDT:USDT"} <= set(contracts)
    for inst_id, table in contracts.items():
        inst = CATALOG[inst_id]
        assert table.get("source", "").strip(), f"{inst_id}: no source"
        assert inst.margin_brackets, f"{inst_id}: no margin brackets"
        symbol = inst_id.split(":", 1)[1]
        settle = symbol.split(":")[1].split("-")[0]
        assert settle == inst.settle and inst.inverse == (inst.settle == inst.base)
        if inst.type == "swap":
            assert inst.funding_interval_ns == 8 * 3600 * 10**9 and inst.expiry_ns is None
        else:
            expiry = datetime.fromtimestamp(inst.expiry_ns / 1e9, UTC)
            assert symbol.endswith("-" + expiry.strftime("%y%m%d")) and inst.funding_interval_ns is None
@settings(max_examples=200, deadline=None)
@given(units=st.integers(-(2**63) + 1, 2**63 - 1),
       step=st.sampled_from([Decimal("0.01"), Decimal("0.00001"), Decimal("1"), Decimal("0.5"), Decimal("10")]))
def test_units_text_is_the_text_of_units_times_step(units, step):
    from engine.types.instrument import _from_units, decimal_str, units_text

    assert units_text(units, step) == decimal_str(_from_units(units, step))
    assert units_text(units, step) == decimal_str(_from_units(units, step))  # remembered
