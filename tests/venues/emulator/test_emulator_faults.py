"""Faults on demand: each REST fault raises the ccxt exception class a real venue's would,
and leaves the venue's state exactly as the fault says (executed or not)."""

from __future__ import annotations

import time

import ccxt
import pytest
from emu_helpers import control, get_json, sync_client


@pytest.fixture(autouse=True)
def clean(emu):
    yield
    control(emu, "faults", {"clear": True})


def _bid(ex):
    return ex.fetch_order_book("BTC/USDT", 5)["bids"][0][0]


def _open_ids(ex):
    return {o["id"] for o in ex.fetch_open_orders("BTC/USDT")}


def _new_open_order(ex, before):
    after = _open_ids(ex) - before
    assert len(after) == 1, "the order must exist on the venue"
    return after.pop()


def test_response_lost_after_execution(emu, alice):
    before = _open_ids(alice)
    control(emu, "faults", {"kind": "response_lost", "endpoint": "POST /api/v3/order"})
    with pytest.raises(ccxt.NetworkError):  # sync ccxt: the connection closed without a reply
        alice.create_order("BTC/USDT", "limit", "buy", 0.001, round(_bid(alice) - 50, 2))
    alice.cancel_order(_new_open_order(alice, before), "BTC/USDT")  # executed all the same
    faults = [e for e in get_json(emu, "/emulator/journal") if e["event"] == "fault"]
    assert faults[-1]["kind"] == "response_lost" and faults[-1]["where"] == "POST /api/v3/order"


@pytest.mark.parametrize("status,body,exc", [
    (502, "html", ccxt.ExchangeNotAvailable),
    (500, "empty", ccxt.ExchangeNotAvailable),
    (500, "json", ccxt.OperationFailed),  # -1001
])
def test_5xx_before_does_not_execute(emu, alice, status, body, exc):
    before = _open_ids(alice)
    control(emu, "faults", {"kind": "http_5xx_before", "status": status, "body": body})
    with pytest.raises(exc):
        alice.create_order("BTC/USDT", "limit", "buy", 0.001, round(_bid(alice) - 50, 2))
    assert _open_ids(alice) == before


def test_5xx_after_executes(emu, alice):
    before = _open_ids(alice)
    control(emu, "faults", {"kind": "http_5xx_after", "status": 503, "body": "html"})
    with pytest.raises(ccxt.ExchangeNotAvailable):
        alice.create_order("BTC/USDT", "limit", "buy", 0.001, round(_bid(alice) - 50, 2))
    alice.cancel_order(_new_open_order(alice, before), "BTC/USDT")


def test_reply_delayed_past_the_client_timeout(emu, alice):
    before = _open_ids(alice)
    control(emu, "faults", {"kind": "delay", "delay": 2.5})
    quick = sync_client(emu, "alice", timeout=1000)
    quick.load_markets()
    with pytest.raises(ccxt.RequestTimeout):
        quick.create_order("BTC/USDT", "limit", "buy", 0.001, round(_bid(alice) - 50, 2))
    alice.cancel_order(_new_open_order(alice, before), "BTC/USDT")


def test_a_latency_spike_past_the_client_timeout_still_executes(emu, alice):
    """The request leg waits `extra` (1.5 s) while the client gives up after 0.5 s: the
    order still executes, as on a real venue, and the hang-up is no emulator error (the
    emulator fixture fails a test on any internal_error in the journal)."""
    before = _open_ids(alice)
    control(emu, "faults", {"kind": "latency_spike", "duration": "30s", "extra": "1500ms",
                            "endpoint": "POST /api/v3/order"})
    quick = sync_client(emu, "alice", timeout=500)
    quick.load_markets()
    with pytest.raises(ccxt.RequestTimeout):
        quick.create_order("BTC/USDT", "limit", "buy", 0.001, round(_bid(alice) - 50, 2))
    time.sleep(3.5)  # both legs of the spike
    control(emu, "faults", {"clear": True})
    alice.cancel_order(_new_open_order(alice, before), "BTC/USDT")


