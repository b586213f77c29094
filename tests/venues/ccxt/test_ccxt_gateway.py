"""Every REST fault kind of the emulator, through the Gateway: the typed outcome, the lookup
that settles an ambiguous one, and never a second order at the venue."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from emu_helpers import control, step
from gw_helpers import BTC, advance, fault, gateway, journal_orders, order

from engine.types import OrderStatus
from engine.types.venue_reports import Command, CommandResult, Outcome, VenueFill, VenueOrderState
from venues.ccxt.gateway import Gateway
from venues.ccxt.ratelimit import WeightLimiter


@pytest.fixture(autouse=True)
def clean(emu):
    step(emu, 0.5)
    yield
    control(emu, "faults", {"clear": True})
    control(emu, "limits", {"reset": True})


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def _bid(gw: Gateway) -> Decimal:
    book = await gw.exchange.fetch_order_book("BTC/USDT", 5)
    return BTC.round_price(Decimal(str(book["bids"][0][0])))


def _result(records) -> CommandResult:
    return next(r for r in records if isinstance(r, CommandResult))


def _states(records) -> list[VenueOrderState]:
    return [r for r in records if isinstance(r, VenueOrderState)]


@pytest.mark.parametrize("name,spec,outcome", [
    ("lost", {"kind": "response_lost"}, Outcome.AMBIGUOUS),
    ("after502", {"kind": "http_5xx_after", "status": 502, "body": "html"}, Outcome.AMBIGUOUS),
    ("after500", {"kind": "http_5xx_after", "status": 500, "body": "json"}, Outcome.AMBIGUOUS),
    ("delay", {"kind": "delay", "delay": 2.0}, Outcome.AMBIGUOUS),
])
def test_submit_executed_but_unanswered_is_ambiguous_and_found_by_lookup(emu, name, spec, outcome):
    cid = f"gw-exec-{name}"

    async def go():
        async with gateway(emu, timeout_ms=1000) as gw:
            px = await _bid(gw) - 50
            await fault(emu, {**spec, "endpoint": "POST /api/v3/order"})
            records = await gw.submit(order(cid, +1, str(px)))
            await gw.cancel(order(cid, +1, str(px)))
            return records, gw.stats

    records, stats = run(go())
    res = _result(records)
    assert res.outcome is outcome and res.command is Command.SUBMIT and res.evidence
    found = _states(records)
    assert len(found) == 1 and found[0].found and found[0].status == OrderStatus.ACKNOWLEDGED
    assert found[0].client_id == cid and found[0].qty == BTC.qty_to_lots("0.001")
    assert len(journal_orders(emu, cid)) == 1  # never resent
    assert stats.retries == 0


@pytest.mark.parametrize("status,body", [(502, "html"), (500, "empty"), (500, "json")])
def test_5xx_before_execution_is_ambiguous_then_not_found(emu, status, body):
    cid = f"gw-5xx-{status}-{body}"

    async def go():
        async with gateway(emu) as gw:
            px = await _bid(gw) - 50
            await fault(emu, {"kind": "http_5xx_before", "status": status, "body": body})
            return await gw.submit(order(cid, +1, str(px)))

    records = run(go())
    res = _result(records)
    assert res.outcome is Outcome.AMBIGUOUS and res.evidence["http_status"] == status
    (state,) = _states(records)
    assert not state.found  # the lookup settles it: never placed, so the OMS may reject it
    assert journal_orders(emu, cid) == []


def test_rejections_carry_venue_evidence_and_are_not_retried(emu):
    async def go():
        async with gateway(emu) as gw:
            px = await _bid(gw) - 50
            await fault(emu, {"kind": "reject", "code": -2010,
                              "msg": "Account has insufficient balance for requested action."})
            refused = await gw.submit(order("gw-rej-1", +1, str(px)))
            ask = (await gw.exchange.fetch_order_book("BTC/USDT", 5))["asks"][0][0]
            taker = await gw.submit(order("gw-rej-2", +1, str(BTC.round_price(Decimal(str(ask)) + 5)),
                                          post_only=True))
            return refused, taker, gw.stats

    refused, taker, stats = run(go())
    r1, r2 = _result(refused), _result(taker)
    assert (r1.outcome, r1.reason, r1.evidence["code"]) == (Outcome.REJECTED, "insufficient_balance", -2010)
    assert (r2.outcome, r2.reason) == (Outcome.REJECTED, "post_only_would_take")
    assert r2.evidence["http_status"] == 400
    assert stats.retries == 0 and journal_orders(emu, "gw-rej-1") == []


def test_transient_refusals_are_retried_and_confirmed_once(emu):
    """-1021 (clock skew) and a 500 -1001 before execution on a cancel: safe to resend."""
    async def go():
        async with gateway(emu) as gw:
            px = await _bid(gw) - 50
            await fault(emu, {"kind": "clock_skew", "skew_ms": 20_000, "endpoint": "POST /api/v3/order"})
            placed = await gw.submit(order("gw-skew", +1, str(px)))
            await fault(emu, {"kind": "http_5xx_before", "status": 503, "body": "html",
                              "endpoint": "DELETE /api/v3/order"})
            cancelled = await gw.cancel(order("gw-skew", +1, str(px)))
            return placed, cancelled, gw.stats

    placed, cancelled, stats = run(go())
    assert _result(placed).outcome is Outcome.CONFIRMED
    assert _result(cancelled).outcome is Outcome.CONFIRMED
    assert _states(cancelled)[0].status == OrderStatus.CANCELLED
    assert stats.retries == 2 and len(journal_orders(emu, "gw-skew")) == 1


def test_cancel_of_a_filled_order_is_refused_then_the_lookup_shows_the_fills(emu):
    async def go():
        async with gateway(emu) as gw:
            ask = (await gw.exchange.fetch_order_book("BTC/USDT", 5))["asks"][0][0]
            px = str(BTC.round_price(Decimal(str(ask)) + 20))
            placed = await gw.submit(order("gw-fill", +1, px))
            await advance(emu)
            return placed, await gw.cancel(order("gw-fill", +1, px))

    placed, cancelled = run(go())
    fills = [r for r in placed if isinstance(r, VenueFill)]
    assert fills and all(f.fee_asset == "BTC" and f.source == "rest" for f in fills)  # buyer pays in base
    res = _result(cancelled)
    assert res.outcome is Outcome.REJECTED and res.reason == "unknown_order" and res.evidence["code"] == -2011
    (state,) = _states(cancelled)
    assert state.status == OrderStatus.FILLED
    looked = [r for r in cancelled if isinstance(r, VenueFill)]
    assert {f.trade_id for f in looked} == {f.trade_id for f in fills}  # the same trades, by id
    assert all(f.source == "query" for f in looked)


def test_connection_refused_never_sent_is_retried_then_rejected(emu):
    """Nothing listens: the request never left, so resending even a submit is safe."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()

    async def go():
        async with gateway(emu) as gw:
            gw.exchange.urls["api"]["private"] = f"http://127.0.0.1:{port}/api/v3"
            return await gw.submit(order("gw-refused", +1, "100")), gw.stats

    records, stats = run(go())
    res = _result(records)
    assert res.outcome is Outcome.REJECTED and res.evidence.get("never_sent") is True
    assert stats.retries == 4  # max_attempts 5


