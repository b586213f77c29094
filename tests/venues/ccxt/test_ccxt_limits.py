"""The weight/order-count budget (fake wall clock), the backoff, and the pure classification rules."""

from __future__ import annotations

import asyncio

import ccxt
import pytest

from engine.types.venue_reports import Command, Outcome
from venues.ccxt.outcomes import classify, venue_error
from venues.ccxt.ratelimit import WeightLimiter
from venues.ccxt.retry import Backoff


def test_weights_fill_the_minute_then_wait_for_the_next_window():
    wall = [120.0]  # start of a minute
    lim = WeightLimiter(weight_per_minute=100, headroom=1.0, wall=lambda: wall[0])
    for _ in range(5):
        assert lim.reserve("GET", "/api/v3/account") == 0.0  # weight 20 each
    assert lim.used_weight == 100
    assert lim.reserve("GET", "/api/v3/openOrders") == pytest.approx(60.001)  # weight 80 w/o symbol
    wall[0] = 180.0
    assert lim.reserve("GET", "/api/v3/openOrders") == 0.0 and lim.used_weight == 80


def test_futures_budget_uses_binance_futures_weights_and_order_windows():
    """WeightLimiter.for_venue("binanceusdm"): 2,400 weight / minute (90 % usable: 2,160),
    orders 300 / 10 s and 1,200 / minute; a new order weighs 0, income 30, positionRisk 5.
    COIN-M: no 10 s window, premiumIndex 10."""
    wall = [600.0]  # start of a minute and of a 10 s window
    lim = WeightLimiter.for_venue("binanceusdm", wall=lambda: wall[0])
    assert (lim.weight_per_minute, lim.orders_per_10s, lim.orders_per_minute, lim.orders_per_day) == (
        2400, 300, 1200, None)
    for _ in range(300):
        assert lim.reserve("POST", "/fapi/v1/order") == 0.0
    assert lim.used_weight == 0  # orders weigh 0 on the IP limit
    assert lim.reserve("POST", "/fapi/v1/order") == pytest.approx(10.001)  # the 301st waits for the next 10 s
    for t in (610.0, 620.0, 630.0):
        wall[0] = t
        for _ in range(300):
            assert lim.reserve("POST", "/fapi/v1/order") == 0.0
    wall[0] = 640.0
    assert lim.reserve("POST", "/fapi/v1/order") == pytest.approx(20.001)  # 1,200 this minute: to 660
    for _ in range(72):
        assert lim.reserve("GET", "/fapi/v1/income") == 0.0  # 72 x 30 = 2,160
    assert lim.reserve("GET", "/fapi/v3/positionRisk") == pytest.approx(20.001)
    coinm = WeightLimiter.for_venue("binancecoinm", headroom=1.0, wall=lambda: wall[0])
    assert (coinm.orders_per_10s, coinm.orders_per_minute) == (None, 1200)
    assert coinm.reserve("GET", "/dapi/v1/premiumIndex") == 0.0 and coinm.used_weight == 10


def test_the_gateway_books_a_futures_venue_s_calls_at_their_futures_paths():
    """A gateway on ccxt binanceusdm / binancecoinm spends the futures weights (its calls'
    /fapi and /dapi paths) with that API's limits; spot keeps Binance spot's."""
    import ccxt.async_support as ccxt_async

    from venues.ccxt.gateway import Gateway

    async def build(cls):
        ex = cls({"enableRateLimit": False})
        try:
            return Gateway(ex, {}, now=lambda: 0)
        finally:
            await ex.close()

    usdm = asyncio.run(build(ccxt_async.binanceusdm))
    assert usdm.endpoints["create_order"] == ("POST", "/fapi/v1/order")
    assert usdm.endpoints["fetch_positions"] == ("GET", "/fapi/v3/positionRisk")
    assert usdm.limiter.weight_per_minute == 2400 and usdm.limiter.orders_per_minute == 1200
    coinm = asyncio.run(build(ccxt_async.binancecoinm))
    assert coinm.endpoints["fetch_balance"] == ("GET", "/dapi/v1/account")
    spot = asyncio.run(build(ccxt_async.binance))
    assert spot.endpoints["create_order"] == ("POST", "/api/v3/order")
    assert spot.limiter.weight_per_minute == 6000 and spot.limiter.orders_per_10s == 50


def test_used_weight_header_of_other_processes_makes_us_wait():
    wall = [60.0]
    lim = WeightLimiter(weight_per_minute=6000, headroom=0.9, wall=lambda: wall[0])
    assert lim.reserve("POST", "/api/v3/order") == 0.0
    lim.observe(200, {"X-MBX-USED-WEIGHT-1M": "5399"})  # a neighbour on the same IP spent it
    assert lim.used_weight == 5399
    assert lim.reserve("POST", "/api/v3/order") == 0.0  # 5400 = 90% of 6000
    assert lim.reserve("POST", "/api/v3/order") > 59
    lim.observe(200, {"x-mbx-used-weight-1m": "10"})  # never lowers our own count
    assert lim.used_weight == 5400


