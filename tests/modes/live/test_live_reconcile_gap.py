"""A real balance gap while orders are always in flight closes the fail-closed gate
(engine/reconcile.py CONFIRM_AFTER, docs/live.md "Reconciliation").

A testnet session against its own emulator: AlwaysInFlight sends a post-only buy every
250 ms and the emulator holds each submit's request and reply 300 ms (`latency_spike` on
POST /api/v3/order), so every reconciliation finds orders in flight and none is ever
settled: before the N-sightings rule such a gap stayed "pending" forever. 5 USDT leave
alice's account at the emulator (its account's balance moved, as a withdrawal does) while
the session runs; the checks see the venue 5 USDT short of the ledger with the ledger's
figure unchanged; the third consecutive sighting counts it (CONFIRM_AFTER = 3, the first
two pending), the gate closes (later submits refused locally, `fail_closed`), and
`tickparity replay` re-runs the session identically (the count is recorded)."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from pathlib import Path

from emu_helpers import control, make_emulator
from live_helpers import session_config

from modes.live import run_live
from modes.live.replay import replay_session

STRATEGY = str(Path(__file__).resolve().parent / "inflight_strategy.py") + ":AlwaysInFlight"
GAP = Decimal("5")


def _withdraw_once_started(emu, run: Path, asset: str, amount: Decimal, done: threading.Event) -> None:
    """Once the session has started (its start step journaled; the ledger was seeded from
    the venue's balances before it), take `amount` of `asset` out of alice's account."""
    deadline = time.monotonic() + 30
    journal = run / "session.jsonl"
    while time.monotonic() < deadline and not done.is_set():
        if journal.exists() and '"start":1' in journal.read_text():
            break
        time.sleep(0.05)
    time.sleep(0.5)

    def go(server):
        account = next(a for a in server.exchange.accounts if a.name == "alice")
        account.move(asset, -amount, Decimal(0))

    emu.call(go)


def test_a_real_gap_fails_closed_while_orders_are_always_in_flight(alice_env, tmp_path):
    with make_emulator(tmp_path / "emu", stepped=False, speed=1.0) as emu:
        control(emu, "faults", {"kind": "latency_spike", "duration": "60s", "extra": "300ms",
                                "endpoint": "POST /api/v3/order"})
        done = threading.Event()
        withdraw = threading.Thread(target=_withdraw_once_started, args=(emu, tmp_path / "run", "USDT", GAP, done))
        withdraw.start()
        try:
            out = run_live(session_config(emu, strategy=STRATEGY), "testnet", tmp_path / "run", duration_s=6,
                           health=False, write_html=False, reconcile_s=0.5)
        finally:
            done.set()
            withdraw.join()
            control(emu, "faults", {"clear": True})
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    checks = [r for r in audit if r["type"] == "reconcile" and r["at"] != "start"]
    gap = [r for r in checks if any("binance:USDT" in d for d in r.get("pending", []) + r["differences"])]
    assert len(gap) >= 3, [(r.get("pending"), r["differences"]) for r in checks]
    first, second, third = gap[:3]
    assert first["ok"] and second["ok"] and not third["ok"]  # pending twice, counted at the third
    line = third["differences"][0]
    ours, venue = line.split(": ours ")[1].split(", venue ")
    assert line.startswith("balance binance:USDT: ours ")
    assert Decimal(ours) - Decimal(venue.split(" ")[0]) == GAP  # the withdrawal, to the unit
    # the same amount, the same ledger figure (the venue's free/locked split moves with the
    # orders in flight, its total does not)
    total = line.split(" (free")[0]
    assert [d.split(" (free")[0] for d in first["pending"] + second["pending"]] == [total, total]

    # orders were in flight at every one of those checks: a submit before it, answered after it
    def in_flight_at(ts: int) -> bool:
        sent = {r["client_id"] for r in audit if r["type"] == "request" and r["action"] == "submit" and r["ts"] <= ts}
        answered = {r["client_id"] for r in audit if r["type"] == "response" and r.get("command") == "submit"
                    and r["ts"] <= ts}
        return bool(sent - answered)

    assert all(in_flight_at(r["ts"]) for r in (first, second, third))
    refused = [r for r in audit if r["type"] == "reject" and r["reason"] == "fail_closed"]
    assert refused and all(r["ts"] >= third["ts"] for r in refused)  # later submits refused locally
    assert replay_session(out, tmp_path / "replay").difference is None