def test_clock_skew_and_real_reject_codes(emu, alice):
    control(emu, "faults", {"kind": "clock_skew", "skew_ms": 20_000, "endpoint": "GET /api/v3/account"})
    with pytest.raises(ccxt.InvalidNonce):
        alice.fetch_balance()
    assert alice.fetch_balance()["USDT"]["free"] > 0  # count = 1: it fired once
    control(emu, "faults", {"kind": "reject", "code": -2010,
                            "msg": "Account has insufficient balance for requested action."})
    with pytest.raises(ccxt.InsufficientFunds):
        alice.create_order("BTC/USDT", "limit", "buy", 0.001, round(_bid(alice) - 50, 2))
    control(emu, "faults", {"kind": "reject", "code": -1007, "status": 408,
                            "msg": "Timeout waiting for response from backend server."})
    with pytest.raises(ccxt.RequestTimeout):
        alice.create_order("BTC/USDT", "limit", "buy", 0.001, round(_bid(alice) - 50, 2))


def test_maintenance_cancel_only_then_halt(emu, alice):
    o = alice.create_order("BTC/USDT", "limit", "buy", 0.001, round(_bid(alice) - 50, 2))
    o2 = alice.create_order("BTC/USDT", "limit", "buy", 0.001, round(_bid(alice) - 60, 2))
    control(emu, "faults", {"kind": "maintenance", "duration": 1.5, "halt": 1.0})
    with pytest.raises(ccxt.MarketClosed):
        alice.create_order("BTC/USDT", "limit", "buy", 0.001, round(_bid(alice) - 50, 2))
    assert alice.cancel_order(o["id"], "BTC/USDT")["status"] == "canceled"  # cancel-only
    time.sleep(1.7)
    with pytest.raises(ccxt.MarketClosed):
        alice.cancel_order(o2["id"], "BTC/USDT")
    info = get_json(emu, "/api/v3/exchangeInfo")
    assert {s["status"] for s in info["symbols"]} == {"HALT"}
    time.sleep(1.2)
    assert alice.cancel_order(o2["id"], "BTC/USDT")["status"] == "canceled"
    assert {s["status"] for s in get_json(emu, "/api/v3/exchangeInfo")["symbols"]} == {"TRADING"}


def test_rate_limit_429_then_418_ban(emu, alice):
    control(emu, "limits", {"ban_after": 1, "ban_s": 2})
    try:
        control(emu, "faults", {"kind": "rate_limit", "endpoint": "GET /api/v3/depth"})
        with pytest.raises(ccxt.DDoSProtection) as first:
            alice.fetch_order_book("BTC/USDT", 5)
        assert '"code": -1003' in str(first.value)
        assert int(alice.last_response_headers["Retry-After"]) > 0
        time.sleep(0.25)  # past ban_grace_ms (200): the client has had the 429 in hand
        with pytest.raises(ccxt.DDoSProtection):  # did not back off: 429 again, then banned
            alice.fetch_order_book("BTC/USDT", 5)
        with pytest.raises(ccxt.DDoSProtection):
            alice.fetch_order_book("BTC/USDT", 5)
        with pytest.raises(ccxt.DDoSProtection, match="IP banned until"):
            alice.fetch_order_book("BTC/USDT", 5)
    finally:
        control(emu, "limits", {"ban_after": 3, "ban_s": 120, "reset": True})


def test_requests_in_flight_when_a_429_hold_begins_earn_no_ban(emu, alice):
    """The user's market maker: 2 cancels and 2 submits sent at once just as a 3 s
    rate_limit hold began. All four are answered 429 (more than ban_after = 3), but they
    were on their way before the client could read the first 429, so none counts toward the
    ban (ban_grace_ms, 200 by default: Binance bans for "failing to back off after receiving
    429s", developers.binance.com/docs/binance-spot-api-docs/rest-api/limits). After the
    Retry-After the two cancels are resent and succeed: no 418, nothing left open."""
    import asyncio

    import ccxt.async_support as accxt

    price = round(_bid(alice) - 80, 2)
    resting = [alice.create_order("BTC/USDT", "limit", "buy", 0.001, price) for _ in range(2)]
    control(emu, "faults", {"kind": "rate_limit", "retry_after": "3s"})  # the order calls

    async def run():
        ex = accxt.binance(emu.ccxt_config("alice", timeout=5000, enableRateLimit=False))
        try:
            await ex.load_markets()
            burst = await asyncio.gather(
                ex.cancel_order(resting[0]["id"], "BTC/USDT"), ex.cancel_order(resting[1]["id"], "BTC/USDT"),
                ex.create_order("BTC/USDT", "limit", "buy", 0.001, price),
                ex.create_order("BTC/USDT", "limit", "buy", 0.001, price), return_exceptions=True)
            after = int(ex.last_response_headers["Retry-After"])
            await asyncio.sleep(after)  # backed off as told
            resent = [await ex.cancel_order(o["id"], "BTC/USDT") for o in resting]
            return burst, after, resent
        finally:
            await ex.close()

    try:
        burst, after, resent = asyncio.run(asyncio.wait_for(run(), 30))
        banned = emu.call(lambda server: dict(server.limiter._banned_until))
    finally:
        control(emu, "limits", {"reset": True})
    assert all(isinstance(e, ccxt.DDoSProtection) and "418" not in str(e) and "banned" not in str(e)
               for e in burst), burst  # four 429s
    assert 1 <= after <= 3
    assert [o["status"] for o in resent] == ["canceled", "canceled"]
    assert banned == {}
    assert not {o["id"] for o in resting} & _open_ids(alice)


