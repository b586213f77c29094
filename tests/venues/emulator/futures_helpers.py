"""A futures emulator over a hand-made USDⓈ-M market, for tests with hand-computed money.

The market (binanceusdm:BTC/USDT:USDT, tick 0.1, lot 0.001): bid 50,000.0 / ask 50,000.1
with 100 BTC each, set every second (no change, so no update id), a mark of 50,000.0 every
second until `crash_s`, a funding settlement at `funding_s` (rate 0.0001, mark 50,000.0),
and from `crash_s` on a mark of 45,000.0 (the book stays where it is: only the mark moves,
which is what liquidates a position).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
from emu_helpers import CheckedEmulator

from engine.margin import MarginSettings
from engine.types import EVENT_DTYPE, EventKind, load_instruments
from venues.emulator import Account, EmulatorSettings, EmulatorThread
from venues.sim import SimVenueConfig

PERP = "binanceusdm:BTC/USDT:USDT"
SYMBOL = "BTC/USDT:USDT"
T0 = 1_704_067_200_000_000_000  # 2024-01-01 00:00 UTC
SECOND = 1_000_000_000


COINM = "binancecoinm:BTC/USD:BTC"  # BTCUSD_PERP: tick 0.1, 1 contract = 100 USD
COINM_SYMBOL = "BTC/USD:BTC"


def perp_market(seconds: int = 400, funding_s: int = 100, crash_s: int = 200, bid: int = 500_000,
                ask: int = 500_001, lots: int = 100_000) -> list[np.ndarray]:
    n = seconds
    rows = np.zeros(3 * n + 1, dtype=EVENT_DTYPE)
    ts = T0 + np.arange(n, dtype=np.int64) * SECOND
    book = rows[: 2 * n]
    book["exch_ts"] = np.repeat(ts, 2)
    book["kind"] = EventKind.BOOK_DELTA
    book["side"][0::2] = 1
    book["side"][1::2] = -1
    book["price"][0::2] = bid
    book["price"][1::2] = ask
    book["qty"] = lots
    marks = rows[2 * n: 3 * n]
    marks["exch_ts"] = ts + SECOND // 2
    marks["kind"] = EventKind.MARK_PRICE
    marks["price"] = np.where(np.arange(n) < crash_s, 500_000, 450_000)
    funding = rows[3 * n:]
    funding["exch_ts"] = T0 + funding_s * SECOND
    funding["kind"] = EventKind.FUNDING_RATE
    funding["side"] = 1
    funding["price"] = 100_000_000  # x 1e-12 = 0.0001
    funding["qty"] = 500_000  # settled at the mark 50,000.0
    rows = rows[np.argsort(rows["exch_ts"], kind="stable")]
    rows["local_ts"] = rows["exch_ts"]
    return [rows]


def futures_emulator(out: Path, *, balance: str = "10000", margin_mode: str = "isolated",
                     stepped: bool = True, speed: float = 1.0, seconds: int = 400,
                     source=None, instrument: str = PERP) -> EmulatorThread:
    cat = load_instruments()
    inst = cat[instrument]
    venue = inst.venue
    settings = EmulatorSettings(
        instruments=[inst],
        venue_configs={venue: SimVenueConfig.from_table(
            venue, {"maker_fee_bps": 2, "taker_fee_bps": 5, "latency": {"entry_ns": 0, "response_ns": 0,
                                                                          "feed_ns": 0}})},
        accounts=[Account("alice", "alice-key", "alice-secret", free={inst.settle: Decimal(balance)})],
        seed=3, stepped=stepped, speed=speed, out_dir=out, reply_timeout_s=5.0,
        margin={venue: MarginSettings(margin_mode=margin_mode, leverage=20)})
    return CheckedEmulator(settings, source if source is not None else perp_market(seconds))


def step_to(emu: EmulatorThread, seconds: float) -> int:
    """Move the stepped clock to T0 + seconds (market time); returns market ns."""
    def go(server):
        clock = server.exchange.clock
        clock.step_to(max(clock.now(), T0 + int(seconds * SECOND)))
        server.step()
        return clock.now()
    return emu.call(go)


DATED = "binanceusdm:BTC/USDT:USDT-251226"  # BTCUSDT_251226, delivery 2025-12-26 08:00 UTC
COINM_DATED = "binancecoinm:BTC/USD:BTC-251226"  # BTCUSD_251226 (1 contract = 100 USD), same delivery
EXPIRY = 1_766_736_000_000_000_000


def dated_market(bid: int = 500_000, ask: int = 500_001) -> list[np.ndarray]:
    """A quarterly over the 40 minutes before its delivery and one after: bid 50,000.0 /
    ask 50,000.1 every second (tick 0.1); a mark each whole second, 50,000.0 until
    expiry - 900 s and 50,100.0 from then on, so the delivery price (the mean of the mark
    at each second of the last 30 minutes) is (900 x 50,000.0 + 900 x 50,100.0) / 1,800
    = 50,050.0."""
    ts = EXPIRY - 2400 * SECOND + np.arange(2460, dtype=np.int64) * SECOND
    n = len(ts)
    rows = np.zeros(3 * n, dtype=EVENT_DTYPE)
    rows["exch_ts"][: 2 * n] = np.repeat(ts, 2)
    rows["kind"][: 2 * n] = EventKind.BOOK_DELTA
    rows["side"][0: 2 * n: 2] = 1
    rows["side"][1: 2 * n: 2] = -1
    rows["price"][0: 2 * n: 2] = bid
    rows["price"][1: 2 * n: 2] = ask
    rows["qty"][: 2 * n] = 100_000
    rows["exch_ts"][2 * n:] = ts
    rows["kind"][2 * n:] = EventKind.MARK_PRICE
    rows["price"][2 * n:] = np.where(ts < EXPIRY - 900 * SECOND, 500_000, 501_000)
    rows = rows[np.argsort(rows["exch_ts"], kind="stable")]
    rows["local_ts"] = rows["exch_ts"]
    return [rows]


def step_to_ns(emu: EmulatorThread, market_ns: int) -> int:
    """Move the stepped clock to `market_ns` (never backwards); returns market ns."""
    def go(server):
        clock = server.exchange.clock
        clock.step_to(max(clock.now(), int(market_ns)))
        server.step()
        return clock.now()
    return emu.call(go)


def dated_store(path: Path, instrument: str, rows: np.ndarray) -> str:
    """The market rows in a DuckDB store (for a backtest of the same data); its spec."""
    from replay.schema import StoredInstrument
    from replay.stores import open_store

    spec = f"duckdb:{path}"
    with open_store(spec, create=True) as store, store.begin_import(
            {instrument: StoredInstrument.of(load_instruments()[instrument])}, expected_rows=len(rows)) as tx:
        tx.append(instrument, rows)
    return spec
