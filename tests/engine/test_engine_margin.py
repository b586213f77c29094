"""Contract accounting (engine/margin.py) against hand-computed values.

Formulas: Binance's published liquidation-price formulas (USDⓈ-M
https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93, COIN-M
https://www.binance.com/en/support/faq/ceccfcfb4e3a45e3b48b0b1bb1a8ae46) and funding
(position notional at the mark x rate; longs pay when the rate is positive).
"""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction

import pytest

from engine.errors import ConfigError
from engine.ledger import Ledger
from engine.margin import MarginSettings
from engine.types import load_instruments
from engine.types.orders import ReasonCode

INSTRUMENTS = load_instruments()
USDM = INSTRUMENTS["binanceusdm:BTC/USDT:USDT"]
COINM = INSTRUMENTS["binancecoinm:BTC/USD:BTC"]


def _ledger(mode: str = "isolated", leverage: int = 10, usdt: str = "10000", btc: str = "1") -> Ledger:
    ledger = Ledger({USDM.id: USDM, COINM.id: COINM},
                    {"binanceusdm": {"USDT": D(usdt)}, "binancecoinm": {"BTC": D(btc)}})
    table = {"margin_mode": mode, "leverage": leverage}
    ledger.derivatives.settings = {v: MarginSettings.from_table(v, table) for v in ("binanceusdm", "binancecoinm")}
    return ledger


def _fill(ledger, inst, side, price, qty, fee="0"):
    return ledger.apply_fill(inst, side, inst.price_to_ticks(price), inst.qty_to_lots(qty), D(fee))


def test_shipped_brackets_derive_binances_maintenance_amounts():
    # cum of the recorded GET /fapi/v1/leverageBracket response for BTCUSDT
    assert [t.maintenance_amount for t in USDM.margin_brackets] == [
        0, 50, 1300, 46300, 546300, 2546300, 5046300, 8046300, 28046300, 103046300]
    assert COINM.inverse and COINM.contract_size == 100 and COINM.settle == "BTC"
    assert USDM.funding_interval_ns == 8 * 3600 * 10**9


def test_linear_liquidation_and_bankruptcy_prices_isolated_10x():
    ledger = _ledger()
    book = ledger.derivatives
    _fill(ledger, USDM, 1, "50000", "1")  # long 1 BTC at 50,000, 10x: isolated margin 5,000
    book.set_mark(USDM.id, D(50000), 0)
    assert book.isolated[USDM.id] == 5000
    # LP = (WB + cum - side*Q*EP) / (Q*MMR - side*Q) = (5000 - 50000) / (0.004 - 1) = 11250000/249
    assert book.liquidation_price(USDM) == D("45180.722891566265060241")
    assert book.bankruptcy_price(USDM) == 45000  # 50,000 - 5,000 / 1
    ledger2 = _ledger()
    _fill(ledger2, USDM, -1, "50000", "1")
    ledger2.derivatives.set_mark(USDM.id, D(50000), 0)
    # the short: tier 1 gives (5000 + 50000) / (0.004 + 1) = 54780.88, a notional above
    # 50,000, so Binance's note applies: recompute with tier 2 (0.5 %, cum 50):
    # (5000 + 50 + 50000) / (0.005 + 1) = 55050 / 1.005
    assert ledger2.derivatives.liquidation_price(USDM) == D("54776.119402985074626866")
    assert ledger2.derivatives.bankruptcy_price(USDM) == 55000


def test_inverse_liquidation_and_bankruptcy_prices_isolated_10x():
    ledger = _ledger()
    book = ledger.derivatives
    _fill(ledger, COINM, 1, "50000", "10")  # 10 contracts x 100 USD = 0.02 BTC; 10x: 0.002 BTC margin
    book.set_mark(COINM.id, D(50000), 0)
    assert book.isolated[COINM.id] == D("0.002")
    # LP = Q*CS*(MMR + side) / (WB + cum + side*Q*CS/EP) = 1000 * 1.004 / (0.002 + 0.02) = 502000/11
    assert book.liquidation_price(COINM) == D("45636.363636363636363636")
    assert book.bankruptcy_price(COINM) == D("45454.545454545454545455")  # 1000 / 0.022
    ledger2 = _ledger()
    _fill(ledger2, COINM, -1, "50000", "10")  # short: 1000 * (0.004 - 1) / (0.002 - 0.02) = 166000/3
    ledger2.derivatives.set_mark(COINM.id, D(50000), 0)
    assert ledger2.derivatives.liquidation_price(COINM) == D("55333.333333333333333333")


