"""EmulatorProcess: the emulator in a child process (venues/emulator/process.py), served to
real ccxt over 127.0.0.1; started with a ready handshake, stopped cleanly, never outliving
its parent, a startup error reported as one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from emu_helpers import accounts, control, get_json

from engine.errors import ConfigError
from engine.types import load_instruments
from venues.emulator import EmulatorProcess, EmulatorSettings, RateLimiter, read_journal
from venues.sim import SimVenueConfig

ROOT = Path(__file__).resolve().parents[3]


def _settings(out: Path) -> EmulatorSettings:
    inst = load_instruments()["binance:BTC/USDT"]
    return EmulatorSettings(instruments=[inst],
                            venue_configs={"binance": SimVenueConfig.from_table("binance", {"maker_fee_bps": 2})},
                            accounts=accounts(), seed=3, stepped=True, out_dir=out, limiter=RateLimiter())


def _gone(pid: int) -> bool:
    """The process ended (no such pid, or a zombie nobody has reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_child_process_serves_ccxt_and_stops_cleanly(tmp_path):
    """A stepped emulator in its own process: ccxt reads its book and places an order; the
    inspection view shows the order and the clock's shift (client time = market time +
    shift, here in ms); leaving the block stops the child with exit code 0 and the journal
    and final state written."""
    import ccxt

    emu = EmulatorProcess(_settings(tmp_path / "emu"), "synthetic:11:10m")
    with emu:
        assert emu.pid != os.getpid() and not _gone(emu.pid)
        control(emu, "step", {"by_ns": 2_000_000_000})
        ex = ccxt.binance(emu.ccxt_config("alice", timeout=5000))
        ex.load_markets()
        bid = ex.fetch_order_book("BTC/USDT", 5)["bids"][0][0]
        order = ex.create_order("BTC/USDT", "limit", "buy", 0.01, round(bid * 0.9, 2),
                                {"clientOrderId": "proc-1"})
        assert order["status"] == "open"
        state = emu.state()
        assert state["accounts"]["alice"]["open_orders"] == [int(order["id"])]
        assert state["time"] == (state["market_ns"] + state["shift_ns"]) // 1_000_000
        assert get_json(emu, "/emulator/state")["shift_ns"] == state["shift_ns"]
        pid = emu.pid
    assert emu.proc.returncode == 0 and _gone(pid)
    journal = read_journal(tmp_path / "emu" / "journal.jsonl")
    assert [e["client_order_id"] for e in journal if e["event"] == "order_new"] == ["proc-1"]
    assert (tmp_path / "emu" / "final_state.json").exists()


def test_a_startup_error_is_one_line_and_leaves_no_process(tmp_path):
    emu = EmulatorProcess(_settings(tmp_path / "emu"), f"duckdb:{tmp_path / 'missing.duckdb'}")
    with pytest.raises(ConfigError, match="missing.duckdb") as err:
        emu.start()
    assert "\n" not in str(err.value)
    assert emu.proc.returncode == 2 and _gone(emu.pid)


_PARENT = """
import sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from test_emulator_process import _settings
from venues.emulator import EmulatorProcess
emu = EmulatorProcess(_settings(Path({out!r})), "synthetic:11:10m").start()
print(emu.pid, flush=True)
time.sleep(120)
"""


def test_the_child_ends_when_its_parent_is_killed(tmp_path):
    """A parent killed with SIGKILL runs no cleanup: the child sees its stdin pipe close and
    stops by itself (bounded: 20 s), writing its final state; no orphan is left."""
    code = _PARENT.format(tests=str(Path(__file__).parent), out=str(tmp_path / "emu"))
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        child = int(parent.stdout.readline())
        assert not _gone(child)
    finally:
        parent.kill()
        parent.wait(10)
        parent.stdout.close()
    deadline = time.monotonic() + 20
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not _gone(child):  # do not leave it behind for the rest of the suite
        os.kill(child, 9)
        pytest.fail("the emulator process outlived its killed parent by 20 s")
    assert (tmp_path / "emu" / "final_state.json").exists()  # written by the child on its way out
