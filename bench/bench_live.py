"""Live-path latency (issue 11, point 8): how long our code takes from a market tick to the
moment the order request is handed to ccxt, and, as separate rows, ccxt's own request
building and the loopback round trip to the emulator.

    python bench/bench_live.py [--ticks N] [--orders N]
    python -m bench --only live

Rows:
1. tick -> strategy -> risk -> OMS -> request handed to ccxt: the engine's TradingSession
   (a strategy quoting on every book update, the risk engine with limits on, the OMS, a
   real audit log file handing every record to the OS as live modes do, `flush_each`) and
   the live venue (venues.ccxt.CcxtVenue: its Gateway's per-instrument order mapping,
   `OrderMapping`, and request budget, `WeightLimiter.spend`) on a running asyncio loop;
   the clock starts before `session.on_book` and stops when the Gateway calls the client's `create_order` (a
   stand-in client that records the time: the next rows are the real ccxt). The call is
   synchronous, inside `on_book`: no await, no task hop (Gateway.hand_off). The command's
   task is created after that point (CcxtVenue._spawn_in_order): its cost is in row 1b,
   before ccxt runs the call, as in a real session.
1b. hand-off -> ccxt running: from that call until the event loop starts running ccxt's
   coroutine (the task hop the step's return to the loop costs; the session's other
   callbacks of the same step come first in a real session).
2. ccxt request building: real ccxt.async_support `create_order` (markets from the
   emulator, signing included) up to its HTTP `fetch`, which is cut there.
3. loopback round trip: the same `create_order` against `tickparity emulator` on 127.0.0.1
   (IOC limits far from the market: a full venue round trip that leaves nothing resting).
`--gc quiet` runs the tick loop with the collector quieted (start-up frozen with
`gc.freeze()`, generation 0's threshold 700 -> 20,000: a collection on ~0.05% of ticks
instead of ~1.3%); measured in bench/PROFILE.md 1c, no gain at the p99 on the shared VM,
so live modes keep Python's default. `--stages` adds each stage's inclusive thread-CPU p50 (wrapped: ~0.3 us overhead each).
`--tail` says where the slow ticks' time went (bench/PROFILE.md 1d): how many ticks had a garbage
collection inside them (and how many collections the run had), and each stage's mean thread CPU
time in the ticks at or above the p99 against the faster half (a wrapped run).
Row 1's thread-CPU line is followed by the run's slowest ticks by number (a stall at the same
ticks every run is a table growing, bench/PROFILE.md 1k). The clocks are read before the
bench's own bookkeeping grows its dicts, so that growth is not counted as the path's.
Target (issue 11): row 1 p99 < 50 us. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _pcts(ns: list[int]) -> str:
    a = np.asarray(ns, dtype=np.float64) / 1000.0
    p50, p99, p999 = np.percentile(a, [50, 99, 99.9])
    return f"p50 {p50:8.1f} us   p99 {p99:8.1f} us   p99.9 {p999:8.1f} us   (n={len(a)})"


class _HandOff:
    """Stands where the ccxt client stands: records when create_order is called."""

    def __init__(self) -> None:
        self.t: dict[str, int] = {}
        self.ran: dict[str, int] = {}
        self.cpu: dict[str, int] = {}  # the thread's CPU clock at the hand-off
        self.urls = {"api": {}}

    def on_rest_response(self, *a):  # the ResponseTap wraps this
        return a[5]

    def create_order(self, *args):
        """ccxt's create_order is a coroutine function: calling it is the hand-off."""
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()  # the clocks first: the
        cid = args[5]["newClientOrderId"]  # dicts' growth below is the bench's, not the path's
        self.t[cid] = wall
        self.cpu[cid] = cpu
        return self._run(cid)

    async def _run(self, cid):
        self.ran[cid] = time.perf_counter_ns()
        raise asyncio.CancelledError  # nothing goes out