def test_order_count_per_10s_and_retry_after():
    wall = [1000.0]
    lim = WeightLimiter(orders_per_10s=3, headroom=1.0, wall=lambda: wall[0])
    assert [lim.reserve("POST", "/api/v3/order") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert lim.reserve("POST", "/api/v3/order") == pytest.approx(10.001)
    assert lim.reserve("GET", "/api/v3/order") == 0.0  # queries are not orders
    lim.observe(429, {"Retry-After": "7"})
    assert lim.reserve("GET", "/api/v3/time") == pytest.approx(7.0) and lim.throttled == 1
    wall[0] = 1007.5
    assert lim.reserve("GET", "/api/v3/time") == 0.0


def test_acquire_sleeps_until_the_window_turns():
    wall = [59.0]
    lim = WeightLimiter(weight_per_minute=20, headroom=1.0, wall=lambda: wall[0])
    slept = []

    async def sleep(s):
        slept.append(s)
        wall[0] += s

    async def go():
        await lim.acquire("GET", "/api/v3/account", sleep=sleep)
        return await lim.acquire("GET", "/api/v3/account", sleep=sleep)

    assert asyncio.run(go()) == pytest.approx(1.001) and lim.waits == 1


def test_backoff_is_full_jitter_capped_and_seeded():
    a, b = Backoff(base_s=0.1, cap_s=1.0, seed=3), Backoff(base_s=0.1, cap_s=1.0, seed=3)
    da = [a.delay(n) for n in range(8)]
    assert da == [b.delay(n) for n in range(8)]
    assert all(0 <= d <= min(1.0, 0.1 * 2 ** n) for n, d in enumerate(da))
    assert Backoff(seed=1).delay(0, floor_s=2.5) == 2.5  # Retry-After is a floor


@pytest.mark.parametrize("exc,status,body,command,expected", [
    # a reply arrived: its status and code decide
    (ccxt.DDoSProtection("x"), 401, '{"code":-2015,"msg":"Invalid API-key"}', Command.SUBMIT, (Outcome.REJECTED, False)),
    (ccxt.DDoSProtection("x"), 429, '{"code":-1003,"msg":"Too much"}', Command.SUBMIT, (Outcome.REJECTED, True)),
    (ccxt.DDoSProtection("x"), 418, "", Command.SUBMIT, (Outcome.REJECTED, True)),
    (ccxt.InvalidNonce("x"), 400, '{"code":-1021,"msg":"ts"}', Command.SUBMIT, (Outcome.REJECTED, True)),
    (ccxt.ExchangeNotAvailable("x"), 502, "<html>", Command.SUBMIT, (Outcome.AMBIGUOUS, False)),
    (ccxt.ExchangeNotAvailable("x"), 502, "<html>", Command.CANCEL, (Outcome.AMBIGUOUS, True)),
    (ccxt.RequestTimeout("x"), 400, '{"code":-1007,"msg":"Timeout waiting"}', Command.SUBMIT, (Outcome.AMBIGUOUS, False)),
    (ccxt.InvalidOrder("x"), 400, '{"code":-2010,"msg":"Duplicate order sent."}', Command.SUBMIT, (Outcome.REJECTED, False)),
    # no reply: the exception class
    (ccxt.RequestTimeout("binance POST url"), None, None, Command.SUBMIT, (Outcome.AMBIGUOUS, False)),
    (ccxt.RequestTimeout("binance POST url"), None, None, Command.AMEND, (Outcome.AMBIGUOUS, False)),
    (ccxt.RequestTimeout("binance DELETE url"), None, None, Command.CANCEL, (Outcome.AMBIGUOUS, True)),
    (ccxt.NetworkError("x"), None, None, None, (Outcome.AMBIGUOUS, True)),
    (ccxt.InsufficientFunds('binance {"code":-2010,"msg":"Account has insufficient balance for requested action."}'),
     None, None, Command.SUBMIT, (Outcome.REJECTED, False)),
    (ValueError("a bug in a parser"), None, None, Command.SUBMIT, (Outcome.AMBIGUOUS, False)),
])
def test_classification_table(exc, status, body, command, expected):
    verdict = classify(exc, command, status=status, body=body)
    assert (verdict.outcome, verdict.retry) == expected
    if command is Command.SUBMIT and verdict.outcome is Outcome.AMBIGUOUS:
        assert not verdict.retry and verdict.executed_unknown  # never resent blind


def test_reason_and_evidence_from_the_body():
    v = classify(ccxt.InsufficientFunds("x"), Command.SUBMIT, status=400,
                 body='{"code":-2010,"msg":"Account has insufficient balance for requested action."}')
    assert v.reason == "insufficient_balance" and v.evidence == {
        "exception": "InsufficientFunds", "http_status": 400, "code": -2010,
        "msg": "Account has insufficient balance for requested action."}
    assert venue_error('binance {"code":-1013,"msg":"Filter failure: PRICE_FILTER"}') == (-1013, "Filter failure: PRICE_FILTER")
    assert classify(ccxt.InvalidOrder("x"), Command.SUBMIT, status=400,
                    body='{"code":-1013,"msg":"Filter failure: PRICE_FILTER"}').reason == "invalid_price"
    assert classify(ccxt.DDoSProtection("x"), Command.SUBMIT, status=429, body="",
                    headers={"Retry-After": "12"}).wait_s == 12.0
    # a delivered dated future: the reason the simulated venue gives (market_closed), not venue_error
    delivered = classify(ccxt.ExchangeError("x"), Command.SUBMIT, status=400, body='{"code":-4108,"msg":"Symbol is on '
                         'delivering or delivered or settling or closed or pre-trading."}')
    assert (delivered.outcome, delivered.reason) == (Outcome.REJECTED, "market_closed")
