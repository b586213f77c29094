"""A testnet session for the fault tests: the engine's TradingSession (strategy, OMS, risk,
ledger, audit, reconciliation) trading over real async ccxt (REST through the Gateway,
user stream through ccxt.pro) against the emulator, while a fault of the emulator fires.

Records reach the session through its typed entry points (`on_command_result`,
`on_venue_state`, `on_venue_fill`) when the session has them; before those exist, `Merge`
folds the same records into `on_order_event` rows: fills booked once per trade id, a
final state held back until the fills it counts are booked (a lookup fetches them).
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
from engine.types import ORDER_EVENT_DTYPE, Liquidity, OrderEventKind, OrderStatus, load_instruments
from engine.types.orders import TERMINAL_STATUSES, VENUE_REASONS
from engine.types.venue_reports import Command, CommandResult, Outcome, VenueFill, VenueOrderState
from venues.ccxt import parse
from venues.ccxt.gateway import Gateway
from venues.ccxt.ratelimit import WeightLimiter
from venues.ccxt.retry import Backoff

BTC = load_instruments()["binance:BTC/USDT"]
_REASON_NO = {text.value: no for no, text in VENUE_REASONS.items()}
_KIND = {OrderStatus.CANCELLED: OrderEventKind.CANCELLED, OrderStatus.EXPIRED: OrderEventKind.EXPIRED,
         OrderStatus.REJECTED: OrderEventKind.REJECTED}


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
    """Typed venue records -> the session (see module doc)."""

    def __init__(self, session: TradingSession, request_lookup):
        self.s = session
        self.request_lookup = request_lookup
        self.trades: set[str] = set()
        self.held: dict[str, VenueOrderState] = {}
        self.late_fills: list[VenueFill] = []

    def apply(self, records) -> None:
        s = self.s
        native = hasattr(s, "on_venue_fill")
        for rec in records:
            if native:
                if isinstance(rec, CommandResult):
                    s.on_command_result(rec)
                elif isinstance(rec, VenueOrderState):
                    s.on_venue_state(rec)
                else:
                    s.on_venue_fill(rec)
            elif isinstance(rec, CommandResult):
                self._result(rec)
            elif isinstance(rec, VenueOrderState):
                self._state(rec)
            else:
                self._fill(rec)

    def _emit(self, order, kind, exch_ts, **f) -> None:
        row = np.zeros(1, dtype=ORDER_EVENT_DTYPE)[0]
        row["order_no"], row["kind"], row["exch_ts"] = order.order_no, kind, exch_ts
        row["local_ts"] = self.s.clock.now()
        for k, v in f.items():
            row[k] = v
        self.s.on_order_event(row)

    def _result(self, rec: CommandResult) -> None:
        order = self.s.oms.by_client.get(rec.client_id)
        if order is None or rec.command is not Command.SUBMIT:
            return  # a cancel's refusal is settled by the lookup that follows it
        if rec.outcome is Outcome.REJECTED and order.status == OrderStatus.SUBMITTED:
            self._emit(order, OrderEventKind.REJECTED, 0, reason=_REASON_NO.get(rec.reason, 0))

    def _ack(self, order, ts) -> None:
        if order.status == OrderStatus.SUBMITTED:
            self._emit(order, OrderEventKind.ACK, ts, leaves=order.qty)

    def _state(self, st: VenueOrderState) -> None:
        order = self.s.oms.by_client.get(st.client_id)
        if order is None or not order.is_open:
            return
        if not st.found:  # a lookup: the venue never got it
            if order.status == OrderStatus.SUBMITTED:
                self._emit(order, OrderEventKind.REJECTED, st.exch_ts)
            return
        if st.status in TERMINAL_STATUSES and st.filled > order.filled:
            self.held[st.client_id] = st  # its fills first
            if st.source != "query":
                self.request_lookup(order)
            return
        self._ack(order, st.exch_ts)
        kind = _KIND.get(st.status)
        if kind is not None and order.is_open:
            self._emit(order, kind, st.exch_ts, reason=_REASON_NO.get(st.reason or "", 0))

    def _fill(self, f: VenueFill) -> None:
        if f.trade_id in self.trades:
            return
        order = self.s.oms.by_client.get(f.client_id)
        if order is None:
            return
        if not order.is_open:
            self.late_fills.append(f)  # the current OMS cannot book it; the test fails on this
            return
        self.trades.add(f.trade_id)
        self._ack(order, f.exch_ts)
        filled = order.filled + f.qty
        self._emit(order, OrderEventKind.FILL, f.exch_ts, price=f.price, qty=f.qty, filled=filled,
                   leaves=max(order.qty - filled, 0), liquidity=int(f.liquidity or Liquidity.TAKER))
        held = self.held.get(f.client_id)
        if held is not None and order.filled >= held.filled:
            del self.held[f.client_id]
            self._state(held)


class GatewayVenue:
    """The session's venue: each command becomes a Gateway task on the running loop."""

    name = "binance"
    maker_fee_bps = Decimal(2)
    taker_fee_bps = Decimal(10)

    def __init__(self, gw: Gateway):
        self.gw = gw
        self.tasks: list[asyncio.Task] = []
        self.top = (0, 0, 0, 0)
        self.merge: Merge | None = None

    def _spawn(self, coro) -> None:
        async def run():
            self.merge.apply(await coro)
        self.tasks.append(asyncio.get_running_loop().create_task(run()))

    def submit(self, order, ts):
        self._spawn(self.gw.submit(order))

    def cancel(self, order, ts):
        self._spawn(self.gw.cancel(order))

    def amend(self, order, price, qty, ts):
        self._spawn(self.gw.amend(order, price, qty))

    def request_order_state(self, order, ts=0):
        self._spawn(self.gw.lookup(order))

    def top_of_book(self, i):
        return self.top

    def levels(self, i, side, n):
        px, q = (self.top[0], self.top[1]) if side > 0 else (self.top[2], self.top[3])
        return np.array([px]), np.array([q])

    async def settle(self) -> None:
        while self.tasks:
            tasks, self.tasks = self.tasks, []
            await asyncio.gather(*tasks)


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
    late_fills: int
    stats: object
    limiter: object
    fault_fired: int
    deadman: list
    book_updates: int
    reports: list[str] = field(default_factory=list)


