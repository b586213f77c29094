"""Warm restart and reconciliation in a testnet session against the emulator: an order an
earlier session of ours left is adopted before any new order (and cancelled at the end with
the rest); an order not ours is reported and left alone; the ledger starts from the venue's
balances; every reconciliation is audited and clean; the replay re-runs it identically."""

from __future__ import annotations

import json

from emu_helpers import sync_client
from live_helpers import session_config

from modes.live import run_live
from modes.live.replay import replay_session

PARAMS = {"refresh_ms": 200, "half_spread_bps": 0, "qty": "0.01"}


def test_a_restart_adopts_ours_reports_others_and_reconciles(live_emu, alice_env, tmp_path):
    ex = sync_client(live_emu, "alice")
    ex.load_markets()
    bid = ex.fetch_order_book("BTC/USDT", 5)["bids"][0][0]
    left = ex.create_order("BTC/USDT", "limit", "buy", 0.001, round(bid * 0.9, 2), {"newClientOrderId": "tpold-7"})
    other = ex.create_order("BTC/USDT", "limit", "buy", 0.001, round(bid * 0.9, 2), {"newClientOrderId": "web-42"})
    try:
        out = run_live(session_config(live_emu, params=PARAMS), "testnet", tmp_path / "run", duration_s=3,
                       health=False, write_html=False, reconcile_s=1.0)
        audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
        kinds = [(r["type"], r.get("action")) for r in audit]
        adopt = kinds.index(("decision", "adopt"))
        first_submit = next(k for k, (_, action) in enumerate(kinds) if action == "submit")
        assert adopt < first_submit  # adopted before any new order
        assert audit[adopt]["client_id"] == "tpold-7" and audit[adopt]["venue_order_id"] == str(left["id"])
        checks = [r for r in audit if r["type"] == "reconcile"]
        assert checks[0]["at"] == "start" and checks[0]["adopted"] == ["tpold-7"]
        assert any("web-42" in f for f in checks[0]["foreign"])
        assert len(checks) >= 2 and all(r["ok"] for r in checks), [r["differences"] for r in checks]
        assert ex.fetch_order(left["id"], "BTC/USDT")["status"] == "canceled"  # ours: cancelled at the end
        assert ex.fetch_order(other["id"], "BTC/USDT")["status"] == "open"  # not ours: left alone
        assert replay_session(out, tmp_path / "replay").difference is None
    finally:
        ex.cancel_order(other["id"], "BTC/USDT")
