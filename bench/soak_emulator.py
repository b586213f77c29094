"""Soak test (not in CI): an emulator at --speed 1 for an hour with clients trading, and
its memory over time.

    python bench/soak_emulator.py [--minutes 60] [--clients 4] [--sample 30]

Starts `tickparity emulator` (synthetic data, --loop) in its own process; each client
(ccxt.async_support) places a limit order near the touch every 200 ms, cancels what is
open every second and sometimes sends a small market order, while one ccxt.pro client
watches the book and its orders. Every `--sample` seconds it prints the emulator's
resident memory (VmRSS from /proc) and the journal's size; at the end, the orders sent
and the errors seen. A growing RSS at a flat order rate is a leak.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between memory samples")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "soak"
        proc, url, key, secret = start_emulator(out, speed=1.0, data="synthetic:9:2h", extra=("--loop",))
        try:
            stats = asyncio.run(soak(url, key, secret, proc.pid, args.minutes, args.clients,
                                     args.sample, out / "journal.jsonl"))
        finally:
            stop_emulator(proc)
    print(stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
