"""Reconciliation never fails closed on a fill that is only late (engine/reconcile.py).

Reproduced against the emulator with the product's pieces (TradingSession, CcxtVenue over
ccxt.pro, Reconciler driven as the live driver drives it: check, look up what it asks for,
check again). alice rests two sells of 0.005 BTC at 60005.00 inside a still market (bid
60000, ask 60010); her user stream is stalled (`user_delay`), so her fills reach the
session only through lookups. bob takes the first sell; a check sees the venue's balances
one fill ahead of the ledger (pending, A looked up); the lookup books A; bob takes the
second sell before the re-check, which sees the same amounts missing again, now for B.
The old rule ("the same gap twice") closed the gate there; the gap is a different fill's,
the ledger moved in between and B is being looked up, so it stays pending, and once B is
booked the balances agree. Hand-computed gap: USDT 0.005 x 60005 x (1 - 2 bps maker fee)
= 300.025 - 0.060005 = 299.964995; BTC 0.005."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import ccxt
from emu_helpers import control, make_emulator, step, still_market
from fault_session import BTC, Merge, TopBook, settle, shut

from engine.audit import AuditLog
from engine.clock import LiveClock
from engine.ledger import Ledger
from engine.reconcile import Reconciler
from engine.risk import RiskConfig, RiskEngine
from engine.session import TradingSession
from engine.strategy import Strategy
from venues.ccxt import CcxtVenue

PREFIX = "tpr"


class Still(Strategy):
    """Places nothing by itself: the test submits through its context."""


def _bob_takes(emu, price: str) -> None:
    bob = ccxt.binance(emu.ccxt_config("bob", timeout=5000))
    bob.load_markets()
    order = bob.create_order("BTC/USDT", "limit", "buy", 0.005, float(price), {"timeInForce": "IOC"})
    assert order["filled"] == 0.005


async def _scenario(emu, tmp_path) -> list:
    import ccxt.pro as ccxtpro

    pro = ccxtpro.binance(emu.ccxt_config("alice", timeout=5000, enableRateLimit=False))
    venue = None
    watchers: list[asyncio.Task] = []
    try:
        await pro.load_markets()
        merge_box: list[Merge] = []
        venue = CcxtVenue("binance", pro, {0: BTC}, TopBook(), lambda rec: merge_box[0].apply([rec]), time.time_ns,
                          maker_fee_bps=Decimal(2), taker_fee_bps=Decimal(10))
        gw = venue.gateway
        start = await gw.balances()
        ledger = Ledger({BTC.id: BTC}, {"binance": {a: f + lk for a, (f, lk) in start.items()}})
        session = TradingSession(strategy=Still(), instruments={BTC.id: BTC}, venues={"binance": venue},
                                 clock=LiveClock(), ledger=ledger, risk=RiskEngine(RiskConfig.from_table(None)),
                                 audit=AuditLog(tmp_path / "audit.jsonl"), id_prefix=PREFIX)
        merge = Merge(session)
        merge_box.append(merge)
        rec = Reconciler(session, prefix=PREFIX + "-")
        watchers = [asyncio.create_task(venue.watch_orders()), asyncio.create_task(venue.watch_my_trades())]
        session.start()
        a = session.ctx.submit(BTC.id, "sell", "0.005", "60005.00")
        b = session.ctx.submit(BTC.id, "sell", "0.005", "60005.00")
        await settle(venue)
        for _ in range(40):  # both acknowledged (REST replies), resting
            if all(session.oms.by_client[c].status.name == "ACKNOWLEDGED" for c in (a, b)):
                break
            await asyncio.to_thread(step, emu, 0.1)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the stream's acks too
        await asyncio.to_thread(control, emu, "faults", {"kind": "user_delay", "events": 1, "delay": "60s"})

        async def check():
            return rec.check("periodic", await gw.open_orders(), {"binance": await gw.balances()})

        reports = []
        await asyncio.to_thread(_bob_takes, emu, "60005.00")  # fills A; its report is stalled
        await asyncio.to_thread(step, emu, 0.1)
        first = await check()
        reports.append(first)
        for cid in first.lookups:  # as the driver: look up, merge (books A's fill)
            merge.apply(await gw.lookup(session.oms.by_client[cid]))
        await asyncio.to_thread(_bob_takes, emu, "60005.00")  # fills B before the re-check
        await asyncio.to_thread(step, emu, 0.1)
        second = await check()
        reports.append(second)
        for cid in second.lookups:
            merge.apply(await gw.lookup(session.oms.by_client[cid]))
        reports.append(await check())
        reports.append(session.gate.closed)
        reports.append({c: session.oms.by_client[c].status.name for c in (a, b)})
        await asyncio.to_thread(control, emu, "faults", {"clear": True})
        return [a, b, *reports]
    finally:
        await shut(watchers, venue, pro)


def test_two_same_size_fills_in_flight_at_consecutive_checks_do_not_fail_closed(tmp_path):
    with make_emulator(tmp_path / "emu", source=still_market(), ids=("binance:BTC/USDT",)) as emu:
        step(emu, 1.0)
        a, b, first, second, third, closed, statuses = asyncio.run(_scenario(emu, tmp_path))
    gap = {"binance:USDT": "ours", "binance:BTC": "ours"}
    assert first.ok and first.lookups == [a] and sorted(d.key for d in first.pending) == sorted(gap)
    # the same amounts missing again, for B's fill this time: pending, not a difference
    assert second.ok and second.lookups == [b], second.text()
    assert sorted(d.key for d in second.pending) == sorted(gap) and not second.differences
    usdt = next(d for d in second.pending if d.key == "binance:USDT")
    first_usdt = next(d for d in first.pending if d.key == "binance:USDT")
    gap_usdt = Decimal(first_usdt.ours) - Decimal(first_usdt.venue.split(" ")[0])
    assert gap_usdt == Decimal(usdt.ours) - Decimal(usdt.venue.split(" ")[0]) == Decimal("-299.964995")
    assert third.ok and not third.pending and not third.lookups, third.text()
    assert closed is False
    assert statuses == {a: "FILLED", b: "FILLED"}
