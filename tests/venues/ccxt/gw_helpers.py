"""Helpers: an async ccxt client of an emulator account wrapped in a Gateway."""

from __future__ import annotations

import asyncio
import contextlib
import time

from emu_helpers import control, step

from engine.oms import Order
from engine.types import OrderStatus, OrderType, TimeInForce, load_instruments
from venues.ccxt.gateway import Gateway
from venues.ccxt.ratelimit import WeightLimiter
from venues.ccxt.retry import Backoff

BTC = load_instruments()["binance:BTC/USDT"]


def now_ns() -> int:
    return time.time_ns()


@contextlib.asynccontextmanager
async def gateway(emu, account="alice", *, timeout_ms=3000, limiter=None, sleep=None, **kw):
    import ccxt.async_support as ccxt_async

    ex = ccxt_async.binance(emu.ccxt_config(account, timeout=timeout_ms, enableRateLimit=False))
    try:
        await ex.load_markets()
        gw = Gateway(ex, {"BTC/USDT": BTC}, now=now_ns, limiter=limiter or WeightLimiter(),
                     backoff=Backoff(base_s=0.01, cap_s=0.05, seed=1), **({"sleep": sleep} if sleep else {}), **kw)
        yield gw
    finally:
        await ex.close()


_NO = [0]


def order(client_id: str, side: int, price: str | None, qty: str = "0.001", tif=TimeInForce.GTC,
          post_only: bool = False) -> Order:
    _NO[0] += 1
    o = Order(order_no=_NO[0], client_id=client_id, instrument=BTC, instrument_index=0, side=side,
              type=OrderType.LIMIT if price is not None else OrderType.MARKET, tif=tif,
              price=BTC.price_to_ticks(price) if price is not None else 0, qty=BTC.qty_to_lots(qty),
              post_only=post_only)
    o.status = OrderStatus.SUBMITTED
    return o


async def fault(emu, body):
    return await asyncio.to_thread(control, emu, "faults", body)


async def advance(emu, seconds=0.2):
    return await asyncio.to_thread(step, emu, seconds)


def journal_orders(emu, client_id):
    from emu_helpers import get_json

    return [e for e in get_json(emu, "/emulator/journal") if e["event"] == "order_new"
            and e["client_order_id"] == client_id]