def test_cross_liquidation_price_uses_the_whole_wallet():
    ledger = _ledger(mode="cross", usdt="10000")
    _fill(ledger, USDM, 1, "50000", "1")
    ledger.derivatives.set_mark(USDM.id, D(50000), 0)
    # WB = 10,000: LP = (10000 - 50000) / (0.004 - 1) = 40000/0.996
    assert ledger.derivatives.liquidation_price(USDM) == D("40160.642570281124497992")


def test_funding_on_a_long_and_a_short():
    long_book = _ledger(mode="cross")
    _fill(long_book, USDM, 1, "60000", "2")
    # 2 BTC x 60,000 mark x 0.0001 = 12 USDT paid by the long
    assert long_book.derivatives.pay_funding(USDM, D("0.0001"), D(60000)) == D("-12")
    assert long_book.balance("binanceusdm", "USDT") == D("9988")
    short_book = _ledger(mode="cross")
    _fill(short_book, USDM, -1, "60000", "2")
    assert short_book.derivatives.pay_funding(USDM, D("0.0001"), D(60000)) == D("12")
    assert short_book.balance("binanceusdm", "USDT") == D("10012")
    # a negative rate: the short pays
    assert short_book.derivatives.pay_funding(USDM, D("-0.00025"), D(60000)) == D("-30")
    # inverse long: 1,000 USD / 60,000 x 0.0001 = 0.0000016666.. BTC -> 0.00000167 (1e-8, half-even)
    inv = _ledger(mode="cross")
    _fill(inv, COINM, 1, "50000", "10")
    assert inv.derivatives.pay_funding(COINM, D("0.0001"), D(60000)) == D("-0.00000167")
    assert inv.balance("binancecoinm", "BTC") == D("0.99999833")
    assert inv.derivatives.funding[COINM.id] == D("-0.00000167")


def test_inverse_round_trip_pnl_in_the_base():
    ledger = _ledger(mode="cross")
    # fees at 5 bps taker in BTC: 0.02 x 0.0005 = 0.00001; 1000/55000 x 0.0005 = 0.00000909 (1e-8)
    from engine.fees import fee_amount
    from engine.types import Liquidity

    fee_in = fee_amount(COINM, COINM.price_to_ticks("50000"), 10, Liquidity.TAKER, D(2), D(5))
    fee_out = fee_amount(COINM, COINM.price_to_ticks("55000"), 10, Liquidity.TAKER, D(2), D(5))
    assert (fee_in, fee_out) == (D("0.00001000"), D("0.00000909"))
    _fill(ledger, COINM, 1, "50000", "10", fee_in)
    realized = _fill(ledger, COINM, -1, "55000", "10", fee_out)
    # 1,000 USD x (1/50,000 - 1/55,000) = 0.0018181818.. BTC -> 0.00181818
    assert realized == D("0.00181818")
    assert ledger.balance("binancecoinm", "BTC") == D("1") + D("0.00181818") - D("0.00001") - D("0.00000909")
    pos = ledger.positions[COINM.id]
    assert pos.lots == 0 and pos.realized == D("0.00181818") and pos.volume == D("2000")
    # and no quote or base balance of a spot kind moved
    assert ("binancecoinm", "USD") not in ledger.balances


