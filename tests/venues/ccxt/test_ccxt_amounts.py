"""`venues.ccxt.parse.venue_amount`: a venue's decimal text read exactly, without its padding
zeros, so a fee reads the same whichever report (REST reply padded to 8 decimals, stream
unpadded, ccxt's float) booked it first."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from venues.ccxt.parse import venue_amount


@given(st.integers(-10**12, 10**12), st.integers(0, 12), st.integers(0, 8))
def test_padding_zeros_never_change_the_amount_or_its_text(units, scale, pad):
    plain = Decimal(units).scaleb(-scale)
    padded = f"{plain:f}" + ("0" * pad if scale else ("." + "0" * pad if pad else ""))
    value = venue_amount(padded)
    assert value == plain  # exact
    assert str(value) == str(venue_amount(f"{plain:f}"))  # one text whatever the padding
    text = f"{value:f}"
    assert not ("." in text and text.endswith("0"))


def test_binance_texts():
    assert str(venue_amount("25.00005000")) == "25.00005"
    assert str(venue_amount("0.00000000")) == "0"
    assert str(venue_amount("100.00000000")) == "100"
    assert str(venue_amount(repr(float("0.00001")))) == "0.00001"  # ccxt's float: '1e-05'
    assert venue_amount("-3.50") == Decimal("-3.5")
