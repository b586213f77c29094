"""Helpers for the emulator tests (see conftest.py)."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from pathlib import Path

from engine.types import load_instruments
from replay import open_source
from venues.emulator import Account, EmulatorSettings, EmulatorThread, FaultPlan, RateLimiter
from venues.sim import SimVenueConfig

IDS = ("binance:BTC/USDT", "binance:ETH/USDT")
TIMEOUT_MS = 5000


class CheckedEmulator(EmulatorThread):
    """An emulator that fails the test which met one of our bugs: at the end of its `with`
    block the journal must hold no `internal_error` (the emulator answers -1000 and goes
    on, which a client-side assertion alone does not notice). A test provoking one on
    purpose sets `allow_internal_errors`."""

    allow_internal_errors = False

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        if exc[0] is None and not self.allow_internal_errors:
            from venues.emulator import read_journal

            path = Path(self.settings.out_dir) / "journal.jsonl"
            bugs = [e for e in read_journal(path) if e["event"] == "internal_error"] if path.exists() else []
            assert not bugs, f"the emulator logged {len(bugs)} internal error(s); first: {bugs[0]}"


def accounts() -> list[Account]:
    return [
        Account("alice", "alice-key", "alice-secret",
                free={"USDT": Decimal("10000000"), "BTC": Decimal("100"), "ETH": Decimal("1000")}),
        Account("bob", "bob-key", "bob-secret", free={"USDT": Decimal("1000"), "BTC": Decimal("0")}),
    ]


def make_emulator(out: Path, *, stepped: bool = True, speed: float = 1.0, venue: dict | None = None,
                  faults: FaultPlan | None = None, limiter: RateLimiter | None = None,
                  data: str = "synthetic:11:30m", ids=IDS, source=None, **kw) -> EmulatorThread:
    cat = load_instruments()
    insts = {i: cat[i] for i in ids}
    table = venue if venue is not None else {"taker_fee_bps": 10, "maker_fee_bps": 2}
    settings = EmulatorSettings(
        instruments=list(insts.values()),
        venue_configs={v: SimVenueConfig.from_table(v, table) for v in dict.fromkeys(i.venue for i in insts.values())},
        accounts=accounts(), seed=3, speed=speed, stepped=stepped, out_dir=out,
        faults=faults, limiter=limiter or RateLimiter(), reply_timeout_s=3.0, **kw)
    if source is None:
        source = open_source(data, insts, chunk_rows=1 << 15)
    return CheckedEmulator(settings, source)


def still_market(seconds: int = 600, bid: int = 6_000_000, ask: int = 6_001_000,
                 lots: int = 100_000) -> list:
    """A market that never moves, for hand-checked trades between accounts: BTC/USDT
    (instrument 0) bid `bid` / ask `ask` ticks with `lots` lots each, set again every second
    (no change, so no update id) for `seconds`; no trades."""
    import numpy as np

    from engine.types import EVENT_DTYPE, EventKind

    t0 = 1_704_067_200_000_000_000
    rows = np.zeros(2 * seconds, dtype=EVENT_DTYPE)
    rows["exch_ts"] = t0 + np.repeat(np.arange(seconds, dtype=np.int64), 2) * 1_000_000_000
    rows["local_ts"] = rows["exch_ts"]
    rows["kind"] = EventKind.BOOK_DELTA
    rows["side"][0::2] = 1
    rows["side"][1::2] = -1
    rows["price"][0::2] = bid
    rows["price"][1::2] = ask
    rows["qty"] = lots
    return [rows]


def step(emu: EmulatorThread, seconds: float) -> int:
    """Move a stepped emulator's market clock forward; returns market ns."""
    def go(server):
        clock = server.exchange.clock
        clock.step_to(clock.now() + int(seconds * 1e9))
        server.step()
        return clock.now()
    return emu.call(go)


def step_to_window_end(emu: EmulatorThread) -> int:
    """Step a stepped emulator to the end of the open `@depth@100ms` window (a multiple of
    100 ms of market time), so every change applied so far has been published as a diff."""
    from venues.emulator.exchange import DEPTH_INTERVAL_NS

    def go(server):
        clock = server.exchange.clock
        clock.step_to(-(-clock.now() // DEPTH_INTERVAL_NS) * DEPTH_INTERVAL_NS)
        server.step()
        return clock.now()
    return emu.call(go)


def sync_client(emu: EmulatorThread, account: int | str = 0, **extra):
    import ccxt

    extra.setdefault("timeout", TIMEOUT_MS)
    return ccxt.binance(emu.ccxt_config(account, **extra))


def book_of(emu: EmulatorThread, k: int = 0):
    """(update_id, bids, asks) of the emulator's own public book, as floats like ccxt's."""
    def read(server):
        ex = server.exchange
        spec = ex.instruments[k]
        book = ex.books[k]
        bids, asks = book.levels(10_000)
        return (book.update_id,
                [[float(spec.ticks_to_price(p)), float(spec.lots_to_qty(q))] for p, q in bids],
                [[float(spec.ticks_to_price(p)), float(spec.lots_to_qty(q))] for p, q in asks])
    return emu.call(read)


def control(emu: EmulatorThread, what: str, body: dict) -> dict:
    """POST to the emulator's control API (/emulator/control/<what>)."""
    import json
    import urllib.request

    req = urllib.request.Request(f"{emu.url}/emulator/control/{what}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def get_json(emu: EmulatorThread, path: str):
    import json
    import urllib.request

    with urllib.request.urlopen(emu.url + path, timeout=5) as resp:
        return json.loads(resp.read())


@contextlib.asynccontextmanager
async def pro_client(emu: EmulatorThread, account: int | str = "alice"):
    """A ccxt.pro client of `account` with markets loaded; closed on exit."""
    import ccxt.pro as ccxtpro

    ex = ccxtpro.binance(emu.ccxt_config(account, timeout=5000))
    try:
        await ex.load_markets()
        yield ex
    finally:
        await ex.close()