async def _stream(pro, merge: Merge, prefix: str, stop: asyncio.Event, dm: DeadManSwitch) -> None:
    """The user stream: every executionReport becomes a state (+ a fill on TRADE)."""
    while not stop.is_set():
        try:
            orders = await asyncio.wait_for(pro.watch_orders("BTC/USDT"), 1.0)
        except TimeoutError:  # quiet but connected: a user stream is silent when nothing happens
            dm.touch("user", time.time_ns())
            continue
        except Exception:  # disconnects: the next watch subscribes again
            await asyncio.sleep(0.05)
            continue
        dm.touch("user", time.time_ns())
        records = []
        for o in orders:
            info = o.get("info") or {}
            if not str(info.get("C") or info.get("c") or "").startswith(prefix):
                continue
            state, fill = parse.execution_report(info, BTC, time.time_ns())
            if fill is not None:
                records.append(fill)
            records.append(state)
        merge.apply(records)


def _top(book) -> tuple[int, int, int, int]:
    (bp, bq), (ap, aq) = book["bids"][0][:2], book["asks"][0][:2]
    lots = lambda q: BTC.qty_to_lots(BTC.round_qty(Decimal(str(q)))) or 1  # noqa: E731
    return (BTC.price_to_ticks(BTC.round_price(Decimal(str(bp)))), lots(bq),
            BTC.price_to_ticks(BTC.round_price(Decimal(str(ap)))), lots(aq))


