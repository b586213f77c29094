"""ccxt.pro books and trades as EVENT_DTYPE rows (hand-computed): a snapshot first, then
only the levels that changed between consecutive books, venue time from the message."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.errors import DataError
from engine.types import EventKind, Instrument
from modes.live.feed import BookDiffer, trade_rows
from modes.live.stepper import heartbeat_rows

INST = Instrument(id="binance:BTC/USDT", venue="binance", symbol="BTC/USDT", venue_symbol="BTCUSDT", base="BTC",
                  quote="USDT", tick_size=Decimal("0.01"), lot_size=Decimal("0.001"), min_qty=Decimal("0.001"),
                  min_notional=Decimal(0))
B, S, D = EventKind.BOOK_DELTA, EventKind.SNAPSHOT_BEGIN, EventKind.SNAPSHOT_END


def _t(rows):
    return [(int(r["kind"]), int(r["side"]), int(r["price"]), int(r["qty"]), int(r["exch_ts"]), int(r["local_ts"]),
             int(r["instrument"])) for r in rows]


def test_the_first_book_is_a_snapshot_then_diffs():
    d = BookDiffer(INST, 3)
    first = d.rows({"bids": [[100.01, 1.5], [100.0, 2]], "asks": [[100.02, 0.5]], "timestamp": 1_000}, 5_000)
    assert _t(first) == [(S, 0, 0, 0, 10**9, 5_000, 3), (B, 1, 10001, 1500, 10**9, 5_000, 3),
                         (B, 1, 10000, 2000, 10**9, 5_000, 3), (B, -1, 10002, 500, 10**9, 5_000, 3),
                         (D, 0, 0, 0, 10**9, 5_000, 3)]
    # 100.01 grows, 100.00 disappears, 99.99 appears; the ask is unchanged (no row)
    second = d.rows({"bids": [[100.01, 1.6], [99.99, 1]], "asks": [[100.02, 0.5]], "timestamp": 1_002}, 6_000)
    assert _t(second) == [(B, 1, 10001, 1600, 1_002_000_000, 6_000, 3), (B, 1, 10000, 0, 1_002_000_000, 6_000, 3),
                          (B, 1, 9999, 1000, 1_002_000_000, 6_000, 3)]
    assert len(d.rows({"bids": [[100.01, 1.6], [99.99, 1]], "asks": [[100.02, 0.5]], "timestamp": 1_003}, 7_000)) == 0
    d.reset()
    assert int(d.rows({"bids": [], "asks": [], "timestamp": None}, 8_000)[0]["kind"]) == S


def test_trades_keep_the_aggressor_and_their_own_time():
    rows = trade_rows(INST, 0, [{"side": "buy", "price": 100.02, "amount": 0.25, "timestamp": 7},
                                {"side": "sell", "price": 100.0, "amount": 1, "timestamp": 8}], 9_000)
    assert _t(rows) == [(EventKind.TRADE, 1, 10002, 250, 7_000_000, 9_000, 0),
                        (EventKind.TRADE, -1, 10000, 1000, 8_000_000, 9_000, 0)]


def test_an_off_grid_price_names_the_instrument():
    with pytest.raises(DataError, match=r"binance:BTC/USDT: bid price 100.005"):
        BookDiffer(INST, 0).rows({"bids": [[100.005, 1]], "asks": [], "timestamp": 1}, 1)


def test_heartbeats_state_a_time_and_move_nothing():
    """side 0, qty 0 trades at local now+1, exchange now+1-feed_ns (venues.sim skips them)."""
    import numpy as np

    hb = heartbeat_rows(2, 1_000, np.array([0, 300]))
    assert _t(hb) == [(EventKind.TRADE, 0, 0, 0, 1_001, 1_001, 0), (EventKind.TRADE, 0, 0, 0, 701, 1_001, 1)]


def test_the_health_table_shows_feed_lag_round_trips_and_open_orders():
    """Feed lag = local receipt time - venue time of the instrument's latest row."""
    from rich.console import Console

    from modes.live.health import Health

    health = Health({INST.id: INST}, enabled=False)
    rows = BookDiffer(INST, 0).rows({"bids": [[100.0, 1]], "asks": [[100.01, 1]], "timestamp": 1_000}, 1_000_000_000 + 7_500_000)
    health.rows(rows)
    health.round_trip(4_000_000)
    health.round_trip(6_000_000)
    assert health.books_seen == {0}
    console = Console(width=120, record=True)
    console.print(health.table())
    text = console.export_text()
    assert "feed lag binance:BTC/USDT" in text and "7.5 ms" in text
    assert "5.0 / 6.0 ms" in text and "open orders" in text


def test_testnet_uses_the_sandbox_urls_and_a_url_overrides_every_url():
    """No network: the ccxt.pro exchange objects a session would use."""
    import asyncio

    from modes.live.driver import make_exchange
    from venues.ccxt.credentials import Credentials

    keys = Credentials("binance", "test", "k", "s")

    async def build():
        sandbox = make_exchange("testnet", {"exchange": "binance", "url": None}, keys)
        real = make_exchange("live", {"exchange": "binance", "url": None}, keys)
        local = make_exchange("testnet", {"exchange": "binance", "url": "http://127.0.0.1:9"}, keys)
        urls = (sandbox.urls["api"]["public"], sandbox.urls["api"]["ws"]["spot"], real.urls["api"]["public"],
                local.urls["api"]["public"], local.urls["api"]["ws"]["spot"])
        for ex in (sandbox, real, local):
            await ex.close()
        return urls

    sandbox_rest, sandbox_ws, real_rest, local_rest, local_ws = asyncio.run(build())
    assert sandbox_rest.startswith("https://testnet.binance.vision/")
    assert sandbox_ws.startswith("wss://stream.testnet.binance.vision/")
    assert real_rest.startswith("https://api.binance.com/")
    assert local_rest.startswith("http://127.0.0.1:9/") and local_ws.startswith("ws://127.0.0.1:9/")
