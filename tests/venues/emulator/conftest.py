"""Emulators for the tests: synthetic data, a stepped market clock (market time moves only
when a test says so, so books and fills are deterministic), real sockets on 127.0.0.1."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from emu_helpers import make_emulator, step, sync_client  # noqa: E402


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    """A stepped emulator shared by a test module (two accounts, BTC/USDT and ETH/USDT)."""
    with make_emulator(tmp_path_factory.mktemp("emu")) as e:
        yield e


@pytest.fixture(scope="module")
def alice(emu):
    """A sync ccxt client of the account `alice`, markets loaded, after 1 s of market."""
    step(emu, 1.0)
    ex = sync_client(emu, "alice")
    ex.load_markets()
    return ex
