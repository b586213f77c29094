"""How an order's end reads to the strategy in testnet (real ccxt against the emulator) and
in a backtest: one vocabulary in every mode (docs/strategy-api.md).

- Binance ends an IOC's unfilled remainder as EXPIRED; the simulated venue reports it
  `cancelled` / `ioc_remainder`, and so does the live path now (it said `expired` with no
  reason, and a strategy written against the backtest misread it).
- A confirmed cancel ends with reason `user_cancel` whether the REST reply or the stream's
  CANCELED arrives first (with the stream first the reason was None: found by a new user's
  trial, 3 of 39 cancels in one session)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from emu_helpers import control
from live_helpers import session_config

from modes.live import run_live

STRATEGY = f"{Path(__file__).resolve().parent / 'end_reason_strategies.py'}:IocAndCancel"


def _updates(run: Path) -> list[tuple[str, str | None]]:
    records = [json.loads(line) for line in (run / "audit.jsonl").read_text().splitlines()]
    return [(r["event"], r["reason"]) for r in records if r.get("action") == "update"]


@pytest.mark.parametrize("stream_first", [False, True], ids=["rest-first", "stream-first"])
def test_an_ioc_remainder_and_a_cancel_end_as_in_a_backtest(live_emu, alice_env, tmp_path, stream_first):
    control(live_emu, "limits", {"stream_first": stream_first})
    try:
        run_live(session_config(live_emu, STRATEGY), "testnet", tmp_path / "run", duration_s=3, health=False,
                 write_html=False)
    finally:
        control(live_emu, "limits", {"stream_first": False})
    ends = [u for u in _updates(tmp_path / "run") if u[0] not in ("acknowledged",)]
    assert ends == [("cancelled", "ioc_remainder"), ("cancelled", "user_cancel")], ends


def test_the_backtest_says_the_same(tmp_path):
    from modes.cli import main

    out = tmp_path / "bt"
    assert main(["backtest", "--strategy", STRATEGY, "--data", "synthetic:11:5s", "--instrument", "binance:BTC/USDT",
                 "--out", str(out), "--no-report"]) == 0
    ends = [u for u in _updates(out) if u[0] not in ("acknowledged",)]
    assert ends == [("cancelled", "ioc_remainder"), ("cancelled", "user_cancel")], ends
