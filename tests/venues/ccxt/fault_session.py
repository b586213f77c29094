"""A testnet session for the fault tests: the engine's TradingSession (strategy, OMS, risk,
ledger, audit, reconciliation) trading through the product's `CcxtVenue` (commands through
its Gateway, the user stream through its watch loops, both on one ccxt.pro client) against
the emulator, while a fault of the emulator fires. The harness steps the emulator's
market clock itself (deterministic books), so it drives the session directly rather than
through the live driver's loop.

Records reach the session through its typed entry points (`on_command_result`,
`on_venue_state`, `on_venue_fill`), as in the live driver (modes.live.reports.apply_report).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from emu_helpers import control, get_json, step

from engine.audit import AuditLog
from engine.clock import LiveClock
from engine.ledger import Ledger
from engine.reconcile import DeadManSwitch, Reconciler, halt_strategy
from engine.risk import RiskConfig, RiskEngine
from engine.session import TradingSession
from engine.strategy import Strategy
from engine.types import OrderStatus, load_instruments
from modes.live.reports import apply_report
from venues.ccxt import CcxtVenue
from venues.ccxt.ratelimit import WeightLimiter
from venues.ccxt.retry import Backoff

BTC = load_instruments()["binance:BTC/USDT"]


class Churn(Strategy):
    """Quotes both sides near the touch, takes now and then, cancels what rests too long."""

    def __init__(self, qty: str = "0.01"):
        self.qty = Decimal(qty)
        self.tick = 0
        self.updates = []

    def on_start(self, ctx):
        ctx.schedule(every_ns=1_000_000)  # the harness fires one per tick

    def on_timer(self, ctx, ts):
        self.tick += 1
        book = ctx.book(BTC.id)
        if book.best_bid is None or book.best_ask is None:
            return
        for cid in ctx.open_orders(BTC.id)[:-2]:
            ctx.cancel(cid)
        step_ = BTC.tick_size
        ctx.submit(BTC.id, "buy", self.qty, book.best_bid - step_ * (self.tick % 3))
        ctx.submit(BTC.id, "sell", self.qty, book.best_ask + step_ * (self.tick % 3))
        if self.tick % 2 == 0:  # a marketable limit: fills at once, as a taker
            side = "buy" if self.tick % 4 == 0 else "sell"
            px = book.best_ask + 10 if side == "buy" else book.best_bid - 10
            ctx.submit(BTC.id, side, self.qty, BTC.round_price(px), tif="IOC")

    def on_order(self, ctx, update):
        self.updates.append(update)


class Merge:
    """Typed venue records -> the session's entry points (the OMS merges them)."""

    def __init__(self, session: TradingSession):
        self.s = session

    def apply(self, records) -> None:
        for rec in records:
            apply_report(self.s, rec)


class TopBook:
    """The session's local book for the harness: the top of ccxt.pro's book (the live
    driver keeps a full local book; strategies here read only the touch)."""

    def __init__(self) -> None:
        self.top = (0, 0, 0, 0)

    def local_bbo(self, i):
        return self.top

    def local_levels(self, i, side, n):
        px, q = (self.top[0], self.top[1]) if side > 0 else (self.top[2], self.top[3])
        return np.array([px]), np.array([q])


async def settle(venue) -> None:
    """Until every command/lookup task the venue started has answered."""
    while venue.tasks:
        await asyncio.gather(*list(venue.tasks), return_exceptions=True)


@dataclass
class Result:
    prefix: str
    orders_sent: int
    duplicates: dict[str, int]
    venue_trades: set[str]
    booked_trades: set[str]
    ledger: dict[str, Decimal]
    venue_balances: dict[str, Decimal]
    final_report: str
    final_ok: bool
    open_after_kill: int
    kill_s: float
    stats: object
    limiter: object
    fault_fired: int
    deadman: list
    book_updates: int
    reports: list[str] = field(default_factory=list)
    # orders the session holds as rejected although the venue placed them (a refusal
    # without venue evidence: what an ambiguous outcome taken for a rejection leaves)
    rejected_but_placed: list[str] = field(default_factory=list)


