"""A websocket peer that drops its connection while a ping/pong is due is one log line, not a
traceback (venues/connection_resets.py).

The client side is what ccxt does (a PING from the server's aiohttp heartbeat answered by a
fire-and-forget `pong` task, `ensure_future(connection.pong(...))`): after the connection
closed under it, the task fails with aiohttp's ClientConnectionResetError and, unretrieved,
asyncio logged "Task exception was never retrieved" with the traceback. The emulator's
server side answers a client that dropped before its reply: that reply fails the same way."""

from __future__ import annotations

import asyncio
import gc
import logging

import aiohttp
from emu_helpers import make_emulator

from venues.connection_resets import quiet_resets


async def _ping_pong_after_drop(url: str, quiet: bool) -> None:
    if quiet:
        quiet_resets(asyncio.get_running_loop())
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url.replace("http", "ws") + "/ws", autoping=False)  # as ccxt connects
        msg = await asyncio.wait_for(ws.receive(), 30)  # the emulator's heartbeat
        assert msg.type == aiohttp.WSMsgType.PING
        ws._writer.transport.close()  # the connection drops under the client
        asyncio.ensure_future(ws.pong(msg.data))  # ccxt's answer to the PING, never awaited
        await asyncio.sleep(0.1)
        gc.collect()  # the failed task is collected: asyncio reports it to the loop's handler
        await asyncio.sleep(0)


def _run(emu, quiet: bool) -> None:
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_ping_pong_after_drop(emu.url, quiet))
        gc.collect()
    finally:
        loop.close()


def test_a_pong_to_a_dropped_connection_is_one_info_line(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    # the CLI sets the "tickparity" logger's console level (WARNING) when another test ran it
    caplog.set_level(logging.INFO, logger="tickparity.connections")
    with make_emulator(tmp_path / "emu", stepped=False, ping_interval=0.2) as emu:
        _run(emu, quiet=False)  # without the handler: asyncio's traceback (the fault reported)
        assert any(r.levelno == logging.ERROR and "Task exception was never retrieved" in r.getMessage()
                   for r in caplog.records), [r.getMessage() for r in caplog.records]
        caplog.clear()
        _run(emu, quiet=True)
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    lines = [r for r in caplog.records if r.name == "tickparity.connections"]
    assert errors == [], [r.getMessage() for r in errors]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO and lines[0].exc_info is None
    assert lines[0].getMessage().startswith("connection dropped by the peer (Cannot write to closing transport in "
                                            "ClientWebSocketResponse.pong)"), lines[0].getMessage()


def test_other_loop_errors_still_reach_the_previous_handler():
    seen = []
    loop = asyncio.new_event_loop()
    try:
        loop.set_exception_handler(lambda lp, ctx: seen.append(type(ctx.get("exception")).__name__))
        quiet_resets(loop)
        quiet_resets(loop)  # idempotent: one wrapper
        loop.call_exception_handler({"message": "x", "exception": ValueError("boom")})
        loop.call_exception_handler({"message": "y", "exception": aiohttp.ClientConnectionResetError("gone")})
    finally:
        loop.close()
    assert seen == ["ValueError"]


def test_the_emulator_loop_is_quiet(tmp_path):
    with make_emulator(tmp_path / "emu", stepped=False) as emu:
        handler = emu.loop.get_exception_handler()
    assert getattr(handler, "quiet_resets", False)
