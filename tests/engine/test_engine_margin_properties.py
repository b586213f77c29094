"""Property tests of contract positions (hypothesis): the exactness claims of engine/margin.py."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.margin import SETTLE_STEP, book_fill, position_for

fills = st.lists(st.tuples(st.sampled_from([1, -1]), st.integers(400_000, 700_000), st.integers(1, 50)),
                 min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(fills)
def test_inverse_booked_total_is_the_exact_total_rounded_once(seq):
    """However the fills split the position, the PnL booked (at 1e-8 per fill) adds up to
    the exact realized PnL rounded once; a flat position has realized everything."""
    pos = position_for(True, Decimal(1), Decimal("0.1"), Decimal(100))
    booked = Decimal(0)
    for side, price, lots in seq:
        booked += book_fill(pos, side, price, lots)
    assert booked == Decimal(round(pos.realized_exact / Fraction(SETTLE_STEP))) * SETTLE_STEP
    # close at the last price: realized + the position's unrealized before = realized after
    last = Fraction(seq[-1][1]) / 10
    before = pos.realized_exact + (pos.upnl_fraction(last) if pos.lots else 0)
    if pos.lots:
        book_fill(pos, -1 if pos.lots > 0 else 1, seq[-1][1], abs(pos.lots))
    assert pos.lots == 0 and pos.realized_exact == before


@settings(max_examples=200, deadline=None)
@given(fills, st.integers(400_000, 700_000))
def test_linear_realized_plus_unrealized_equals_the_cash_flow(seq, mark_ticks):
    """A linear contract (0.01 BTC per contract, OKX-like): realized + unrealized at a mark
    equals the signed cash flow of the fills valued at that mark, exactly."""
    pos = position_for(False, Decimal("0.01"), Decimal("0.1"), Decimal("0.01"))
    realized = Decimal(0)
    cash = Decimal(0)
    for side, price, lots in seq:
        realized += book_fill(pos, side, price, lots)
        cash -= side * Decimal(price) / 10 * lots * Decimal("0.01") * Decimal("0.01")
    mark = Decimal(mark_ticks) / 10
    held = pos.qty * Decimal("0.01") * mark
    assert realized + pos.unrealized(mark) == cash + held
