"""Helpers for the simulated-venue tests: hand-written feeds and a run-to-the-end driver."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from engine.types.instrument import Instrument
from engine.types.market import EVENT_DTYPE, EventKind
from engine.types.orders import OrderEventKind
from venues.sim import SimCore, SimVenueConfig, WakeKind

DELTA = EventKind.BOOK_DELTA
TRADE = EventKind.TRADE
SNAP_BEGIN = EventKind.SNAPSHOT_BEGIN
SNAP_END = EventKind.SNAPSHOT_END
CLEAR = EventKind.CLEAR
BUY = 1
SELL = -1
FAR = 10**18


def instrument(venue: str = "sim", symbol: str = "BTC/USDT") -> Instrument:
    base, quote = symbol.split("/")
    return Instrument(
        id=f"{venue}:{symbol}", venue=venue, symbol=symbol, venue_symbol=base + quote,
        base=base, quote=quote, tick_size=Decimal("0.01"), lot_size=Decimal("0.001"),
        min_qty=Decimal("0"), min_notional=Decimal("0"),
    )


def events(rows) -> np.ndarray:
    """rows: (exch_ts, kind, side, price, qty[, instrument[, local_ts[, order_id]]])."""
    out = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, r in enumerate(rows):
        exch, kind, side, price, qty = r[:5]
        inst = r[5] if len(r) > 5 else 0
        local = r[6] if len(r) > 6 else exch
        oid = r[7] if len(r) > 7 else 0
        out[i] = (exch, local, inst, int(kind), side, price, qty, oid)
    return out


def chunks(feed: np.ndarray, size: int):
    for i in range(0, feed.shape[0], size):
        yield feed[i : i + size]


def make_core(rows, *, chunk: int = 1_000_000, instruments=None, seed: int = 7,
              configs=None, lazy_exchange: bool = True, **table) -> SimCore:
    table.setdefault("latency", {"entry_ns": 0, "response_ns": 0})
    insts = instruments or [instrument()]
    if configs is None:
        configs = {v: SimVenueConfig.from_table(v, table) for v in {i.venue for i in insts}}
    feed = rows if isinstance(rows, np.ndarray) else events(rows)
    return SimCore(insts, configs, chunks(feed, chunk), seed, lazy_exchange=lazy_exchange)


def drain(core: SimCore, bound: int = FAR, book=None, trade=None):
    """Run until bound/END; returns the list of wakes."""
    n = len(core.instruments)
    wb = np.zeros(n, dtype=bool) if book is None else np.asarray(book)
    wt = np.zeros(n, dtype=bool) if trade is None else np.asarray(trade)
    out = []
    while True:
        w = core.run_until(bound, wb, wt)
        out.append(w)
        if w.kind in (WakeKind.BOUND, WakeKind.END):
            return out


def orders(wakes):
    """ORDER wakes as small tuples (kind name, order_no, price, qty, filled, leaves, liq, reason)."""
    res = []
    for w in wakes:
        if w.kind == WakeKind.ORDER:
            r = w.record
            res.append((OrderEventKind(int(r["kind"])).name, int(r["order_no"]), int(r["price"]),
                        int(r["qty"]), int(r["filled"]), int(r["leaves"]), int(r["liquidity"]),
                        int(r["reason"])))
    return res


def fills(wakes):
    return [(o[1], o[2], o[3]) for o in orders(wakes) if o[0] == "FILL"]


def compiled_and_plain(tmp_path, root, venue_lines: str) -> tuple:
    """Run examples/compiled_market_maker.py's CompiledTouchQuoter through `tickparity
    backtest` twice, on the compiled fast path and through the Python adapter, with
    `venue_lines` (TOML) in `[venues.binance]`; returns the two run directories."""
    import pytest

    from engine.compiled import CompiledStrategy
    from modes.cli import main

    config = tmp_path / "run.toml"
    config.write_text(f"""
[run]
strategy = "{root / 'examples/compiled_market_maker.py'}:CompiledTouchQuoter"
data = "synthetic:5:1m"
seed = 3
[run.params]
qty = "0.01"
every_ms = 100
[venues.binance]
balances = {{ USDT = "1000000", BTC = "10" }}
{venue_lines}""")
    args = ["backtest", "--config", str(config), "--no-report", "--out"]
    fast, plain = tmp_path / "fast", tmp_path / "python"
    assert main([*args, str(fast)]) == 0
    mp = pytest.MonkeyPatch()
    mp.setattr(CompiledStrategy, "fast_path", False)
    try:
        assert main([*args, str(plain)]) == 0
    finally:
        mp.undo()
    return fast, plain


def same_files(a, b, names=("orders.parquet", "fills.parquet")) -> None:
    """The named files of two run directories are byte-identical."""
    import hashlib

    for name in names:
        assert hashlib.sha256((a / name).read_bytes()).digest() == hashlib.sha256((b / name).read_bytes()).digest(), name