def bench_engine(ticks: int, gc_mode: str = "default") -> tuple[list[int], list[int], list[int]]:
    """(tick -> handed to ccxt, hand-off -> ccxt running, tick -> handed to ccxt in this
    thread's CPU time) in ns, one of each per tick. The CPU-time series leaves out the
    time the thread was not running (another process had the core): on a shared machine
    the wall-time tail is the scheduler's, the CPU-time tail the code's."""
    import gc

    from engine.audit import AuditLog
    from engine.clock import LiveClock
    from engine.ledger import Ledger
    from engine.risk import RiskConfig, RiskEngine
    from engine.session import TradingSession
    from engine.strategy import Strategy
    from engine.types import load_instruments
    from venues.ccxt import CcxtVenue
    from venues.ccxt.ratelimit import WeightLimiter

    btc = load_instruments()["binance:BTC/USDT"]

    class Quoter(Strategy):
        def on_start(self, ctx):
            ctx.subscribe(btc.id, book=True)

        def on_book(self, ctx, book):
            ctx.submit(btc.id, "buy", Decimal("0.01"), book.best_bid)

    class Book:  # the local book the live venue reads (a SimCore's in a session)
        top = (6_000_000, 100, 6_000_100, 100)

        def local_bbo(self, i):
            return self.top

        def local_levels(self, i, side, n):
            return np.array([self.top[0]]), np.array([self.top[1]])

    hand = _HandOff()
    book = Book()
    venue = CcxtVenue("binance", hand, {0: btc}, book, sink=lambda record: None, clock=time.time_ns,
                      limiter=WeightLimiter(weight_per_minute=10**12, orders_per_10s=10**12, orders_per_day=10**12))
    tmp = Path(tempfile.mkdtemp())
    session = TradingSession(
        strategy=Quoter(), instruments={btc.id: btc}, venues={"binance": venue}, clock=LiveClock(),
        ledger=Ledger({btc.id: btc}, {"binance": {"USDT": Decimal(10**9), "BTC": Decimal(10**6)}}),
        risk=RiskEngine(RiskConfig.from_table({"max_order_notional": "1000000", "max_position": "1000000",
                                               "max_open_orders": 10**9, "price_band_bps": 500})),
        audit=AuditLog(tmp / "audit.jsonl", flush_each=True), id_prefix="b")  # as modes/live/build.py
    starts: dict[str, int] = {}
    cpu_starts: dict[str, int] = {}

    async def run():
        session.start()
        before = gc.get_threshold()
        if gc_mode == "quiet":
            gc.collect()
            gc.freeze()
            gc.set_threshold(20_000, before[1], before[2])
        try:
            await ticks_loop()
        finally:
            gc.set_threshold(*before)
            gc.unfreeze()

    async def ticks_loop():
        for k in range(ticks):
            book.top = (6_000_000 + (k % 7), 100, 6_000_100 + (k % 7), 100)
            cid = session.oms.next_client_id()
            cpu_starts[cid] = starts[cid] = 0  # the keys first: their dicts grow before the clocks start
            cpu_starts[cid] = time.thread_time_ns()
            starts[cid] = time.perf_counter_ns()
            session.on_book(0)
            await asyncio.sleep(0)  # the venue's task runs ccxt's coroutine (cut at once)
            await asyncio.sleep(0)

    asyncio.run(run())
    if len(hand.t) != ticks or len(hand.ran) != ticks:
        raise SystemExit(f"only {len(hand.t)} / {len(hand.ran)} of {ticks} orders reached the hand-off / ccxt")
    return ([hand.t[cid] - t for cid, t in starts.items()],
            [hand.ran[cid] - hand.t[cid] for cid in starts],
            [hand.cpu[cid] - t for cid, t in cpu_starts.items()])


# (label, module, attribute path) of each stage `--stages` times, in path order
STAGES = (
    ("session.on_book (the whole tick)", "engine.session", "TradingSession.on_book"),
    ("  ctx.submit", "engine.context", "Context.submit"),
    ("    session.submit", "engine.session", "TradingSession.submit"),
    ("      oms.create (Order)", "engine.oms", "OrderManager.create"),
    ("      audit record (decision / request, each)", "engine.audit", "AuditLog.write_shaped"),
    ("      venue rules (min qty / notional)", "engine.session", "TradingSession._venue_rules"),
    ("      risk pre_submit", "engine.risk_guard", "RiskGuard.pre_submit"),
    ("      oms.set_status", "engine.oms", "OrderManager.set_status"),
    ("      risk sent (exposure hold)", "engine.risk_guard", "RiskGuard.sent"),
    ("      venue.submit (to the hand-off and after)", "venues.ccxt.venue", "CcxtVenue.submit"),
    ("        gateway.start_submit (mapping + hand-off)", "venues.ccxt.gateway", "Gateway.start_submit"),
    ("          order mapping (OrderMapping)", "venues.ccxt.gateway", "Gateway._order_args"),
    ("          request budget (spend)", "venues.ccxt.ratelimit", "WeightLimiter.spend"),
)