async def _market(pro, venue: GatewayVenue, stop: asyncio.Event, dm: DeadManSwitch, count: list[int]) -> None:
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
    import ccxt.async_support as ccxt_async
    import ccxt.pro as ccxtpro

    keys = credentials.ccxt() if credentials is not None else {}  # else the account's own
    ex = ccxt_async.binance({**emu.ccxt_config(account, timeout=1500, enableRateLimit=False), **keys})
    pro = ccxtpro.binance({**emu.ccxt_config(account, timeout=3000), **keys})
    try:
        await ex.load_markets()
        await pro.load_markets()
        # resolve=False: an ambiguous outcome is resolved by the session's OMS, which asks
        # the venue (request_order_state -> Gateway.lookup), as in every mode
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
        gw = Gateway(ex, {"BTC/USDT": BTC}, now=time.time_ns, limiter=limiter, sleep=sleep,
                     backoff=Backoff(base_s=0.01, cap_s=0.05, seed=7), resolve=not hasattr(TradingSession, "on_venue_fill"))
        start = await gw.balances()
        ledger = Ledger({BTC.id: BTC}, {"binance": {a: f + lk for a, (f, lk) in start.items()}})
        venue = GatewayVenue(gw)
        strategy = Churn()
        session = TradingSession(strategy=strategy, instruments={BTC.id: BTC}, venues={"binance": venue},
                                 clock=LiveClock(), ledger=ledger, risk=RiskEngine(RiskConfig.from_table(None)),
                                 audit=AuditLog(tmp_path / f"{prefix}audit.jsonl"), id_prefix=prefix)
        merge = Merge(session, venue.request_order_state)
        venue.merge = merge
        rec = Reconciler(session, prefix=prefix + "-")
        stop = asyncio.Event()
        dm = DeadManSwitch(timeout_s=deadman_s)
        now = time.time_ns()
        dm.touch("market", now)
        dm.touch("user", now)
        book_updates = [0]
        stream = asyncio.create_task(_stream(pro, merge, prefix + "-", stop, dm))
        market = asyncio.create_task(_market(pro, venue, stop, dm, book_updates))
        fired_before = sum(f["fired"] for f in get_json(emu, "/emulator/faults"))
        for _ in range(20):  # the user stream subscribes, the book arrives
            await asyncio.to_thread(step, emu, 0.1)
            await asyncio.sleep(0.05)
            if venue.top[1]:
                break

        async def reconcile(at: str):
            for _ in range(3):
                venue_open = await gw.open_orders()
                bal = {"binance": await gw.balances()}
                report = rec.check(at, venue_open, bal, sides=gw.sides)
                if not report.lookups:
                    return report
                answers = {}
                for cid in report.lookups:
                    records = await gw.lookup(session.oms.by_client[cid])
                    merge.apply(records)
                    answers[cid] = next(r for r in records if isinstance(r, VenueOrderState))
                report = rec.check(at, venue_open, bal, sides=gw.sides, looked_up=answers)
                if not report.lookups:
                    return report
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
                await venue.settle()
                merge.apply(await gw.cancel_all(prefix + "-"))
            session.fire_timers(session.next_timer_ts())
            await venue.settle()
            await asyncio.sleep(0.05)  # stream events of this tick
            if tick % 3 == 2:
                await reconcile("periodic")
                await venue.settle()
        fired = sum(f["fired"] for f in get_json(emu, "/emulator/faults")) - fired_before
        await asyncio.to_thread(control, emu, "faults", {"clear": True})
        await asyncio.to_thread(step, emu, 0.3)
        await asyncio.sleep(0.2)
        await venue.settle()
        # kill switch: stop submits, cancel ours, then whatever the venue still lists of ours
        t0 = time.perf_counter()
        halt_strategy(session, "kill switch (test)")
        await venue.settle()
        for _ in range(5):
            leftover = [s for _, s in await gw.open_orders() if s.client_id.startswith(prefix + "-")]
            if not leftover:
                break
            merge.apply(await gw.cancel_all(prefix + "-"))
        kill_s = time.perf_counter() - t0
        open_after = len([s for _, s in await gw.open_orders() if s.client_id.startswith(prefix + "-")])
        await asyncio.sleep(0.2)
        await venue.settle()
        final = await reconcile("after-kill")
        stop.set()
        await stream
        await market
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
            booked_trades={t for _, t in getattr(session.oms, "trades", ())} | set(merge.trades),
            ledger={a: ledger.balance("binance", a) for a in ("BTC", "USDT")},
            venue_balances={a: sum(end.get(a, (Decimal(0), Decimal(0)))) for a in ("BTC", "USDT")},
            final_report=final.text(), final_ok=final.ok, open_after_kill=open_after, kill_s=kill_s,
            late_fills=len(merge.late_fills), stats=gw.stats, limiter=gw.limiter, reports=[r.text() for r in rec.reports],
            fault_fired=fired, deadman=list(dm.firings), book_updates=book_updates[0])
    finally:
        await ex.close()
        await pro.close()