def test_rate_limit_429_waits_retry_after_and_never_earns_a_418(emu):
    """The fault uses up this minute's weight: one 429, then the limiter holds every request
    until Retry-After (the test's sleep moves a fake wall clock and clears the window)."""
    wall = [1_000_000.0]
    limiter = WeightLimiter(wall=lambda: wall[0])
    slept = []

    async def fake_sleep(s):
        slept.append(s)
        wall[0] += s
        await asyncio.to_thread(control, emu, "limits", {"reset": True})

    async def go():
        # Retry-After is the time to the end of the emulator's wall minute (up to 60 s): a
        # submit may wait that long here (the next test covers the local refusal instead)
        async with gateway(emu, limiter=limiter, sleep=fake_sleep, max_order_wait_s=120.0) as gw:
            px = await _bid(gw) - 50
            await fault(emu, {"kind": "rate_limit"})
            first = await gw.submit(order("gw-429", +1, str(px)))
            await gw.cancel(order("gw-429", +1, str(px)))
            return first, gw.stats

    first, stats = run(go())
    assert _result(first).outcome is Outcome.CONFIRMED
    assert limiter.throttled == 1  # one 429, never a second (a 418 needs repeats)
    assert slept and slept[0] >= 1.0  # Retry-After honoured
    assert len(journal_orders(emu, "gw-429")) == 1


