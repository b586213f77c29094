"""A bracket's resting take-profit amended by cancel-replace (the user's report: the leg
showed `cancelled` with filled > qty, and after a kill and `--resume` the session adopted
nothing and re-armed the stop on a position the take-profit had sold).

A testnet session (`tickparity testnet` in a subprocess, real ccxt against the emulator) rests
a bracket's entry; two trade prints fill it 0.004 then 0.006: the first sends the take-profit,
the second amends it (Binance: a new venue order under the same client id, the old one
CANCELED). The take-profit stays `working` in contingent.json and open in the OMS with the
amended size; its ids carry the session's prefix. The process is killed (SIGKILL); the
take-profit fills at the venue while no session runs; a `--resume` session finds its working
leg's venue order gone, looks it up by client id, books its fill once (by trade id) and ends
the bracket as if it had seen the fill live: the stop-loss cancelled, never re-armed on a
position the venue shows closed, the position flat, every reconciliation clean, nothing sent
(docs/contingent-orders.md "Restart"). The stepped market plays the prints only when the test says.
"""

from __future__ import annotations

import json
import signal
from decimal import Decimal

from contingent_market import (
    market,
    resume_testnet,
    start_testnet,
    stepped_emulator,
)
from emu_helpers import sync_client
from live_helpers import ROOT, wait_until

from engine.types import EventKind
from modes.live.replay import replay_session

STRATEGY = str(ROOT / "tests" / "modes" / "live" / "amend_strategies.py") + ":BracketOnce"
# seconds after HOLD_S: the entry (buy 0.01 at 59990) fills 0.004 then 0.006; at 40 s a buy
# prints through the take-profit at 61000 (by then the first session is dead)
EVENTS = [(2, EventKind.TRADE, -1, 5_999_000, 400), (6, EventKind.TRADE, -1, 5_999_000, 600),
          (40, EventKind.TRADE, 1, 6_100_000, 1_000)]


def _audit(run):
    path = run / "audit.jsonl"
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]


def test_an_amended_take_profit_stays_working_and_its_fill_while_down_ends_the_bracket(tmp_path, alice_env):
    source = [market(EVENTS, 120)]
    with stepped_emulator(tmp_path, source) as (emu, stepper):
        _scenario(emu, stepper, tmp_path)


def _legs(run):
    path = run / "contingent.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())["state"]


def _scenario(emu, stepper, tmp_path) -> None:
    ex = sync_client(emu, "alice")
    ex.load_markets()
    run1, run2 = tmp_path / "run1", tmp_path / "run2"
    first = start_testnet(emu, STRATEGY, tmp_path, run1)
    try:
        def resting_entry():
            state = _legs(run1)
            return state and {leg["role"]: leg for leg in state["legs"]}.get("entry", {}).get("state") == "working"
        wait_until("the first session to rest its entry", resting_entry, 90)
        stepper.play.set()  # the prints fill the entry 0.004, then 0.006

        def amended():
            audit = _audit(run1)
            return [r for r in audit if r.get("type") == "replaced"] and [
                r for r in audit if r.get("action") == "update" and r["event"] == "amended"]
        wait_until("the take-profit to be amended", amended, 60)
        def saved_amended():
            state = _legs(run1)
            legs = {leg["role"]: leg for leg in state["legs"]}
            fee_lots = state["groups"][0]["fee_lots"]
            return legs["entry"]["filled"] == 1_000 and legs["take_profit"]["qty"] == 1_000 - fee_lots
        wait_until("contingent.json to be saved after the amend", saved_amended, 10)
    finally:
        first.send_signal(signal.SIGKILL)  # a crash: no shutdown, nothing cancelled
        first.wait(10)
    journal = [json.loads(x) for x in (run1 / "session.jsonl").read_text().splitlines()[:1]]
    prefix = journal[0]["id_prefix"]
    saved = _legs(run1)
    legs = {leg["role"]: leg for leg in saved["legs"]}
    tp, entry = legs["take_profit"], legs["entry"]
    # the engine's ids carry the session's prefix (docs/orders-live.md "Client ids")
    assert tp["id"] == f"{tp['group']}.tp" and tp["group"].startswith(prefix + "-c")
    assert entry["state"] == "filled" and legs["stop_loss"]["state"] == "armed"
    assert tp["state"] == "working", tp
    audit1 = _audit(run1)
    tp_updates = [r for r in audit1 if r.get("action") == "update" and r["client_id"] == tp["id"]]
    assert "cancelled" not in [u["event"] for u in tp_updates], tp_updates
    last = tp_updates[-1]
    assert last["event"] == "amended" and Decimal(last["filled"]) <= Decimal(last["qty"])
    assert not [r for r in audit1 if r.get("type") in ("stale", "conflict") and r.get("client_id") == tp["id"]]
    # at the venue: the replacement, open, sized as the OMS says
    venue_tp = ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": tp["id"]})
    assert venue_tp["status"] == "open" and Decimal(str(venue_tp["amount"])) == Decimal(last["qty"])

    # the take-profit fills at the venue while no session runs
    wait_until("the take-profit to fill at the venue", lambda: ex.fetch_order(
        None, "BTC/USDT", {"origClientOrderId": tp["id"]})["status"] == "closed", 90)

    resume_testnet(emu, STRATEGY, run1, run2)
    audit2 = _audit(run2)
    (restored,) = [r for r in audit2 if r.get("action") == "contingent_restored"]
    assert restored["working"] == {tp["id"]: tp["id"]}
    assert restored["armed"] == [legs["stop_loss"]["id"]]
    # the working leg the venue no longer shows open is looked up by client id, not reported
    (looked,) = [r for r in audit2 if r.get("action") == "contingent_lookup"]
    assert looked["client_id"] == tp["id"]
    checks = [r for r in audit2 if r["type"] == "reconcile"]
    assert checks[0]["at"] == "start" and checks[0]["ok"] and checks[0]["lookups"] == [tp["id"]], checks[0]
    assert all(r["ok"] for r in checks), [r for r in checks if not r["ok"]]
    # its venue fill is booked once (by trade id) and ends the bracket: the stop-loss is
    # cancelled, never re-armed on a position the venue shows closed
    fills = [r for r in audit2 if r.get("type") == "fill" and r.get("client_id") == tp["id"]]
    assert sum(Decimal(f["qty"]) for f in fills) == Decimal(last["qty"]), fills
    assert len({f["trade_id"] for f in fills}) == len(fills)
    end = {leg["role"]: leg for leg in _legs(run2)["legs"]}
    assert end["take_profit"]["state"] == "filled" and end["stop_loss"]["state"] == "cancelled", end
    group = _legs(run2)["groups"][0]
    assert group["position"] == group["fee_lots"]  # what the venue kept of the entry as its fee
    # the ledger's position: the entry's 0.01 less the take-profit's sale (the base fee the
    # venue kept is a balance, not a position: as in a session that saw the fill live)
    positions = json.loads((run2 / "summary.json").read_text())["run"]["positions"]
    assert Decimal(positions["binance:BTC/USDT"]) == Decimal("0.01") - Decimal(last["qty"]), positions
    assert not [r for r in audit2 if r.get("action") == "submit"]
    assert replay_session(run2, tmp_path / "replay").difference is None

