"""Soak test (not in CI): an emulator at --speed 1 for an hour with clients trading, and
its memory over time.

    python bench/soak_emulator.py [--minutes 60] [--clients 4] [--sample 30] [--speed 1]
    python bench/soak_emulator.py --trace-market --minutes 20    # market data, tracemalloc


Starts `tickparity emulator` (synthetic data, --loop) in its own process; each client
(ccxt.async_support) places a limit order near the touch every 200 ms, cancels what is
open every second and sometimes sends a small market order, while one ccxt.pro client
watches the book and its orders. Every `--sample` seconds it prints the emulator's
resident memory (VmRSS from /proc) and the journal's size; at the end, the orders sent
and the errors seen. A growing RSS at a flat order rate is a leak.

`--trace-market` leaves the server and clients out: the emulator's exchange is advanced
second by second over `--minutes` of market time under tracemalloc, and the allocation
sites that grew are printed (minutes of market in seconds of wall time). It found the
growth the first hour-long soak showed (docs/emulator.md "Memory").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.bench_emulator import start_emulator, stop_emulator  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def trader(url, key, secret, stop, stats, seed):
    import ccxt.async_support as accxt

    from venues.emulator import ccxt_config

    rng = random.Random(seed)
    ex = accxt.binance(ccxt_config(url, key, secret, timeout=10000))
    try:
        await ex.load_markets()
        last_cancel = time.monotonic()
        while not stop.is_set():
            try:
                ob = await ex.fetch_order_book("BTC/USDT", 5)
                side = rng.choice(["buy", "sell"])
                px = ob["bids"][0][0] - 1 if side == "buy" else ob["asks"][0][0] + 1
                await ex.create_order("BTC/USDT", "limit", side, 0.001, round(px, 2))
                stats["orders"] += 1
                if rng.random() < 0.05:
                    await ex.create_order("BTC/USDT", "market", side, 0.001)
                    stats["orders"] += 1
                if time.monotonic() - last_cancel > 1:
                    for o in await ex.fetch_open_orders("BTC/USDT"):
                        try:
                            await ex.cancel_order(o["id"], "BTC/USDT")
                        except Exception as exc:  # OrderNotFound: filled meanwhile, a normal race
                            key = f"cancel_{type(exc).__name__}"
                            stats[key] = stats.get(key, 0) + 1
                    last_cancel = time.monotonic()
            except Exception as exc:
                stats["errors"] += 1
                stats["last_error"] = f"{type(exc).__name__}: {exc}"[:200]
            await asyncio.sleep(0.2)
    finally:
        await ex.close()


async def watcher(url, key, secret, stop, stats):
    import ccxt.pro as ccxtpro

    from venues.emulator import ccxt_config

    ex = ccxtpro.binance(ccxt_config(url, key, secret, timeout=10000))
    try:
        await ex.load_markets()
        while not stop.is_set():
            try:
                await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), 10)
                stats["book_updates"] += 1
            except Exception as exc:
                stats["stream_errors"] += 1
                stats["last_stream_error"] = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        await ex.close()


async def soak(url, key, secret, pid, minutes, clients, sample, journal):
    stop = asyncio.Event()
    stats = {"orders": 0, "errors": 0, "book_updates": 0, "stream_errors": 0}
    tasks = [asyncio.create_task(trader(url, key, secret, stop, stats, k)) for k in range(clients)]
    tasks.append(asyncio.create_task(watcher(url, key, secret, stop, stats)))
    t0 = time.monotonic()
    print(f"{'minute':>7} {'rss MB':>8} {'orders':>8} {'journal MB':>11} {'errors':>7}", flush=True)
    while time.monotonic() - t0 < minutes * 60:
        await asyncio.sleep(sample)
        size = os.path.getsize(journal) / 1e6 if os.path.exists(journal) else 0.0
        print(f"{(time.monotonic() - t0) / 60:>7.1f} {rss_mb(pid):>8.1f} {stats['orders']:>8} "
              f"{size:>11.1f} {stats['errors']:>7}", flush=True)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats


def trace_market(minutes: float, data: str = "synthetic:9:2h") -> None:
    """The emulator's exchange (no server, no clients) advanced second by second over
    `minutes` of market time by a stepped clock, under tracemalloc: prints the traced
    memory and the sim's tape sizes every 5 market minutes, then the allocation sites that
    grew most after the first minute. Flat = the market-data path holds no growing state."""
    import tracemalloc
    from decimal import Decimal

    from engine.types import load_instruments
    from replay import open_source
    from venues.emulator import Account
    from venues.emulator.clock import MarketClock
    from venues.emulator.exchange import Exchange
    from venues.sim import SimVenueConfig

    insts = {"binance:BTC/USDT": load_instruments()["binance:BTC/USDT"]}
    ex = Exchange(list(insts.values()), {"binance": SimVenueConfig.from_table("binance", {})},
                  open_source(data, insts, chunk_rows=1 << 16),
                  [Account("a", "k", "s", free={"USDT": Decimal(1000)})],
                  lambda t: MarketClock(t, stepped=True))
    tracemalloc.start(3)
    first = None
    t0 = ex.clock.now()
    for k in range(int(minutes * 60)):
        ex.clock.step_to(t0 + (k + 1) * 1_000_000_000)
        ex.advance()
        ex.take_market_trades()
        ex.take_user_events()
        for book in ex.books:
            book.take_diff()  # what the depth publisher does every 100 ms
        if k == 60:
            first = tracemalloc.take_snapshot()
        if k % 300 == 0:
            print(f"market minute {k / 60:5.1f}: traced {tracemalloc.get_traced_memory()[0] / 1e6:7.2f} MB; "
                  f"sim tapes: {ex.core._bbo.shape[0]} top-of-book rows, {ex.core._trd.shape[0]} trade rows",
                  flush=True)
    if first is not None:
        print("largest growth after the first market minute:")
        for stat in tracemalloc.take_snapshot().compare_to(first, "lineno")[:5]:
            print("  ", stat)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between memory samples")
    parser.add_argument("--speed", type=float, default=1.0, help="the emulator's --speed")
    parser.add_argument("--trace-market", action="store_true",
                        help="no clients: the exchange over --minutes of market time under tracemalloc")
    args = parser.parse_args(argv)
    if args.trace_market:
        trace_market(args.minutes)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "soak"
        proc, url, key, secret = start_emulator(out, speed=args.speed, data="synthetic:9:2h", extra=("--loop",))
        try:
            stats = asyncio.run(soak(url, key, secret, proc.pid, args.minutes, args.clients,
                                     args.sample, out / "journal.jsonl"))
        finally:
            stop_emulator(proc)
    print(stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
