"""A market order's state from the user stream: ccxt puts the average fill price in a
market order's `price`; the state record must not read it as a limit price (a market buy
filled at two levels averages off the tick grid and stopped a testnet session)."""

from __future__ import annotations

import ccxt
from gw_helpers import BTC, now_ns

from engine.types.venue_reports import VenueOrderState
from venues.ccxt.venue import CcxtVenue


def test_a_market_order_filled_at_several_levels_has_no_price():
    ex = ccxt.binance()
    # what ccxt.pro makes of an executionReport of a MARKET buy of 0.002 BTC filled
    # 0.001 at 60,000.00 and 0.001 at 60,000.01: average 60,000.005, off the 0.01 tick
    o = ex.safe_order({
        "id": "7", "clientOrderId": "mkt-1", "symbol": "BTC/USDT", "type": "market", "side": "buy",
        "price": "0", "average": "60000.005", "amount": "0.002", "filled": "0.002",
        "status": "closed", "timestamp": 1_700_000_000_000, "info": {}})
    assert o["price"] == 60000.005  # ccxt's own doing
    records = []
    venue = CcxtVenue("binance", ex, {0: BTC}, None, records.append, now_ns)
    venue._on_orders([o])
    state = next(r for r in records if isinstance(r, VenueOrderState))
    assert (state.client_id, state.price, state.qty, state.filled) == ("mkt-1", 0, 200, 200)
