"""engine.fees.locked_amounts: what open orders lock at a spot venue (issue 9), by hand."""

from decimal import Decimal

from engine.fees import locked_amounts
from engine.oms import Order
from engine.types import OrderType, TimeInForce
from engine.types.instrument import Instrument
from engine.types.orders import OrderStatus

D = Decimal
BTC = Instrument(id="binance:BTC/USDT", venue="binance", symbol="BTC/USDT", venue_symbol="BTCUSDT",
                 base="BTC", quote="USDT", tick_size=D("0.01"), lot_size=D("0.00001"),
                 min_qty=D("0"), min_notional=D("0"))


def _order(no, side, price, qty, filled=0, acked=True, typ=OrderType.LIMIT):
    o = Order(order_no=no, client_id=f"c{no}", instrument=BTC, instrument_index=0, side=side,
              type=typ, tif=TimeInForce.GTC, price=price, qty=qty, filled=filled)
    o.status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.ACKNOWLEDGED
    o.ack_ts = 1 if acked else None
    return o


def test_buys_lock_notional_plus_the_largest_fee_and_sells_lock_base():
    """Buy 0.01 BTC @ 60000.00 with 0.004 filled: 0.006 x 60000 = 360 USDT + 10 bp = 360.36.
    Sell 0.02 @ 61000: 0.02 BTC. An unacked buy and a market buy lock nothing."""
    orders = [
        _order(1, 1, 6_000_000, 1000, filled=400),
        _order(2, -1, 6_100_000, 2000),
        _order(3, 1, 6_000_000, 1000, acked=False),
        _order(4, 1, 0, 1000, typ=OrderType.MARKET),
    ]
    assert locked_amounts(orders, D("-1"), D("10")) == {"USDT": D("360.36"), "BTC": D("0.02")}


def test_a_rebate_is_not_locked():
    """maker -1 bp, taker -0.5 bp: max(maker, taker, 0) = 0, the lock is the notional."""
    assert locked_amounts([_order(1, 1, 6_000_000, 1000)], D("-1"), D("-0.5")) == {"USDT": D("600")}
