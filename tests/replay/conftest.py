"""Shared fixtures for the replay tests: instruments and a small synthetic dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.types import load_instruments

# the two real captures (hftbacktest's example data, MIT) ship with the tests, so the
# oracle runs wherever the repository is cloned
WS_DATA = Path(__file__).resolve().parents[1] / "data" / "binance-ws"

PERP_TOML = """
["binance:BTC/USD:BTC"]
venue_symbol = "BTCUSD_PERP"
base = "BTC"
quote = "USD"
tick_size = "0.1"
lot_size = "1"
min_qty = "1"
min_notional = "0"

["binance:BTC/USDT"]
venue_symbol = "BTCUSDT"
base = "BTC"
quote = "USDT"
tick_size = "0.01"
lot_size = "0.00001"
min_qty = "0.00001"
min_notional = "10"
"""


@pytest.fixture(scope="session")
def instruments():
    return load_instruments()


@pytest.fixture(scope="session")
def perp_instruments_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inst") / "instruments.toml"
    path.write_text(PERP_TOML)
    return path


@pytest.fixture(scope="session")
def small_events(instruments):
    """Two instruments, 20 s of synthetic data, as one merged array."""
    from replay.synthetic import generate

    sel = [instruments["binance:BTC/USDT"], instruments["binance:ETH/USDT"]]
    chunks = list(generate(sel, 11, duration_ns=20 * 10**9, chunk_rows=5000))
    return np.concatenate(chunks)


@pytest.fixture
def ws_data() -> Path:
    """The real Binance captures (tests/data/binance-ws, shipped with the repository)."""
    assert WS_DATA.is_dir(), f"real Binance captures missing at {WS_DATA}"
    return WS_DATA
