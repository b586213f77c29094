"""Binance's microsecond time unit on the emulator, over real ccxt / aiohttp on 127.0.0.1:
X-MBX-TIME-UNIT on REST, timeUnit on the websocket URLs, milliseconds without either
(spot API docs, CHANGELOG 2024-12-09 "Microsecond support")."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from emu_helpers import pro_client, step

from venues.ccxt.timeunit import HEADER, NS_PER_US, ask_microseconds, unit_ns


def _run(coro, timeout=40):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def _shown(emu, market_ns: int, unit: int) -> int:
    return emu.call(lambda server: server.exchange.clock.shown(market_ns, unit))


def _order(emu, order_id: int):
    return emu.call(lambda server: server.exchange.orders[int(order_id)])


def test_rest_and_user_stream_times_in_the_unit_asked_for(emu):
    step(emu, 0.7)

    async def run():
        async with pro_client(emu) as us, pro_client(emu) as ms:
            assert ask_microseconds(us) and unit_ns(us) == NS_PER_US and unit_ns(ms) == 1_000_000
            assert us.headers[HEADER] == "MICROSECOND"
            watch = asyncio.ensure_future(us.watch_orders("BTC/USDT"))
            await asyncio.sleep(0.3)  # subscribed
            bid = (await us.fetch_order_book("BTC/USDT", 5))["bids"][0][0]
            placed = await us.create_order("BTC/USDT", "limit", "buy", 0.001, round(bid - 50, 2))
            streamed = [dict(o) for o in await asyncio.wait_for(watch, 10)]
            as_ms = await ms.fetch_order(placed["id"], "BTC/USDT")
            as_us = await us.fetch_order(placed["id"], "BTC/USDT")
            await us.cancel_order(placed["id"], "BTC/USDT")
            return placed, streamed, as_ms, as_us

    placed, streamed, as_ms, as_us = _run(run())
    order = _order(emu, placed["id"])
    arrival_us = _shown(emu, order.working_ns, NS_PER_US)
    # the µs client: the venue's time of the order to the µs, in every field that has it
    assert int(placed["info"]["transactTime"]) == arrival_us
    assert int(placed["info"]["workingTime"]) == arrival_us
    assert int(as_us["info"]["time"]) == _shown(emu, order.time_ns, NS_PER_US)
    assert int(as_us["info"]["workingTime"]) == arrival_us
    report = next(o for o in streamed if o["id"] == placed["id"])
    assert int(report["info"]["T"]) == arrival_us  # the executionReport of the µs session
    assert int(report["info"]["W"]) == arrival_us
    # the default client: the same times in whole ms (its floor), as before
    assert int(as_ms["info"]["workingTime"]) == arrival_us // 1000
    assert int(as_ms["info"]["time"]) == _shown(emu, order.time_ns, 1_000_000)
    assert as_ms["timestamp"] == _shown(emu, order.time_ns, 1_000_000)  # ccxt's ms parse still right


def test_market_streams_in_microseconds_and_milliseconds(emu):
    step(emu, 0.5)

    async def run():
        async with pro_client(emu) as us, pro_client(emu) as ms:
            ask_microseconds(us)
            books = [asyncio.ensure_future(c.watch_order_book("BTC/USDT")) for c in (us, ms)]
            await asyncio.sleep(0.3)
            for _ in range(5):  # windows closed while both watch
                await asyncio.to_thread(step, emu, 0.35)
                await asyncio.sleep(0.05)
            got = await asyncio.gather(*(asyncio.wait_for(b, 10) for b in books))
            # wait until both have applied the same last diff
            for _ in range(100):
                if us.orderbooks["BTC/USDT"]["nonce"] == ms.orderbooks["BTC/USDT"]["nonce"]:
                    break
                await asyncio.sleep(0.05)
            return us.orderbooks["BTC/USDT"]["timestamp"], ms.orderbooks["BTC/USDT"]["timestamp"], got

    t_us, t_ms, _ = _run(run())
    from venues.emulator.exchange import DEPTH_INTERVAL_NS

    # a depth diff's E is its window's end (a whole 100 ms of market time), shown to the µs
    assert t_us // 1000 == t_ms
    # (the market -> client shift has ns digits: the window end is the multiple of 100 ms in
    # the µs the stamp names)
    start = emu.call(lambda s: t_us * 1000 - s.exchange.clock.shift_ns)
    window_end = -(-start // DEPTH_INTERVAL_NS) * DEPTH_INTERVAL_NS
    assert 0 <= window_end - start < 1000
    assert _shown(emu, window_end, NS_PER_US) == t_us


def test_timestamp_parameters_in_either_unit_and_bad_units_refused(emu):
    step(emu, 0.2)

    async def run():
        async with pro_client(emu) as us:
            ask_microseconds(us)
            await us.create_order("BTC/USDT", "market", "buy", 0.001)
            now_us = int(await us.fetch_time())  # serverTime in µs
            assert now_us > 10**15
            # startTime in µs and in ms select the same trades (Binance: either unit)
            a = await us.fetch_my_trades("BTC/USDT", params={"startTime": now_us - 60_000_000})
            b = await us.fetch_my_trades("BTC/USDT", params={"startTime": now_us // 1000 - 60_000})
            c = await us.fetch_my_trades("BTC/USDT", params={"startTime": now_us + 60_000_000})
            return a, b, c

    a, b, c = _run(run())
    assert a and [t["id"] for t in a] == [t["id"] for t in b] and c == []

    req = urllib.request.Request(f"{emu.url}/api/v3/time", headers={HEADER: "NANOSECOND"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    body = json.loads(err.value.read())
    assert err.value.code == 400 and body["code"] == -1100 and HEADER in body["msg"]
    req = urllib.request.Request(f"{emu.url}/api/v3/time", headers={HEADER: "microsecond"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.loads(resp.read())["serverTime"] > 10**15

    async def bad_stream():
        import aiohttp

        async with aiohttp.ClientSession() as s:
            try:
                async with s.ws_connect(emu.url.replace("http", "ws") + "/ws/0?timeUnit=SECOND"):
                    return None
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

    assert _run(bad_stream()) == 400
