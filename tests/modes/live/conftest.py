"""Live-mode tests: real ccxt.pro over 127.0.0.1 against the local emulator (wall clock,
speed 1), short sessions (a few seconds each)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

for _dir in (Path(__file__).resolve().parents[2] / "venues" / "emulator", Path(__file__).resolve().parent):
    if str(_dir) not in sys.path:
        sys.path.insert(0, str(_dir))

from emu_helpers import make_emulator  # noqa: E402


@pytest.fixture(scope="session")
def live_emu(tmp_path_factory):
    """One emulator for the live-mode tests (accounts alice and bob; BTC/USDT, ETH/USDT)."""
    with make_emulator(tmp_path_factory.mktemp("live-emu"), stepped=False, speed=1.0) as emu:
        yield emu


@pytest.fixture
def alice_env(monkeypatch):
    monkeypatch.setenv("TP_TEST_KEY", "alice-key")
    monkeypatch.setenv("TP_TEST_SECRET", "alice-secret")


@pytest.fixture(scope="session")
def two_emus(tmp_path_factory):
    """Two emulators for the multi-venue tests: binance:BTC/USDT and okx:BTC/USDT (okx's specs
    served in Binance's dialect), the same synthetic seed (one latent price), real time."""
    venue = {"taker_fee_bps": 0, "maker_fee_bps": 0}
    with make_emulator(tmp_path_factory.mktemp("emu-binance"), stepped=False, speed=1.0, venue=venue,
                       ids=("binance:BTC/USDT",)) as a, \
         make_emulator(tmp_path_factory.mktemp("emu-okx"), stepped=False, speed=1.0, venue=venue,
                       ids=("okx:BTC/USDT",)) as b:
        yield {"binance": a, "okx": b}



@pytest.fixture(autouse=True)
def _state_dir(tmp_path_factory, monkeypatch):
    """Live sessions keep their durable session stamps (engine.oms.next_session_stamp) in
    one state directory for the whole test run, not the user's ~/.local/state."""
    monkeypatch.setenv("TICKPARITY_STATE_DIR", str(tmp_path_factory.getbasetemp() / "tickparity-state"))
