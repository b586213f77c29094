"""A hand-made BTC/USDT market for the live contingent-order tests, and a thread that moves a
stepped emulator's clock like speed 1 until the test lets the scripted part play."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from engine.types import EVENT_DTYPE, EventKind, load_instruments

T0 = 1_704_067_200_000_000_000
S = 1_000_000_000
HOLD_S = 3600  # market seconds of the flat part before the scripted events
BTC = "binance:BTC/USDT"


def market(events: list[tuple], seconds: int, after: tuple[int, int] | None = None) -> np.ndarray:
    """Bid 60000.00 / ask 60000.10 (1 or 1.1 BTC, alternating every second so the depth
    stream publishes) for HOLD_S + `seconds` s; `events`: (second after HOLD_S, kind,
    side, price ticks, qty lots) rows added at their time (a book delta or a trade);
    `after`: (bid, ask) ticks the book moves to at HOLD_S (the old levels removed)."""
    rows = []
    for s in range(HOLD_S + seconds):
        ts = T0 + s * S
        q = 100_000 + (s % 2) * 10_000
        bid, ask = (6_000_000, 6_000_010) if after is None or s < HOLD_S else after
        if s == HOLD_S and after is not None:
            rows += [(ts, EventKind.BOOK_DELTA, 1, 6_000_000, 0), (ts, EventKind.BOOK_DELTA, -1, 6_000_010, 0)]
        rows += [(ts, EventKind.BOOK_DELTA, 1, bid, q), (ts, EventKind.BOOK_DELTA, -1, ask, q)]
    rows += [(T0 + (HOLD_S + at) * S + 1, kind, side, price, qty) for at, kind, side, price, qty in events]
    rows.sort(key=lambda r: r[0])
    out = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for k, (ts, kind, side, price, qty) in enumerate(rows):
        out[k]["exch_ts"] = out[k]["local_ts"] = ts
        out[k]["kind"], out[k]["side"], out[k]["price"], out[k]["qty"] = kind, side, price, qty
    return out


def write_store(path: Path, rows: np.ndarray) -> str:
    """`rows` as a DuckDB store (what a backtest and the emulator both read); its data spec."""
    from replay.schema import StoredInstrument
    from replay.stores import open_store

    store = open_store(f"duckdb:{path}", create=True)
    try:
        with store.begin_import({BTC: StoredInstrument.of(load_instruments()[BTC])}) as tx:
            tx.append(BTC, rows)
    finally:
        store.close()
    return f"duckdb:{path}"


class Stepper(threading.Thread):
    """Moves a stepped emulator's market clock 100 ms every 100 ms of wall time, never past
    HOLD_S until `play` is set (then it jumps there and goes on)."""

    def __init__(self, emu) -> None:
        super().__init__(daemon=True)
        self.emu = emu
        self.stop = threading.Event()
        self.play = threading.Event()

    def run(self) -> None:
        def go(server, play):
            clock = server.exchange.clock
            target = clock.now() + S // 10
            target = max(target, T0 + HOLD_S * S) if play else min(target, T0 + HOLD_S * S - S // 10)
            clock.step_to(target)
            server.step()
        while not self.stop.is_set():
            try:
                play = self.play.is_set()
                self.emu.call(lambda server, play=play: go(server, play))
            except RuntimeError:  # the emulator stopped (the test ended)
                return
            time.sleep(0.1)


@contextmanager
def stepped_emulator(tmp_path: Path, source: list):
    """A stepped emulator of binance:BTC/USDT on `source` with its Stepper running; yields
    (emulator, stepper) and stops both."""
    from emu_helpers import make_emulator

    with make_emulator(tmp_path / "emu", stepped=True, source=source, ids=("binance:BTC/USDT",)) as emu:
        stepper = Stepper(emu)
        stepper.start()
        try:
            yield emu, stepper
        finally:
            stepper.stop.set()
            stepper.join(5)


def start_testnet(emu, strategy: str, tmp_path: Path, out: Path) -> subprocess.Popen:
    """`tickparity testnet` of `strategy` on `emu` as alice (keys from TP_TEST_KEY /
    TP_TEST_SECRET), in a child process a test can kill -9, writing `out`; its config is
    tmp_path/run.toml (the file a later `--resume` session of the test reads too)."""
    from live_helpers import ROOT

    cfg = tmp_path / "run.toml"
    cfg.write_text(f'''[run]
strategy = "{strategy}"
instruments = ["binance:BTC/USDT"]
[venues.binance]
url = "{emu.url}"
account = "alice"
api_key_env = "TP_TEST_KEY"
secret_env = "TP_TEST_SECRET"
balances = {{ USDT = "10000000", BTC = "100" }}
''')
    return subprocess.Popen([sys.executable, "-m", "modes.cli", "testnet", "--config", str(cfg), "--out", str(out),
                             "--duration", "300", "--no-report", "--no-health"], cwd=ROOT, env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def resume_in_thread(emu, strategy: str, run1: Path, run2: Path, duration_s: float = 6) -> tuple[threading.Thread, dict]:
    """A testnet session resuming `run1` (`--resume`) into `run2`, on a thread: (the started
    thread, a dict that gets `out` or, when the session raised, `error`)."""
    from live_helpers import session_config

    from modes.live import run_live

    result: dict = {}

    def second() -> None:
        try:
            result["out"] = run_live(session_config(emu, strategy=strategy), "testnet", run2, duration_s=duration_s,
                                     health=False, write_html=False, reconcile_s=1.0, resume=run1)
        except BaseException as exc:  # reported by the test thread
            result["error"] = exc
    thread = threading.Thread(target=second)
    thread.start()
    return thread, result


def resume_testnet(emu, strategy: str, run1: Path, run2: Path) -> None:
    """`resume_in_thread` for 6 s, waited for; AssertionError with the session's error."""
    thread, result = resume_in_thread(emu, strategy, run1, run2)
    thread.join(120)
    assert "error" not in result, result.get("error")
