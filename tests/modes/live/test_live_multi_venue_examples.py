"""The two multi-venue examples (cross-venue arbitrage with its leg-risk hedge, the multi-venue
market maker) run unchanged in testnet mode against two emulator instances: their own TOML,
with only each venue's table pointed at its own emulator (docs/live.md, "Two venues"). Each runs
a few seconds; its orders reach both venues, and the session ends reconciled (the start's
reconciliation ok, the ledger's balances at the end exactly the venues') with nothing open."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from emu_helpers import get_json
from live_helpers import ROOT, two_venue_config

from engine.config import load_config_file
from modes.live import run_live


def _example(name: str, emus: dict):
    values = load_config_file(ROOT / "examples" / f"{name}.toml")
    strategy = str(ROOT / "examples" / values["run"]["strategy"])
    return two_venue_config(emus, strategy, None, base=values)


@pytest.mark.parametrize("example", ["cross_venue_arb", "multi_venue_mm"])
def test_a_multi_venue_example_trades_on_two_emulators(example, two_emus, alice_env, tmp_path):
    run = run_live(_example(example, two_emus), "testnet", tmp_path / "run", duration_s=6, health=False,
                   write_html=False)
    audit = [json.loads(line) for line in (run / "audit.jsonl").read_text().splitlines()]
    submits = [r for r in audit if r.get("type") == "request" and r.get("action") == "submit"]
    assert {r["venue"] for r in submits} == {"binance", "okx"}, f"{len(submits)} orders"
    # every order the session sent reached its venue (the emulators' own journals)
    sent = {r["client_id"] for r in submits}
    confirmed = {r["report"]["client_id"] for r in audit if r.get("type") == "venue_reply"
                 and r["report"]["t"] == "command" and r["report"]["command"] == "submit"
                 and r["report"]["outcome"] in ("confirmed", "rejected")}
    assert sent == confirmed
    summary = json.loads((run / "summary.json").read_text())["run"]
    assert summary["open_orders"] == [] and summary["errors"] == []
    reconciles = [r for r in audit if r.get("type") == "reconcile"]
    assert reconciles and all(r["ok"] for r in reconciles)  # at start (then every 30 s)
    for venue, emu in two_emus.items():
        account = get_json(emu, "/emulator/state")["accounts"]["alice"]
        assert account["open_orders"] == []
        for asset in ("BTC", "USDT"):
            held = Decimal(account["free"].get(asset, "0")) + Decimal(account["locked"].get(asset, "0"))
            assert Decimal(summary["balances"][f"{venue}:{asset}"]) == held, (venue, asset)
    if example == "cross_venue_arb":  # arbitrages found; each leg miss hedged (or left as dust)
        notes = [r["message"] for r in audit if r.get("type") == "note"]
        assert notes.count("arb") >= 1
        for k, note in enumerate(notes):
            if note == "arb_leg_risk":
                assert notes[k + 1] in ("arb_hedge", "arb_dust"), notes[k:k + 3]