def bench_stages(ticks: int) -> list[tuple[str, int, float]]:
    """(stage, calls, p50 us of inclusive thread CPU time) for `STAGES`, one wrapped run of
    `bench_engine` (the first 10% of each series dropped)."""
    from bench.profile_session import timed_functions

    series: dict[str, list[int]] = {label: [] for label, _, _ in STAGES}
    with timed_functions(STAGES, lambda label, ns: series[label].append(ns)):
        bench_engine(ticks)
    rows = []
    for label, _, _ in STAGES:
        got = series[label][len(series[label]) // 10:]
        rows.append((label, len(series[label]), float(np.percentile(got, 50)) / 1000 if got else float("nan")))
    return rows


def bench_tail(ticks: int) -> list[tuple[str, str]]:
    """Rows for `--tail`: collections inside ticks, and per stage (`STAGES`) the mean thread CPU
    time (us) in the ticks at or above the tick p99 vs the ticks below the p50 (first 10%
    dropped). A stage's calls inside one tick are summed; the whole tick's call closes it."""
    import gc

    from bench.profile_session import timed_functions
    from engine.session import TradingSession

    whole = STAGES[0][0]
    labels = [label for label, _, _ in STAGES]
    current: dict[str, int] = {}
    per_tick: list[tuple[dict[str, int], int]] = []  # (stage -> ns, collections inside the tick)
    collections = [0, 0, 0]
    in_tick = [False, 0]  # inside on_book; collections that started there

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            collections[info["generation"]] += 1
            in_tick[1] += in_tick[0]

    def record(label: str, ns: int) -> None:
        current[label] = current.get(label, 0) + ns
        if label == whole:
            per_tick.append((dict(current), in_tick[1]))
            in_tick[1] = 0
            current.clear()

    gc.callbacks.append(on_gc)
    try:
        with timed_functions(STAGES, record):
            timed = TradingSession.on_book

            def flagged(self, instrument_index: int) -> None:
                in_tick[0] = True
                try:
                    timed(self, instrument_index)
                finally:
                    in_tick[0] = False

            TradingSession.on_book = flagged
            try:
                bench_engine(ticks)
            finally:
                TradingSession.on_book = timed
    finally:
        gc.callbacks.remove(on_gc)
    got = per_tick[len(per_tick) // 10:]
    tick = np.array([t.get(whole, 0) for t, _ in got], dtype=np.float64) / 1000
    inside = sum(1 for _, n in got if n)
    p50, p99 = np.percentile(tick, [50, 99])
    slow = [t for (t, _), us in zip(got, tick, strict=True) if us >= p99]
    fast = [t for (t, _), us in zip(got, tick, strict=True) if us < p50]
    rows = [("ticks with a collection inside / collections in the run (gen 0/1/2)",
             f"{inside:,} of {len(got):,} / {'/'.join(str(c) for c in collections)}")]
    for label in labels:
        a = np.mean([t.get(label, 0) for t in slow]) / 1000
        b = np.mean([t.get(label, 0) for t in fast]) / 1000
        rows.append((f"  tail: {label}", f"mean {a:8.1f} us in ticks >= p99 ({p99:.1f} us), {b:6.1f} us below the p50"))
    return rows


def bench_ccxt_build(url: str, key: str, secret: str, n: int) -> list[int]:
    import ccxt.async_support as accxt

    from venues.emulator import ccxt_config

    out: list[int] = []

    async def run():
        ex = accxt.binance(ccxt_config(url, key, secret, enableRateLimit=False))
        try:
            await ex.load_markets()
            t0 = [0]

            async def cut(url, method="GET", headers=None, body=None):
                out.append(time.perf_counter_ns() - t0[0])
                raise asyncio.CancelledError

            ex.fetch = cut
            for k in range(n):
                t0[0] = time.perf_counter_ns()
                try:
                    await ex.create_order("BTC/USDT", "limit", "buy", "0.001", "100",
                                          {"newClientOrderId": f"bb-{k}", "timeInForce": "IOC"})
                except asyncio.CancelledError:
                    pass
        finally:
            await ex.close()

    asyncio.run(run())
    return out


def bench_round_trip(url: str, key: str, secret: str, n: int) -> list[int]:
    import ccxt.async_support as accxt

    from venues.emulator import ccxt_config

    out: list[int] = []

    async def run():
        ex = accxt.binance(ccxt_config(url, key, secret, enableRateLimit=False, timeout=20000))
        try:
            await ex.load_markets()
            bid = (await ex.fetch_order_book("BTC/USDT", 5))["bids"][0][0]
            price = str(round(bid * 0.9, 2))
            for k in range(n):
                t = time.perf_counter_ns()
                await ex.create_order("BTC/USDT", "limit", "buy", "0.001", price,
                                      {"timeInForce": "IOC", "newClientOrderId": f"rt-{k}"})
                out.append(time.perf_counter_ns() - t)
        finally:
            await ex.close()

    asyncio.run(run())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ticks", type=int, default=50_000)
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--gc", choices=("default", "quiet"), default="default",
                        help="quiet: start-up frozen, generation 0's threshold 20,000 (bench/PROFILE.md 1c)")
    parser.add_argument("--stages", action="store_true", help="also time each stage (a separate, wrapped run)")
    parser.add_argument("--no-emulator", action="store_true", help="only the in-process rows (no ccxt, no emulator)")
    parser.add_argument("--tail", action="store_true",
                        help="also say where the slow ticks' time went (collections, stages; a separate, wrapped run)")
    args = parser.parse_args(argv)
    rows = []
    engine_ns, hop_ns, cpu_ns = bench_engine(args.ticks, args.gc)
    rows.append(("tick -> strategy -> risk -> OMS -> handed to ccxt", _pcts(engine_ns[len(engine_ns) // 10:])))
    rows.append(("  the same, thread CPU time (scheduler left out)", _pcts(cpu_ns[len(cpu_ns) // 10:])))
    rows.append(("  its slowest ticks, whole run (tick = order no: us)", _slowest(cpu_ns)))
    rows.append(("hand-off -> ccxt running (event-loop hop)", _pcts(hop_ns[len(hop_ns) // 10:])))
    if args.stages:
        for label, calls, p50 in bench_stages(args.ticks):
            rows.append((f"  stage: {label}", f"p50 {p50:8.1f} us   (thread CPU, inclusive, {calls:,} calls)"))
    if args.tail:
        rows += bench_tail(args.ticks)
    if not args.no_emulator:
        rows += _network_rows(args.orders)
    width = max(len(name) for name, _ in rows)
    print("live-path latency (first 10% of each series dropped as warm-up)")
    for name, text in rows:
        print(f"  {name:<{width}}  {text}")
    return 0


def _slowest(ns: list[int], n: int = 6) -> str:
    """The `n` slowest ticks of the whole run (warm-up included), in run order, as 'tick: us'
    (tick k is the session's order number k: one order a tick). A stall that comes back at
    the same ticks every run is a table's growth (bench/PROFILE.md 1i, 1k), not the machine."""
    worst = sorted(sorted(range(len(ns)), key=lambda k: -ns[k])[:n])
    return ", ".join(f"{k + 1}: {ns[k] / 1000:.0f}" for k in worst)


def _network_rows(orders: int) -> list[tuple[str, str]]:
    """ccxt's own request building and the loopback round trip, against the emulator."""
    from bench.bench_emulator import start_emulator, stop_emulator

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, key, secret = start_emulator(Path(tmp) / "emu")
        try:
            build = bench_ccxt_build(url, key, secret, orders * 4)
            rows.append(("ccxt create_order request building (to fetch)", _pcts(build[len(build) // 10:])))
            rtt = bench_round_trip(url, key, secret, orders)
            rows.append(("loopback round trip (ccxt <-> emulator)", _pcts(rtt[len(rtt) // 10:])))
        finally:
            stop_emulator(proc)
    return rows


if __name__ == "__main__":
    sys.exit(main())