def test_inverse_partial_closes_carry_the_rounding():
    ledger = _ledger(mode="cross")
    _fill(ledger, COINM, 1, "50000", "3")  # entry basis 300/50000 = 0.006 BTC
    total = sum((_fill(ledger, COINM, -1, "60000", "1") for _ in range(3)), D(0))
    # each close: 100 x (1/50000 - 1/60000) = 1/3000 BTC; three booked together equal the
    # exact total rounded once: 0.001 (not 3 x 0.00033333)
    assert total == D("0.001")


def test_linear_unrealized_at_the_mark_and_equity():
    ledger = _ledger(mode="cross")
    _fill(ledger, USDM, 1, "50000", "0.5")
    ledger.derivatives.set_mark(USDM.id, D("51000"), 0)
    assert ledger.unrealized_pnl({USDM.id: D("99999")}) == D("500")  # the mark, not the mid given
    assert ledger.equity({}) == D("10500")


def test_margin_refusal_and_bracket_limit():
    ledger = _ledger(mode="cross", usdt="1000", leverage=10)
    book = ledger.derivatives
    book.set_mark(USDM.id, D(50000), 0)
    # 0.2 BTC x 50,000 / 10 = 1,000 initial margin: exactly the wallet, accepted
    assert book.check_order(USDM, 1, USDM.qty_to_lots("0.2"), D(50000), []) is None
    # 0.201 BTC needs 1,005
    assert book.check_order(USDM, 1, USDM.qty_to_lots("0.201"), D(50000), []) == ReasonCode.INSUFFICIENT_MARGIN
    # an open order's margin counts: 0.1 resting leaves 500, so 0.11 more is refused
    resting = [(USDM, 1, USDM.qty_to_lots("0.1"), D(50000))]
    assert book.check_order(USDM, 1, USDM.qty_to_lots("0.11"), D(50000), resting) == ReasonCode.INSUFFICIENT_MARGIN
    # reducing is always allowed
    _fill(ledger, USDM, 1, "50000", "0.2")
    assert book.check_order(USDM, -1, USDM.qty_to_lots("0.2"), D(50000), []) is None
    # 125x allows only the first bracket (<= 50,000 USDT notional)
    rich = _ledger(mode="cross", usdt="1000000", leverage=125)
    rich.derivatives.set_mark(USDM.id, D(50000), 0)
    assert rich.derivatives.check_order(USDM, 1, USDM.qty_to_lots("1"), D(50000), []) is None
    assert (rich.derivatives.check_order(USDM, 1, USDM.qty_to_lots("1.001"), D(50000), [])
            == ReasonCode.MAX_NOTIONAL_AT_LEVERAGE)
    # a market order before any mark is valued at the price it would take (the touch)
    fresh = _ledger(mode="cross", usdt="1000000", leverage=125)
    assert (fresh.derivatives.check_order(USDM, 1, USDM.qty_to_lots("1.001"), None, [], touch=D(50000))
            == ReasonCode.MAX_NOTIONAL_AT_LEVERAGE)
    # a table known only to its first tier (ETHUSDT: 75x up to 10,000) caps nothing beyond it
    # at a leverage it allows; 125x it never allows
    eth = INSTRUMENTS["binanceusdm:ETH/USDT:USDT"]
    at20 = _ledger(mode="cross", usdt="1000000", leverage=20)
    at20.instruments[eth.id] = eth
    assert at20.derivatives.check_order(eth, 1, eth.qty_to_lots("10"), D(3000), []) is None
    assert (fresh.derivatives.check_order(eth, 1, eth.qty_to_lots("1"), D(3000), [])
            == ReasonCode.MAX_NOTIONAL_AT_LEVERAGE)


