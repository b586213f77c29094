"""Emulator benchmark: orders/s and create_order latency from async ccxt clients, market
messages/s fanned out to websocket subscribers, and the emulator's overhead per order over
a bare SimCore.

    python bench/bench_emulator.py [--orders N] [--seconds S]
    python -m bench --only emulator

The emulator runs as `tickparity emulator` in its own process (as a user runs it) on
synthetic data; the clients are unmodified ccxt.async_support with its rate limiter off
and the emulator's order limit raised (this measures the emulator, not Binance's limits).
Orders are IOC limits far below the market, so each one is a full venue round trip (entry,
matching, expiry, journal, user-stream event) that leaves nothing resting.
Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.results import Row, RunRecord, add_arguments  # noqa: E402

TICKPARITY = str(Path(sys.executable).parent / "tickparity")


def start_emulator(out: Path, speed: float = 1.0, data: str = "synthetic:5:2h",
                   extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str, str, str]:
    """`tickparity emulator` in its own process with the order/weight limits lifted;
    returns (process, base URL, API key, secret)."""
    proc = subprocess.Popen([TICKPARITY, "emulator", "--data", data, "--port", "0", "--speed", str(speed),
                             "--out", str(out), *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    from modes.emulator_cmd import read_banner

    banner = read_banner(proc.stdout)
    if banner is None:
        proc.kill()
        raise SystemExit("emulator did not start (run `tickparity emulator` by hand to see why)")
    url, key, secret, _ = banner
    req = urllib.request.Request(url + "/emulator/control/limits", method="POST",
                                 data=json.dumps({"orders_per_10s": 10**9, "weight_per_minute": 10**9}).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()
    return proc, url, key, secret


def stop_emulator(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


async def _client_orders(url, key, secret, n, latencies):
    import ccxt.async_support as accxt

    from venues.emulator import ccxt_config

    ex = accxt.binance(ccxt_config(url, key, secret, enableRateLimit=False, timeout=20000))
    try:
        await ex.load_markets()
        bid = (await ex.fetch_order_book("BTC/USDT", 5))["bids"][0][0]
        price = round(bid * 0.9, 2)
        for _ in range(n):
            t = time.perf_counter()
            await ex.create_order("BTC/USDT", "limit", "buy", 0.001, price, {"timeInForce": "IOC"})
            latencies.append(time.perf_counter() - t)
    finally:
        await ex.close()


def bench_raw_orders(url, key, secret, n: int) -> float:
    """Seconds per order from a bare aiohttp client signing its own requests (no ccxt):
    what the emulator itself costs per order, loopback included."""
    import hashlib
    import hmac
    from urllib.parse import urlencode

    import aiohttp

    async def run():
        async with aiohttp.ClientSession(headers={"X-MBX-APIKEY": key}) as s:
            async with s.get(f"{url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "5"}) as r:
                bid = float((await r.json())["bids"][0][0])
            t = time.perf_counter()
            for k in range(n):
                q = urlencode({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "IOC",
                               "quantity": "0.001", "price": f"{bid * 0.9:.2f}",
                               "newClientOrderId": f"raw-{k}", "timestamp": int(time.time() * 1000)})
                sig = hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()
                async with s.post(f"{url}/api/v3/order", data=f"{q}&signature={sig}",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"}) as r:
                    if r.status != 200:
                        raise SystemExit(f"raw order failed: {await r.text()}")
            return (time.perf_counter() - t) / n

    return asyncio.run(run())


def bench_orders(url, key, secret, clients: int, per_client: int) -> dict:
    latencies: list[float] = []

    async def run():
        t = time.perf_counter()
        await asyncio.gather(*[_client_orders(url, key, secret, per_client, latencies) for _ in range(clients)])
        return time.perf_counter() - t

    elapsed = asyncio.run(run())
    lat = sorted(latencies)
    return {"clients": clients, "orders": len(lat), "orders_per_s": len(lat) / elapsed,
            "p50_ms": 1000 * lat[len(lat) // 2], "p99_ms": 1000 * lat[int(len(lat) * 0.99) - 1],
            "mean_ms": 1000 * statistics.fmean(lat)}


def _subscribe_and_count(url: str, subscribers: int, seconds: float) -> int:
    """Open `subscribers` websockets (depth + trade + bookTicker) and count the messages
    they receive in `seconds` after a 1 s warm-up."""
    import aiohttp

    ws_url = url.replace("http://", "ws://") + "/ws/0"
    counts = [0] * subscribers

    async def sub(i, session, stop):
        async with session.ws_connect(ws_url) as ws:
            await ws.send_str(json.dumps({"method": "SUBSCRIBE", "id": 1, "params": [
                "btcusdt@depth@100ms", "btcusdt@trade", "btcusdt@bookTicker"]}))
            while not stop.is_set():
                try:
                    msg = await asyncio.wait_for(ws.receive(), 0.5)
                except TimeoutError:
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                counts[i] += 1

    async def run():
        stop = asyncio.Event()
        async with aiohttp.ClientSession() as session:
            tasks = [asyncio.create_task(sub(i, session, stop)) for i in range(subscribers)]
            await asyncio.sleep(1.0)
            base = sum(counts)
            await asyncio.sleep(seconds)
            got = sum(counts) - base
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        return got

    return asyncio.run(run())


def bench_fanout(url: str, subscribers: int, seconds: float, processes: int) -> dict:
    """Subscribers spread over `processes` client processes, so the clients' own parsing
    does not cap what the emulator sends."""
    per = [subscribers // processes + (1 if k < subscribers % processes else 0) for k in range(processes)]
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", url, str(n), str(seconds)],
                              stdout=subprocess.PIPE, text=True) for n in per if n]
    got = sum(int(p.communicate(timeout=seconds + 60)[0].strip() or 0) for p in procs)
    return {"subscribers": subscribers, "messages_per_s": got / seconds,
            "per_subscriber_per_s": got / seconds / subscribers}


def bench_bare_simcore(n: int) -> float:
    """Seconds per order (submit + run to its expiry) on a bare SimCore over the same data."""
    import numpy as np

    from engine.types import OrderType, TimeInForce, load_instruments
    from replay import open_source
    from venues.sim import SimCore, SimVenueConfig, WakeKind, warmup

    warmup()
    inst = load_instruments()["binance:BTC/USDT"]
    src = open_source("synthetic:5:2h", {inst.id: inst}, chunk_rows=1 << 16)
    core = SimCore([inst], {"binance": SimVenueConfig(venue="binance")}, iter(src), 0)
    no = np.zeros(1, dtype=bool)
    t0 = 1704067200000000000 + 1_000_000_000
    core.run_until(t0, no, no)
    price = core.local_bbo(0)[0] * 9 // 10
    start = time.perf_counter()
    for k in range(n):
        t = t0 + k * 1_000_000
        core.submit(k + 1, 0, 1, OrderType.LIMIT, TimeInForce.IOC, price, 100, False, 0, t)
        while core.run_until(t, no, no).kind == WakeKind.ORDER:
            pass
    return (time.perf_counter() - start) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=2000, help="orders per client setup (default 2000)")
    parser.add_argument("--seconds", type=float, default=5.0, help="fan-out measuring window")
    parser.add_argument("--worker", nargs=3, metavar=("URL", "N", "SECONDS"), help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.worker:
        url, n, seconds = args.worker
        print(_subscribe_and_count(url, int(n), float(seconds)))
        return 0
    record = RunRecord("bench_emulator", sys.argv[1:] if argv is None else argv, vars(args))
    import ccxt

    print(f"ccxt {ccxt.__version__}; emulator in its own process; clients: ccxt.async_support, limiter off")
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, key, secret = start_emulator(Path(tmp) / "orders")
        try:
            rows = [bench_orders(url, key, secret, 1, args.orders),
                    bench_orders(url, key, secret, 8, max(1, args.orders // 8))]
            raw = bench_raw_orders(url, key, secret, args.orders)
        finally:
            stop_emulator(proc)
        print("\ncreate_order (IOC, full venue round trip)")
        print(f"{'clients':>8} {'orders':>7} {'orders/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
        for r in rows:
            print(f"{r['clients']:>8} {r['orders']:>7} {r['orders_per_s']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}")
            detail = {"orders": r["orders"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"]}
            record.add(Row(f"emulator create_order, {r['clients']} client(s)", r["orders_per_s"], "orders/s",
                           detail=detail))
            record.add(Row(f"emulator create_order, {r['clients']} client(s) p99", r["p99_ms"] * 1000, "us",
                           better="lower", detail=detail))
        bare = bench_bare_simcore(args.orders)
        seq = rows[0]["mean_ms"] / 1000
        print(f"\nper order, sequential: bare SimCore {bare * 1e6:.0f} us; emulator from a bare aiohttp "
              f"client {raw * 1e6:.0f} us (overhead over SimCore {(raw - bare) * 1e6:.0f} us: HTTP, "
              f"signature, accounts, journal, loopback); from ccxt {seq * 1e6:.0f} us")
        for name, seconds in (("bare SimCore", bare), ("emulator from a bare aiohttp client", raw),
                              ("emulator from ccxt", seq)):
            record.add(Row(f"per order, sequential: {name}", seconds * 1e6, "us", better="lower"))

        proc, url, _, _ = start_emulator(Path(tmp) / "fanout", speed=20.0)
        try:
            fan = [bench_fanout(url, 1, args.seconds, 1), bench_fanout(url, 20, args.seconds, 4)]
        finally:
            stop_emulator(proc)
        print("\nmarket streams (depth@100ms + trade + bookTicker, synthetic BTC/USDT at --speed 20;"
              " 20 subscribers in 4 client processes)")
        print(f"{'subscribers':>11} {'msgs/s total':>13} {'msgs/s each':>12}")
        for r in fan:
            print(f"{r['subscribers']:>11} {r['messages_per_s']:>13.0f} {r['per_subscriber_per_s']:>12.0f}")
            record.add(Row(f"market messages, {r['subscribers']} subscriber(s)", r["messages_per_s"], "msgs/s",
                           detail={"per_subscriber_per_s": r["per_subscriber_per_s"]}))
    record.finish(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
