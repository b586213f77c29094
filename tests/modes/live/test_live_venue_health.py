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

import pytest
from emu_helpers import control, get_json, make_emulator, still_market
from live_helpers import two_venue_config

from modes.live import run_live


@pytest.fixture(scope="module")
def still_emus(tmp_path_factory):
    """Two emulators whose market never moves and never trades (binance 60000.00 / 60010.00,
    okx 60000.0 / 60010.0, 1 BTC each side): a passive slice rests until it is cancelled."""
    venue = {"taker_fee_bps": 0, "maker_fee_bps": 0}
    with make_emulator(tmp_path_factory.mktemp("still-binance"), stepped=False, venue=venue,
                       ids=("binance:BTC/USDT",), source=still_market(bid=6_000_000, ask=6_001_000,
                                                                    lots=100_000)) as a, \
         make_emulator(tmp_path_factory.mktemp("still-okx"), stepped=False, venue=venue,
                       ids=("okx:BTC/USDT",), source=still_market(bid=600_000, ask=600_100,
                                                                lots=100_000_000)) as b:
        yield {"binance": a, "okx": b}


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


def test_a_venue_in_maintenance_gets_nothing_and_its_open_slices_are_rerouted(still_emus, alice_env, tmp_path):
    """The TWAP's passive slices rest (a market that never trades), 20 slices over 40 s,
    re-posted at each; the venue found holding one goes into maintenance (3 s cancel-only,
    1 s halt)."""
    two_emus = still_emus
    params = {"algo": "twap", "side": "buy", "quantity": "1", "parent_id": "twap-1", "route": True,
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


def test_the_ccxt_symptoms_map_to_health_states():
    """What each classified REST outcome does (modes/live/venue_health.py), with ccxt's own
    exception classes through venues.ccxt.outcomes.classify and a real WeightLimiter."""
    from types import SimpleNamespace

    import ccxt

    from engine.types.venue_reports import Command, Outcome
    from modes.live.venue_health import LiveVenueHealth
    from venues.ccxt.outcomes import Classified, classify
    from venues.ccxt.ratelimit import WeightLimiter

    wall = [1000.0]
    limiter = WeightLimiter(wall=lambda: wall[0])
    gateway = SimpleNamespace(listeners=[], limiter=limiter)
    now = [1000 * 10**9]
    health = LiveVenueHealth({"binance": SimpleNamespace(gateway=gateway)}, {}, lambda: now[0], poll_s=0)
    (listen,) = gateway.listeners  # attached to the venue's gateway
    lost = classify(ccxt.RequestTimeout("binance POST timed out"), Command.SUBMIT)
    refused = classify(ccxt.InsufficientFunds("x"), Command.SUBMIT, status=400,
                       body='{"code":-2010,"msg":"Account has insufficient balance for requested action."}')
    for _ in range(2):
        listen("create_order", lost)
    listen("create_order", refused)  # a coded refusal is an answer: the count restarts
    listen("create_order", lost)
    listen("fetch_order", None)  # a lookup answered: reads have their own breaker
    listen("cancel_order", lost)
    assert health.changes(now[0]) == []
    listen("edit_order", lost)  # third order call in a row
    assert health.changes(now[0]) == [["binance", "down", "REST failing (orders): RequestTimeout"]]
    now[0] += 5 * 10**9
    assert health.changes(now[0]) == [["binance", "degraded", "on probation after REST failures (orders)"]]
    listen("fetch_balance", None)
    assert health.changes(now[0]) == []
    listen("create_order", None)
    assert health.changes(now[0]) == [["binance", "up", ""]]
    # an order refused here because the request budget is spent: rate limited for that wait
    budget = Classified(Outcome.REJECTED, False, False, "request_budget",  # as Gateway._call refuses it
                        evidence={"local": "the venue's request budget is spent", "wait_s": 2.5})
    listen("create_order", budget)
    assert health.changes(now[0]) == [["binance", "rate_limited", "request budget spent"]]
    assert health.changes(now[0] + 25 * 10**8) == [["binance", "up", ""]]
    now[0] += 3 * 10**9
    # 429 with Retry-After 7 s: rate limited until then
    headers = {"Retry-After": "7"}
    limiter.observe(429, headers)
    listen("create_order", classify(ccxt.DDoSProtection("x"), Command.SUBMIT, status=429,
                                    body='{"code":-1003,"msg":"Too many requests."}', headers=headers))
    assert health.changes(now[0]) == [["binance", "rate_limited", "HTTP 429: Too many requests."]]
    assert health.changes(now[0] + 7 * 10**9) == [["binance", "up", ""]]
    # maintenance: "Market is closed." until an order is accepted (no status poll here)
    closed = classify(ccxt.ExchangeError("x"), Command.SUBMIT, status=400,
                      body='{"code":-2010,"msg":"Market is closed."}')
    assert closed.reason == "market_closed"
    listen("create_order", closed)
    assert health.changes(now[0] + 8 * 10**9) == [["binance", "down", "market closed: Market is closed."]]
    listen("create_order", None)
    assert health.changes(now[0] + 9 * 10**9) == [["binance", "up", ""]]
    # a stream error: down until 2 s pass without another
    now[0] += 10 * 10**9
    health.stream_error("binance", "user stream (orders)", ccxt.NetworkError("closed"))
    assert health.changes(now[0]) == [["binance", "down", "user stream lost: NetworkError"]]
    assert health.changes(now[0] + 2 * 10**9) == [["binance", "up", ""]]


def _faults_in_turn(emu, out: dict, stop: threading.Event) -> None:
    """Once the session quotes: drop the market websockets; 2 s later lose every order request
    for 1.5 s (connection closed unanswered)."""
    deadline = time.monotonic() + 20
    while not stop.is_set() and time.monotonic() < deadline:
        if get_json(emu, "/emulator/state")["accounts"]["alice"]["open_orders"]:
            control(emu, "faults", {"kind": "ws_disconnect", "stream": "market"})
            out["ws"] = True
            if not stop.wait(2.0):
                control(emu, "faults", {"kind": "request_lost", "count": -1, "until": "1.5s"})
                out["rest"] = True
            return
        time.sleep(0.05)


def test_a_dropped_stream_and_failing_rest_calls_mark_the_venue_down_then_up(two_emus, alice_env, tmp_path):
    """The example market maker on one emulator: a market-stream drop makes the venue "down"
    until rows arrive again; order requests lost for 1.5 s (3 in a row trip it) trip the REST breaker ("down"
    for the 5 s cool-off), then "degraded" until the next answered call (the probe's: the
    market maker quotes only while its venue is "up"), then "up"."""
    from live_helpers import session_config

    emu = two_emus["binance"]
    faults: dict = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_faults_in_turn, args=(emu, faults, stop), daemon=True)
    watcher.start()
    try:
        run = run_live(session_config(emu, params={"refresh_ms": 200, "half_spread_bps": 0, "qty": "0.01"}),
                       "testnet", tmp_path / "run", duration_s=10, health=False, write_html=False)
    finally:
        stop.set()
        watcher.join()
    assert faults == {"ws": True, "rest": True}
    states = [(r["state"], r["reason"]) for r in _audit(run) if r.get("action") == "venue_health"]
    expected = [("down", "market stream lost"), ("up", ""), ("down", "REST failing (orders)"),
                ("degraded", "on probation after REST failures (orders)"), ("up", "")]
    found = iter(states)  # in this order (other changes, e.g. a spent order budget, may come between)
    assert all(any(s == state and r.startswith(reason) for s, r in found) for state, reason in expected), states
    from modes.live.replay import replay_session

    result = replay_session(run, tmp_path / "replay")
    assert result.difference is None, result.difference.text()
