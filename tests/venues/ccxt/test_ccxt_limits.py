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