def test_risk_limits_on_leverage_and_margin_ratio():
    ledger = _ledger(mode="cross", usdt="10000", leverage=20)
    book = ledger.derivatives
    book.set_mark(USDM.id, D(50000), 0)
    # 0.6 BTC = 30,000 notional on 10,000: 3x > 2x limit
    assert (book.check_order(USDM, 1, USDM.qty_to_lots("0.6"), D(50000), [], max_leverage=D(2))
            == ReasonCode.MAX_LEVERAGE)
    assert book.check_order(USDM, 1, USDM.qty_to_lots("0.4"), D(50000), [], max_leverage=D(2)) is None
    _fill(ledger, USDM, 1, "50000", "3")  # 150,000 notional; mm = 150000*0.005-50 = 700
    book.set_mark(USDM.id, D(47000), 0)  # margin balance 10000 - 9000 = 1000; mm 141000*.005-50 = 655
    assert (book.check_order(USDM, 1, USDM.qty_to_lots("0.001"), D(47000), [], max_margin_ratio=D("0.5"))
            == ReasonCode.MAX_MARGIN_RATIO)


def test_liquidation_closes_at_the_bankruptcy_price_and_books_the_loss():
    ledger = _ledger(usdt="10000")
    book = ledger.derivatives
    _fill(ledger, USDM, 1, "50000", "1")
    book.set_mark(USDM.id, D("45181"), 0)  # above LP 45180.72..: nothing yet
    assert book.due_liquidations(ledger.instruments.values()) == []
    book.set_mark(USDM.id, D("45180"), 0)  # below LP: margin ratio >= 100 %
    (liq,) = book.due_liquidations(ledger.instruments.values())
    assert (liq.side, liq.lots, USDM.ticks_to_price(liq.price_ticks)) == (-1, 1000, D(45000))
    # maintenance 45180 x 0.004 = 180.72 over margin balance 5000 - 4820 = 180 -> 1.004
    assert liq.margin_ratio == D("180.72") / D("180")
    ledger.apply_fill(USDM, liq.side, liq.price_ticks, liq.lots, D(0))
    # the whole isolated margin (5,000) is lost; the rest of the wallet stays
    assert ledger.balance("binanceusdm", "USDT") == D("5000") and book.isolated[USDM.id] == 0


def test_inverse_short_liquidated_in_cross_keeps_nothing_negative():
    ledger = _ledger(mode="cross", btc="0.01")
    book = ledger.derivatives
    _fill(ledger, COINM, -1, "50000", "50")  # 5,000 USD short = 0.1 BTC on 0.01 BTC: 10x
    book.set_mark(COINM.id, D("60000"), 0)  # far beyond: a gap through the bankruptcy price
    (liq,) = book.due_liquidations(ledger.instruments.values())
    # the short's PnL in BTC is 5000/P - 0.1; bankrupt where 0.01 + 5000/P - 0.1 = 0: P = 55555.55..
    assert COINM.ticks_to_price(liq.price_ticks) == D("55555.5")  # floor to the tick: in the trader's favour
    ledger.apply_fill(COINM, liq.side, liq.price_ticks, liq.lots, D(0))
    left = ledger.balance("binancecoinm", "BTC")
    exact = Fraction(1, 100) - Fraction(1, 10) + Fraction(5000) / Fraction("55555.5")
    assert left >= 0 and abs(Fraction(left) - exact) <= Fraction(1, 10**8)


def test_contract_instrument_file_errors_name_the_field(tmp_path):
    bad = tmp_path / "i.toml"
    bad.write_text('["x:BTC/USDT:USDT"]\nbase="BTC"\nquote="USDT"\ntick_size="0.1"\nlot_size="0.001"\n'
                   'type="swap"\nsettle="USDT"\nlinear=true\nfunding_interval_h=8\n')
    with pytest.raises(ConfigError, match="margin_brackets"):
        load_instruments(bad)
    bad.write_text('["x:BTC/USD:BTC"]\nbase="BTC"\nquote="USD"\ntick_size="0.1"\nlot_size="1"\n'
                   'type="swap"\nsettle="BTC"\nlinear=true\nfunding_interval_h=8\n'
                   'margin_brackets=[{cap="50", maintenance_rate="0.004", max_leverage=125}]\n')
    with pytest.raises(ConfigError, match="linear contract settles in USD"):
        load_instruments(bad)
    with pytest.raises(ConfigError, match="leverage"):
        MarginSettings.from_table("binanceusdm", {"leverage": 200})
