"""Hand-written market data through the real backtest loop (venues.sim + modes.backtest._drive).

Prices are written as decimal strings at a 0.01 tick, quantities at a 0.001 lot; every
test states the book it plays and computes the expected fills by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np

from engine.audit import AuditLog
from engine.clock import SimClock
from engine.ledger import Ledger
from engine.output import RunWriter
from engine.risk import RiskConfig, RiskEngine
from engine.session import TradingSession
from engine.strategy import Strategy
from engine.types.instrument import Instrument
from engine.types.market import EVENT_DTYPE, EventKind
from venues.sim import SimCore, SimVenueConfig, WakeKind
from venues.simulated import SimulatedVenue

INST = Instrument(id="sim:BTC/USDT", venue="sim", symbol="BTC/USDT", venue_symbol="BTCUSDT", base="BTC",
                  quote="USDT", tick_size=Decimal("0.01"), lot_size=Decimal("0.001"), min_qty=Decimal("0"),
                  min_notional=Decimal("0"))
ID = INST.id
T0 = 1_000_000_000
MS = 1_000_000


def px(p: str) -> int:
    return INST.price_to_ticks(Decimal(p))


def lots(q: str) -> int:
    return INST.qty_to_lots(Decimal(q))


def book(ts: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> list[tuple]:
    """A snapshot: (ts, kind, side, price ticks, qty lots) rows."""
    rows = [(ts, EventKind.SNAPSHOT_BEGIN, 0, 0, 0)]
    rows += [(ts, EventKind.BOOK_DELTA, 1, px(p), lots(q)) for p, q in bids]
    rows += [(ts, EventKind.BOOK_DELTA, -1, px(p), lots(q)) for p, q in asks]
    rows.append((ts, EventKind.SNAPSHOT_END, 0, 0, 0))
    return rows


def level(ts: int, side: str, p: str, q: str) -> tuple:
    """A book delta: the level's quantity becomes q (0 removes it)."""
    return (ts, EventKind.BOOK_DELTA, 1 if side == "bid" else -1, px(p), lots(q))


def trade(ts: int, aggressor: str, p: str, q: str) -> tuple:
    return (ts, EventKind.TRADE, 1 if aggressor == "buy" else -1, px(p), lots(q))


class Script(Strategy):
    """Runs `start(ctx)` at on_start and `at[ts](ctx)` at those times; records every update."""

    def __init__(self, start: Callable | None = None, at: dict[int, Callable] | None = None,
                 on_update: Callable | None = None) -> None:
        self.start = start
        self.at = at or {}
        self.on_update = on_update
        self.updates: list = []

    def on_start(self, ctx) -> None:
        for ts in sorted(self.at):
            ctx.schedule(at_ns=ts)
        if self.start is not None:
            self.start(ctx)

    def on_timer(self, ctx, ts) -> None:
        self.at[ts](ctx)

    def on_order(self, ctx, update) -> None:
        self.updates.append(update)
        if self.on_update is not None:
            self.on_update(ctx, update)

    def events(self, client_id: str) -> list[tuple[str, str]]:
        """(event, status) of one order's updates, in order."""
        return [(u.event.value, u.status.value) for u in self.updates if u.client_id == client_id]


def run(tmp_path: Path, rows: list[tuple], script: Script, *, entry_ns: int = 0, response_ns: int = 0,
        balances: dict[str, str] | None = None, risk: dict | None = None,
        table: dict | None = None) -> TradingSession:
    """Replay `rows` (sorted by ts; local = exchange time) with `script`; returns the session."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    feed = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for k, (ts, kind, side, price, qty) in enumerate(rows):
        feed[k] = (ts, ts, 0, int(kind), side, price, qty, 0)
    cfg = SimVenueConfig.from_table("sim", {"latency": {"entry_ns": entry_ns, "response_ns": response_ns},
                                            **(table or {})})
    core = SimCore([INST], {"sim": cfg}, iter([feed]), seed=1)
    clock = SimClock(T0)
    bal = {k: Decimal(v) for k, v in (balances or {"USDT": "1000000", "BTC": "100"}).items()}
    session = TradingSession(strategy=script, instruments={ID: INST}, venues={"sim": SimulatedVenue("sim", core, cfg)},
                             clock=clock, ledger=Ledger({ID: INST}, {"sim": bal}),
                             risk=RiskEngine(RiskConfig.from_table(risk)), audit=AuditLog(tmp_path / "audit.jsonl"))
    from modes.backtest import _drive

    writer = RunWriter(tmp_path / "run", {ID: INST})
    session.start()
    _drive(session, core, clock, writer, WakeKind, T0, np.iinfo(np.int64).max, 10**12, None)
    session.stop()
    session.audit.close()
    session.core = core  # for queue-position checks
    return session


def fills(session: TradingSession) -> list[tuple[str, str, str, str]]:
    """(client_id, side, price, qty) of every fill, in order (from the audit log's order records)."""
    out = []
    for order in session.oms.by_no.values():
        if order.filled:
            out.append((order.client_id, order.side_name, str(order.avg_fill_price),
                        str(order.instrument.lots_to_qty(order.filled))))
    return out
