"""Soak test (not in CI): an emulator at --speed 1 for an hour with clients trading, and
its memory over time.

    python bench/soak_emulator.py [--minutes 60] [--clients 4] [--sample 30] [--speed 1]
    python bench/soak_emulator.py --trace --minutes 6 --speed 20   # where memory goes


Starts `tickparity emulator` (synthetic data, --loop) in its own process; each client
(ccxt.async_support) places a limit order near the touch every 200 ms, cancels what is
open every second and sometimes sends a small market order, while one ccxt.pro client
watches the book and its orders. Every `--sample` seconds it prints the emulator's
resident memory (VmRSS from /proc) and the journal's size; at the end, the orders sent
and the errors seen. A growing RSS at a flat order rate is a leak.

`--trace` runs the emulator in this process instead (an `EmulatorThread`, same settings as
the CLI) with `tracemalloc` on, and prints the allocation sites that grew most between a
snapshot after the first sample and one at the end: an accelerated soak (`--speed 20`)
shows in minutes what an hour at `--speed 1` shows in RSS.
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


async def soak(url, key, secret, pid, minutes, clients, sample, journal, on_sample=None):
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
        if on_sample is not None:
            on_sample()
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats


def _trace(args, out: Path) -> dict:
    """The soak with the emulator in this process under tracemalloc (see module doc)."""
    import argparse as _argparse
    import tracemalloc

    from modes.emulator_cmd import prepare
    from venues.emulator import EmulatorThread
    from venues.sim import warmup

    warmup()
    ns = _argparse.Namespace(config=None, data="synthetic:9:2h", instruments=None, instrument=None,
                             seed=None, from_=None, to=None, accounts=None, faults=None,
                             speed=args.speed, port=0, loop=True, out=str(out))
    settings, source, _ = prepare(ns)
    settings.limiter.orders_per_10s = 10**9
    settings.limiter.weight_per_minute = 10**9
    tracemalloc.start(8)
    snaps: list = []

    def on_sample():
        if not snaps:
            snaps.append(tracemalloc.take_snapshot())

    with EmulatorThread(settings, source) as emu:
        acct = settings.accounts[0]
        stats = asyncio.run(soak(emu.url, acct.api_key, acct.secret, os.getpid(), args.minutes,
                                 args.clients, args.sample, out / "journal.jsonl", on_sample))
        end = tracemalloc.take_snapshot()
        sizes = emu.call(lambda s: {"orders": len(s.exchange.orders),
                                    "trades": sum(len(t) for t in s.exchange.trades.values()),
                                    "sim_bbo_rows": int(s.exchange.core._bbo.shape[0]),
                                    "sim_trade_rows": int(s.exchange.core._trd.shape[0])})
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    diff = end.filter_traces(ignore).compare_to(snaps[0].filter_traces(ignore), "traceback")
    print(f"tracemalloc: {tracemalloc.get_traced_memory()[0] / 1e6:.1f} MB traced now; "
          "largest growth since the first sample:")
    for stat in diff[:12]:
        print(f"  {stat.size_diff / 1e6:+8.2f} MB {stat.count_diff:+8d} blocks")
        for line in stat.traceback.format(limit=4, most_recent_first=True):
            print("     ", line.strip())
    print("emulator tables:", sizes)
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between memory samples")
    parser.add_argument("--speed", type=float, default=1.0, help="the emulator's --speed")
    parser.add_argument("--trace", action="store_true",
                        help="emulator in this process under tracemalloc; print the growth sites")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "soak"
        if args.trace:
            print(_trace(args, out))
            return 0
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