def test_a_burst_at_a_429_hold_waits_it_out_and_earns_no_418(emu):
    """The user's market maker through the gateway (real clock, real sleeps): 2 cancels and
    2 submits go out in one step just as the venue starts a 3 s hold (rate_limit
    `retry_after` 3 s). All four meet a 429: they were in flight before the first came
    back. Then nothing more goes out until the Retry-After has passed: the submits would
    wait longer than an order may (max_order_wait_s 1 s) and are refused `rate_limited`
    (never resent); the cancels wait the hold out and are resent once, confirmed. No 418:
    the four in-flight 429s are within the emulator's ban grace (Binance bans for failing to
    back off after receiving 429s, developers.binance.com/docs/binance-spot-api-docs/
    rest-api/limits), and the resent cancels come after the hold."""
    import time

    async def go():
        async with gateway(emu) as gw:
            px = await _bid(gw) - 50
            for cid in ("gw-burst-a", "gw-burst-b"):
                assert _result(await gw.submit(order(cid, +1, str(px)))).outcome is Outcome.CONFIRMED
            await fault(emu, {"kind": "rate_limit", "retry_after": "3s"})  # the order calls
            calls = gw.stats.calls
            t0 = time.monotonic()
            burst = await asyncio.gather(
                gw.cancel(order("gw-burst-a", +1, str(px))), gw.cancel(order("gw-burst-b", +1, str(px))),
                gw.submit(order("gw-burst-c", +1, str(px))), gw.submit(order("gw-burst-d", +1, str(px))))
            return burst, gw.stats.calls - calls, time.monotonic() - t0, gw.limiter

    (cancel_a, cancel_b, submit_c, submit_d), sent, took, limiter = run(go())
    banned = emu.call(lambda server: dict(server.limiter._banned_until))
    assert [_result(r).outcome for r in (cancel_a, cancel_b)] == [Outcome.CONFIRMED, Outcome.CONFIRMED]
    for r in (submit_c, submit_d):
        res = _result(r)
        assert (res.outcome, res.reason, res.evidence.get("http_status")) == (Outcome.REJECTED, "rate_limited", 429)
    assert sent == 6  # the 4 of the burst, then only the 2 cancels again after the hold
    assert took >= 3.0  # the cancels were resent after the Retry-After, not before
    assert limiter.throttled == 4 and limiter.bans == 0  # four 429s, never a 418
    assert banned == {}
    assert journal_orders(emu, "gw-burst-c") == journal_orders(emu, "gw-burst-d") == []


