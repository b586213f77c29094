from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from engine.ledger import Ledger
from engine.types import load_instruments

BTC = load_instruments()["binance:BTC/USDT"]
INSTS = {BTC.id: BTC}


def _ledger():
    return Ledger(INSTS, {"binance": {"USDT": Decimal("100000"), "BTC": Decimal("0")}})


prices = st.integers(min_value=1, max_value=10_000_000)  # ticks
qtys = st.integers(min_value=1, max_value=10_000_000)  # lots
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


fills = st.lists(st.tuples(st.sampled_from([1, -1]), prices, qtys, fees), min_size=1, max_size=40)


@given(fills, prices)
def test_position_is_signed_sum_and_pnl_matches_equity(fill_list, mark_ticks):
    ledger = _ledger()
    mark = BTC.ticks_to_price(mark_ticks)
    start = ledger.equity({BTC.id: mark})
    for side, price, qty, fee in fill_list:
        ledger.apply_fill(BTC, side, price, qty, fee)
    position = sum(side * BTC.lots_to_qty(qty) for side, _, qty, _ in fill_list)
    assert ledger.position(BTC.id) == position
    assert ledger.balance("binance", "BTC") == position
    cash = Decimal("100000") - sum(side * BTC.ticks_to_price(p) * BTC.lots_to_qty(q) + fee
                                   for side, p, q, fee in fill_list)
    assert ledger.balance("binance", "USDT") == cash
    # realized + unrealized - fees == change of marked equity, exactly
    marks = {BTC.id: mark}
    pnl = ledger.realized_pnl() + ledger.unrealized_pnl(marks) - ledger.fees()
    assert pnl == ledger.equity(marks) - start
    if ledger.position(BTC.id) == 0:  # flat: everything is realized
        assert ledger.unrealized_pnl(marks) == 0


def test_average_price_and_realized_by_hand():
    ledger = _ledger()
    p = BTC.price_to_ticks
    q = BTC.qty_to_lots
    ledger.apply_fill(BTC, 1, p("100"), q("1"), Decimal("0"))
    ledger.apply_fill(BTC, 1, p("103"), q("2"), Decimal("0"))
    assert ledger.positions[BTC.id].avg_price == Decimal("102")
    realized = ledger.apply_fill(BTC, -1, p("110"), q("1.5"), Decimal("0.1"))
    assert realized == Decimal("12")  # 1.5 * (110 - 102)
    ledger.apply_fill(BTC, -1, p("90"), q("2"), Decimal("0"))  # close 1.5, open short 0.5
    assert ledger.position(BTC.id) == Decimal("-0.5")
    assert ledger.positions[BTC.id].avg_price == Decimal("90")
    assert ledger.realized_pnl() == Decimal("12") + Decimal("-18")  # 1.5 * (90 - 102)


def test_closing_a_third_keeps_the_remainder_with_the_open_lots():
    # cost 10.00 for 3 lots; closing 1 lot takes 3.33 (truncated to the tick x lot step),
    # the extra 0.01 stays with the 2 open lots and is realized when they close
    inst = load_instruments()["kraken:BTC/USD"]  # tick 0.1, lot 0.00000001
    ledger = Ledger({inst.id: inst}, {"kraken": {"USD": Decimal("0")}})
    ledger.apply_fill(inst, 1, 1, 100, Decimal(0))  # 100 lots at 0.1
    ledger.apply_fill(inst, 1, 2, 200, Decimal(0))  # 200 lots at 0.2 -> cost 500 units
    realized = ledger.apply_fill(inst, -1, 2, 100, Decimal(0))  # close 100 of 300 at 0.2
    unit = inst.tick_size * inst.lot_size
    assert realized == (200 - 166) * unit  # closed cost 500*100//300 = 166 units
    ledger.apply_fill(inst, -1, 2, 200, Decimal(0))
    assert ledger.realized_pnl() == (600 - 500) * unit  # all of it, exactly, once flat


def test_fees_are_booked_in_the_asset_charged_and_valued_in_quote():
    """Binance spot: buy 0.5 BTC at 60000.00 (10 bp taker) pays 0.0005 BTC; sell 0.2 BTC
    at 61000.00 pays 12.2 USDT; a BNB fee is valued at the BNB/USDT mark given."""
    ledger = _ledger()
    lot, tick = BTC.lot_size, BTC.tick_size
    buy_lots, sell_lots = int(Decimal("0.5") / lot), int(Decimal("0.2") / lot)
    ledger.apply_fill(BTC, 1, int(Decimal("60000") / tick), buy_lots, Decimal("0.0005"), "BTC")
    assert ledger.balance("binance", "BTC") == Decimal("0.4995")
    assert ledger.balance("binance", "USDT") == Decimal("70000")  # 100000 - 30000, no USDT fee
    assert ledger.fees() == Decimal("30")  # 0.0005 BTC x 60000
    ledger.apply_fill(BTC, -1, int(Decimal("61000") / tick), sell_lots, Decimal("12.2"), "USDT")
    assert ledger.balance("binance", "BTC") == Decimal("0.2995")
    assert ledger.balance("binance", "USDT") == Decimal("82187.8")  # 70000 + 12200 - 12.2
    assert ledger.fees() == Decimal("42.2") and ledger.position(BTC.id) == Decimal("0.3")
    assert Ledger.fee_in_quote(BTC, 1, Decimal("0.01"), "BNB", Decimal("600")) == Decimal("6")
    ledger.apply_fill(BTC, 1, 1, 1, Decimal("0.01"), "BNB")  # no mark: kept apart, counted 0
    assert ledger.unpriced_fees == {("binance", "BNB"): Decimal("0.01")}
    assert ledger.balance("binance", "BNB") == Decimal("-0.01")
