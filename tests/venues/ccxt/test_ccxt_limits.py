"""The weight/order-count budget (fake wall clock), the backoff, and the pure classification rules."""

from __future__ import annotations

import asyncio
import time

import ccxt
import pytest
from emu_helpers import control
from gw_helpers import fault, gateway, order
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.types.venue_reports import Command, Outcome
from venues.ccxt.outcomes import classify, venue_error
from venues.ccxt.ratelimit import PROBE_WAIT_S, WeightLimiter
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
    (ccxt.DDoSProtection("x"), 418, "", Command.SUBMIT, (Outcome.REJECTED, False)),  # a ban: never resent
    (ccxt.DDoSProtection("x"), 418, "", Command.CANCEL, (Outcome.REJECTED, False)),
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


def test_429_is_rate_limited_and_418_ip_banned():
    """The venue's words for why: a 429 (weight -1003, order count -1015; or ccxt's
    DDoSProtection without a reply) is `rate_limited`, a 418 `ip_banned`, with Retry-After."""
    for code in (-1003, -1015):
        v = classify(ccxt.DDoSProtection("x"), Command.SUBMIT, status=429, body=f'{{"code":{code},"msg":"Too much"}}',
                     headers={"Retry-After": "7"})
        assert (v.reason, v.retry, v.wait_s) == ("rate_limited", True, 7.0)
    banned = classify(ccxt.DDoSProtection("x"), Command.SUBMIT, status=418, body='{"code":-1003,"msg":"IP banned until 1"}',
                      headers={"Retry-After": "120"})
    assert (banned.outcome, banned.reason, banned.retry, banned.wait_s) == (Outcome.REJECTED, "ip_banned", False, 120.0)
    assert classify(ccxt.RateLimitExceeded("binance"), Command.SUBMIT).reason == "rate_limited"


def test_a_418_holds_every_request_and_outranks_a_429():
    wall = [1000.0]
    lim = WeightLimiter(wall=lambda: wall[0])
    assert lim.hold() == (0.0, None)
    lim.observe(429, {"Retry-After": "5"})
    assert lim.hold() == (pytest.approx(5.0), 429)
    lim.observe(418, {})  # no Retry-After: Binance's shortest ban
    assert lim.hold() == (pytest.approx(120.0), 418) and lim.bans == 1
    lim.observe(429, {"Retry-After": "1"})  # a reply in flight: the ban still holds
    assert lim.hold() == (pytest.approx(120.0), 418)
    assert lim.reserve("DELETE", "/api/v3/order") == pytest.approx(120.0)
    wall[0] += 121
    assert lim.hold() == (0.0, None) and lim.reserve("DELETE", "/api/v3/order") == 0.0


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


# -- the hot path's booking (`cost` once, `spend` per order) against the windows' definition --

