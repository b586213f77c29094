"""Order mapping onto Binance spot: post-only, STP mode, amend as cancel-replace (through the
emulator), GTD emulated by the engine."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from emu_helpers import control, step
from gw_helpers import BTC, fault, gateway, journal_orders, now_ns, order
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import OrderError
from engine.oms import Order
from engine.types import OrderStatus, OrderType, TimeInForce, load_instruments
from engine.types.venue_reports import CommandResult, Outcome, VenueOrderState
from venues.ccxt.gateway import Gateway
from venues.ccxt.orders import ExpiryWatch, OrderMapping, amend_request, order_request, stp_mode


@pytest.fixture(autouse=True)
def clean(emu):
    step(emu, 0.5)
    yield
    control(emu, "faults", {"clear": True})


def test_order_requests():
    req = order_request(order("m-1", +1, "60000.10", tif=TimeInForce.IOC), stp="cancel-both")
    assert req.args() == ("BTC/USDT", "limit", "buy", "0.00100", "60000.10", {
        "newClientOrderId": "m-1", "newOrderRespType": "FULL", "selfTradePreventionMode": "EXPIRE_BOTH",
        "timeInForce": "IOC"})
    maker = order_request(order("m-2", -1, "60000.10", post_only=True))
    assert maker.params["postOnly"] is True and "timeInForce" not in maker.params
    market = order_request(order("m-3", -1, None, qty="0.5"))
    assert (market.type, market.amount, market.price) == ("market", "0.50000", None)  # never a price
    gtd = order_request(order("m-4", +1, "1", tif=TimeInForce.GTD))
    assert gtd.params["timeInForce"] == "GTC"  # the engine cancels it at expiry
    assert [stp_mode(s) for s in ("none", "cancel-new", "cancel-resting", "decrement-both")] == [
        "NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "DECREMENT"]
    with pytest.raises(OrderError, match="stp='x'"):
        stp_mode("x")
    with pytest.raises(OrderError, match="longer than Binance's 36"):
        order_request(order("x" * 37, +1, "1"))


_INSTRUMENTS = load_instruments()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(inst_id=st.sampled_from(["binance:BTC/USDT", "binance:ETH/USDT", "binanceusdm:BTC/USDT:USDT",
                                "binancecoinm:BTC/USD:BTC"]),
       side=st.sampled_from([1, -1]), market=st.booleans(), tif=st.sampled_from([t for t in TimeInForce]),
       post_only=st.booleans(), reduce_only=st.booleans(), price=st.integers(1, 10**9), qty=st.integers(1, 10**9),
       stp=st.sampled_from([None, "none", "cancel-new", "cancel-resting", "cancel-both", "decrement-both"]))
def test_order_mapping_gives_each_order_its_own_exact_request(inst_id, side, market, tif, post_only, reduce_only,
                                                             price, qty, stp):
    """`OrderMapping.args` (the live hot path, per instrument) against the module doc's rules
    written out with Decimal arithmetic: the amount and price text exact on the grid, GTD
    as GTC, post-only (or GTX) as postOnly without a timeInForce, reduceOnly only on a
    contract, the STP mode by its Binance name; every call a fresh params dict (ccxt may
    keep it), the same arguments `order_request` gives."""
    inst = _INSTRUMENTS[inst_id]
    if market:
        post_only, tif = False, TimeInForce.IOC
    o = Order(order_no=1, client_id="tp-map-1", instrument=inst, instrument_index=0, side=side,
              type=OrderType.MARKET if market else OrderType.LIMIT, tif=tif, price=0 if market else price,
              qty=qty, post_only=post_only, reduce_only=reduce_only)
    mapping = OrderMapping(inst, stp)
    got = mapping.args(o)
    params = {"newClientOrderId": "tp-map-1", "newOrderRespType": "FULL"}
    if stp is not None:
        params["selfTradePreventionMode"] = stp_mode(stp)
    if reduce_only and inst.contract:
        params["reduceOnly"] = True
    amount = format(qty * inst.lot_size, "f")
    if market:
        want = (inst.symbol, "market", "buy" if side > 0 else "sell", amount, None, params)
    else:
        if post_only or tif == TimeInForce.GTX:
            params["postOnly"] = True
        else:
            params["timeInForce"] = {TimeInForce.GTD: "GTC"}.get(tif, tif.name)
        want = (inst.symbol, "limit", "buy" if side > 0 else "sell", amount, format(price * inst.tick_size, "f"),
                params)
    assert got == want
    assert [list(got[5]) for got in (got,)] == [list(params)]  # the venue sees the keys in this order
    got[5]["mutated"] = True
    assert "mutated" not in mapping.args(o)[5]
    assert order_request(o, stp=stp).args() == want


def test_a_gateway_s_mappings_follow_its_stp_mode():
    """The gateway keeps one mapping per instrument (built on its first order); changing its
    STP mode rebuilds them, so the next order carries the new mode."""
    import ccxt.async_support as ccxt_async

    async def go():
        ex = ccxt_async.binance({"enableRateLimit": False})
        try:
            gw = Gateway(ex, {"BTC/USDT": BTC}, now=now_ns, stp="cancel-new")
            o = order("stp-1", +1, "100.00")
            modes = [gw._order_args(o)[5].get("selfTradePreventionMode")]
            gw.stp = "decrement-both"
            modes.append(gw._order_args(o)[5].get("selfTradePreventionMode"))
            gw.stp = None
            modes.append(gw._order_args(o)[5].get("selfTradePreventionMode"))
            return modes
        finally:
            await ex.close()

    assert asyncio.run(go()) == ["EXPIRE_TAKER", "DECREMENT", None]


def test_amend_request_is_cancel_replace_of_what_is_left():
    o = order("a-1", +1, "100.00", qty="0.010")
    o.filled = BTC.qty_to_lots("0.004")
    req = amend_request(o, BTC.price_to_ticks("101.00"), BTC.qty_to_lots("0.012"))
    assert (req.amount, req.price) == ("0.00800", "101.00")  # exact, on the lot grid
    assert req.params["cancelOrigClientOrderId"] == "a-1" and req.params["newClientOrderId"] == "a-1"
    with pytest.raises(OrderError, match="cancel instead"):
        amend_request(o, o.price, BTC.qty_to_lots("0.004"))


def test_amend_through_the_emulator_replaces_the_order_under_the_same_client_id(emu):
    async def go():
        async with gateway(emu) as gw:
            bid = (await gw.exchange.fetch_order_book("BTC/USDT", 5))["bids"][0][0]
            px = BTC.round_price(Decimal(str(bid)) - 100)
            o = order("amend-1", +1, str(px), qty="0.002")
            placed = await gw.submit(o)
            amended = await gw.amend(o, BTC.price_to_ticks(px - 1), BTC.qty_to_lots("0.003"))
            found = await gw.lookup(o)
            await gw.cancel(o)
            return placed, amended, found

    placed, amended, found = asyncio.run(asyncio.wait_for(go(), 30))
    res = next(r for r in amended if isinstance(r, CommandResult))
    assert res.outcome is Outcome.CONFIRMED
    (state,) = [r for r in found if isinstance(r, VenueOrderState)]
    old = next(r for r in placed if isinstance(r, VenueOrderState))
    assert state.client_id == "amend-1" and state.status == OrderStatus.ACKNOWLEDGED
    assert state.venue_order_id != old.venue_order_id  # a new order: queue priority lost
    assert (state.qty, state.price) == (BTC.qty_to_lots("0.003"), old.price - 100)  # 1 USDT lower
    assert len(journal_orders(emu, "amend-1")) == 2  # the original and its replacement


def test_gtd_expiry_watch():
    w = ExpiryWatch()
    w.add("b", 200)
    w.add("a", 100)
    w.add("gtc", 0)  # no deadline
    assert w.due(99) == [] and w.due(150) == ["a"]
    w.discard("b")
    assert w.due(10**18) == []


def test_a_cancel_never_overtakes_its_orders_create(emu):
    """Under a latency spike on order POSTs (the emulator's `latency_spike`, request and
    reply legs 0.4 s slower), a cancel sent right after its submit reaches the venue first
    when the two go out independently (refused -2011, the order then rests: the fault
    shows the race); CcxtVenue sends one order's commands in order, so its cancel lands."""
    import ccxt.async_support as ccxt_async

    from venues.ccxt import CcxtVenue

    async def go():
        await fault(emu, {"kind": "latency_spike", "endpoint": "POST /api/v3/order", "duration": "30s",
                          "extra": "400ms"})
        async with gateway(emu) as gw:
            bid = (await gw.exchange.fetch_order_book("BTC/USDT", 5))["bids"][0][0]
            px = str(BTC.round_price(Decimal(str(bid)) - 200))
            raced = order("race-1", +1, px)
            submit = asyncio.ensure_future(gw.submit(raced))
            await asyncio.sleep(0.1)
            refused = await gw.cancel(raced)
            await submit
            resting = [s.client_id for _, s in await gw.open_orders()]
            await gw.cancel(raced)  # clean up

        records = []
        ex = ccxt_async.binance(emu.ccxt_config("alice", timeout=3000, enableRateLimit=False))
        try:
            await ex.load_markets()
            venue = CcxtVenue("binance", ex, {0: BTC}, None, records.append, now_ns)
            ordered = order("ordered-1", +1, px)
            venue.submit(ordered, now_ns())
            venue.cancel(ordered, now_ns())
            while venue.tasks:
                await asyncio.gather(*list(venue.tasks), return_exceptions=True)
            left = [s.client_id for _, s in await venue.gateway.open_orders()]
        finally:
            await ex.close()
        return refused, resting, records, left

    refused, resting, records, left = asyncio.run(asyncio.wait_for(go(), 30))
    assert next(r for r in refused if isinstance(r, CommandResult)).outcome is Outcome.REJECTED
    assert "race-1" in resting
    results = [(r.command.value, r.outcome) for r in records if isinstance(r, CommandResult)]
    assert results == [("submit", Outcome.CONFIRMED), ("cancel", Outcome.CONFIRMED)]
    assert "ordered-1" not in left


