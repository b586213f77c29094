from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from engine.ledger import Ledger
from engine.types import load_instruments

BTC = load_instruments()["binance:BTC/USDT"]
INSTS = {BTC.id: BTC}


def _ledger():
    return Ledger(INSTS, {"binance": {"USDT": Decimal("100000"), "BTC": Decimal("0")}})


prices = st.integers(min_value=1, max_value=10_000_000).map(BTC.ticks_to_price)
qtys = st.integers(min_value=1, max_value=10_000_000).map(BTC.lots_to_qty)
fees = st.integers(min_value=-1000, max_value=100_000).map(lambda c: Decimal(c) / 10000)


@given(prices, qtys, fees, fees)
def test_round_trip_at_one_price_loses_exactly_the_fees(price, qty, fee_buy, fee_sell):
    ledger = _ledger()
    ledger.apply_fill(BTC, 1, price, qty, fee_buy)
    ledger.apply_fill(BTC, -1, price, qty, fee_sell)
    assert ledger.position(BTC.id) == 0
    assert ledger.realized_pnl() == 0
    assert ledger.balance("binance", "USDT") == Decimal("100000") - fee_buy - fee_sell
    assert ledger.balance("binance", "BTC") == 0
    assert ledger.fees() == fee_buy + fee_sell


fills = st.lists(st.tuples(st.sampled_from([1, -1]), prices, qtys, fees), min_size=1, max_size=30)


@given(fills, prices)
def test_position_is_signed_sum_and_pnl_matches_equity(fill_list, mark):
    ledger = _ledger()
    start = ledger.equity({BTC.id: mark})
    for side, price, qty, fee in fill_list:
        ledger.apply_fill(BTC, side, price, qty, fee)
    assert ledger.position(BTC.id) == sum(side * qty for side, _, qty, _ in fill_list)
    assert ledger.balance("binance", "BTC") == ledger.position(BTC.id)
    cash = Decimal("100000") - sum(side * price * qty + fee for side, price, qty, fee in fill_list)
    assert ledger.balance("binance", "USDT") == cash
    # realized + unrealized - fees == change of marked equity, exactly
    marks = {BTC.id: mark}
    pnl = ledger.realized_pnl() + ledger.unrealized_pnl(marks) - Fraction(ledger.fees())
    assert pnl == ledger.equity(marks) - start


def test_average_price_and_realized_by_hand():
    ledger = _ledger()
    ledger.apply_fill(BTC, 1, Decimal("100"), Decimal("1"), Decimal("0"))
    ledger.apply_fill(BTC, 1, Decimal("103"), Decimal("2"), Decimal("0"))
    assert ledger.positions[BTC.id].avg_price == Decimal("102")
    realized = ledger.apply_fill(BTC, -1, Decimal("110"), Decimal("1.5"), Decimal("0.1"))
    assert realized == Fraction(12)  # 1.5 * (110 - 102)
    ledger.apply_fill(BTC, -1, Decimal("90"), Decimal("2"), Decimal("0"))  # close 1.5, open short 0.5
    assert ledger.position(BTC.id) == Decimal("-0.5")
    assert ledger.positions[BTC.id].avg_price == Decimal("90")
    assert ledger.realized_pnl() == Fraction(12) + Fraction(-18)  # 1.5 * (90 - 102)
