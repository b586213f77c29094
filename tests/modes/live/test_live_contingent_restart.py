"""Contingent orders survive a live warm restart (issue 13; docs/contingent-orders.md "Restart").

A testnet session (`tickparity testnet` in a subprocess, real ccxt against the emulator)
arms a take-profit (buy if touched) and a bracket whose entry fills at once: its stop-loss is armed in the engine,
its take-profit rests at the venue. The process is killed (SIGKILL: no shutdown, nothing
cancelled). A new session on the same account with `--resume` of the first run directory
restores the contingent orders from that directory, adopts the take-profit it finds open at
the venue (the start reconciliation is clean; so are the periodic ones, which count the
contingent child as ours), and when the market falls through both triggers they fire as
they would have: the stop-loss first (the tie rule), its market sell sized to what the entry
delivered, the bracket's take-profit cancelled, then the take-profit's market buy. The replay re-runs it.

The emulator's clock is stepped by the test (100 ms of market time every 100 ms, a jump for
the fall), so the fall comes only after the second session is up, whatever the machine's load.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
from contingent_market import (
    market,
    resume_in_thread,
    start_testnet,
    stepped_emulator,
)
from emu_helpers import sync_client
from live_helpers import ROOT, session_config, wait_until

from engine.errors import ConfigError
from modes.live import run_live
from modes.live.replay import replay_session

STRATEGY = str(ROOT / "tests" / "modes" / "live" / "contingent_strategies.py") + ":ArmOnce"


def _audit(run):
    path = run / "audit.jsonl"
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]


def test_armed_contingent_orders_survive_a_killed_session(tmp_path, alice_env):
    # at HOLD_S the book falls to bid 59000.00 / ask 59000.10
    source = [market([], 100, after=(5_900_000, 5_900_010))]
    with stepped_emulator(tmp_path, source) as (emu, stepper):
        _scenario(emu, stepper, tmp_path)


def _scenario(emu, stepper, tmp_path) -> None:
    ex = sync_client(emu, "alice")
    ex.load_markets()
    btc_before = ex.fetch_balance()["total"]["BTC"]
    run1, run2 = tmp_path / "run1", tmp_path / "run2"
    first = start_testnet(emu, STRATEGY, tmp_path, run1)
    try:
        def armed_and_resting():
            path = run1 / "contingent.json"
            if not path.is_file():
                return False
            legs = {leg["id"]: leg["state"] for leg in json.loads(path.read_text())["state"]["legs"]}
            open_ids = {o["clientOrderId"] for o in ex.fetch_open_orders("BTC/USDT")}
            return legs.get("br.sl") == "armed" and legs.get("st") == "armed" and "br.tp" in open_ids
        wait_until("the first session to arm its triggers and rest its take-profit", armed_and_resting, 90)
    finally:
        first.send_signal(signal.SIGKILL)  # a crash: no shutdown, nothing cancelled
        first.wait(10)
    saved = json.loads((run1 / "contingent.json").read_text())["state"]
    assert saved["live_filled"]["br.tp"] == 0  # what the take-profit had filled when the session died

    thread, result = resume_in_thread(emu, STRATEGY, run1, run2, duration_s=15)
    wait_until("the second session to restore", lambda: "error" in result or any(
        r.get("action") == "contingent_restored" for r in _audit(run2)), 60)
    assert "error" not in result, result.get("error")
    stepper.play.set()  # the market falls through both triggers
    thread.join(120)
    assert "error" not in result, result.get("error")

    audit = _audit(run2)
    (restored,) = [r for r in audit if r.get("action") == "contingent_restored"]
    assert restored["resume_from"] == str(run1)
    assert sorted(restored["armed"]) == ["br.sl", "st"] and restored["working"] == {"br.tp": "br.tp"}
    checks = [r for r in audit if r["type"] == "reconcile"]
    assert checks[0]["at"] == "start" and checks[0]["adopted"] == ["br.tp"] and checks[0]["foreign"] == []
    assert len(checks) >= 2 and all(r["ok"] for r in checks), [r["differences"] for r in checks]
    # one market event touches both: the stop wins the tie (docs/contingent-orders.md)
    assert [r["id"] for r in audit if r.get("action") == "trigger"] == ["br.sl", "st"]
    assert restored["positions"] == {"binance:BTC/USDT": "0.01"}
    assert not any(r.get("action") in ("contingent", "contingent_group") for r in audit)  # nothing armed anew
    # the strategy saw them at on_start (ctx.contingent_orders: emulated orders not yet final)
    assert [r["ids"] for r in audit if r.get("action") == "resumed"] == ["br.sl,st"]
    orders = {r["client_id"]: r for r in pq.read_table(run2 / "orders.parquet").to_pylist()}
    def row(cid):
        o = orders[cid]
        return o["side"], o["type"], Decimal(o["qty"]), o["status"]
    assert row("st.1") == ("buy", "market", Decimal("0.005"), "filled")
    assert row("br.sl.1") == ("sell", "market", Decimal("0.00999"), "filled"), {k: v for k, v in orders["br.sl.1"].items() if v is not None}
    assert orders["br.tp"]["status"] == "cancelled"
    assert "br.entry" not in orders  # nothing sent again
    assert ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "br.tp"})["status"] == "canceled"
    # bought 0.01 and 0.005 (10 bps taker fee in BTC: 0.00001 and 0.000005), sold 0.00999
    btc_after = ex.fetch_balance()["total"]["BTC"]
    assert round(btc_after - btc_before, 8) == round(0.01 - 0.00001 + 0.005 - 0.000005 - 0.00999, 8)
    assert replay_session(run2, tmp_path / "replay").difference is None
    # run1 was taken over by run2: resuming it again (API or CLI) is refused, naming run2
    claimed_by = str(run2.resolve())
    with pytest.raises(ConfigError, match=rf"--resume {run1}: already resumed by {claimed_by} .*resume {claimed_by} instead"):
        run_live(session_config(emu, strategy=STRATEGY), "testnet", tmp_path / "run3", duration_s=5,
                 health=False, write_html=False, resume=run1)
    again = subprocess.run([sys.executable, "-m", "modes.cli", "testnet", "--config", str(tmp_path / "run.toml"), "--out",
                            str(tmp_path / "run4"), "--resume", str(run1), "--no-report", "--no-health"],
                           cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines()[-1] == (
        f"tickparity: error: --resume {run1}: already resumed by {claimed_by} "
        f"(at {json.loads((run1 / 'resumed_by.json').read_text())['at']}); its contingent orders belong to that "
        f"session now and resuming again would adopt them twice: resume {claimed_by} instead")
    assert not (tmp_path / "run3").exists() and not (tmp_path / "run4").exists()