def test_a_submit_cancelled_before_its_task_ran_closes_the_handed_off_call(emu):
    """Shutdown right after a submit (the venue's tasks cancelled before the loop ran them):
    the create_order call already handed to ccxt is closed, never run: nothing reaches the
    venue, and Python reports no coroutine left unawaited. A submit whose task runs goes out."""
    import gc
    import warnings

    import ccxt.async_support as ccxt_async

    from venues.ccxt import CcxtVenue

    async def go():
        ex = ccxt_async.binance(emu.ccxt_config("alice", timeout=3000, enableRateLimit=False))
        try:
            await ex.load_markets()
            bid = (await ex.fetch_order_book("BTC/USDT", 5))["bids"][0][0]
            px = str(BTC.round_price(Decimal(str(bid)) - 300))
            records = []
            venue = CcxtVenue("binance", ex, {0: BTC}, None, records.append, now_ns)
            venue.submit(order("shut-1", +1, px), now_ns())
            await venue.close()  # before the loop ran the task
            sent = CcxtVenue("binance", ex, {0: BTC}, None, records.append, now_ns)
            sent.submit(order("shut-2", +1, px), now_ns())
            while sent.tasks:
                await asyncio.gather(*list(sent.tasks), return_exceptions=True)
            open_ids = [o["clientOrderId"] for o in await ex.fetch_open_orders("BTC/USDT")]
            await sent.gateway.cancel(order("shut-2", +1, px))
            return records, open_ids, venue.tasks, venue._last_command
        finally:
            await ex.close()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records, open_ids, tasks, last = asyncio.run(asyncio.wait_for(go(), 30))
        gc.collect()
    assert "shut-1" not in open_ids and "shut-2" in open_ids
    assert journal_orders(emu, "shut-1") == [] and len(journal_orders(emu, "shut-2")) == 1
    assert [r.client_id for r in records if isinstance(r, CommandResult)] == ["shut-2"]
    assert not tasks and not last  # the cancelled task forgot itself
    assert not [w for w in caught if "never awaited" in str(w.message)]
