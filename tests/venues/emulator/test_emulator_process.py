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


class _DiesAtStart(EmulatorProcess):
    """A child that dies while starting (a corrupt numba cache, a crashed import): a
    traceback on stderr and exit code 3, before it reads its settings."""

    child_code = ("import sys; sys.stderr.write('Traceback (most recent call last):\\n  ...\\n"
                  "RuntimeError: numba cache is corrupt\\n'); sys.exit(3)")


class _SilentAtStart(EmulatorProcess):
    """A child that hangs while starting and says nothing."""

    child_code = "import time; time.sleep(60)"


def test_a_child_that_dies_at_start_is_one_line_with_its_exit_code_and_last_words(tmp_path):
    emu = _DiesAtStart(_settings(tmp_path / "emu"), "synthetic:11:10m", start_timeout=60)
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as err:
        emu.start()
    assert time.monotonic() - t0 < 10  # not the silence timeout: its death is seen at once
    text = str(err.value)
    assert "\n" not in text
    assert "exited with code 3" in text and "RuntimeError: numba cache is corrupt" in text, text
    assert _gone(emu.pid)


def test_a_child_silent_for_the_start_timeout_is_killed_with_one_line(tmp_path):
    emu = _SilentAtStart(_settings(tmp_path / "emu"), "synthetic:11:10m", start_timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=r"silent for 1 s while starting \(last progress: none\)") as err:
        emu.start()
    assert time.monotonic() - t0 < 10 and "\n" not in str(err.value)
    assert _gone(emu.pid)


def test_a_slow_start_that_reports_progress_is_waited_for(tmp_path, monkeypatch):
    """The child's start takes 4 s longer (the documented TICKPARITY_EMULATOR_START_DELAY_S
    hook) with a 2 s silence timeout: its progress lines (a heartbeat every 0.5 s) keep
    the parent waiting, and the emulator then serves."""
    from venues.emulator.process import START_DELAY_ENV

    monkeypatch.setenv(START_DELAY_ENV, "4")
    t0 = time.monotonic()
    with EmulatorProcess(_settings(tmp_path / "emu"), "synthetic:11:10m", start_timeout=2.0) as emu:
        assert time.monotonic() - t0 >= 4.0
        assert emu.stage == "binding"  # the last progress before READY
        assert emu.state()["accounts"]["alice"]["open_orders"] == []
    assert emu.proc.returncode == 0