def test_a_client_that_keeps_calling_through_a_hold_is_banned(emu, alice):
    """The ban still works: after the first 429 of a 5 s hold and the grace, a client that
    goes on calling meets 429s that count, and the one after ban_after (3) of them is
    banned: 418 "IP banned until", Retry-After the ban's length (2 minutes, Binance's first
    ban)."""
    control(emu, "faults", {"kind": "rate_limit", "retry_after": "5s", "endpoint": "GET /api/v3/depth"})
    seen = []
    try:
        with pytest.raises(ccxt.DDoSProtection):
            alice.fetch_order_book("BTC/USDT", 5)
        time.sleep(0.3)  # the 429 is in hand: every call from now on fails to back off
        for _ in range(6):
            try:
                alice.fetch_order_book("BTC/USDT", 5)
            except ccxt.DDoSProtection as exc:
                seen.append(("banned" if "IP banned until" in str(exc) else "429",
                             int(alice.last_response_headers["Retry-After"])))
    finally:
        control(emu, "limits", {"reset": True})
    assert [s for s, _ in seen] == ["429", "429", "429", "429", "banned", "banned"], seen
    assert 115 <= seen[4][1] <= 120


def test_weight_and_order_count_headers_and_the_order_limit(emu, alice):
    alice.fetch_order_book("BTC/USDT", 5)
    used = int(alice.last_response_headers["X-MBX-USED-WEIGHT-1M"])
    alice.fetch_order_book("BTC/USDT", 1000)  # weight 50 (limit 501-1000)
    assert int(alice.last_response_headers["X-MBX-USED-WEIGHT-1M"]) in (used + 50, 50)  # or a new minute
    control(emu, "limits", {"orders_per_10s": 3})
    try:
        bid = _bid(alice)
        counts = []
        with pytest.raises(ccxt.DDoSProtection, match="-1015"):
            for _ in range(10):
                o = alice.create_order("BTC/USDT", "limit", "buy", 0.001, round(bid - 80, 2))
                counts.append(int(alice.last_response_headers["X-MBX-ORDER-COUNT-10S"]))
                alice.cancel_order(o["id"], "BTC/USDT")
        assert counts and max(counts) <= 3  # the 4th order in one 10 s window is refused
        assert int(alice.last_response_headers["Retry-After"]) <= 10
    finally:
        control(emu, "limits", {"orders_per_10s": 50})
        time.sleep(0.1)


def test_response_lost_as_async_ccxt_sees_it(emu, alice):
    import asyncio

    import ccxt.async_support as accxt

    before = _open_ids(alice)
    price = round(_bid(alice) - 50, 2)
    control(emu, "faults", {"kind": "response_lost"})

    async def run():
        ex = accxt.binance(emu.ccxt_config("alice", timeout=5000))
        try:
            await ex.load_markets()
            with pytest.raises(ccxt.ExchangeNotAvailable):  # async: the closed connection
                await ex.create_order("BTC/USDT", "limit", "buy", 0.001, price)
        finally:
            await ex.close()

    asyncio.run(asyncio.wait_for(run(), 30))
    alice.cancel_order(_new_open_order(alice, before), "BTC/USDT")