def test_an_order_that_would_wait_long_for_the_budget_is_refused_not_sent_late(emu):
    """A 429's Retry-After of 30 s: a submit is rejected locally at once, `rate_limited`
    (the venue's 429 holds; evidence says so), never queued; a cancel waits its turn (fake
    clock). Our own budget spent for longer than an order may wait: `request_budget`."""
    wall = [2_000_000.0]
    limiter = WeightLimiter(wall=lambda: wall[0])
    slept = []

    async def fake_sleep(s):
        slept.append(s)
        wall[0] += s

    async def go():
        async with gateway(emu, limiter=limiter, sleep=fake_sleep) as gw:
            px = await _bid(gw) - 50
            limiter.observe(429, {"Retry-After": "30"})
            refused = await gw.submit(order("gw-late", +1, str(px)))
            calls = gw.stats.calls
            cancel = await gw.cancel(order("gw-late", +1, str(px)))
            return refused, calls, cancel

    refused, calls, cancel = run(go())
    res = _result(refused)
    assert (res.outcome, res.reason, res.evidence["http_status"]) == (Outcome.REJECTED, "rate_limited", 429)
    assert res.evidence["local"].startswith("HTTP 429")
    assert res.evidence["wait_s"] == pytest.approx(30.0) and calls == 0 and journal_orders(emu, "gw-late") == []
    assert slept == [pytest.approx(30.0)] and _result(cancel).evidence["code"] == -2011  # waited, then sent

    own = WeightLimiter(orders_per_10s=1, wall=lambda: 3_000_005.0)  # 5 s left in its 10 s window

    async def budget():
        async with gateway(emu, limiter=own, sleep=fake_sleep) as gw:
            px = await _bid(gw) - 50
            first = await gw.submit(order("gw-budget-1", +1, str(px)))
            second = await gw.submit(order("gw-budget-2", +1, str(px)))
            own.wall = lambda: 3_000_010.0
            await gw.cancel(order("gw-budget-1", +1, str(px)))
            return first, second

    first, second = run(budget())
    assert _result(first).outcome is Outcome.CONFIRMED
    res = _result(second)
    assert (res.reason, res.evidence["local"]) == ("request_budget", "the venue's request budget is spent")


def test_a_429_that_outlasts_the_order_wait_rejects_the_order_rate_limited(emu):
    """The venue answers a submit 429 -1003 with Retry-After 3 s (the emulator's rate_limit
    fault, retry_after = 3 s), more than the 1 s an order may wait: the order is rejected
    `rate_limited` with the venue's evidence, sent once, never placed; the next submit while
    the 429 holds is refused before sending, `rate_limited` too. A 429 shorter than the wait
    is waited out and the order goes (once)."""
    async def go():
        async with gateway(emu, max_order_wait_s=1.0) as gw:
            px = await _bid(gw) - 50
            await fault(emu, {"kind": "rate_limit", "retry_after": "3s", "endpoint": "POST /api/v3/order"})
            refused = await gw.submit(order("gw-429-long", +1, str(px)))
            sent = gw.stats.calls
            held = await gw.submit(order("gw-429-held", +1, str(px)))
            return refused, held, sent, gw.stats.calls, gw.held_s()

    refused, held, sent, calls, held_s = run(go())
    res = _result(refused)
    assert (res.outcome, res.reason) == (Outcome.REJECTED, "rate_limited")
    assert (res.evidence["http_status"], res.evidence["code"]) == (429, -1003) and "local" not in res.evidence
    again = _result(held)
    assert (again.reason, again.evidence["http_status"]) == ("rate_limited", 429) and "local" in again.evidence
    assert calls == sent and held_s > 1.0  # the held submit never left
    assert journal_orders(emu, "gw-429-long") == [] == journal_orders(emu, "gw-429-held")
    control(emu, "limits", {"reset": True})

    async def short():
        async with gateway(emu, max_order_wait_s=2.5) as gw:
            px = await _bid(gw) - 50
            await fault(emu, {"kind": "rate_limit", "retry_after": "1s", "endpoint": "POST /api/v3/order"})
            placed = await gw.submit(order("gw-429-short", +1, str(px)))
            await gw.cancel(order("gw-429-short", +1, str(px)))
            return placed, gw.stats.retries

    placed, retries = run(short())
    assert _result(placed).outcome is Outcome.CONFIRMED and retries == 1
    assert len(journal_orders(emu, "gw-429-short")) == 1


