"""The single-venue example strategies run unchanged in paper, testnet and live mode
against the emulator (their own TOML, only [venues.binance] pointed at it; live with its
confirmation given by environment variable). Market maker in all three: test_live_paper.py
and test_live_testnet.py."""

from __future__ import annotations

import json

import pytest
from live_helpers import ALICE, ROOT

from engine.config import load_config_file, resolve
from modes.live import run_live


def _example(name: str, emu) -> object:
    values = load_config_file(ROOT / "examples" / f"{name}.toml")
    table = values.setdefault("venues", {}).setdefault("binance", {})
    table.update({"url": emu.url, **ALICE})
    return resolve(values, {}, base_dir=str(ROOT / "examples"))


@pytest.mark.parametrize(("example", "mode"), [("twap", "paper"), ("twap", "testnet"), ("twap", "live")])
def test_an_example_runs_unchanged(example, mode, live_emu, alice_env, monkeypatch, tmp_path):
    monkeypatch.setenv("TICKPARITY_CONFIRM_LIVE", "alice")
    out = run_live(_example(example, live_emu), mode, tmp_path / "run", duration_s=1.5, health=False,
                   write_html=False)
    summary = json.loads((out / "summary.json").read_text())["run"]
    assert summary["mode"] == mode
    assert summary["orders"] >= 1  # the TWAP's first slice goes out at once
    assert summary["errors"] == []


def test_a_compiled_strategy_runs_in_paper_mode(live_emu, tmp_path):
    config = resolve({"run": {"strategy": "examples/compiled_market_maker.py:CompiledTouchQuoter",
                              "instruments": ["binance:BTC/USDT"], "data": "synthetic:0"},
                      "venues": {"binance": {"url": live_emu.url}}}, {}, base_dir=str(ROOT))
    out = run_live(config, "paper", tmp_path / "run", duration_s=1.5, health=False, write_html=False)
    assert json.loads((out / "summary.json").read_text())["run"]["orders"] >= 2
