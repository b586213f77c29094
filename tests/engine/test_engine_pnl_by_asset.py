"""PnL totals never add different assets as they are: a COIN-M (BTC-settled) contract's
realized PnL and fees count in quote units at the price of the fill that booked them, its
unrealized PnL at the contract's mark, beside the USDⓈ-M (USDT) ones; `pnl_by_asset` keeps
each asset's own amounts. Hand-computed."""

from __future__ import annotations

from decimal import Decimal

from engine.ledger import Ledger
from engine.types import load_instruments

LINEAR = "binanceusdm:BTC/USDT:USDT"  # tick 0.1, lot 0.001 BTC
INVERSE = "binancecoinm:BTC/USD:BTC"  # tick 0.1, 1 contract = 100 USD, settled in BTC


def _ledger() -> Ledger:
    cat = load_instruments()
    insts = {LINEAR: cat[LINEAR], INVERSE: cat[INVERSE]}
    ledger = Ledger(insts, {"binanceusdm": {"USDT": Decimal(10000)}, "binancecoinm": {"BTC": Decimal(1)}})
    lin, inv = insts[LINEAR], insts[INVERSE]
    # linear: 1 BTC bought at 50,000.0 and sold at 51,000.0, 0.5 USDT fee each: +1,000 USDT, fees 1
    ledger.apply_fill(lin, 1, 500_000, 1000, Decimal("0.5"))
    ledger.apply_fill(lin, -1, 510_000, 1000, Decimal("0.5"))
    # inverse: 10 contracts bought at 50,000.0, sold at 55,000.0, 0.00001 BTC fee each:
    # 10 x 100 x (1/50,000 - 1/55,000) = 0.00181818.. -> 0.00181818 BTC; fees 0.00002 BTC
    ledger.apply_fill(inv, 1, 500_000, 10, Decimal("0.00001"))
    ledger.apply_fill(inv, -1, 550_000, 10, Decimal("0.00001"))
    # and 5 contracts held from 60,000.0 (no fee)
    ledger.apply_fill(inv, 1, 600_000, 5, Decimal(0))
    return ledger


def test_totals_count_coin_amounts_in_quote():
    ledger = _ledger()
    ledger.derivatives.set_mark(INVERSE, Decimal("62500"), 0)
    # before: 1,000 + 0.00181818 = 1,000.00181818 (USDT and BTC added as they are)
    # realized on the sell at 55,000.0: 0.00181818 BTC x 55,000 = 99.9999 USD
    assert ledger.realized_pnl() == Decimal("1000") + Decimal("0.00181818") * 55000 == Decimal("1099.9999")
    # fees: 0.5 + 0.5 USDT; 0.00001 BTC x 50,000 = 0.5 and x 55,000 = 0.55 USD
    assert ledger.fees() == Decimal("1.0") + Decimal("0.5") + Decimal("0.55") == Decimal("2.05")
    # 5 x 100 x (1/60,000 - 1/62,500) = 0.000333.. -> 0.00033333 BTC = 20.833125 at 62,500
    assert ledger.unrealized_pnl({}) == Decimal("20.833125")
    by_asset = ledger.pnl_by_asset({})
    assert by_asset == {
        "USDT": {"realized": Decimal("1000"), "unrealized": Decimal(0), "fees": Decimal("1.0")},
        "BTC": {"realized": Decimal("0.00181818"), "unrealized": Decimal("0.00033333"),
                "fees": Decimal("0.00002")},
    }


def test_realized_and_fees_keep_their_fill_time_value_as_the_mark_moves():
    ledger = _ledger()
    before = (ledger.realized_pnl(), ledger.fees())
    ledger.derivatives.set_mark(INVERSE, Decimal("30000"), 0)
    assert (ledger.realized_pnl(), ledger.fees()) == before == (Decimal("1099.9999"), Decimal("2.05"))


def test_before_any_mark_unrealized_counts_at_the_last_fill_price():
    ledger = _ledger()  # no mark yet: the inverse contract's last fill was at 60,000.0: no PnL
    assert ledger.unrealized_pnl({}) == 0
    assert Ledger.fee_in_quote(ledger.instruments[INVERSE], 500_000, Decimal("0.00001"), "BTC") == Decimal("0.5")
