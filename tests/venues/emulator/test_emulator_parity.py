"""The emulator is to a testnet what a backtest is to history: an order's life over REST
(limit -> partial fill -> resting -> cancel) under a latency model gives exactly the fills
the simulated venue gives a backtest on the same data, latency and seed."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path

import ccxt
import numpy as np
import pytest
from emu_helpers import IDS, make_emulator, step, sync_client

from engine.feed import apply_feed_latency
from engine.types import OrderEventKind, OrderType, TimeInForce, load_instruments
from replay import open_source
from venues.emulator import read_journal
from venues.sim import SimCore, SimVenueConfig, WakeKind

VENUE = {"taker_fee_bps": 10, "maker_fee_bps": 2,
         "latency": {"entry_ns": 3_000_000, "response_ns": 2_000_000, "feed_ns": 1_000_000}}
DATA = "synthetic:11:30m"


@pytest.fixture(scope="module")
def lat_emu(tmp_path_factory):
    with make_emulator(tmp_path_factory.mktemp("parity"), venue=VENUE, data=DATA) as e:
        yield e


def _in_thread(fn):
    out = {}

    def run():
        try:
            out["value"] = fn()
        except Exception as exc:  # handed to the test thread
            out["error"] = exc
    t = threading.Thread(target=run)
    t.start()
    return t, out


def _settle(emu, *threads):
    """The venue answers when the market clock passes the response's local time."""
    for _ in range(200):
        if not any(t.is_alive() for t, _ in threads):
            break
        step(emu, 0.001)
        for t, _ in threads:
            t.join(0.02)
    for t, out in threads:
        t.join(5)
        assert not t.is_alive()
        if "error" in out:
            raise out["error"]
    return [out["value"] for _, out in threads]


def _wait(emu, fn):
    for _ in range(200):
        if emu.call(fn):
            return
        threading.Event().wait(0.02)
    raise AssertionError("the emulator never saw the request")


def _backtest_fills(spec, price, qty, t_submit, t_cancel):
    """The backtest's venue over the same data, latency and seed (SimCore pulling the
    feed): a limit buy of `qty` at `price` submitted at local time t_submit, cancelled at
    t_cancel (None: never). Returns ([(exch_ts, price ticks, lots, liquidity)], order records)."""
    cat = load_instruments()
    insts = {i: cat[i] for i in IDS}
    cfg = {"binance": SimVenueConfig.from_table("binance", VENUE)}
    feed_ns = np.array([cfg["binance"].feed_ns] * len(IDS), dtype=np.int64)
    core = SimCore(list(insts.values()), cfg,
                   apply_feed_latency(iter(open_source(DATA, insts, chunk_rows=1 << 15)), feed_ns), 3)
    no = np.zeros(len(IDS), dtype=bool)
    recs = []

    def run_to(t):
        while True:
            w = core.run_until(t, no, no)
            if w.kind == WakeKind.ORDER:
                recs.append(w.record)
            else:
                return

    run_to(t_submit)
    core.submit(1, 0, 1, OrderType.LIMIT, TimeInForce.GTC, spec.price_to_ticks(str(price)),
                spec.qty_to_lots(str(qty)), False, 0, t_submit)
    if t_cancel is not None:
        run_to(t_cancel)
        core.cancel(1, t_cancel)
    run_to((t_cancel or t_submit) + 1_000_000_000)
    want = [(int(r["exch_ts"]), int(r["price"]), int(r["qty"]),
             "maker" if int(r["liquidity"]) == 1 else "taker")
            for r in recs if int(r["kind"]) == OrderEventKind.FILL]
    return want, recs


def _journal_fills(path, spec):
    journal = read_journal(path)
    got = [(e["ts"], int(Decimal(e["price"]) / spec.tick_size), int(Decimal(e["qty"]) / spec.lot_size),
            e["liquidity"]) for e in journal if e["event"] == "fill"]
    return journal, got