class _Windows:
    """The request budget's fixed windows recomputed from scratch at every call: each count
    belongs to the window index `now` falls in (weight per minute; orders per 10 s, minute,
    day) and any call in another index of that window starts it from 0 (a clock stepped
    back too: the count of a window left earlier is not kept). What `WeightLimiter` must
    agree with however it caches its windows."""

    SIZES = {"weight": 60, 10: 10, 60: 60, 86400: 86400}

    def __init__(self, weight_per_minute, per_10s, per_minute, per_day, headroom):
        self.limits = {"weight": weight_per_minute * headroom, 10: per_10s, 60: per_minute, 86400: per_day}
        self.counts = {key: (None, 0) for key in self.SIZES}
        self.blocked_until = 0.0
        self.flight: list[tuple[int, bool]] = []  # requests sent and not landed: a window opens with them
        self.probe = 0  # after a 429: 1 = the next request goes alone, 2 = it is in flight (others wait)

    def roll(self, now):
        for key, size in self.SIZES.items():
            if self.counts[key][0] != int(now // size):
                carried = sum(w for w, _ in self.flight) if key == "weight" else sum(o for _, o in self.flight)
                self.counts[key] = (int(now // size), carried)

    def land(self, now):
        self.roll(now)
        if self.probe == 2:
            self.probe = 0
        if self.flight:
            return self.flight.pop(0)
        return None

    def used(self, key, now):
        self.roll(now)
        return self.counts[key][1]

    def add(self, key, now, n):
        self.counts[key] = (int(now // self.SIZES[key]), self.used(key, now) + n)

    def reserve(self, now, weight, is_order, in_flight=False):
        if now < self.blocked_until:
            return self.blocked_until - now
        if self.probe == 2:
            return PROBE_WAIT_S
        if self.used("weight", now) + weight > self.limits["weight"]:
            return (int(now // 60) + 1) * 60 - now + 0.001
        if is_order:
            for size in (10, 60, 86400):
                if self.limits[size] is not None and self.used(size, now) + 1 > self.limits[size]:
                    return (int(now // size) + 1) * size - now + 0.001
            for size in (10, 60, 86400):
                self.add(size, now, 1)
        self.add("weight", now, weight)
        if in_flight:
            self.flight.append((weight, is_order))
        if self.probe:
            self.probe = 2 if in_flight else 0
        return 0.0

    def observe(self, now, used_weight, orders_10s, status, retry_after):
        if used_weight > self.used("weight", now):
            self.counts["weight"] = (int(now // 60), used_weight)
        if orders_10s > self.used(10, now):
            self.counts[10] = (int(now // 10), orders_10s)
        if status != 429 and self.probe == 2:
            self.probe = 0
        if status == 429:
            self.probe = 1
            self.blocked_until = max(self.blocked_until, now + retry_after)


_ENDPOINT = st.sampled_from([("POST", "/api/v3/order"), ("GET", "/api/v3/order"), ("GET", "/api/v3/account"),
                             ("DELETE", "/api/v3/order"), ("POST", "/fapi/v1/order"), ("GET", "/fapi/v1/income")])
_STEP = st.one_of(st.floats(min_value=0.0, max_value=0.5), st.floats(min_value=0.0, max_value=90.0),
                  st.floats(min_value=-15.0, max_value=0.0), st.just(86400.0))


@settings(max_examples=150, deadline=None)
@given(limits=st.tuples(st.integers(20, 400), st.one_of(st.none(), st.integers(1, 8)),
                        st.one_of(st.none(), st.integers(1, 20)), st.one_of(st.none(), st.integers(1, 60)),
                        st.sampled_from([1.0, 0.9])),
       start=st.floats(min_value=0.0, max_value=2e9),
       ops=st.lists(st.tuples(_STEP, st.one_of(st.tuples(_ENDPOINT, st.booleans()), st.just("land"),
                                               st.tuples(st.integers(0, 500), st.integers(0, 9),
                                                         st.sampled_from([200, 429]), st.integers(1, 30)))),
                    max_size=120))
def test_spend_books_every_request_in_the_window_now_falls_in(limits, start, ops):
    """Whatever the clock does (small steps, window turns, a day, steps back) and whatever
    the headers say, `spend(*cost(...))` returns what the windows' definition returns and
    leaves the same counts, i.e. the 10 s span it caches never keeps a count past its window;
    requests sent `in_flight` and not landed yet open every window that turns meanwhile."""
    weight, per_10s, per_minute, per_day, headroom = limits
    wall = [start]
    lim = WeightLimiter(weight_per_minute=weight, orders_per_10s=per_10s, orders_per_minute=per_minute,
                        orders_per_day=per_day, headroom=headroom, wall=lambda: wall[0])
    ref = _Windows(weight, per_10s, per_minute, per_day, headroom)
    for step, what in ops:
        wall[0] = max(0.0, wall[0] + step)
        now = wall[0]
        if what == "land":
            landed = ref.land(now)
            if landed is not None:
                lim.landed(*landed)
        elif isinstance(what[0], tuple):
            (method, path), in_flight = what
            got = lim.spend(*WeightLimiter.cost(method, path), in_flight)
            assert got == pytest.approx(ref.reserve(now, *WeightLimiter.cost(method, path), in_flight), abs=1e-9)
        else:
            used, orders, status, after = what
            lim.observe(status, {"X-MBX-USED-WEIGHT-1M": str(used), "X-MBX-ORDER-COUNT-10S": str(orders),
                                 "Retry-After": str(after)})
            ref.observe(now, used, orders, status, after)
        assert lim.used_weight == ref.used("weight", now)
        assert (lim._orders, lim._orders_min, lim._orders_day) == (ref.used(10, now), ref.used(60, now),
                                                                    ref.used(86400, now))


def test_spend_rolls_exactly_at_the_10s_boundary_and_when_the_clock_steps_back():
    """Hand-computed: 3 orders per 10 s. At 129.999 s the 4th waits 0.001 + 0.001 s; at
    130.0 the window has turned (the span [120, 130) is left) and it goes; a clock stepped
    back to 125.0 is another window index again, whose count the limiter does not know:
    it starts from 0 as the fixed-window definition says. The minute [120, 180) is one
    window throughout: weight 3 + 1 + 1 = 5 (the refused order booked nothing)."""
    wall = [120.0]
    lim = WeightLimiter(orders_per_10s=3, headroom=1.0, wall=lambda: wall[0])
    order = WeightLimiter.cost("POST", "/api/v3/order")
    assert order == (1, True) and WeightLimiter.cost("GET", "/api/v3/openOrders") == (80, False)
    assert [lim.spend(*order) for _ in range(3)] == [0.0, 0.0, 0.0]
    wall[0] = 129.999
    assert lim.spend(*order) == pytest.approx(0.002)
    wall[0] = 130.0
    assert lim.spend(*order) == 0.0 and lim._orders == 1
    wall[0] = 125.0
    assert lim.spend(*order) == 0.0 and lim._orders == 1 and lim.used_weight == 5


def _raised(outer: BaseException, cause: BaseException) -> BaseException:
    """`outer` as ccxt raises it: `raise outer from cause` (the traceback chain included)."""
    try:
        try:
            raise cause
        except BaseException as inner:
            raise outer from inner
    except BaseException as exc:
        return exc


@pytest.mark.parametrize("command", [Command.SUBMIT, Command.CANCEL, Command.AMEND])
def test_a_transport_error_without_a_venue_code_is_ambiguous_never_rejected(command):
    """ccxt raises aiohttp's ClientPayloadError (a body cut short) and any other non-connection
    aiohttp.ClientError as a bare ExchangeError, the class of a venue refusal; a reset socket
    under it likewise. With no venue code and no HTTP status it is AMBIGUOUS (a submit or an
    amend never resent); a 200 whose body ccxt could not read is AMBIGUOUS too."""
    import aiohttp

    for cause in (aiohttp.ClientPayloadError("Response payload is not completed"),
                  ConnectionResetError(104, "Connection reset by peer"),
                  aiohttp.ClientResponseError(None, (), status=200, message="Malformed")):
        exc = _raised(ccxt.ExchangeError("binance POST http://127.0.0.1/api/v3/order"), cause)
        verdict = classify(exc, command)
        assert verdict.outcome is Outcome.AMBIGUOUS and verdict.executed_unknown, cause
        assert verdict.retry is (command is Command.CANCEL) and verdict.evidence["transport"] == type(cause).__name__
    cut = classify(ccxt.BadResponse("binance: cannot parse"), command, status=200, body='{"symbol":"BTCU')
    assert cut.outcome is Outcome.AMBIGUOUS and cut.reason is None
    cut = classify(ccxt.ExchangeError("binance"), command, status=200, body='{"symbol":"BTCU')
    assert cut.outcome is Outcome.AMBIGUOUS
    # the venue's own words stay a refusal
    refused = classify(ccxt.InvalidOrder('binance {"code":-2010,"msg":"Duplicate order sent."}'), command)
    assert refused.outcome is Outcome.REJECTED and refused.reason == "duplicate_order"


def test_a_cancel_replace_of_an_order_no_longer_open_is_unknown_order():
    """Binance's -2022 "Order cancel-replace failed." names the cancel part's code in
    data.cancelResponse: -2011 (the order filled or ended) is `unknown_order`, so the OMS
    looks the order up as for a refused cancel."""
    body = ('{"code":-2022,"msg":"Order cancel-replace failed.","data":{"cancelResult":"FAILURE",'
            '"newOrderResult":"NOT_ATTEMPTED","cancelResponse":{"code":-2011,"msg":"Unknown order sent."},'
            '"newOrderResponse":null}}')
    v = classify(ccxt.ExchangeError("x"), Command.AMEND, status=400, body=body)
    assert (v.outcome, v.reason, v.evidence["code"], v.evidence["cancel_code"]) == (
        Outcome.REJECTED, "unknown_order", -2022, -2011)


def test_ccxt_pro_book_snapshots_wait_for_the_request_budget(emu):
    """ccxt.pro's book watch fetches its REST snapshot through the client's own
    fetch_order_book (fetch_rest_order_book_safe, at the start and after every resync),
    past the gateway: the gateway books it too. A 429's Retry-After holds the snapshot
    (the sleep is asked for the hold's 7 s), then GET /api/v3/depth?limit=1000 is booked
    (Binance's weight 50) and answered by the emulator over 127.0.0.1."""
    import ccxt.pro

    from venues.ccxt.gateway import Gateway

    wall = [1_000.5]
    slept: list[float] = []
    asked: list[tuple] = []

    class Recording(WeightLimiter):
        def reserve(self, method, path, query=None, in_flight=False):
            asked.append((method, path, query))
            return super().reserve(method, path, query, in_flight)

    async def sleep(s: float) -> None:
        slept.append(round(s, 3))
        wall[0] += s

    async def run():
        ex = ccxt.pro.binance(emu.ccxt_config("alice", timeout=3000, enableRateLimit=False))
        try:
            await ex.load_markets()
            lim = Recording(wall=lambda: wall[0])
            Gateway(ex, {}, now=lambda: 0, limiter=lim, sleep=sleep)
            lim.observe(429, {"Retry-After": "7"})
            return await ex.fetch_rest_order_book_safe("BTC/USDT", 1000)
        finally:
            await ex.close()

    book = asyncio.run(run())
    depth = ("GET", "/api/v3/depth", {"limit": "1000"})
    assert slept == [7.0] and asked == [depth, depth]  # held, then booked
    assert WeightLimiter.cost(*depth) == (50, False)
    assert book["bids"] and book["asks"]


# -- requests in flight across a window boundary (issue #11) --------------------------------

def test_a_window_opens_with_the_requests_still_in_flight_and_lands_them_when_answered():
    """Stepped wall clock, the trial's figures (issue #11): 50 orders per 10 s; from 117.6 s
    a market maker sends 2 submits every 100 ms (42 in all, to 119.6 s) while a latency
    spike holds each 2 s on the way in and 2 s on the way back. At 120.0 s none has been
    answered: the venue may count all 42 in its window [120, 130), so ours opens at 42 and
    lets 8 more go (before: 0, and 50 more went, 8 of which the venue answered 429). One
    that lands after the turn stays counted there (it may have arrived after it); the
    next window opens with what is still in flight then, and the weight minute the same."""
    wall = [117.586]
    lim = WeightLimiter(wall=lambda: wall[0])
    order = WeightLimiter.cost("POST", "/api/v3/order")
    sent = 0
    while wall[0] < 119.6:
        for _ in range(2):
            assert lim.spend(*order, True) == 0.0
            sent += 1
        wall[0] += 0.1
    assert sent == 42 and lim._orders == 42  # plus none earlier in [110, 120): all in flight
    wall[0] = 120.05
    assert [lim.spend(*order, True) for _ in range(8)] == [0.0] * 8
    assert lim._orders == 50 and lim.spend(*order, True) == pytest.approx(9.951)  # the 51st waits
    for _ in range(42):  # the held ones land at 121.6 s .. 123.6 s: still counted in [120, 130)
        wall[0] += 0.05
        lim.landed(*order)
    assert lim._orders == 50 and lim.spend(*order) > 0
    wall[0] = 130.0  # the 8 sent at 120.05 s are in flight yet: the next window opens at 8
    assert lim.spend(*order) == 0.0 and lim._orders == 9
    for _ in range(8):
        lim.landed(*order)
    wall[0] = 140.0  # nothing in flight: 0, as before
    assert lim.spend(*order) == 0.0 and lim._orders == 1
    wall[0] = 179.9
    assert lim.spend(50, False, True) == 0.0
    wall[0] = 180.0
    assert lim.used_weight == 50  # the minute opens with the weight in flight
    lim.landed(50, False)
    wall[0] = 240.0
    assert lim.used_weight == 0


def test_orders_a_latency_spike_holds_across_the_window_turn_never_earn_a_429_or_a_ban(emu):
    """Issue #11 against the emulator (real ccxt, 127.0.0.1; its windows are wall-clock 10 s
    ones, so the test starts 1.4 s before a boundary T). The venue counts a new order when
    it executes it: a latency_spike of 2 s on the way in moves 8 submits sent 100 ms apart
    at T-1.3 .. T-0.6 into its window [T, T+10), where they arrive at T+0.7 .. T+1.4.
    At T+0.05 the strategy sends 10 more. Orders per 10 s are 10 (emulator limit), ban_after
    3, ban_grace_ms 200. Before: our window [T, T+10) opened empty, all 10 went, and the 8
    held ones arrived into a full window: 8 x 429 -1015, the last 4 of them after the 200 ms
    grace, and the 4th of those started a ban (the trial's 418 for 111 s). Now the window
    opens with the 8 in flight: 2 go, 8 are refused `request_budget` before sending; the
    venue counts 10, no 429, no ban, and the next query is answered."""
    control(emu, "limits", {"orders_per_10s": 10, "ban_after": 3, "ban_grace_ms": 200, "ban_s": 60,
                            "reset": True})

    async def go():
        # the client knows the venue's limit (as it knows Binance's); a held submit's round trip: 4 s
        async with gateway(emu, timeout_ms=8000, limiter=WeightLimiter(orders_per_10s=10)) as gw:
            px = await _bid(gw) - 50
            boundary = (int(time.time() // 10) + 1) * 10
            if boundary - time.time() < 1.6:
                boundary += 10
            await asyncio.sleep(boundary - 1.4 - time.time())
            await fault(emu, {"kind": "latency_spike", "duration": "1s", "extra": "2s",
                              "endpoint": "POST /api/v3/order"})
            held = []
            for k in range(8):
                held.append(asyncio.create_task(gw.submit(order(f"gw-fl-held-{k}", +1, str(px)))))
                await asyncio.sleep(0.1)
            await asyncio.sleep(boundary + 0.05 - time.time())
            after = [asyncio.create_task(gw.submit(order(f"gw-fl-next-{k}", +1, str(px)))) for k in range(10)]
            results = [_first(r) for r in await asyncio.gather(*held, *after)]
            open_now = await gw.open_orders()  # an IP banned meanwhile would answer this 418
            await gw.cancel_all("gw-fl-")
            return results, len(open_now), gw.limiter

    try:
        results, n_open, lim = asyncio.run(asyncio.wait_for(go(), 40))
    finally:
        control(emu, "limits", {"orders_per_10s": 50, "ban_after": 3, "ban_grace_ms": 200, "ban_s": 120,
                                "reset": True})
        control(emu, "faults", {"clear": True})
    held, after = results[:8], results[8:]
    assert [r.outcome for r in held] == [Outcome.CONFIRMED] * 8
    assert [r.outcome for r in after].count(Outcome.CONFIRMED) == 2
    assert sorted(r.reason for r in after if r.outcome is not Outcome.CONFIRMED) == ["request_budget"] * 8
    assert (lim.throttled, lim.bans) == (0, 0) and n_open == 10


async def _bid(gw):
    from decimal import Decimal

    from gw_helpers import BTC

    book = await gw.exchange.fetch_order_book("BTC/USDT", 5)
    return BTC.round_price(Decimal(str(book["bids"][0][0])))


def _first(records):
    from engine.types.venue_reports import CommandResult

    return next(r for r in records if isinstance(r, CommandResult))


def test_after_a_hold_one_request_goes_first_and_the_rest_wait_for_its_answer():
    """Stepped wall clock. A 429 holds 3 s; then the first request goes and the next ones
    wait PROBE_WAIT_S at a time until it is answered. Answered 418 (the venue began a ban
    while it still answered 429): the ban holds everything, and the request after it is the
    next to go alone. Answered 200: everything goes again."""
    wall = [1000.0]
    lim = WeightLimiter(wall=lambda: wall[0])
    order = WeightLimiter.cost("DELETE", "/api/v3/order")
    lim.observe(429, {"Retry-After": "3"})
    assert lim.spend(*order, True) == pytest.approx(3.0)
    wall[0] = 1003.0
    assert lim.spend(*order, True) == 0.0  # the first since the hold
    assert lim.spend(*order, True) == PROBE_WAIT_S  # the rest wait for its answer
    lim.observe(418, {"Retry-After": "60"})
    lim.landed(*order)
    assert lim.spend(*order, True) == pytest.approx(60.0) and lim.bans == 1
    wall[0] = 1063.0
    assert lim.spend(*order, True) == 0.0 and lim.spend(*order, True) == PROBE_WAIT_S
    lim.observe(200, {})
    lim.landed(*order)
    assert [lim.spend(*order, True) for _ in range(3)] == [0.0] * 3


def test_requests_queued_behind_a_429_that_began_a_ban_meet_it_one_at_a_time(emu):
    """The emulator with ban_after 0, ban_grace_ms 0: the 429 (a rate_limit fault, Retry-After
    1 s) that answers our submit also starts a 4 s ban, which our limiter cannot know. Five
    cancels queued behind the hold: when it ends, the first goes alone and is answered 418;
    the other four wait out the ban and then go (-2011, the orders never existed). One 418,
    not five (the trial: a reconciliation and 27 cancels, all answered 418)."""
    control(emu, "limits", {"ban_after": 0, "ban_s": 4, "ban_grace_ms": 0, "reset": True})

    async def go():
        async with gateway(emu, resolve=False, max_order_wait_s=0.5) as gw:
            px = await _bid(gw) - 50
            await fault(emu, {"kind": "rate_limit", "retry_after": "1s", "endpoint": "POST /api/v3/order"})
            refused = _first(await gw.submit(order("gw-probe-0", +1, str(px))))
            cancels = await asyncio.gather(*(gw.cancel(order(f"gw-probe-{k}", +1, str(px))) for k in range(1, 6)))
            return refused, [_first(c) for c in cancels], gw.limiter

    try:
        refused, cancels, lim = asyncio.run(asyncio.wait_for(go(), 30))
    finally:
        control(emu, "limits", {"ban_after": 3, "ban_grace_ms": 200, "ban_s": 120, "reset": True})
        control(emu, "faults", {"clear": True})
    assert (refused.reason, refused.evidence["http_status"]) == ("rate_limited", 429)
    assert sorted(c.reason for c in cancels) == ["ip_banned"] + ["unknown_order"] * 4
    assert lim.bans == 1
