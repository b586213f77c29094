"""One user-stream message, one receipt time: Binance's executionReport of a fill reaches
the session twice, as an order (ccxt.pro's watch_orders) and as a trade
(watch_my_trades), each in its own task. Both records carry the first stamp taken of the
message (venues/ccxt/venue.py CcxtVenue._receipt); the recorded response leg
(report_latency.csv, from order states) is then the fill's own."""

from __future__ import annotations

import ccxt.pro
from gw_helpers import BTC

from engine.types.venue_reports import VenueFill, VenueOrderState
from venues.ccxt.venue import CcxtVenue


def _execution_report(trade_id: int, t_ms: int) -> dict:
    """A Binance spot executionReport: a LIMIT_MAKER buy of 0.01 BTC at 60,000.00 filled by
    trade `trade_id` at transaction time t_ms (fields as Binance's user-data stream doc)."""
    return {"e": "executionReport", "E": t_ms + 1, "s": "BTCUSDT", "c": "tp-abc-1", "S": "BUY",
            "o": "LIMIT_MAKER", "f": "GTC", "q": "0.01000000", "p": "60000.00000000", "P": "0.00000000",
            "F": "0.00000000", "g": -1, "C": "", "x": "TRADE", "X": "FILLED", "r": "NONE", "i": 42,
            "l": "0.01000000", "z": "0.01000000", "L": "60000.00000000", "n": "0.00001000", "N": "BTC",
            "T": t_ms, "t": trade_id, "I": 99, "w": False, "m": True, "M": True, "O": t_ms - 500,
            "Z": "600.00000000", "Y": "600.00000000", "Q": "0.00000000", "W": t_ms - 500, "V": "NONE"}


def _venue(times: list[int]):
    ex = ccxt.pro.binance()
    ex.markets_by_id = {"BTCUSDT": [{"id": "BTCUSDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT",
                                     "spot": True, "type": "spot", "precision": {}, "limits": {}}]}
    ex.markets = {"BTC/USDT": ex.markets_by_id["BTCUSDT"][0]}
    records: list = []
    clock = iter(times)
    venue = CcxtVenue("binance", ex, {0: BTC}, None, records.append, lambda: next(clock))
    return ex, venue, records


def test_the_order_state_takes_the_fills_receipt():
    """The trade handler runs at 1,000 ns, the order handler 349,000 ns later: both
    records say 1,000. A second message (another trade id) is stamped on its own."""
    ex, venue, records = _venue([1_000, 350_000, 900_000, 900_500])
    first = _execution_report(7, 1_700_000_000_000)
    venue._on_my_trades([ex.parse_ws_trade(first)])
    venue._on_orders([ex.parse_ws_order(first)])
    fill = next(r for r in records if isinstance(r, VenueFill))
    state = next(r for r in records if isinstance(r, VenueOrderState))
    assert (fill.trade_id, fill.local_ts, state.local_ts) == ("7", 1_000, 1_000)
    second = _execution_report(8, 1_700_000_000_000)  # same ms, another trade: its own message
    records.clear()
    venue._on_orders([ex.parse_ws_order(second)])
    venue._on_my_trades([ex.parse_ws_trade(second)])
    assert sorted(r.local_ts for r in records) == [900_000, 900_000]


def test_the_kept_receipts_are_bounded():
    n = CcxtVenue.RECEIPTS_KEPT + 10
    ex, venue, records = _venue(list(range(1, n + 1)))
    for k in range(n):
        venue._on_my_trades([ex.parse_ws_trade(_execution_report(k, 1_700_000_000_000 + k))])
    assert len(venue._receipts) == CcxtVenue.RECEIPTS_KEPT and len(records) == n


def test_owed_reports_wait_for_the_silence_and_a_user_stream_error_forgets_them():
    """The user-stream guard's evidence of a busy session (issue #11, the trial's "silent for
    10.0 s ... cancel ... 15.4 s ago" where a guard time is 5 s): a report owed past the
    grace, a silence of 2 s of the 5 (the other watch's guard expired first) and nothing
    resting to probe: no re-subscription yet, and the silence clock is not restarted (it
    was: the re-subscription came a whole guard time late). At 5 s it fires. And a
    user-stream error (the socket closed) forgets what was owed: those reports were lost
    with the old connection and the reconnect's reconciliation recovers them; kept, they
    would condemn the new subscription at its first quiet guard time."""
    import time

    silences: list[tuple[str, float, bool, str]] = []
    errors: list[str] = []
    ex = ccxt.pro.binance()
    venue = CcxtVenue("binance", ex, {0: BTC}, None, lambda rec: None, time.time_ns, user_stream_guard_s=5.0,
                      on_user_silent=lambda *a: silences.append(a), on_error=lambda what, exc: errors.append(what),
                      expected_open=lambda: {})
    now = time.monotonic()
    venue._owed = {"tp-1": (now - 3.0, "cancel")}
    venue._user_last = venue._user_message_at = now - 2.0
    venue._user_silent()
    assert silences == [] and venue._user_last == now - 2.0  # waiting, clock kept
    venue._user_last = venue._user_message_at = now - 5.0
    venue._user_silent()
    assert len(silences) == 1 and "cancel tp-1" in silences[0][3] and venue.user_resubscribes == 1
    venue._owed = {"tp-2": (time.monotonic() - 3.0, "submit")}
    venue._user_error("user stream (orders)", ccxt.NetworkError("closed 1001"))
    assert venue._owed == {} and errors == ["user stream (orders)"]