def test_order_life_matches_the_backtest_venue(lat_emu):
    """The cancel is sent 1 ms after the order, before its reply: the venue answers both
    at market time, and the fills (taker on entry, none after the cancel) are the sim's."""
    emu = lat_emu
    t_submit = step(emu, 2.0)
    ex = sync_client(emu, "alice")
    ex.load_markets()
    ob = ex.fetch_order_book("BTC/USDT", 5)
    ask, ask_qty = ob["asks"][0]
    qty = round(ask_qty + 1, 5)
    create = _in_thread(lambda: ex.create_order("BTC/USDT", "limit", "buy", qty, ask,
                                                {"clientOrderId": "parity-1"}))
    _wait(emu, lambda s: len(s.exchange.orders) == 1)
    t_cancel = step(emu, 0.001)
    ex2 = sync_client(emu, "alice")
    ex2.load_markets()
    cancel = _in_thread(lambda: ex2.cancel_order(None, "BTC/USDT", {"origClientOrderId": "parity-1"}))
    _wait(emu, lambda s: s.exchange.journal.count and any(
        e["event"] == "cancel_request" for e in s.exchange.journal.recent))
    placed, cancelled = _settle(emu, create, cancel)
    assert placed["status"] == "open" and 0 < placed["filled"] < qty  # partially filled
    assert cancelled["status"] == "canceled" and cancelled["filled"] == placed["filled"]

    spec = load_instruments()[IDS[0]]
    journal, got = _journal_fills(Path(emu.settings.out_dir) / "journal.jsonl", spec)
    new = next(e for e in journal if e["event"] == "order_new")
    assert new["ts"] == t_submit  # sent at the market time the request arrived
    cancel = next(e for e in journal if e["event"] == "cancel_request")
    assert cancel["ts"] == t_cancel
    final = [e for e in journal if e["event"] == "order_status"][-1]["status"]

    want, recs = _backtest_fills(spec, ask, qty, t_submit, t_cancel)
    assert got == want
    assert len(want) >= 1 and want[0][3] == "taker"  # partial fill on entry
    assert final == "CANCELED" and int(recs[-1]["kind"]) == OrderEventKind.CANCELLED
    assert want[0][0] == t_submit + VENUE["latency"]["entry_ns"]  # matched after entry latency


def test_real_time_order_life_matches_the_backtest_venue(tmp_path):
    """--speed 1, the market clock following the wall clock (no stepping), a few seconds:
    the times at which the requests reached the venue are whatever the wall clock and the
    loopback made them (the journal's `order_new` / `cancel_request` ts), so the outcome
    differs run to run (partially filled then cancelled, or filled before the cancel);
    given those times, the fills are exactly the backtest venue's (same exchange times,
    prices, quantities, liquidity) and the order ends as it ends there."""
    spec = load_instruments()[IDS[0]]
    with make_emulator(tmp_path / "rt", stepped=False, speed=1.0, venue=VENUE, data=DATA) as emu:
        ex = sync_client(emu, "alice")
        ex.load_markets()
        time.sleep(1.0)  # the market runs on its own
        ob = ex.fetch_order_book("BTC/USDT", 5)
        ask, ask_qty = ob["asks"][0]
        price = float(spec.ticks_to_price(spec.price_to_ticks(str(ask)) + 2))  # crosses the touch
        qty = round(ask_qty + 5, 5)  # more than the book holds up to that price: rests
        placed = ex.create_order("BTC/USDT", "limit", "buy", qty, price, {"clientOrderId": "rt-1"})
        time.sleep(0.5)
        try:
            end = ex.cancel_order(placed["id"], "BTC/USDT")
        except ccxt.OrderNotFound:  # filled by the moving market before the cancel
            end = ex.fetch_order(placed["id"], "BTC/USDT")
        wall_ms = time.time() * 1000
    journal, got = _journal_fills(tmp_path / "rt" / "journal.jsonl", spec)
    t_submit = next(e for e in journal if e["event"] == "order_new")["ts"]
    cancels = [e["ts"] for e in journal if e["event"] == "cancel_request"]
    t_cancel = cancels[0] if cancels else None
    final = [e["status"] for e in journal if e["event"] in ("order_status", "fill")][-1]
    assert abs(end["timestamp"] - wall_ms) < 5000  # client-facing times are wall times
    want, recs = _backtest_fills(spec, price, qty, t_submit, t_cancel)
    assert got == want
    assert want and want[0][0] == t_submit + VENUE["latency"]["entry_ns"]
    assert sum(w[2] for w in want) == spec.qty_to_lots(str(end["filled"]))
    if cancels:
        assert 0.3e9 < cancels[0] - t_submit < 5e9  # market time followed the wall clock
        assert end["status"] == "canceled" and final == "CANCELED"
        assert int(recs[-1]["kind"]) == OrderEventKind.CANCELLED
    else:
        assert end["status"] == "closed" and final == "FILLED"
        assert int(recs[-1]["kind"]) == OrderEventKind.FILL and int(recs[-1]["leaves"]) == 0