def test_a_418_ban_rejects_orders_ip_banned_and_nothing_more_is_sent(emu):
    """Another process on our IP ignored its 429s and earned a ban (the emulator's
    ban_after 0 and ban_grace_ms 0: the first 429 bans for ban_s): the gateway's next submit is answered 418;
    it is rejected `ip_banned` and not resent; every later order is refused `ip_banned`
    before sending, as long as the ban's Retry-After holds (nothing hammers a banned IP)."""
    import ccxt

    def neighbour_earns_a_ban():
        neighbour = ccxt.binance(emu.ccxt_config("bob", timeout=3000))
        control(emu, "faults", {"kind": "rate_limit", "endpoint": "GET /api/v3/time"})
        with pytest.raises(ccxt.DDoSProtection):
            neighbour.fetch_time()  # its 429: the IP is banned from now on

    control(emu, "limits", {"ban_after": 0, "ban_s": 30, "ban_grace_ms": 0})  # the first 429 bans
    try:
        async def go():
            async with gateway(emu) as gw:  # markets loaded before the ban
                await asyncio.to_thread(neighbour_earns_a_ban)
                banned = await gw.submit(order("gw-418", +1, "50000.00"))
                sent = gw.stats.calls
                later = [await gw.submit(order(f"gw-418-{k}", +1, "50000.00")) for k in range(3)]
                return banned, later, sent, gw.stats.calls, gw.limiter.bans, gw.held_s(), gw.stats.retries

        banned, later, sent, calls, bans, held_s, retries = run(go())
    finally:
        control(emu, "limits", {"ban_after": 3, "ban_s": 120, "ban_grace_ms": 200, "reset": True})
    res = _result(banned)
    assert (res.outcome, res.reason, res.evidence["http_status"]) == (Outcome.REJECTED, "ip_banned", 418)
    assert retries == 0 and bans == 1 and 20 < held_s <= 30
    for records in later:
        refused = _result(records)
        assert (refused.reason, refused.evidence["http_status"]) == ("ip_banned", 418) and "local" in refused.evidence
    assert calls == sent  # none of the later orders left
    assert journal_orders(emu, "gw-418") == []


@pytest.mark.parametrize("transport", [False, True], ids=["cut-json", "cut-transport"])
@pytest.mark.parametrize("command", ["submit", "cancel", "amend"])
def test_a_reply_cut_short_is_ambiguous_and_the_lookup_by_client_id_settles_it(emu, command, transport):
    """A 200 whose JSON is cut in half (no venue error code), or a body that ends before its
    Content-Length (aiohttp's ClientPayloadError, which ccxt raises as a bare ExchangeError):
    the venue executed the command, so it is AMBIGUOUS, never `rejected` (nor a confirmation
    read from half a body), for a submit, a cancel and an amend alike; the lookup by client id
    finds what the venue did, and the order was never sent twice."""
    cid = f"gw-cut-{command[0]}-{int(transport)}"
    endpoint = {"submit": "POST /api/v3/order", "cancel": "DELETE /api/v3/order",
                "amend": "POST /api/v3/order/cancelReplace"}[command]

    async def go():
        async with gateway(emu) as gw:
            px = await _bid(gw) - 50
            o = order(cid, +1, str(px))
            if command != "submit":
                assert _result(await gw.submit(o)).outcome is Outcome.CONFIRMED
            await fault(emu, {"kind": "truncated_body", "transport": transport, "endpoint": endpoint})
            if command == "submit":
                records = await gw.submit(o)
            elif command == "cancel":
                records = await gw.cancel(o)
            else:
                records = await gw.amend(o, o.price - 100, o.qty)
            if command != "cancel":
                await gw.cancel(o)
            return records, o.price

    records, price = run(go())
    res = _result(records)
    assert res.outcome is Outcome.AMBIGUOUS and res.reason is None, res
    if transport:
        assert res.evidence.get("transport") == "ClientPayloadError" or \
            res.evidence["earlier"]["transport"] == "ClientPayloadError"  # a cancel was resent: -2011 then
    (state,) = _states(records)
    assert state.found and state.source == "query" and state.client_id == cid
    expected = {"submit": OrderStatus.ACKNOWLEDGED, "cancel": OrderStatus.CANCELLED,
                "amend": OrderStatus.ACKNOWLEDGED}[command]
    assert state.status == expected
    if command == "amend":
        assert state.price == price - 100  # the replacement the venue placed
    news = journal_orders(emu, cid)
    assert len(news) == (2 if command == "amend" else 1)  # cancel-replace places one new order
