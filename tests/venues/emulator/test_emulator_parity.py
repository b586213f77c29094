"""The emulator is to a testnet what a backtest is to history: an order's life over REST
(limit -> partial fill -> resting -> cancel) under a latency model gives exactly the fills
the simulated venue gives a backtest on the same data, latency and seed."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

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

    journal = read_journal(Path(emu.settings.out_dir) / "journal.jsonl")
    new = next(e for e in journal if e["event"] == "order_new")
    assert new["ts"] == t_submit  # sent at the market time the request arrived
    cancel = next(e for e in journal if e["event"] == "cancel_request")
    assert cancel["ts"] == t_cancel
    spec = load_instruments()[IDS[0]]
    got = [(e["ts"], int(Decimal(e["price"]) / spec.tick_size), int(Decimal(e["qty"]) / spec.lot_size),
            e["liquidity"]) for e in journal if e["event"] == "fill"]
    final = [e for e in journal if e["event"] == "order_status"][-1]["status"]

    # the backtest's venue over the same data: SimCore pulling the feed
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
    core.submit(1, 0, 1, OrderType.LIMIT, TimeInForce.GTC, spec.price_to_ticks(str(ask)),
                spec.qty_to_lots(str(qty)), False, 0, t_submit)
    run_to(t_cancel)
    core.cancel(1, t_cancel)
    run_to(t_cancel + 1_000_000_000)
    want = [(int(r["exch_ts"]), int(r["price"]), int(r["qty"]),
             "maker" if int(r["liquidity"]) == 1 else "taker")
            for r in recs if int(r["kind"]) == OrderEventKind.FILL]
    assert got == want
    assert len(want) >= 1 and want[0][3] == "taker"  # partial fill on entry
    assert final == "CANCELED" and int(recs[-1]["kind"]) == OrderEventKind.CANCELLED
    assert want[0][0] == t_submit + VENUE["latency"]["entry_ns"]  # matched after entry latency