def _top(book) -> tuple[int, int, int, int]:
    (bp, bq), (ap, aq) = book["bids"][0][:2], book["asks"][0][:2]
    lots = lambda q: BTC.qty_to_lots(BTC.round_qty(Decimal(str(q)))) or 1  # noqa: E731
    return (BTC.price_to_ticks(BTC.round_price(Decimal(str(bp)))), lots(bq),
            BTC.price_to_ticks(BTC.round_price(Decimal(str(ap)))), lots(aq))


async def _market(pro, venue: TopBook, stop: asyncio.Event, dm: DeadManSwitch, count: list[int]) -> None:
    """The market stream: ccxt.pro's book (snapshot + diffs; a gap or a disconnect raises and
    the next watch re-snapshots) sets the session's top of book."""
    while not stop.is_set():
        try:
            book = await asyncio.wait_for(pro.watch_order_book("BTC/USDT"), 1.0)
        except (TimeoutError, Exception):  # noqa: B014 - silence, gaps, disconnects
            await asyncio.sleep(0.05)
            continue
        if book["bids"] and book["asks"]:
            venue.top = _top(book)
            dm.touch("market", time.time_ns())
            count[0] += 1


async def trade_through(emu, prefix: str, fault: dict | None, tmp_path, *, ticks: int = 8,
                        account: str = "alice", deadman_s: float = 60.0, credentials=None) -> Result:
    import ccxt.pro as ccxtpro

    keys = credentials.ccxt() if credentials is not None else {}  # else the account's own
    pro = ccxtpro.binance({**emu.ccxt_config(account, timeout=1500, enableRateLimit=False), **keys})
    watchers: list[asyncio.Task] = []
    venue = None
    try:
        await pro.load_markets()
        limiter, sleep = WeightLimiter(), asyncio.sleep
        if fault is not None and fault["kind"] == "rate_limit":
            # Binance's window is the wall-clock minute: Retry-After can be 60 s. The limiter
            # runs on a fake wall clock that its waits move, and a wait ends the emulator's
            # window too (limits reset), so the test takes seconds, not a minute
            wall = [time.time()]
            limiter = WeightLimiter(wall=lambda: wall[0])

            async def sleep(seconds):
                wall[0] += seconds
                await asyncio.to_thread(control, emu, "limits", {"reset": True})
        book = TopBook()
        dm = DeadManSwitch(timeout_s=deadman_s, streams=("market",))  # as the live driver
        errors: list[str] = []
        merge_box: list[Merge] = []
        # the product's venue: commands through its Gateway, the user stream through its
        # watch loops; records go straight into the session (the driver queues them per step)
        venue = CcxtVenue("binance", pro, {0: BTC}, book, lambda rec: merge_box[0].apply([rec]), time.time_ns,
                          maker_fee_bps=Decimal(2), taker_fee_bps=Decimal(10), limiter=limiter,
                          on_error=lambda what, exc: errors.append(f"{what}: {type(exc).__name__}"))
        gw = venue.gateway
        gw.sleep = sleep
        gw.backoff = Backoff(base_s=0.01, cap_s=0.05, seed=7)
        start = await gw.balances()
        ledger = Ledger({BTC.id: BTC}, {"binance": {a: f + lk for a, (f, lk) in start.items()}})
        strategy = Churn()
        session = TradingSession(strategy=strategy, instruments={BTC.id: BTC}, venues={"binance": venue},
                                 clock=LiveClock(), ledger=ledger, risk=RiskEngine(RiskConfig.from_table(None)),
                                 audit=AuditLog(tmp_path / f"{prefix}audit.jsonl"), id_prefix=prefix)
        merge = Merge(session)
        merge_box.append(merge)
        rec = Reconciler(session, prefix=prefix + "-")
        stop = asyncio.Event()
        dm.touch("market", time.time_ns())
        book_updates = [0]
        watchers = [asyncio.create_task(venue.watch_orders()), asyncio.create_task(venue.watch_my_trades()),
                    asyncio.create_task(_market(pro, book, stop, dm, book_updates))]
        fired_before = sum(f["fired"] for f in get_json(emu, "/emulator/faults"))
        for _ in range(20):  # the user stream subscribes, the book arrives
            await asyncio.to_thread(step, emu, 0.1)
            await asyncio.sleep(0.05)
            if book.top[1]:
                break

        async def reconcile(at: str):
            """As the live driver: check; look up what it asks for; check again."""
            for _ in range(4):
                venue_open = await gw.open_orders()
                report = rec.check(at, venue_open, {"binance": await gw.balances()}, sides=gw.sides)
                if not (report.lookups or report.pending) or not report.ok:
                    return report
                for cid in report.lookups:
                    merge.apply(await gw.lookup(session.oms.by_client[cid]))
            return report

        await reconcile("start")
        session.start()
        for tick in range(ticks):
            if tick == 1 and fault is not None:
                await asyncio.to_thread(control, emu, "faults", fault)
            await asyncio.to_thread(step, emu, 0.3)
            await asyncio.sleep(0.05)  # the book's diffs of this step
            lost = dm.check(time.time_ns())
            if lost:  # dead-man switch: stop submits, cancel all of ours
                halt_strategy(session, f"dead-man switch: {', '.join(lost)} stream silent > {deadman_s} s")
                await settle(venue)
                merge.apply(await gw.cancel_all(prefix + "-"))
            session.fire_timers(session.next_timer_ts())
            await settle(venue)
            await asyncio.sleep(0.05)  # stream events of this tick
            if tick % 3 == 2:
                await reconcile("periodic")
                await settle(venue)
        fired = sum(f["fired"] for f in get_json(emu, "/emulator/faults")) - fired_before
        await asyncio.to_thread(control, emu, "faults", {"clear": True})
        await asyncio.to_thread(step, emu, 0.3)
        await asyncio.sleep(0.2)
        await settle(venue)
        # kill switch: stop submits, cancel ours, then whatever the venue still lists of ours
        t0 = time.perf_counter()
        halt_strategy(session, "kill switch (test)")
        await settle(venue)
        for _ in range(40):  # a venue in maintenance refuses cancels too: keep asking (<= ~4 s)
            leftover = [s for _, s in await gw.open_orders() if s.client_id.startswith(prefix + "-")]
            if not leftover:
                break
            merge.apply(await gw.cancel_all(prefix + "-"))
            await asyncio.sleep(0.1)
        kill_s = time.perf_counter() - t0
        open_after = len([s for _, s in await gw.open_orders() if s.client_id.startswith(prefix + "-")])
        await asyncio.sleep(0.2)
        await settle(venue)
        final = await reconcile("after-kill")
        stop.set()
        session.stop()
        journal = get_json(emu, "/emulator/journal")
        ours = lambda e: e.get("account") == account and str(e.get("client_order_id", "")).startswith(prefix + "-")  # noqa: E731
        news: dict[str, int] = {}
        for e in journal:
            if e["event"] == "order_new" and ours(e):
                news[e["client_order_id"]] = news.get(e["client_order_id"], 0) + 1
        venue_trades = {str(e["trade_id"]) for e in journal if e["event"] == "fill" and ours(e)}
        end = await gw.balances()
        return Result(
            prefix=prefix, orders_sent=len(session.oms.by_client), duplicates={k: v for k, v in news.items() if v > 1},
            venue_trades=venue_trades,
            booked_trades={t for _, t in session.oms.trades},
            ledger={a: ledger.balance("binance", a) for a in ("BTC", "USDT")},
            venue_balances={a: sum(end.get(a, (Decimal(0), Decimal(0)))) for a in ("BTC", "USDT")},
            final_report=final.text(), final_ok=final.ok, open_after_kill=open_after, kill_s=kill_s,
            stats=gw.stats, limiter=gw.limiter, reports=[r.text() for r in rec.reports],
            fault_fired=fired, deadman=list(dm.firings), book_updates=book_updates[0],
            rejected_but_placed=sorted(cid for cid in news if cid in session.oms.by_client
                                       and session.oms.by_client[cid].status == OrderStatus.REJECTED))
    finally:
        await shut(watchers, venue, pro)


async def shut(watchers: list[asyncio.Task], venue, pro) -> None:
    """Stop the stream watchers, close the venue and its ccxt.pro client."""
    for task in watchers:
        task.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)
    if venue is not None:
        await venue.close()
    await pro.close()
