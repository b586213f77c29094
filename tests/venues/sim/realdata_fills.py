"""A fixed quoting rule run on the real Binance capture in ../shared: the fills of each
shipped queue model, as one digest (test_sim_user_models pins them)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

CAPTURE = Path(__file__).resolve().parents[2] / "data" / "binance-ws" / "spot_btcusdt_20240808.gz"  # ../shared's, shipped
SPOT = """
["binance:BTC/USDT"]
venue_symbol = "BTCUSDT"
base = "BTC"
quote = "USDT"
tick_size = "0.01"
lot_size = "0.00000001"
"""


def capture_events(tmp: Path) -> tuple[list, np.ndarray]:
    from engine.types import load_instruments
    from replay.importers import check_sources, parse_sources
    from replay.validate import Mode, Report

    path = tmp / "instruments.toml"
    path.write_text(SPOT)
    insts = load_instruments(path)
    report = Report()
    parts = parse_sources("binance-ws", [str(CAPTURE)], insts, None, report, Mode.STRICT, {})
    checked = check_sources(parts, report, Mode.STRICT, correct_skew=True)
    return [insts["binance:BTC/USDT"]], checked[0].events


def fills_digest(insts: list, ev: np.ndarray, queue_model: str) -> tuple[int, int, str]:
    """Every 200 ms of local time: cancel both quotes, rest a buy at the local best bid and a
    sell at the local best ask (1e5 lots each). Returns (fills, lots filled, sha256 of the
    fill records: exch_ts, order_no, price, qty)."""
    from engine.types.orders import OrderEventKind, OrderType, TimeInForce
    from venues.sim import SimCore, SimVenueConfig, WakeKind

    cfg = SimVenueConfig.from_table("binance", {"queue_model": queue_model,
                                                "latency": {"entry_ns": 2_000_000, "response_ns": 2_000_000}})
    core = SimCore(insts, {"binance": cfg}, iter([ev]), seed=1)
    no_wake = np.zeros(1, dtype=bool)
    t = int(ev["local_ts"][0]) + 1_000_000_000
    step = 200_000_000
    order_no = 0
    live: list[int] = []
    digest = hashlib.sha256()
    n = lots = 0
    while True:
        w = core.run_until(t, no_wake, no_wake)
        if w.kind == WakeKind.ORDER:
            r = w.record
            if int(r["kind"]) == OrderEventKind.FILL:
                n += 1
                lots += int(r["qty"])
                digest.update(f"{int(r['exch_ts'])},{int(r['order_no'])},{int(r['price'])},{int(r['qty'])};".encode())
            continue
        if w.kind == WakeKind.END:
            break
        if w.kind != WakeKind.BOUND:
            continue
        for o in live:
            if core.order_state(o) is not None:
                core.cancel(o, t)
        live = []
        bid, _bq, ask, _aq = core.local_bbo(0)
        if bid > 0 and ask > bid:
            for side, price in ((1, bid), (-1, ask)):
                order_no += 1
                core.submit(order_no, 0, side, OrderType.LIMIT, TimeInForce.GTC, price, 100_000, False, 0, t)
                live.append(order_no)
        t += step
    return n, lots, digest.hexdigest()
