"""A peer that drops its connection is routine: one log line, never a traceback.

Why: both ends of our websockets answer pings in fire-and-forget tasks. ccxt's client
answers the venue's (or the emulator's aiohttp heartbeat) PING with
`ensure_future(connection.pong(...))`, and aiohttp's own heartbeat pings the same way; when
the connection is already closing (the peer dropped it, a network cut, a `ws_disconnect`
fault) that task fails with aiohttp's `ClientConnectionResetError` ("Cannot write to
closing transport", a `ConnectionResetError`), nobody awaits it, and asyncio printed
"Task exception was never retrieved" with a full traceback, which reads as a crash of the
session or the emulator. The reconnect logic (ccxt's, ours) already acts on the closed
socket; the orphaned ping/pong failure carries no information beyond it.

`quiet_resets(loop)` installs a loop exception handler that logs such a failure as one
INFO line on the `tickparity.connections` logger and passes everything else on unchanged
(to the handler installed before, or asyncio's default). The live driver installs it on the
session's loop, the emulator on its server's loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("tickparity.connections")


def quiet_resets(loop: asyncio.AbstractEventLoop) -> None:
    """Make `loop` log an unretrieved ConnectionResetError (a dropped peer) as one INFO line;
    idempotent; other errors reach the previous handler (or asyncio's default) unchanged."""
    previous = loop.get_exception_handler()
    if getattr(previous, "quiet_resets", False):
        return

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, ConnectionResetError):
            task = context.get("future") or context.get("task")
            coro = getattr(task, "get_coro", lambda: None)()
            where = getattr(coro, "__qualname__", None) or context.get("message", "")
            log.info("connection dropped by the peer (%s in %s): ignored", exc, where)
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    handler.quiet_resets = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)
