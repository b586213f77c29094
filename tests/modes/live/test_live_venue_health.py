"""Venue health in testnet mode: two emulators (binance, and okx served in Binance's dialect),
a TWAP routed across both by the smart order router; one venue goes into maintenance through
the emulator's control API while our passive slices rest there. The session learns it from
the venue (status poll / "Market is closed." refusals), journals the change, the router sends
nothing more there, the open slices there are cancelled and their quantity re-routed to the
other venue; when maintenance ends the venue is routable again. The run replays exactly."""

from __future__ import annotations

import json
import threading
import time

from emu_helpers import control, get_json
from live_helpers import two_venue_config

from modes.live import run_live


def _fault_when_resting(emus: dict, body: dict, out: dict, stop: threading.Event) -> None:
    """Wait until an order of alice has rested on one emulator for 0.4 s (a slice that is not
    about to fill), then put that emulator into maintenance."""
    seen: dict[tuple[str, int], float] = {}
    deadline = time.monotonic() + 20
    while not stop.is_set() and time.monotonic() < deadline:
        for venue, emu in emus.items():
            for order_id in get_json(emu, "/emulator/state")["accounts"]["alice"]["open_orders"]:
                first = seen.setdefault((venue, order_id), time.monotonic())
                if time.monotonic() - first >= 0.4:
                    out["venue"] = venue
                    control(emu, "faults", body)
                    return
        time.sleep(0.05)


def _audit(run) -> list[dict]:
    return [json.loads(line) for line in (run / "audit.jsonl").read_text().splitlines()]


def test_a_venue_in_maintenance_gets_nothing_and_its_open_slices_are_rerouted(two_emus, alice_env, tmp_path):
    """The TWAP's passive slices (1 BTC each: larger than the touch trades in a second, so they
    rest) are posted on both venues, 20 slices over 40 s, re-posted at each;
    the first venue found holding one goes into maintenance (3 s cancel-only, 1 s halt)."""
    params = {"algo": "twap", "side": "buy", "quantity": "20", "parent_id": "twap-1", "route": True,
              "options": {"horizon_s": 40, "slices": 20, "style": "passive", "finish": "passive"}}
    config = two_venue_config(two_emus, "examples/algo_execution.py:AlgoExecution", params)
    faulted: dict = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_fault_when_resting, daemon=True,
                               args=(two_emus, {"kind": "maintenance", "duration": "3s", "halt": "1s"}, faulted, stop))
    watcher.start()
    try:
        run = run_live(config, "testnet", tmp_path / "run", duration_s=11, health=False, write_html=False,
                       venue_health_poll_s=0.3)
    finally:
        stop.set()
        watcher.join()
    assert faulted, "no order of ours rested on either emulator"
    bad = faulted["venue"]
    good = next(v for v in two_emus if v != bad)
    audit = _audit(run)
    health = [r for r in audit if r.get("action") == "venue_health"]
    down = next(r for r in health if r["venue"] == bad and r["state"] == "down")
    assert "BREAK" in down["reason"] or "market closed" in down["reason"], down
    up = next((r for r in health if r["venue"] == bad and r["state"] == "up" and r["ts"] > down["ts"]), None)
    assert up is not None, health  # maintenance ended (3 s + 1 s): routable again
    routes = [r for r in audit if r.get("action") == "route"]
    during = [r for r in routes if down["ts"] <= r["ts"] < up["ts"]]
    assert during, "no routing decision while the venue was down"
    assert all(s["venue"] != bad for r in during for s in r["splits"]), during
    assert any("venue down" in x for r in during for x in r["skipped"])
    # the slices resting on the bad venue when it went down were cancelled at that step...
    bad_ids = {r["client_id"] for r in audit if r.get("type") == "request" and r.get("action") == "submit"
               and r["venue"] == bad}
    cancels = [r for r in audit if r.get("type") == "request" and r.get("action") == "cancel"
               and r.get("client_id") in bad_ids and r["ts"] >= down["ts"]]
    assert cancels and cancels[0]["ts"] == down["ts"]
    # ...and their quantity re-routed to the other venue
    assert any(s["venue"] == good for r in during for s in r["splits"])
    summary = json.loads((run / "summary.json").read_text())["run"]
    assert summary["errors"] == [] or all("Market is closed" in e or "market" in e.lower() for e in summary["errors"])
    # every order of the session is closed at the end, on both venues
    for emu in two_emus.values():
        assert get_json(emu, "/emulator/state")["accounts"]["alice"]["open_orders"] == []
    # the health changes are in the journal: a replay applies them at the same steps
    from modes.live.replay import replay_session

    result = replay_session(run, tmp_path / "replay")
    assert result.difference is None, result.difference.text()
